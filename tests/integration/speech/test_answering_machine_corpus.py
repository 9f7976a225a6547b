"""Answering-machine detection on the labelled set of generated greetings: short answers from people
against long voicemail greetings, several voices, clean and noisy lines."""

from __future__ import annotations

import pytest

from voice.speech.amd_corpus import (
    AmdMeasurement,
    LabelledGreeting,
    build_amd_corpus,
    measure_amd,
)
from voice.speech.answering_machine import AmdStatus, AnsweringMachineDetector
from voice.speech.generated_audio import ENGLISH_VOICES, SPANISH_VOICES, GeneratedAudio


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[LabelledGreeting]:
    return build_amd_corpus(GeneratedAudio(tmp_path_factory.mktemp("amd-audio")))


@pytest.fixture(scope="module")
def measured(corpus: list[LabelledGreeting]) -> AmdMeasurement:
    return measure_amd(corpus)


def describe(measurement: AmdMeasurement) -> str:
    return "\n".join(
        f"{item.greeting.label} {item.greeting.voice} noise={item.greeting.noise} {item.greeting.text!r}: "
        f"{item.result.status} {item.result.cause}"
        for item in measurement.mistakes()
    )


def test_the_set_covers_both_labels_languages_voices_and_noise(corpus: list[LabelledGreeting]) -> None:
    assert {item.label for item in corpus} == {"human", "machine"}
    assert {item.voice for item in corpus} == set(ENGLISH_VOICES) | set(SPANISH_VOICES)
    assert {item.noise for item in corpus} == {0, 300, 1500}
    assert len(corpus) >= 100


def test_accuracy_is_at_least_90_percent(measured: AmdMeasurement) -> None:
    assert measured.accuracy >= 0.9, describe(measured)


def test_accuracy_on_the_noisy_line_alone_stays_high(measured: AmdMeasurement) -> None:
    noisy = [item for item in measured.items if item.greeting.noise == 1500]
    assert sum(item.correct for item in noisy) / len(noisy) >= 0.85, describe(measured)


def test_no_voicemail_is_taken_for_a_person(measured: AmdMeasurement) -> None:
    # The costly mistake for the dialer: an agent connected to a recording.
    assert [item for item in measured.mistakes() if item.greeting.label == "machine"] == []


def test_each_item_reports_asterisks_status_and_cause(measured: AmdMeasurement) -> None:
    for item in measured.items:
        assert item.result.status in set(AmdStatus)
        assert item.result.cause.split("-")[0] in {
            "HUMAN",
            "INITIALSILENCE",
            "LONGGREETING",
            "MAXWORDS",
            "MAXWORDLENGTH",
            "TOOLONG",
        }
        assert 0 < item.result.decided_at_ms <= 5000


def test_asterisks_energy_threshold_does_well_on_clean_lines(corpus: list[LabelledGreeting]) -> None:
    clean = [item for item in corpus if item.noise == 0]
    assert measure_amd(clean, AnsweringMachineDetector).accuracy >= 0.85
