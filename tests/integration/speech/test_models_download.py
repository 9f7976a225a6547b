"""`centralita models download` against a local HTTP server serving small fake model zips."""

from __future__ import annotations

import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from centralita.cli import app
from centralita.models_cli import MODELS, DownloadError, download_model

ES = MODELS["es"]


def model_zip(name: str, *, extra: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr(f"{name}/am/final.mdl", b"acoustic model" * 100)
        zipped.writestr(f"{name}/conf/model.conf", b"--sample-frequency=16000\n")
        if extra is not None:
            zipped.writestr(extra, b"stray")
    return buffer.getvalue()


class Files:
    """What the server serves: path -> (body, the Content-Length it claims)."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[bytes, int]] = {}
        self.requests: list[str] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Files]]:
    files = Files()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            files.requests.append(self.path)
            item = files.items.get(self.path)
            if item is None:
                self.send_error(404)
                return
            body, length = item
            self.send_response(200)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/models", files
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def serve(files: Files, name: str, body: bytes, *, claimed: int | None = None) -> None:
    files.items[f"/models/{name}.zip"] = (body, len(body) if claimed is None else claimed)


def test_download_unpacks_the_model_and_prints_the_settings(
    server: tuple[str, Files], tmp_path: Path
) -> None:
    base, files = server
    serve(files, ES.name, model_zip(ES.name))
    serve(files, MODELS["en"].name, model_zip(MODELS["en"].name))
    result = CliRunner().invoke(
        app, ["models", "download", "es", "en", "--dir", str(tmp_path), "--base-url", base]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / ES.name / "am" / "final.mdl").is_file()
    assert f"CENTRALITA_VOSK_MODEL_ES={(tmp_path / ES.name).resolve()}" in result.stdout
    assert f"CENTRALITA_VOSK_MODEL_EN={(tmp_path / MODELS['en'].name).resolve()}" in result.stdout
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([ES.name, MODELS["en"].name])


def test_a_model_already_there_is_not_downloaded_again(server: tuple[str, Files], tmp_path: Path) -> None:
    base, files = server
    serve(files, ES.name, model_zip(ES.name))
    assert download_model(ES, tmp_path, base_url=base)[1] is True
    assert download_model(ES, tmp_path, base_url=base)[1] is False
    assert len(files.requests) == 1


def test_a_checksum_mismatch_is_refused(server: tuple[str, Files], tmp_path: Path) -> None:
    base, files = server
    serve(files, ES.name, model_zip(ES.name))
    with pytest.raises(DownloadError, match="sha256"):
        download_model(ES, tmp_path, base_url=base, sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []
    result = CliRunner().invoke(
        app,
        [
            "models",
            "download",
            "es",
            "--dir",
            str(tmp_path),
            "--base-url",
            base,
            "--sha256",
            "es=" + "0" * 64,
        ],
    )
    assert result.exit_code == 1 and "sha256" in result.output


def test_a_truncated_download_is_refused(server: tuple[str, Files], tmp_path: Path) -> None:
    base, files = server
    body = model_zip(ES.name)
    serve(files, ES.name, body[: len(body) // 2], claimed=len(body) // 2)  # the server cut it, length agrees
    with pytest.raises(DownloadError, match="not a zip"):
        download_model(ES, tmp_path, base_url=base)
    assert list(tmp_path.iterdir()) == []


def test_a_zip_with_paths_outside_the_model_directory_is_refused(
    server: tuple[str, Files], tmp_path: Path
) -> None:
    base, files = server
    serve(files, ES.name, model_zip(ES.name, extra="../escape.txt"))
    with pytest.raises(DownloadError, match="outside"):
        download_model(ES, tmp_path, base_url=base)
    assert not (tmp_path.parent / "escape.txt").exists()


def test_a_missing_file_and_an_unknown_language_are_errors(server: tuple[str, Files], tmp_path: Path) -> None:
    base, _ = server
    with pytest.raises(DownloadError, match="404"):
        download_model(ES, tmp_path, base_url=base)
    result = CliRunner().invoke(app, ["models", "download", "fr", "--dir", str(tmp_path), "--base-url", base])
    assert result.exit_code != 0 and "fr" in result.output
