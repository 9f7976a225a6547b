"""Running the real `centralita` command from tests: one-shot commands and a served instance."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


@contextmanager
def serving(*args: str, env: dict[str, str], cwd: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`centralita serve --port P *args`, once /health answers; stopped (killed if need be) afterwards."""
    port = free_port()
    env = {"CENTRALITA_AUDIOSOCKET_PORT": "0", **env}  # speech turns on a free port, unless told
    server = subprocess.Popen([*CLI, "serve", "--port", str(port), *args], env=env, cwd=cwd,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    # Read the service's output as it comes: a pipe nobody reads fills up and stalls a chatty service.
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(server.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=1):
                    break
            except OSError:
                if server.poll() is not None:
                    reader.join(timeout=5)
                    raise AssertionError("".join(output)) from None
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        yield server, base
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        reader.join(timeout=5)
        if server.stdout:
            server.stdout.close()
