"""bench/asr.py end to end: one JSON object keyed by engine and language, fractions not percents."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "asr.py"
ENGINE_FIGURES = {
    "intent_accuracy",
    "false_accept_rate",
    "rtf",
    "decode_ms_p50",
    "latency_ms_p50",
    "latency_ms_p95",
    "streams_per_core",
    "utterances",
}


def test_the_benchmark_prints_each_engine_and_amd_with_sane_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--json"], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == {"pocketsphinx-en", "vosk-ko", "amd"}
    for engine in ("pocketsphinx-en", "vosk-ko"):
        figures = result[engine]
        assert set(figures) == ENGINE_FIGURES, engine
        assert 0 <= figures["intent_accuracy"] <= 1 and 0 <= figures["false_accept_rate"] <= 1, engine
        assert 0 < figures["rtf"] < 1 and figures["streams_per_core"] > 1, engine
        assert 0 < figures["latency_ms_p50"] <= figures["latency_ms_p95"], engine
    # The English grammar recogniser is the one that works out of the box: it must be good at it.
    assert result["pocketsphinx-en"]["intent_accuracy"] >= 0.85
    assert result["pocketsphinx-en"]["false_accept_rate"] <= 0.1
    assert 0.5 < result["amd"]["accuracy"] <= 1 and result["amd"]["items"] > 100
