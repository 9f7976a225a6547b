"""Which speech engines a deployment runs, from its settings: the spec the recognition pool's workers
build their recognizers from, and the recognizer that sends each language to its engine.

`CENTRALITA_SPEECH_ENGINE`:
- "auto" (default): vosk for each language with a model path (`CENTRALITA_VOSK_MODEL_ES`, `…_EN`),
  pocketsphinx for English when vosk has no English model;
- "vosk": vosk only (at least one model path must be set);
- "pocketsphinx": pocketsphinx only (English);
- "off": no speech recognition; menus take keys only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings
from voice.speech.recognition import Grammar, RecognitionError, RecognitionStream, Recognizer
from voice.speech.recognition_pool import EngineSpec
from voice.speech.vosk_engine import check_model_dir


def vosk_model_paths(settings: Settings) -> dict[str, tuple[Path, str]]:
    """language -> (model directory, the setting it came from), for the paths that are set."""
    configured = {
        "es": (settings.vosk_model_es, "CENTRALITA_VOSK_MODEL_ES"),
        "en": (settings.vosk_model_en, "CENTRALITA_VOSK_MODEL_EN"),
    }
    return {language: (path, name) for language, (path, name) in configured.items() if path is not None}


def engine_spec(settings: Settings) -> EngineSpec | None:
    """The engines `settings` ask for, None when speech is off. A model path that is set but wrong is a
    RecognitionError naming the setting and the path, so the service refuses to start with it."""
    choice = settings.speech_engine
    if choice == "off":
        return None
    models = vosk_model_paths(settings) if choice in ("auto", "vosk") else {}
    for language, (path, setting) in models.items():
        check_model_dir(path, language=language, setting=setting)
    if choice == "vosk" and not models:
        raise RecognitionError(
            "CENTRALITA_SPEECH_ENGINE=vosk needs a model: set CENTRALITA_VOSK_MODEL_ES and/or "
            "CENTRALITA_VOSK_MODEL_EN (`centralita models download es en` fetches them)"
        )
    pocketsphinx = choice == "pocketsphinx" or (choice == "auto" and "en" not in models)
    return EngineSpec(
        vosk_models=tuple((language, str(path), setting) for language, (path, setting) in models.items()),
        pocketsphinx=pocketsphinx,
    )


@dataclass(frozen=True, slots=True)
class LanguageRouter:
    """A Recognizer over several: each grammar goes to the first that supports its language."""

    recognizers: Sequence[Recognizer]

    def supports(self, language: str) -> bool:
        return any(recognizer.supports(language) for recognizer in self.recognizers)

    def start(self, grammar: Grammar) -> RecognitionStream:
        for recognizer in self.recognizers:
            if recognizer.supports(grammar.language):
                return recognizer.start(grammar)
        raise RecognitionError(f"no speech engine for language {grammar.language!r}")
