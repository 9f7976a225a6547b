"""bench/dialer_pacing.py end to end, at a tiny size: half an hour, 5 agents, one seed."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from dialer.pacing import PacingMode

BENCH = Path(__file__).resolve().parents[2] / "bench" / "dialer_pacing.py"
MODES = {"progressive", "predictive", "fixed_ratio"}
FIGURES = {"occupancy", "abandonment", "worst_seed_abandonment", "contacts_per_agent_hour"}
CEILING = 180 / (180 + 15)  # talk / (talk + wrap-up): no agent can talk more than this


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_one_cell_prints_one_json_object_keyed_by_mode_with_sane_figures() -> None:
    done = run_bench("--agents", "5", "--answer-rate", "0.3", "--seeds", "3", "--hours", "0.5", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == MODES
    for mode, figures in result.items():
        assert set(figures) == FIGURES, mode
        assert all(isinstance(value, float) for value in figures.values()), mode
        assert 0 < figures["occupancy"] < CEILING, mode
        assert 0 <= figures["abandonment"] <= figures["worst_seed_abandonment"] < 1, mode
        # Contacts per agent-hour and occupancy describe the same talk: 3600 s / 180 s a contact.
        assert 0 < figures["contacts_per_agent_hour"] < 3600 / 195 + 1, mode
    # One call per idle agent cannot abandon; predicting agents becoming free keeps them busier.
    assert result["progressive"]["abandonment"] == 0.0
    assert result["predictive"]["occupancy"] > result["progressive"]["occupancy"] + 0.03
    assert result["predictive"]["abandonment"] < result["fixed_ratio"]["abandonment"] + 0.05


def test_several_seeds_report_the_worst_one() -> None:
    done = run_bench(
        "--agents",
        "5",
        "--answer-rate",
        "0.6",
        "--seeds",
        "1-2",
        "--hours",
        "0.25",
        "--json",
        "--workers",
        "2",
    )
    assert done.returncode == 0, done.stderr
    predictive = json.loads(done.stdout)["predictive"]
    assert predictive["worst_seed_abandonment"] >= predictive["abandonment"]


def test_without_json_it_prints_a_table_with_the_verdict() -> None:
    done = run_bench("--agents", "5", "--answer-rate", "0.3", "--seeds", "1", "--hours", "0.25")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.split()[:3] == ["5", "0.30", "predictive"] for line in lines if line.strip())
    assert any("occupancy >= 76.0%" in line for line in lines)


def test_bad_arguments_are_refused_with_a_message() -> None:
    for args in (["--seeds", "10-1"], ["--answer-rate", "1.5"], ["--agents", "0"], ["--hours", "-1"]):
        done = run_bench(*args)
        assert done.returncode == 2, args
        assert "error" in done.stderr, args


def test_only_predictive_releases_surplus_lines() -> None:
    # bench/ is scripts, not a package: load the file itself.
    spec = importlib.util.spec_from_file_location("dialer_pacing_bench", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses look their module up
    spec.loader.exec_module(bench)
    modes = (PacingMode.PROGRESSIVE, PacingMode.PREDICTIVE, PacingMode.FIXED_RATIO)
    shifts = {mode: bench.simulate_shift(20, 0.3, 5, mode, hours=0.5) for mode in modes}
    assert shifts[PacingMode.PREDICTIVE].released > 0
    assert shifts[PacingMode.PROGRESSIVE].released == shifts[PacingMode.FIXED_RATIO].released == 0
    # Released lines lose their answers, so predictive may answer fewer per dial, never more.
    predictive = shifts[PacingMode.PREDICTIVE]
    assert predictive.answered / predictive.dials < 0.3 + 0.05
