"""The pure parts of the speech engines: upsampling, grammar words, coverage, engine choice, the
in-process async interface."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from core.settings import Settings
from voice.speech.engines import LanguageRouter, engine_spec
from voice.speech.pocketsphinx_engine import (
    Upsampler,
    compile_phrases,
    phrase_words,
    speech_coverage,
    upsample,
)
from voice.speech.recognition import FakeRecognizer, Grammar, Recognition, RecognitionError
from voice.speech.recognition_pool import EngineSpec, InProcessRecognition


def samples(pcm: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(pcm) // 2}h", pcm))


def test_upsampling_doubles_the_rate_and_keeps_the_original_samples() -> None:
    pcm = struct.pack("<6h", 0, 1000, -1000, 2000, 0, 500)
    out = samples(upsample(pcm))
    assert len(out) == 2 * 6 + 8  # four samples of delay, flushed
    assert out[8:20:2] == samples(pcm)


def test_upsampling_a_constant_gives_the_same_constant() -> None:
    out = samples(upsample(struct.pack("<40h", *([1200] * 40))))
    assert all(value in (1199, 1200) for value in out[16:70])


def test_upsampling_in_chunks_equals_upsampling_at_once() -> None:
    pcm = struct.pack("<64h", *((index * 997) % 20000 - 10000 for index in range(64)))
    whole = upsample(pcm)
    upsampler = Upsampler()
    pieces = b"".join(upsampler.feed(pcm[start : start + 10]) for start in range(0, len(pcm), 10))
    assert pieces + upsampler.flush() == whole


def test_upsampling_clips_instead_of_overflowing() -> None:
    out = samples(upsample(struct.pack("<8h", 32767, -32768, 32767, -32768, 32767, -32768, 32767, -32768)))
    assert max(out) == 32767 and min(out) == -32768


def test_upsampling_refuses_half_a_sample() -> None:
    with pytest.raises(ValueError, match="whole samples"):
        Upsampler().feed(b"\x00\x01\x02")


def test_phrase_words_fold_case_accents_and_punctuation() -> None:
    assert phrase_words("¿Facturación?") == ("facturacion",)
    assert phrase_words("Speak to an Agent!") == ("speak", "to", "an", "agent")
    assert phrase_words("Facturación", keep_accents=True) == ("facturación",)
    assert phrase_words("don't - wi-fi") == ("don't", "wi-fi")


def test_grammar_leaves_out_phrases_with_unknown_words_and_names_them() -> None:
    known = {"billing", "speak", "to", "an", "agent"}.__contains__
    compiled = compile_phrases(["Billing", "speak to an agent", "xyzzy billing"], known)
    assert compiled.phrases == (("billing",), ("speak", "to", "an", "agent"))
    assert compiled.dropped == ("xyzzy",)


def test_a_grammar_with_no_known_phrase_is_refused_naming_the_words() -> None:
    with pytest.raises(RecognitionError, match="'xyzzy'"):
        compile_phrases(["xyzzy"], lambda word: False)


def test_coverage_counts_speech_frames_inside_the_words() -> None:
    energies = [0.0] * 10 + [1e6] * 20 + [0.0] * 10
    assert speech_coverage(energies, [(10, 29)]) == (1.0, 20)
    coverage, frames = speech_coverage(energies, [(10, 14)])
    assert frames == 20 and coverage == pytest.approx(8 / 20)  # 5 frames and 3 of slack
    assert speech_coverage([0.0] * 40, [(0, 39)]) == (0.0, 0)  # silence is no speech


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def model_dir(tmp_path: Path, name: str) -> Path:
    (tmp_path / name / "am").mkdir(parents=True)
    return tmp_path / name


def test_auto_uses_vosk_where_a_model_is_set_and_pocketsphinx_for_english(tmp_path: Path) -> None:
    es = model_dir(tmp_path, "es")
    spec = engine_spec(settings(vosk_model_es=es))
    assert spec == EngineSpec(vosk_models=(("es", str(es), "CENTRALITA_VOSK_MODEL_ES"),), pocketsphinx=True)
    both = engine_spec(settings(vosk_model_es=es, vosk_model_en=model_dir(tmp_path, "en")))
    assert both is not None and not both.pocketsphinx and len(both.vosk_models) == 2
    assert engine_spec(settings()) == EngineSpec(pocketsphinx=True)
    assert engine_spec(settings(speech_engine="pocketsphinx", vosk_model_es=es)) == EngineSpec(
        pocketsphinx=True
    )
    assert engine_spec(settings(speech_engine="off", vosk_model_es=es)) is None


def test_a_wrong_model_path_names_the_setting_and_the_path(tmp_path: Path) -> None:
    with pytest.raises(RecognitionError, match="CENTRALITA_VOSK_MODEL_ES") as error:
        engine_spec(settings(vosk_model_es=tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in str(error.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecognitionError, match="not a vosk model directory"):
        engine_spec(settings(vosk_model_en=tmp_path / "empty"))


def test_vosk_alone_needs_a_model() -> None:
    with pytest.raises(RecognitionError, match="CENTRALITA_VOSK_MODEL_ES"):
        engine_spec(settings(speech_engine="vosk"))


def test_settings_read_the_speech_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CENTRALITA_VOSK_MODEL_ES", str(tmp_path))
    monkeypatch.setenv("CENTRALITA_SPEECH_WORKERS", "3")
    monkeypatch.setenv("CENTRALITA_SPEECH_ENGINE", "vosk")
    loaded = settings()
    assert (loaded.vosk_model_es, loaded.vosk_model_en) == (tmp_path, None)
    assert (loaded.speech_workers, loaded.speech_engine) == (3, "vosk")


def test_the_router_sends_each_language_to_the_first_engine_that_has_it() -> None:
    spanish = FakeRecognizer(script=[("facturación", 0.9)], languages=frozenset({"es"}))
    english = FakeRecognizer(script=[("billing", 0.8)], languages=frozenset({"en", "es"}))
    router = LanguageRouter((spanish, english))
    assert router.start(Grammar("en-GB", {"1": ["billing"]})).finish().text == "billing"
    assert router.start(Grammar("es", {"1": ["facturación"]})).finish().text == "facturación"
    assert not router.supports("fr")
    with pytest.raises(RecognitionError, match="'fr'"):
        router.start(Grammar("fr", {"1": ["facturation"]}))


def test_in_process_recognition_offers_the_async_interface_over_a_recognizer() -> None:
    fake = FakeRecognizer(script=[("billing", 0.9)])

    async def run() -> Recognition:
        async with InProcessRecognition(fake).stream(Grammar("en", {"1": ["billing"]})) as stream:
            assert await stream.feed(bytes(320)) is None
            return await stream.finish()

    assert asyncio.run(run()) == Recognition("billing", 0.9, "fake")
    assert fake.audio_bytes == [320]
