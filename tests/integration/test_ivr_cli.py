"""The IVR from the command line: `flows list`, `flows validate`, and `serve` + `call` as a newcomer uses
them, checked through the HTTP API."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from served import CLI, free_port, http, run_cli
from typer.testing import CliRunner

from centralita.cli import app

SHIPPED = Path(__file__).resolve().parents[2] / "ivr_flows"
TINY_FLOW = """\
name: tiny_es
languages: [es]
default_language: es
start: adios
nodes:
  adios:
    kind: hangup
    prompt:
      es: Adiós.
"""


def cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner(env={k: None for k in os.environ if k.startswith("CENTRALITA_")} | env).invoke(
        app, args
    )
    return result.exit_code, result.stdout, result.stderr


def test_flows_list_shows_the_shipped_and_the_configured_flows(env: dict[str, str], tmp_path: Path) -> None:
    extra = tmp_path / "flows"
    extra.mkdir()
    (extra / "tiny.yaml").write_text(TINY_FLOW)
    (extra / "broken.yaml").write_text("name: broken\n")
    code, out, err = cli(env | {"CENTRALITA_EXTRA_FLOWS_DIRS": str(extra)}, "flows", "list")
    assert code == 0
    rows = [line.split("\t") for line in out.splitlines()]
    assert [row[0] for row in rows] == ["banco_es", "support_en", "tiny_es"]
    banco = rows[0]
    assert len(banco[1]) == 12 and banco[2] == "es,en" and Path(banco[3]) == SHIPPED / "banco_es.yaml"
    assert rows[2][2:] == ["es", str(extra / "tiny.yaml")]
    assert "broken.yaml" in err and "not served" in err

    code, out, _ = cli(env | {"CENTRALITA_FLOWS_DIR": str(extra)}, "flows", "list")
    assert [line.split("\t")[0] for line in out.splitlines()] == ["tiny_es"]


def test_flows_validate_prints_every_problem_and_fails(env: dict[str, str], tmp_path: Path) -> None:
    code, out, _ = cli(env, "flows", "validate")
    assert (code, out.strip()) == (0, "2 flows, no problems")
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(SHIPPED / "support_en.yaml", bad / "support_en.yaml")
    text = (bad / "support_en.yaml").read_text().replace("next: tech_queue\n", "next: nowhere\n", 1)
    (bad / "support_en.yaml").write_text(text)
    (bad / "empty.yaml").write_text("name: empty\n")
    code, out, _ = cli(env, "flows", "validate", str(bad), str(SHIPPED / "banco_es.yaml"))
    assert code == 1
    assert "support_en.yaml: node 'tech_menu', field 'options.2.next': unknown node 'nowhere'" in out
    assert "empty.yaml: field 'start': required" in out


def test_calling_a_server_that_is_not_there_fails_clearly(env: dict[str, str]) -> None:
    code, _, err = cli(env, "call", "banco_es", "--input", "1", "--port", str(free_port()))
    assert code == 1 and "cannot reach the FastAGI server" in err
    code, _, err = cli(env, "call", "banco_es", "--input", "1,x")
    assert code == 2 and "not a key sequence" in err


def wait_for_port(port: int, server: subprocess.Popen[str], deadline: float) -> None:
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.1)


def test_serve_answers_calls_and_the_timeline_shows_them(env: dict[str, str], tmp_path: Path) -> None:
    key = run_cli("keys", "create", "--role", "admin", env=env, cwd=tmp_path).stdout.strip().splitlines()[-1]
    api_port, agi_port = free_port(), free_port()
    env = env | {"CENTRALITA_AGI_PORT": str(agi_port)}
    server = subprocess.Popen(
        [*CLI, "serve", "--port", str(api_port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 30
        wait_for_port(agi_port, server, deadline)
        wait_for_port(api_port, server, deadline)

        # Three silences: out of hours the menu says goodbye, in hours the caller is queued.
        scripted = run_cli(
            "call", "support_en", "--from", "+34600111222", "--input", "-,-,-", env=env, cwd=tmp_path
        )
        assert scripted.returncode == 0, scripted.stdout + scripted.stderr
        assert "IVR: Thanks for calling Northwind Broadband." in scripted.stdout
        assert scripted.stdout.count("you: (nothing)") == 3
        # At the console: Enter three times.
        interactive = subprocess.run(
            [*CLI, "call", "support_en", "--from", "+34600111222"],
            input="\n\n\n",
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert interactive.returncode == 0, interactive.stdout + interactive.stderr
        assert interactive.stdout.count("you: (nothing)") == 3

        status, found = http("GET", f"{base}/api/v1/customers/lookup?phone=600%20111%20222", key)
        assert status == 200, found
        customer_id = found["customer"]["id"]
        status, page = http("GET", f"{base}/api/v1/customers/{customer_id}/timeline?include=touchpoints", key)
        assert status == 200, page
        assert len(page["items"]) == 2
        for item in page["items"]:
            assert (item["channel"], item["direction"]) == ("voice", "inbound")
            assert item["outcome"] in ("contained", "transferred")
            assert item["attributes"]["flow"] == "support_en"
            steps = [(t["kind"], t["node"]) for t in item["touchpoints"]]
            assert steps[:2] == [("ivr_node", "welcome"), ("ivr_node", "identify")]
            assert sum(1 for t in item["touchpoints"] if t["input"] == "no-input") == 3
        with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
            assert response.status == 200
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=20)
        finally:
            output = server.stdout.read() if server.stdout else ""
            if server.stdout:
                server.stdout.close()
    assert code == 0, output
    assert "Traceback" not in output, output
