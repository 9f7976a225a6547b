"""bench/agi_sessions.py at toy sizes: real processes, real sockets, every server, every call checked."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "agi_sessions.py"


def load_bench() -> ModuleType:
    """bench/ is not a package: load the script as a module, as `python bench/agi_sessions.py` runs it."""
    spec = importlib.util.spec_from_file_location("agi_sessions_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_every_server_runs_every_call_to_the_end_and_json_holds_the_figures() -> None:
    servers = ("centralita", "pyst2", "pyst2-fork")
    command = [sys.executable, str(BENCH), "--json", "--concurrency", "5", "--servers", ",".join(servers)]
    command += ["--seconds", "0.5", "--warmup", "0.2", "--media-ms", "20", "--drain-seconds", "5"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, cwd=BENCH.parents[1])
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)  # the whole of stdout is one JSON object

    assert results["machine"]["cores"] >= 1
    assert results["settings"]["commands_per_call"] == 10
    assert results["failed_calls"] == 0
    runs = {(run["server"], run["mode"]): run for run in results["runs"]}
    assert set(runs) == {(s, m) for s in servers for m in ("saturation", "paced")}
    for key, run in runs.items():
        assert run["concurrency"] == 5
        assert run["calls_started"] > 5, key
        assert run["calls_completed"] == run["calls_started"] and run["calls_failed"] == 0, (key, run)
        assert run["failure_examples"] == []
        assert run["calls_per_s"] > 0 and run["commands_per_s"] >= run["calls_per_s"], key
        assert run["latency_samples"] > 0
        assert 0 < run["latency_p50_ms"] <= run["latency_p99_ms"] <= run["latency_max_ms"], key
        assert run["server_peak_rss_mb"] is None or run["server_peak_rss_mb"] > 0
    target = results["targets"]
    assert target["concurrency"] == 5
    assert target["paced_p99_ms"] == runs["centralita", "paced"]["latency_p99_ms"]
    assert isinstance(target["throughput_ratio_vs_pyst2"], float)
    assert isinstance(target["throughput_ratio_vs_pyst2_fork"], float)


@pytest.mark.parametrize(
    ("commands", "expected"),
    [
        ([b"ANSWER\n", b"GET VARIABLE CALLERID(num)\n"], "server closed the connection after 2 commands"),
        ([b"ANSWER\n", b"STREAM FILE hello-world\n"], "command 2: expected GET VARIABLE"),
    ],
    ids=["closes-early", "wrong-command"],
)
def test_a_server_that_breaks_off_or_garbles_a_call_fails_every_call(
    commands: list[bytes], expected: str
) -> None:
    bench = load_bench()

    async def broken_call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):  # the generator resets a call it fails
            await reader.readuntil(b"\n\n")  # the agi_* block
            for line in commands:
                writer.write(line)
                await reader.readline()
            writer.close()
            await writer.wait_closed()

    async def scenario() -> Any:
        server = await asyncio.start_server(broken_call, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            load = bench.Load(
                mode="saturation",
                concurrency=2,
                seconds=0.3,
                warmup=0.0,
                media_seconds=0.0,
                drain_seconds=2.0,
            )
            tally, _ = await bench.drive(port, load)
        return tally

    tally = asyncio.run(scenario())
    assert tally.started > 0
    assert tally.completed == 0 and tally.failed == tally.started
    assert tally.failure_examples and all(expected in example for example in tally.failure_examples)
