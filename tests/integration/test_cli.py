"""The `centralita` command as a newcomer uses it: a key, a server on SQLite, real HTTP."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

CLI = [sys.executable, "-c", "from centralita.cli import main; main()"]


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, key: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CENTRALITA_")}
    return clean | {
        "CENTRALITA_DATABASE_URL": f"sqlite:///{tmp_path / 'cc.db'}",
        "CENTRALITA_LOG_LEVEL": "WARNING",
    }


def test_keys_create_prints_the_key_alone_on_its_last_line(env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("keys", "create", "--role", "admin", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("cnt_") and " " not in last and len(last) > 40
    listed = run_cli("keys", "list", env=env, cwd=tmp_path)
    assert "admin" in listed.stdout and last not in listed.stdout
    assert run_cli("keys", "create", "--role", "root", env=env, cwd=tmp_path).returncode != 0


def test_a_bad_setting_is_reported_by_name(env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("keys", "list", env=env | {"CENTRALITA_DEFAULT_REGION": "XX"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "CENTRALITA_DEFAULT_REGION" in result.stderr and "unknown region" in result.stderr


def test_serve_creates_its_schema_and_answers_over_http(env: dict[str, str], tmp_path: Path) -> None:
    key = run_cli("keys", "create", "--role", "admin", env=env, cwd=tmp_path).stdout.strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=1):
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        status, customer = http(
            "POST",
            f"{base}/api/v1/customers",
            key,
            {
                "name": "Ana Pérez",
                "identities": [
                    {"kind": "phone", "value": "600 111 222"},
                    {"kind": "email", "value": "Ana@Example.com"},
                ],
            },
        )
        assert status == 201 and customer["id"]
        status, found = http("GET", f"{base}/api/v1/customers/lookup?phone=%2B34600111222", key)
        assert status == 200 and found["customer"]["id"] == customer["id"]
        assert http("GET", f"{base}/api/v1/customers/lookup?phone=600111222", "wrong")[0] == 401
        with urllib.request.urlopen(f"{base}/openapi.json", timeout=5) as response:
            assert "/api/v1/customers/lookup" in json.loads(response.read())["paths"]
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout:
            server.stdout.close()


def test_serve_with_two_workers_shares_its_port_and_stops_cleanly(
    env: dict[str, str], tmp_path: Path
) -> None:
    key = run_cli("keys", "create", "--role", "admin", env=env, cwd=tmp_path).stdout.strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers", "2"], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=1):
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        workers = [pid for pid in children if b"spawn_main" in _command_line(pid)]  # not the resource tracker
        assert len(workers) == 2, children
        made = [http("POST", f"{base}/api/v1/customers", key, {"name": f"c{i}"}) for i in range(10)]
        assert [status for status, _ in made] == [201] * 10
        status, found = http("GET", f"{base}/api/v1/customers?name=c&limit=100", key)
        assert status == 200 and len(found["items"]) == 10, "every worker writes to the one database"
        server.terminate()
        assert server.wait(timeout=20) == 0
        assert all(not Path(f"/proc/{pid}").exists() for pid in workers), "the workers stop with it"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if server.stdout:
            server.stdout.close()


def _command_line(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_key_commands_work_on_a_fresh_database_and_refuse_unknown_ids(
    env: dict[str, str], tmp_path: Path
) -> None:
    listed = run_cli("keys", "list", env=env, cwd=tmp_path)
    assert (listed.returncode, listed.stdout) == (0, "")
    revoked = run_cli("keys", "revoke", "5", env=env, cwd=tmp_path)
    assert revoked.returncode == 1
    assert revoked.stderr.strip() == "error: API key 5 not found"
