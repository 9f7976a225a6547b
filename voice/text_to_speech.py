"""Text-to-speech: words in a language -> 16-bit mono PCM at the engine's own sample rate.

The port is `Synthesizer`; `EspeakSynthesizer` runs the espeak-ng command (Debian package `espeak-ng`),
`FakeSynthesizer` makes a tone per text for tests of the code above it. Turning the PCM into the files
Asterisk plays is `voice.prompt_files`' job.

Each synthesizer also says what it would render a language with (`voice_of`): engine, version, voice
and settings. Stored beside every rendered file, it tells `centralita prompts build` that a file made with
another voice or another espeak-ng is stale, while the file name (a hash of language and text) already
changes with the words.
"""

from __future__ import annotations

import hashlib
import math
import re
import shutil
import struct
import subprocess
import sys
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

# espeak-ng voices for the languages Centralita ships flows in; any other language tries the voice of
# the same name (espeak-ng has voices named `fr`, `de`, `pt`…). British English: the shipped English
# line is a UK one.
DEFAULT_VOICES: Mapping[str, str] = {"es": "es", "en": "en"}
# Words a minute. espeak-ng's own default (175) is quick for a caller on a phone line.
DEFAULT_SPEED = 150
# 0-200, espeak-ng's default 100 peaks at full scale, and resampling to 8 kHz then clips; 85 leaves room.
DEFAULT_AMPLITUDE = 85
SYNTHESIS_TIMEOUT_SECONDS = 60.0


class SynthesisError(Exception):
    """The text could not be spoken: no engine, no voice for the language, or the engine failed."""


@dataclass(frozen=True, slots=True)
class Speech:
    pcm: bytes  # signed 16-bit little-endian samples, one channel
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


class Synthesizer(Protocol):
    def voice_of(self, language: str) -> str:
        """What `language` is rendered with, e.g. `espeak-ng 1.51 voice=es speed=150 amplitude=85`."""
        ...

    def synthesize(self, text: str, language: str) -> Speech: ...


class EspeakSynthesizer:
    """espeak-ng, one process a text. Thread-safe: nothing is shared between calls."""

    def __init__(
        self,
        *,
        voices: Mapping[str, str] | None = None,
        speed: int = DEFAULT_SPEED,
        amplitude: int = DEFAULT_AMPLITUDE,
        executable: str = "espeak-ng",
    ) -> None:
        if not 80 <= speed <= 450:  # espeak-ng's own limits
            raise SynthesisError(f"espeak-ng speed must be 80 to 450 words a minute, not {speed}")
        if not 0 < amplitude <= 200:
            raise SynthesisError(f"espeak-ng amplitude must be 1 to 200, not {amplitude}")
        found = shutil.which(executable)
        if found is None:
            raise SynthesisError(
                f"{executable} is not installed (Debian/Ubuntu: apt-get install espeak-ng); "
                "it renders the text-only prompts"
            )
        self._executable = found
        self._voices = {**DEFAULT_VOICES, **(voices or {})}
        self._speed = speed
        self._amplitude = amplitude
        self.version = _espeak_version(found)

    def voice(self, language: str) -> str:
        return self._voices.get(language, language)

    def voice_of(self, language: str) -> str:
        return (
            f"espeak-ng {self.version} voice={self.voice(language)} speed={self._speed} "
            f"amplitude={self._amplitude}"
        )

    def synthesize(self, text: str, language: str) -> Speech:
        voice = self.voice(language)
        command = [self._executable, "--stdout", "-b", "1", "-v", voice]
        command += ["-s", str(self._speed), "-a", str(self._amplitude)]
        # The text is an argument after "--", so one starting with "-" is not an option. Not on stdin:
        # with --stdin, espeak-ng 1.51 speaks an unknown voice with its default one, and says nothing.
        command += ["--", text]
        try:
            done = subprocess.run(command, capture_output=True, timeout=SYNTHESIS_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            raise SynthesisError(f"espeak-ng took over {SYNTHESIS_TIMEOUT_SECONDS:.0f} s") from None
        except OSError as exc:
            raise SynthesisError(f"cannot run {self._executable}: {exc}") from None
        message = done.stderr.decode(errors="replace").strip()
        if "voice does not exist" in message:
            raise SynthesisError(
                f"espeak-ng has no voice {voice!r} for language {language!r}: choose one with "
                f"--voice {language}=VOICE (`espeak-ng --voices` lists them)"
            )
        if done.returncode != 0:
            raise SynthesisError(f"espeak-ng failed (exit {done.returncode}): {message or 'no message'}")
        speech = read_wav_stream(done.stdout)
        if not speech.pcm:
            raise SynthesisError("espeak-ng produced no audio for this text")
        return speech


def _espeak_version(executable: str) -> str:
    try:
        done = subprocess.run([executable, "--version"], capture_output=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SynthesisError(f"cannot run {executable} --version: {exc}") from None
    # "eSpeak NG text-to-speech: 1.51  Data at: /usr/lib/x86_64-linux-gnu/espeak-ng-data"
    found = re.search(r"text-to-speech:\s*(\S+)", done.stdout.decode(errors="replace"))
    if found is None:
        raise SynthesisError(f"cannot read the version of {executable}: {done.stdout[:80]!r}")
    return found.group(1)


def read_wav_stream(data: bytes) -> Speech:
    """The PCM of a 16-bit mono WAV written to a pipe. espeak-ng cannot seek back to fill in the sizes,
    so its RIFF and data sizes say 0x7ffff000; the data is whatever follows the data chunk's header."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SynthesisError("the engine's output is not a WAV stream")
    position = 12
    sample_rate: int | None = None
    while position + 8 <= len(data):
        chunk, size = data[position : position + 4], struct.unpack_from("<I", data, position + 4)[0]
        body = position + 8
        if chunk == b"fmt ":
            audio_format, channels, sample_rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if (audio_format, channels, bits) != (1, 1, 16):
                raise SynthesisError(
                    f"the engine's WAV is format {audio_format}, {channels} channels, {bits} bits; "
                    "expected 16-bit mono PCM"
                )
        elif chunk == b"data":
            if sample_rate is None:
                raise SynthesisError("the engine's WAV has its data before its format")
            pcm = data[body : body + size]
            return Speech(pcm[: len(pcm) // 2 * 2], sample_rate)
        position = body + size + (size & 1)  # chunks are padded to an even length
    raise SynthesisError("the engine's WAV has no data")


class FakeSynthesizer:
    """Speaks a tone whose pitch comes from the text, 10 ms a character, for the languages it is given;
    others fail the way espeak-ng fails for a language it has no voice for. Records what it was asked."""

    def __init__(
        self, languages: Iterable[str] = ("es", "en"), *, sample_rate: int = 16000, voice: str = "fake 1"
    ) -> None:
        self.languages = set(languages)
        self.sample_rate = sample_rate
        self.voice = voice
        self.spoken: list[tuple[str, str]] = []

    def voice_of(self, language: str) -> str:
        return f"{self.voice} voice={language}"

    def synthesize(self, text: str, language: str) -> Speech:
        if language not in self.languages:
            raise SynthesisError(f"no voice for language {language!r}")
        self.spoken.append((language, text))
        pitch = 200 + int(hashlib.sha256(text.encode()).hexdigest()[:4], 16) % 600
        count = max(1, len(text)) * self.sample_rate // 100
        step = 2 * math.pi * pitch / self.sample_rate
        samples = array("h", (int(8000 * math.sin(step * i)) for i in range(count)))
        if sys.byteorder == "big":
            samples.byteswap()
        return Speech(samples.tobytes(), self.sample_rate)
