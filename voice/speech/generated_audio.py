"""Generated telephone audio for the speech tests and `bench/asr.py`: words spoken by espeak-ng in
several voices and speeds, silence, noise, and mixes of them — 8 kHz signed 16-bit little-endian mono,
the format calls arrive in. Needs the Debian packages espeak-ng and sox.

Results are cached on disk by content hash (`cache_dir`), so a test run synthesises each phrase once.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import struct
import subprocess
from pathlib import Path

from voice.speech.recognition import SAMPLE_RATE
from voice.text_to_speech import EspeakSynthesizer, SynthesisError

# espeak-ng voices that ship with the Debian package (the mbrola ones need more packages).
ENGLISH_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp")
SPANISH_VOICES = ("es", "es-419")
SPEEDS = (130, 175)  # words a minute: a slow and a quick caller


class GeneratedAudio:
    def __init__(self, cache_dir: Path) -> None:
        if shutil.which("sox") is None:
            raise SynthesisError("sox is not installed (Debian/Ubuntu: apt-get install sox)")
        self.cache_dir = cache_dir
        cache_dir.mkdir(parents=True, exist_ok=True)
        self._synthesizers: dict[tuple[str, int], EspeakSynthesizer] = {}

    def speech(self, text: str, *, voice: str = "en-us", speed: int = 150) -> bytes:
        """`text` spoken by espeak-ng's `voice` at `speed` words a minute, resampled to 8 kHz."""
        key = hashlib.sha256(f"{voice}|{speed}|{text}".encode()).hexdigest()[:24]
        cached = self.cache_dir / f"{key}.sln"
        if cached.exists():
            return cached.read_bytes()
        synthesizer = self._synthesizers.get((voice, speed))
        if synthesizer is None:
            synthesizer = EspeakSynthesizer(voices={voice: voice}, speed=speed)
            self._synthesizers[(voice, speed)] = synthesizer
        spoken = synthesizer.synthesize(text, voice)
        pcm = resample(spoken.pcm, spoken.sample_rate, SAMPLE_RATE)
        temporary = cached.with_suffix(".part")
        temporary.write_bytes(pcm)
        temporary.replace(cached)
        return pcm


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """16-bit mono PCM from one sample rate to another, with sox's high-quality filter."""
    if from_rate == to_rate:
        return pcm
    raw = ["-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-L"]
    command = ["sox", *raw, "-r", str(from_rate), "-", *raw, "-r", str(to_rate), "-"]
    done = subprocess.run(command, input=pcm, capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise SynthesisError(f"sox failed to resample: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def silence(milliseconds: int) -> bytes:
    return bytes(SAMPLE_RATE * milliseconds // 1000 * 2)


def noise(milliseconds: int, *, amplitude: int, seed: int = 0) -> bytes:
    """White noise, uniform in ±`amplitude` (of 32767): 300 is a quiet line, 3000 a loud street."""
    chance = random.Random(seed)
    count = SAMPLE_RATE * milliseconds // 1000
    return struct.pack(f"<{count}h", *(chance.randint(-amplitude, amplitude) for _ in range(count)))


def mix(*tracks: bytes) -> bytes:
    """Tracks added sample by sample (clipped), as long as the longest."""
    length = max(len(track) for track in tracks) // 2
    total = [0] * length
    for track in tracks:
        for index, sample in enumerate(struct.unpack(f"<{len(track) // 2}h", track)):
            total[index] += sample
    return struct.pack(f"<{length}h", *(max(-32768, min(32767, value)) for value in total))
