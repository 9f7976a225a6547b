"""English speech recognition that works out of the box: pocketsphinx with the model its wheel ships.

The model is a 16 kHz one, telephone audio is 8 kHz: `Upsampler` doubles the rate with a short
windowed-sinc interpolator (pure Python, about 4 ms of CPU a second of audio). Decoding is constrained to
the question's phrases, as a finite-state grammar; free-form English on this model is unusable.

Measured on espeak-ng speech (`voice.speech.generated_audio`, 4 voices x 2 speeds, 8 kHz), these settings
matter (accuracy on 16 menu phrases): the model's noise subtraction off (62% -> 85%), `topn` 16 codebook
Gaussians instead of 4 and no lattice best-path rescoring (-> 94%); linear interpolation instead of the
filter costs 3 points, repeating samples 10.

Channel adaptation: a decoder carries its cepstral mean (live CMN) from one utterance to the next, as
pocketsphinx does on a live line; decoders are reused, so later streams start adapted to telephone
audio. Measured: 94% with the carried mean, 68-78% when every stream restarts from the model's mean or a
fixed telephone one, 71% with per-utterance (batch) CMN. The price: a result can depend on the audio
earlier streams decoded on the same decoder (the channel, not their words), and a fresh decoder's first
utterances are the least accurate.

Rejecting what is not in the grammar: a grammar decoder forces every sound onto some phrase, and on this
model neither a phone loop nor a loop of common words as a garbage path separates in-grammar speech from
other words (the garbage path wins half the real phrases before it rejects most of the others). What
does separate them is *coverage*: the share of the caller's speech — frames within 15 dB of the loudest,
well above the line's noise floor — that the recognised phrase's words account for. "Billing" said alone
is covered to 95-100%; "what is the weather like today" decoded as "order" leaves most of the speech to
silence and noise fillers. `Recognition.confidence` is that coverage, and below `min_coverage` the
result is a no-match. Silence and noise give no phrase at all.
"""

from __future__ import annotations

import logging
import re
import sys
import unicodedata
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from math import pi, sin
from pathlib import Path
from typing import Any

from core.text_folding import fold
from voice.speech.recognition import SAMPLE_RATE, Grammar, Partial, Recognition, RecognitionError

log = logging.getLogger(__name__)

ENGINE = "pocketsphinx-en"
MODEL_RATE = 16_000
FRAME_SAMPLES = SAMPLE_RATE // 100  # pocketsphinx's 10 ms frame shift, counted in 8 kHz samples
MIN_COVERAGE = 0.75  # the share of the speech the phrase must account for (see the module docstring)
MAX_SECONDS = 30.0  # audio beyond this in one utterance is not decoded: a monologue is no menu answer
PARTIAL_EVERY_FRAMES = 10  # ask the decoder for a partial hypothesis every 100 ms of audio
GRAMMARS_PER_DECODER = 32  # compiled grammars kept per decoder: menus repeat, their grammars too


def _lanczos(x: float, lobes: int = 4) -> float:
    return (sin(pi * x) / (pi * x)) * (sin(pi * x / lobes) / (pi * x / lobes))


# Interpolation taps for the sample half-way between two input samples, from the nearest outwards.
_RAW_TAPS = [_lanczos(k + 0.5) for k in range(4)]
TAPS = tuple(tap / (2 * sum(_RAW_TAPS)) for tap in _RAW_TAPS)  # normalised: a constant stays constant
_HISTORY = 2 * len(TAPS) - 1


class Upsampler:
    """8 kHz -> 16 kHz signed 16-bit little-endian mono, chunk by chunk. Output lags the input by four
    samples (half a millisecond); `flush()` gives them at the end."""

    def __init__(self) -> None:
        self._history = array("h", bytes(2 * _HISTORY))

    def feed(self, pcm: bytes) -> bytes:
        if len(pcm) % 2:
            raise ValueError("16-bit audio must come in whole samples (an even number of bytes)")
        samples = array("h")
        samples.frombytes(pcm)
        if sys.byteorder == "big":
            samples.byteswap()
        count = len(samples)
        if not count:
            return b""
        buf = self._history + samples
        self._history = buf[-_HISTORY:]
        t0, t1, t2, t3 = TAPS
        odd_values = [
            t0 * (a0 + b0) + t1 * (a1 + b1) + t2 * (a2 + b2) + t3 * (a3 + b3)
            for a0, b0, a1, b1, a2, b2, a3, b3 in zip(
                buf[3 : 3 + count],
                buf[4 : 4 + count],
                buf[2 : 2 + count],
                buf[5 : 5 + count],
                buf[1 : 1 + count],
                buf[6 : 6 + count],
                buf[0:count],
                buf[7 : 7 + count],
                strict=True,
            )
        ]
        try:
            odd = array("h", [int(value) for value in odd_values])
        except OverflowError:  # the filter overshoots on full-scale edges: clip, the slow way
            odd = array("h", [max(-32768, min(32767, int(value))) for value in odd_values])
        out = array("h", bytes(4 * count))
        out[0::2] = buf[3 : 3 + count]
        out[1::2] = odd
        if sys.byteorder == "big":
            out.byteswap()
        return out.tobytes()

    def flush(self) -> bytes:
        return self.feed(bytes(2 * len(TAPS)))


def upsample(pcm: bytes) -> bytes:
    """A whole 8 kHz recording at 16 kHz."""
    upsampler = Upsampler()
    return upsampler.feed(pcm) + upsampler.flush()


_NOT_WORD = re.compile(r"[^\w' -]+")
_ALTERNATIVE = re.compile(r"\(\d+\)$")


def phrase_words(phrase: str, *, keep_accents: bool = False) -> tuple[str, ...]:
    """A phrase as a dictionary spells words: lower case, punctuation dropped, accents too unless
    `keep_accents` (vosk's Spanish vocabulary spells "facturación"; the English one has none)."""
    lowered = unicodedata.normalize("NFC", phrase.casefold()) if keep_accents else fold(phrase)
    cleaned = _NOT_WORD.sub(" ", lowered).replace(" - ", " ")
    return tuple(word.strip("-'") for word in cleaned.split() if word.strip("-'"))


@dataclass(frozen=True, slots=True)
class CompiledGrammar:
    phrases: tuple[tuple[str, ...], ...]  # each a sequence of dictionary words, deduplicated, sorted
    dropped: tuple[str, ...]  # words no pronunciation is known for (their phrases are left out)


@dataclass
class _Decoder:
    decoder: Any  # pocketsphinx.Decoder (the package ships no type information)
    searches: OrderedDict[tuple[tuple[str, ...], ...], str] = field(default_factory=OrderedDict)
    serial: int = 0


class PocketsphinxRecognizer:
    """Recognizer for English ("en", "en-GB"…). Each stream decodes on a decoder of its own (decoders are
    reused after `finish()`: creating one reads the 134,000-word dictionary, ~90 ms). Not thread-safe:
    one thread (a worker process's) drives all its streams."""

    def __init__(self, model_dir: Path | None = None, *, min_coverage: float = MIN_COVERAGE) -> None:
        try:
            import pocketsphinx
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise RecognitionError("pocketsphinx is not installed (pip install pocketsphinx)") from exc
        self._pocketsphinx = pocketsphinx
        root = model_dir or Path(pocketsphinx.get_model_path())
        self.acoustic_model = root / "en-us" / "en-us"
        self.dictionary = root / "en-us" / "cmudict-en-us.dict"
        for needed in (self.acoustic_model, self.dictionary):
            if not needed.exists():
                raise RecognitionError(f"pocketsphinx English model incomplete: {needed} does not exist")
        self.min_coverage = min_coverage
        first = self._new_decoder()  # fails here, at start-up, if the model does
        self._dictionary = first.decoder  # looks words up, whichever stream decodes on it
        self._idle: list[_Decoder] = [first]

    def supports(self, language: str) -> bool:
        return language.split("-")[0].lower() == "en"

    def compile(self, grammar: Grammar) -> CompiledGrammar:
        """The grammar's phrases in dictionary words; phrases with unknown words are left out (logged).
        Raises RecognitionError when no phrase is left."""
        return compile_phrases(
            (phrase for phrases in grammar.phrases.values() for phrase in phrases),
            lambda word: self._dictionary.lookup_word(word) is not None,
        )

    def start(self, grammar: Grammar) -> PocketsphinxStream:
        if not self.supports(grammar.language):
            raise RecognitionError(f"pocketsphinx has no model for language {grammar.language!r}")
        compiled = self.compile(grammar)
        if compiled.dropped:
            log.warning(
                "speech grammar: no pronunciation for %s; the phrases with them cannot be recognised",
                ", ".join(repr(word) for word in compiled.dropped),
            )
        decoder = self._idle.pop() if self._idle else self._new_decoder()
        self._activate(decoder, compiled.phrases)
        return PocketsphinxStream(self, decoder, compiled.phrases)

    def _new_decoder(self) -> _Decoder:
        try:
            decoder = self._pocketsphinx.Decoder(
                hmm=str(self.acoustic_model),
                dict=str(self.dictionary),
                lm=None,
                samprate=MODEL_RATE,
                topn=16,
                bestpath=False,
                loglevel="FATAL",
            )
            # The model's feat.params switch noise subtraction on, overriding the constructor's
            # arguments; it smears espeak-ng's and telephone audio's silences (see module docstring).
            decoder.config["remove_noise"] = False
            decoder.reinit_feat()
        except (RuntimeError, ValueError) as exc:
            raise RecognitionError(f"pocketsphinx could not load its English model: {exc}") from exc
        return _Decoder(decoder)

    def _activate(self, slot: _Decoder, phrases: tuple[tuple[str, ...], ...]) -> None:
        name = slot.searches.get(phrases)
        if name is None:
            slot.serial += 1
            name = f"grammar{slot.serial}"
            transitions: list[tuple[int, int, float, str] | tuple[int, int, float]] = []
            states = 2  # 0 starts, 1 ends
            for words in phrases:
                state = 0
                for index, word in enumerate(words):
                    last = index == len(words) - 1
                    target = 1 if last else states
                    if not last:
                        states += 1
                    transitions.append((state, target, 1.0 / len(phrases) if index == 0 else 1.0, word))
                    state = target
            fsg = slot.decoder.create_fsg(name, 0, 1, transitions)
            slot.decoder.add_fsg(name, fsg)
            slot.searches[phrases] = name
            if len(slot.searches) > GRAMMARS_PER_DECODER:
                _, evicted = slot.searches.popitem(last=False)
                slot.decoder.remove_search(evicted)
        else:
            slot.searches.move_to_end(phrases)
        slot.decoder.activate_search(name)

    def _release(self, slot: _Decoder) -> None:
        self._idle.append(slot)


def compile_phrases(
    phrases: Iterable[str], known: Callable[[str], bool], *, keep_accents: bool = False
) -> CompiledGrammar:
    """`phrases` as dictionary words; `known(word)` says whether the dictionary has a word."""
    kept: set[tuple[str, ...]] = set()
    dropped: list[str] = []
    for phrase in phrases:
        words = phrase_words(phrase, keep_accents=keep_accents)
        if not words:
            continue
        missing = [word for word in words if not known(word)]
        if missing:
            dropped.extend(word for word in missing if word not in dropped)
            continue
        kept.add(words)
    if not kept:
        detail = f"; no pronunciation for {', '.join(map(repr, dropped))}" if dropped else ""
        raise RecognitionError(f"speech grammar has no phrase pocketsphinx can recognise{detail}")
    return CompiledGrammar(tuple(sorted(kept)), tuple(dropped))


@dataclass(frozen=True, slots=True)
class Decoded:
    """What `finish()` worked from, for benchmarks and tuning: the decoder's own hypothesis and the
    coverage the confidence comes from."""

    hypothesis: str
    coverage: float
    speech_frames: int


class PocketsphinxStream:
    engine = ENGINE

    def __init__(
        self, recognizer: PocketsphinxRecognizer, slot: _Decoder, phrases: tuple[tuple[str, ...], ...]
    ) -> None:
        self._recognizer = recognizer
        self._slot: _Decoder | None = slot
        self._phrases = set(phrases)
        self._upsampler = Upsampler()
        self._odd = b""  # half a sample left over from the last chunk
        self._energies: list[float] = []  # per 10 ms frame, for the coverage
        self._pending: list[int] = []  # samples of a frame not yet complete
        self._samples = 0
        self._frames_since_partial = 0
        self._partial = ""
        self.decoded: Decoded | None = None
        slot.decoder.start_utt()

    def accept(self, pcm: bytes) -> Partial | None:
        slot = self._live()
        pcm = self._odd + pcm
        whole = len(pcm) - len(pcm) % 2
        self._odd = pcm[whole:]
        if whole == 0 or self._samples >= MAX_SECONDS * SAMPLE_RATE:
            return None
        pcm = pcm[:whole]
        self._samples += whole // 2
        self._measure(pcm)
        slot.decoder.process_raw(self._upsampler.feed(pcm), False, False)
        self._frames_since_partial += whole // 2 // FRAME_SAMPLES
        if self._frames_since_partial < PARTIAL_EVERY_FRAMES:
            return None
        self._frames_since_partial = 0
        hypothesis = slot.decoder.hyp()
        text = _words(hypothesis.hypstr) if hypothesis is not None else ""
        if text and text != self._partial:
            self._partial = text
            return Partial(text)
        return None

    def finish(self) -> Recognition:
        slot = self._live()
        self._slot = None
        decoder = slot.decoder
        try:
            decoder.process_raw(self._upsampler.flush(), False, False)
            decoder.end_utt()
            hypothesis = decoder.hyp()
            text = _words(hypothesis.hypstr) if hypothesis is not None else ""
            spans = [
                (segment.start_frame, segment.end_frame)
                for segment in decoder.seg() or ()
                if not _is_filler(segment.word)
            ]
        finally:
            self._recognizer._release(slot)
        coverage, speech_frames = speech_coverage(self._energies, spans)
        self.decoded = Decoded(text, coverage, speech_frames)
        overlong = self._samples >= MAX_SECONDS * SAMPLE_RATE
        if overlong or tuple(text.split()) not in self._phrases or coverage < self._recognizer.min_coverage:
            return Recognition("", round(coverage, 3) if text else 0.0, ENGINE)
        return Recognition(text, round(coverage, 3), ENGINE)

    def _live(self) -> _Decoder:
        if self._slot is None:
            raise RecognitionError("this stream has already given its result")
        return self._slot

    def _measure(self, pcm: bytes) -> None:
        samples = array("h")
        samples.frombytes(pcm)
        if sys.byteorder == "big":
            samples.byteswap()
        pending = self._pending
        pending.extend(samples)
        full = len(pending) - len(pending) % FRAME_SAMPLES
        for start in range(0, full, FRAME_SAMPLES):
            frame = pending[start : start + FRAME_SAMPLES]
            self._energies.append(sum(value * value for value in frame) / FRAME_SAMPLES)
        del pending[:full]


def _words(hypothesis: str) -> str:
    return " ".join(_ALTERNATIVE.sub("", word) for word in hypothesis.split())


def _is_filler(word: str) -> bool:
    return word.startswith(("<", "[", "(")) or word == "(NULL)"


SPEECH_BELOW_PEAK = 10 ** (-15 / 10)  # frames within 15 dB of the loudest one…
SPEECH_ABOVE_FLOOR = 10 ** (10 / 10)  # …and 10 dB above the quietest tenth of the utterance…
SPEECH_MIN_ENERGY = 100.0**2  # …and louder than an RMS of 100 (of 32767) count as speech
SPAN_SLACK_FRAMES = 3  # word boundaries are fuzzy: a word's span counts this much wider each side


def speech_coverage(energies: Sequence[float], spans: Iterable[tuple[int, int]]) -> tuple[float, int]:
    """The share of speech frames (by energy, see the constants) inside the word spans, and how many
    speech frames there were. No speech at all covers nothing."""
    if not energies:
        return 0.0, 0
    ordered = sorted(energies)
    floor = ordered[len(ordered) // 10]
    threshold = max(ordered[-1] * SPEECH_BELOW_PEAK, floor * SPEECH_ABOVE_FLOOR, SPEECH_MIN_ENERGY)
    speech = [index for index, energy in enumerate(energies) if energy >= threshold]
    if not speech:
        return 0.0, 0
    inside: set[int] = set()
    for start, end in spans:
        inside.update(range(start - SPAN_SLACK_FRAMES, end + SPAN_SLACK_FRAMES + 1))
    covered = sum(1 for index in speech if index in inside)
    return covered / len(speech), len(speech)
