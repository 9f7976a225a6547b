"""The sound of a prompt as 8 kHz PCM, for audio Centralita streams to the caller itself (AudioSocket).

Asterisk plays prompt files by name (`voice.prompts`); over AudioSocket we send the samples instead,
so the prompt's sound has to be found here, in this order:
1. the sounds directory `centralita prompts build --out` filled (`<dir>/<file>.wav`, 8 kHz), when set;
2. the flow's own recording beside the flows (`<flows dir>/recordings/<file>.*`);
3. text-to-speech of the prompt's words (espeak-ng), the way `prompts build` renders them.
What was found is kept in a bounded in-memory cache: a busy IVR asks for the same few prompts all day.
The slow paths (files, ffmpeg, espeak-ng) run in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from voice.prompt_files import FORMATS, AudioDecoder, AudioEncoder, find_recording
from voice.prompts import PromptAudio
from voice.speech.recognition import SAMPLE_RATE
from voice.text_to_speech import Speech, SynthesisError, Synthesizer, read_wav_stream


class PromptSoundMissing(Exception):
    """No sound for the prompt: no file, no recording, and no words (or no voice) to speak."""


class PromptSounds(Protocol):
    async def pcm(self, prompt: PromptAudio) -> bytes:
        """The prompt as 8 kHz signed 16-bit little-endian mono; raises PromptSoundMissing."""
        ...


class PromptSoundLibrary:
    def __init__(
        self,
        *,
        sounds_dir: Path | None,
        flow_directories: Sequence[Path],
        synthesizer: Synthesizer | None,
        decoder: AudioDecoder,
        encoder: AudioEncoder,
        cache_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self._sounds_dir = sounds_dir
        self._flow_directories = tuple(flow_directories)
        self._synthesizer = synthesizer
        self._decoder = decoder
        self._encoder = encoder
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._cached = 0

    async def pcm(self, prompt: PromptAudio) -> bytes:
        found = self._cache.get(prompt.file)
        if found is not None:
            self._cache.move_to_end(prompt.file)
            return found
        pcm = await asyncio.to_thread(self._load, prompt)
        self._keep(prompt.file, pcm)
        return pcm

    def _load(self, prompt: PromptAudio) -> bytes:
        if self._sounds_dir is not None:
            built = self._sounds_dir / f"{prompt.file}.wav"
            if built.is_file():
                return self._at_8k(read_wav_stream(built.read_bytes()))
        try:
            recording = find_recording(prompt.file, self._flow_directories)
        except Exception as exc:
            raise PromptSoundMissing(f"{prompt.file}: {exc}") from None
        if recording is not None:
            return self._at_8k(self._decoder.decode(recording.read_bytes(), recording.suffix))
        if not prompt.text or self._synthesizer is None:
            raise PromptSoundMissing(f"{prompt.file}: no sound file, no recording and nothing to speak")
        try:
            return self._at_8k(self._synthesizer.synthesize(prompt.text, prompt.language))
        except SynthesisError as exc:
            raise PromptSoundMissing(f"{prompt.file}: {exc}") from None

    def _at_8k(self, speech: Speech) -> bytes:
        if speech.sample_rate == SAMPLE_RATE:
            return speech.pcm
        return read_wav_stream(self._encoder.encode(speech, FORMATS["wav"])).pcm

    def _keep(self, file: str, pcm: bytes) -> None:
        if len(pcm) > self._cache_bytes // 4:
            return  # a long recording would push out everything else
        self._cache[file] = pcm
        self._cached += len(pcm)
        while self._cached > self._cache_bytes:
            _, dropped = self._cache.popitem(last=False)
            self._cached -= len(dropped)
