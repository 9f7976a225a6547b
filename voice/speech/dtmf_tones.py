"""In-band DTMF: keys pressed on a phone whose digits arrive as tones inside the audio, not as RFC 4733
events. A streaming Goertzel detector, fed the call's 8 kHz 16-bit audio in pieces of any length.

Each key is two sine waves, one from a low group (rows) and one from a high group (columns):

            1209  1336  1477  1633 Hz
     697     1     2     3     A
     770     4     5     6     B
     852     7     8     9     C
     941     *     0     #     D

The audio is cut into blocks of 102 samples (12.75 ms: the bins then fall near the nulls of the other
DTMF frequencies, as in Asterisk's and spandsp's detectors), overlapping by half. Goertzel's algorithm
measures the power at the eight frequencies in each block, and a block holds a key only when all of
these hold — so that speech, music and noise do not press keys:
- the strongest row and column tones are each loud enough (`min_tone_dbfs`);
- their twist (level difference) is within limits: up to 8 dB with the low tone louder, 4 dB the other
  way (line loss weakens the high group);
- each stands clear of the other tones of its group (`min_peak_ratio_db`);
- together they carry most of the block's power (`min_tone_share`): speech spreads its power wide.
A key is reported once per press, when it has held for `min_tone_ms`; the next press of any key needs
`min_gap_ms` without it (a dropped block inside a long tone does not press the key twice).
"""

from __future__ import annotations

import array
import math
import sys
from dataclasses import dataclass

from voice.speech.recognition import SAMPLE_RATE

ROW_HZ = (697.0, 770.0, 852.0, 941.0)
COLUMN_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")  # KEYS[row][column]
BLOCK_SAMPLES = 102
HOP_SAMPLES = BLOCK_SAMPLES // 2  # blocks overlap by half: finer timing, so a 20 ms blip is not a press

_FULL_SCALE = 32768.0


def dtmf_tone(key: str, milliseconds: int, *, amplitude: int = 8000, twist_db: float = 0.0) -> bytes:
    """The tone of `key` for `milliseconds`, as 8 kHz 16-bit little-endian PCM. `amplitude` is the low
    tone's peak; the high tone is `twist_db` louder (negative: quieter)."""
    row, column = _position(key)
    high_amplitude = amplitude * 10 ** (twist_db / 20)
    if amplitude + high_amplitude > 32767:
        raise ValueError(f"amplitude {amplitude} with twist {twist_db} dB would clip")
    count = SAMPLE_RATE * milliseconds // 1000
    low = 2 * math.pi * ROW_HZ[row] / SAMPLE_RATE
    high = 2 * math.pi * COLUMN_HZ[column] / SAMPLE_RATE
    samples = array.array(
        "h",
        [round(amplitude * math.sin(low * n) + high_amplitude * math.sin(high * n)) for n in range(count)],
    )
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def _position(key: str) -> tuple[int, int]:
    for row, keys in enumerate(KEYS):
        column = keys.find(key.upper()) if len(key) == 1 else -1
        if column >= 0:
            return row, column
    raise ValueError(f"not a DTMF key: {key!r}")


@dataclass(frozen=True, slots=True)
class DtmfRules:
    min_tone_ms: int = 40  # a key must sound this long (ITU-T Q.24 accepts 40 ms)
    min_gap_ms: int = 40  # and be silent this long before the next press counts
    min_tone_dbfs: float = -36.0  # each tone's RMS level, dB below full scale
    max_low_louder_db: float = 8.0  # twist: the row tone louder than the column tone
    max_high_louder_db: float = 4.0  # twist: the column tone louder than the row tone
    min_peak_ratio_db: float = 8.0  # each tone above the other tones of its group
    min_tone_share: float = 0.7  # of the block's power, in the two tones

    def __post_init__(self) -> None:
        if self.min_tone_ms <= 0 or self.min_gap_ms <= 0:
            raise ValueError("min_tone_ms and min_gap_ms must be positive")
        if not 0 < self.min_tone_share <= 1:
            raise ValueError(f"min_tone_share is a fraction, not {self.min_tone_share}")


class DtmfDetector:
    """Streaming DTMF detection: `feed(pcm)` returns the keys pressed in that audio, in order."""

    def __init__(self, rules: DtmfRules | None = None) -> None:
        self.rules = rules = rules or DtmfRules()
        self._row_coefficients = [2 * math.cos(2 * math.pi * hz / SAMPLE_RATE) for hz in ROW_HZ]
        self._column_coefficients = [2 * math.cos(2 * math.pi * hz / SAMPLE_RATE) for hz in COLUMN_HZ]
        self._min_tone_power = (_FULL_SCALE * 10 ** (rules.min_tone_dbfs / 20)) ** 2
        self._max_low_louder = 10 ** (rules.max_low_louder_db / 10)
        self._max_high_louder = 10 ** (rules.max_high_louder_db / 10)
        self._peak_ratio = 10 ** (rules.min_peak_ratio_db / 10)
        # Blocks wholly inside a stretch of that length, whatever the alignment (40 ms: 4 blocks; a
        # 20 ms blip fills at most 3 enough to pass).
        self._hits_to_press = max(2, (rules.min_tone_ms * SAMPLE_RATE // 1000 - BLOCK_SAMPLES) // HOP_SAMPLES)
        self._misses_to_release = max(
            1, (rules.min_gap_ms * SAMPLE_RATE // 1000 - BLOCK_SAMPLES) // HOP_SAMPLES
        )
        self.reset()

    def reset(self) -> None:
        self._odd_byte = b""
        self._samples = array.array("h")  # not yet a whole block
        self._candidate: str | None = None
        self._hits = 0
        self._held: str | None = None  # the key reported and not yet released
        self._misses = 0

    def feed(self, pcm: bytes) -> list[str]:
        audio = self._odd_byte + pcm if self._odd_byte else pcm
        whole = len(audio) - len(audio) % 2
        self._odd_byte = audio[whole:]
        incoming = array.array("h")
        incoming.frombytes(audio[:whole])
        if sys.byteorder == "big":
            incoming.byteswap()
        self._samples.extend(incoming)
        pressed = []
        start = 0
        while start + BLOCK_SAMPLES <= len(self._samples):
            key = self.block_key(self._samples[start : start + BLOCK_SAMPLES])
            if self._debounce(key):
                assert self._held is not None
                pressed.append(self._held)
            start += HOP_SAMPLES
        del self._samples[:start]
        return pressed

    def _debounce(self, key: str | None) -> bool:
        """Advance the press/release state by one block; True when a press is complete."""
        if key is not None and key == self._candidate:
            self._hits += 1
        else:
            self._candidate, self._hits = key, 1 if key is not None else 0
        if self._held is not None:
            self._misses = 0 if key == self._held else self._misses + 1
            if self._misses >= self._misses_to_release:
                self._held = None
        if self._held is None and self._candidate is not None and self._hits >= self._hits_to_press:
            self._held, self._misses = self._candidate, 0
            return True
        return False

    def block_key(self, samples: array.array[int]) -> str | None:
        """The key one block of `BLOCK_SAMPLES` samples holds, or None."""
        count = len(samples)
        total_power = sum(sample * sample for sample in samples) / count  # mean square
        # Quieter than one tone at the minimum level: no key (and no Goertzel to pay for).
        if total_power < self._min_tone_power:
            return None
        rows = [self._tone_power(samples, coefficient) for coefficient in self._row_coefficients]
        columns = [self._tone_power(samples, coefficient) for coefficient in self._column_coefficients]
        row = max(range(4), key=rows.__getitem__)
        column = max(range(4), key=columns.__getitem__)
        row_power, column_power = rows[row], columns[column]
        if row_power < self._min_tone_power or column_power < self._min_tone_power:
            return None
        if (
            row_power > column_power * self._max_low_louder
            or column_power > row_power * self._max_high_louder
        ):
            return None
        for index in range(4):
            if index != row and rows[index] * self._peak_ratio > row_power:
                return None
            if index != column and columns[index] * self._peak_ratio > column_power:
                return None
        if row_power + column_power < self.rules.min_tone_share * total_power:
            return None
        return KEYS[row][column]

    @staticmethod
    def _tone_power(samples: array.array[int], coefficient: float) -> float:
        """Goertzel: the mean-square power of the block's component at one frequency (a sine of peak A
        gives about A²/2, as its share of the block's mean square)."""
        previous = before = 0.0
        for sample in samples:
            previous, before = sample + coefficient * previous - before, previous
        magnitude = previous * previous + before * before - coefficient * previous * before
        return 2 * magnitude / (len(samples) * len(samples))
