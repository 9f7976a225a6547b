"""Speech recognition with vosk (Kaldi), the main engine: one model per language, from paths the operator
configures (`CENTRALITA_VOSK_MODEL_ES`, `…_EN`; `centralita models download` fetches the small ones).

Each model is loaded once, when the recognizer is made (a wrong path fails there, naming it), and shared
by every stream; a stream is a `KaldiRecognizer` restricted to the question's phrases plus "[unk]", which
soaks up everything else. Only models with a dynamic graph (the "small" ones: `graph/HCLr.fst` and
`Gr.fst`) take a grammar; the big ones ignore it and decode free-form, which the phrase check below still
turns into no-matches.

Results: the text is the phrase when the caller said exactly one of the grammar's phrases, otherwise ""
(a no-match: silence, "[unk]", or words outside the phrases). `confidence` is the lowest of the phrase's
word confidences (vosk's word posteriors, 0..1): a phrase is as sure as its weakest word.

Free-form (transcription, e.g. of a voicemail): a grammar with no phrases at all (`free_form(language)`)
gives a recogniser without a grammar, decoding whatever was said with the model's whole vocabulary. The
text is every word heard, the confidence the mean of the words' (a transcript is as sure as its words on
average), and it may run to `MAX_FREE_FORM_SECONDS`. Only vosk does this: pocketsphinx's shipped model
is grammar-only (free-form English on it is unusable).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from voice.speech.pocketsphinx_engine import compile_phrases, phrase_words
from voice.speech.recognition import SAMPLE_RATE, Grammar, Partial, Recognition, RecognitionError

log = logging.getLogger(__name__)

UNKNOWN = "[unk]"
MAX_SECONDS = 30.0  # audio beyond this in one utterance is not decoded: a monologue is no menu answer
MAX_FREE_FORM_SECONDS = 600.0  # a transcription: the longest voicemail a flow may record


def free_form(language: str) -> Grammar:
    """The grammar that asks for a transcription: no phrases, so every word the model knows counts."""
    return Grammar(language, {})


def check_model_dir(path: Path, *, language: str, setting: str | None = None) -> None:
    """Raise RecognitionError, naming the path (and the setting it came from), unless `path` looks like
    a vosk model directory."""
    where = f" (from {setting})" if setting else ""
    if not path.is_dir():
        raise RecognitionError(f"vosk model for {language!r} not found: {path}{where} is not a directory")
    if not (path / "am").is_dir() and not (path / "conf" / "model.conf").is_file():
        raise RecognitionError(
            f"vosk model for {language!r}: {path}{where} is not a vosk model directory "
            "(it has no am/ nor conf/model.conf; point at the directory the model's zip unpacks to)"
        )


class VoskRecognizer:
    """Recognizer for the languages it has models for. `models`: language (primary subtag) -> model
    directory; `settings` optionally names where each path came from, for the error messages."""

    def __init__(self, models: Mapping[str, Path], *, settings: Mapping[str, str] | None = None) -> None:
        try:
            import vosk
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise RecognitionError("vosk is not installed (pip install vosk)") from exc
        vosk.SetLogLevel(-1)  # Kaldi logs every model load and grammar word to stderr
        self._vosk = vosk
        self._models: dict[str, Any] = {}
        for language, path in models.items():
            primary = language.split("-")[0].lower()
            setting = (settings or {}).get(language)
            check_model_dir(path, language=primary, setting=setting)
            try:
                self._models[primary] = vosk.Model(str(path))
            except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
                where = f" (from {setting})" if setting else ""
                raise RecognitionError(f"vosk could not load the {primary!r} model at {path}{where}") from exc

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self._models)

    def supports(self, language: str) -> bool:
        return language.split("-")[0].lower() in self._models

    def start(self, grammar: Grammar) -> VoskStream:
        primary = grammar.language.split("-")[0].lower()
        model = self._models.get(primary)
        if model is None:
            raise RecognitionError(f"no vosk model for language {grammar.language!r}")
        if not grammar.phrases:  # free-form: the whole vocabulary, no grammar
            free = self._vosk.KaldiRecognizer(model, SAMPLE_RATE)
            free.SetWords(True)
            return VoskStream(free, f"vosk-{primary}", None)
        compiled = compile_phrases(
            (phrase for phrases in grammar.phrases.values() for phrase in phrases),
            lambda word: model.vosk_model_find_word(word) >= 0,
            keep_accents=True,
        )
        if compiled.dropped:
            log.warning(
                "speech grammar (%s): %s not in the vosk model's vocabulary; the phrases with them "
                "cannot be recognised",
                primary,
                ", ".join(repr(word) for word in compiled.dropped),
            )
        phrases = [" ".join(words) for words in compiled.phrases]
        # "[unk]" takes the words outside the phrases, where the model has it (not every model does)
        rest = [UNKNOWN] if model.vosk_model_find_word(UNKNOWN) >= 0 else []
        grammar_json = json.dumps([*phrases, *rest], ensure_ascii=False)
        recognizer = self._vosk.KaldiRecognizer(model, SAMPLE_RATE, grammar_json)
        recognizer.SetWords(True)
        return VoskStream(recognizer, f"vosk-{primary}", frozenset(phrases))


class VoskStream:
    """One utterance; `phrases` None: free-form (a transcription), else the grammar's phrases."""

    def __init__(self, recognizer: Any, engine: str, phrases: frozenset[str] | None) -> None:
        self._recognizer: Any | None = recognizer
        self.engine = engine
        self._phrases = phrases
        self._max_samples = (MAX_SECONDS if phrases is not None else MAX_FREE_FORM_SECONDS) * SAMPLE_RATE
        self._segments: list[list[dict[str, Any]]] = []  # words of each endpointed segment
        self._odd = b""
        self._samples = 0
        self._partial = ""

    def accept(self, pcm: bytes) -> Partial | None:
        recognizer = self._live()
        pcm = self._odd + pcm
        whole = len(pcm) - len(pcm) % 2
        self._odd = pcm[whole:]
        if whole == 0 or self._samples >= self._max_samples:
            return None
        self._samples += whole // 2
        if recognizer.AcceptWaveform(pcm[:whole]):
            # vosk found an end point inside the turn: keep that segment, the final result joins them
            self._segments.append(_result_words(recognizer.Result()))
            return None
        text = str(json.loads(recognizer.PartialResult()).get("partial", ""))
        text = " ".join(word for word in text.split() if word != UNKNOWN)
        if text and text != self._partial:
            self._partial = text
            return Partial(text)
        return None

    def finish(self) -> Recognition:
        recognizer = self._live()
        self._recognizer = None
        self._segments.append(_result_words(recognizer.FinalResult()))
        words = [word for segment in self._segments for word in segment]
        said = [str(word.get("word", "")) for word in words]
        if self._phrases is None:
            return self._transcript(words)
        text = " ".join(phrase_words(" ".join(said), keep_accents=True))
        overlong = self._samples >= self._max_samples
        if not words or UNKNOWN in said or text not in self._phrases or overlong:
            return Recognition("", 0.0, self.engine)
        confidence = min(float(word.get("conf", 0.0)) for word in words)
        return Recognition(text, round(max(0.0, min(1.0, confidence)), 3), self.engine)

    def _transcript(self, words: list[dict[str, Any]]) -> Recognition:
        heard = [word for word in words if str(word.get("word", "")) not in ("", UNKNOWN)]
        if not heard:
            return Recognition("", 0.0, self.engine)
        text = " ".join(str(word["word"]) for word in heard)
        confidence = sum(float(word.get("conf", 0.0)) for word in heard) / len(heard)
        return Recognition(text, round(max(0.0, min(1.0, confidence)), 3), self.engine)

    def _live(self) -> Any:
        if self._recognizer is None:
            raise RecognitionError("this stream has already given its result")
        return self._recognizer


def _result_words(result: str) -> list[dict[str, Any]]:
    """The words of a vosk result; "[unk]" stays in, so that "[unk] billing" is no phrase."""
    parsed = json.loads(result)
    words = parsed.get("result")
    if isinstance(words, list):
        return [word for word in words if isinstance(word, dict)]
    # Without word details (an empty result), only the text: no confidence to give.
    return [{"word": word, "conf": 0.0} for word in str(parsed.get("text", "")).split()]
