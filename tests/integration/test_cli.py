"""The `centralita` command as a newcomer uses it: a key, a server on SQLite, real HTTP."""

import json
import urllib.request
from pathlib import Path

from served import http, run_cli, serving


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
    with serving(env=env, cwd=tmp_path) as (_, base):
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


def test_serve_with_two_workers_shares_its_port_and_stops_cleanly(
    env: dict[str, str], tmp_path: Path
) -> None:
    key = run_cli("keys", "create", "--role", "admin", env=env, cwd=tmp_path).stdout.strip().splitlines()[-1]
    with serving("--workers", "2", env=env, cwd=tmp_path) as (server, base):
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
