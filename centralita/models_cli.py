"""`centralita models download es en`: fetch vosk's official small models and say how to use them.

Each model is a zip from alphacephei.com that unpacks to one directory named like the zip. The download
goes to a `.part` file, must be as long as the server said (a cut connection is refused), must match
`--sha256` when given, must be a sound zip (every member's CRC checked) holding that one directory and
no path outside it; only then is it unpacked, beside the final place and renamed into it, so a failed
download never leaves half a model behind. A model already unpacked is skipped.

alphacephei publishes no checksums beside its models, so none are built in: pass `--sha256` with one you
trust (e.g. from a mirror you control) to have it checked.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated

import httpx
import typer

models_app = typer.Typer(no_args_is_help=True, help="Speech recognition models (vosk).")

OFFICIAL_URL = "https://alphacephei.com/vosk/models"
DEFAULT_DIR = Path("models")


@dataclass(frozen=True, slots=True)
class ModelSource:
    language: str
    name: str  # the zip's name without .zip, and the directory it unpacks to
    setting: str

    def url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/{self.name}.zip"


MODELS = {
    "es": ModelSource("es", "vosk-model-small-es-0.42", "CENTRALITA_VOSK_MODEL_ES"),
    "en": ModelSource("en", "vosk-model-small-en-us-0.15", "CENTRALITA_VOSK_MODEL_EN"),
}


class DownloadError(Exception):
    """The model could not be fetched, or what came is not the model."""


def is_unpacked(directory: Path) -> bool:
    return (directory / "am").is_dir() or (directory / "conf" / "model.conf").is_file()


def download_model(
    source: ModelSource,
    target: Path,
    *,
    base_url: str = OFFICIAL_URL,
    sha256: str | None = None,
    client: httpx.Client | None = None,
) -> tuple[Path, bool]:
    """Fetch, check and unpack `source` under `target`: (its directory, whether it was downloaded now)."""
    final = target / source.name
    if is_unpacked(final):
        return final, False
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{source.name}-", dir=target) as scratch:
        archive = Path(scratch) / f"{source.name}.zip.part"
        digest = _fetch(source.url(base_url), archive, client)
        if sha256 is not None and digest != sha256.lower():
            raise DownloadError(f"{source.name}.zip: sha256 is {digest}, expected {sha256.lower()}; refused")
        unpacked = Path(scratch) / "unpacked"
        _unpack(archive, unpacked, source.name)
        if final.exists():  # an incomplete earlier attempt: it is not a model
            shutil.rmtree(final)
        (unpacked / source.name).rename(final)
    return final, True


def _fetch(url: str, archive: Path, client: httpx.Client | None) -> str:
    own = client is None
    http = client or httpx.Client(timeout=httpx.Timeout(60.0, connect=15.0), follow_redirects=True)
    digest = hashlib.sha256()
    received = 0
    try:
        with http.stream("GET", url) as response, archive.open("wb") as out:
            if response.status_code != 200:
                raise DownloadError(f"{url}: the server answered {response.status_code}")
            expected = response.headers.get("content-length")
            for chunk in response.iter_raw(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
    except httpx.HTTPError as exc:
        raise DownloadError(f"{url}: {exc}") from exc
    finally:
        if own:
            http.close()
    if expected is not None and received != int(expected):
        raise DownloadError(f"{url}: got {received} bytes of {expected}; the download was cut short")
    return digest.hexdigest()


def _unpack(archive: Path, into: Path, name: str) -> None:
    try:
        with zipfile.ZipFile(archive) as zipped:
            broken = zipped.testzip()
            if broken is not None:
                raise DownloadError(f"{name}.zip: {broken} is damaged (CRC mismatch)")
            for member in zipped.namelist():
                path = PurePosixPath(member)
                if path.is_absolute() or ".." in path.parts or path.parts[0] != name:
                    raise DownloadError(f"{name}.zip holds {member!r}, outside the {name}/ directory")
            zipped.extractall(into)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{name}.zip is not a zip file ({exc})") from exc
    if not is_unpacked(into / name):
        raise DownloadError(f"{name}.zip has no vosk model in {name}/ (no am/ nor conf/model.conf)")


@models_app.command("download")
def models_download(
    languages: Annotated[list[str], typer.Argument(help=f"languages: {', '.join(MODELS)}")],
    directory: Annotated[Path, typer.Option("--dir", help="where the models go")] = DEFAULT_DIR,
    base_url: Annotated[
        str, typer.Option(help="where the zips are (a mirror with the same file names)")
    ] = OFFICIAL_URL,
    sha256: Annotated[
        list[str] | None,
        typer.Option(help="LANG=SHA256 of that language's zip, checked before unpacking; repeat for more"),
    ] = None,
) -> None:
    """Download vosk's small models and print the settings that use them."""
    unknown = [language for language in languages if language not in MODELS]
    if unknown:
        raise typer.BadParameter(f"no model for {', '.join(unknown)}; known: {', '.join(MODELS)}")
    checksums: dict[str, str] = {}
    for item in sha256 or []:
        language, _, value = item.partition("=")
        if language not in MODELS or len(value) != 64:
            raise typer.BadParameter(f"--sha256 {item!r}: expected LANG=<64 hex digits>")
        checksums[language] = value
    lines: list[str] = []
    failed = False
    for language in dict.fromkeys(languages):
        source = MODELS[language]
        try:
            path, fetched = download_model(
                source, directory, base_url=base_url, sha256=checksums.get(language)
            )
        except DownloadError as exc:
            typer.echo(f"{language}: {exc}", err=True)
            failed = True
            continue
        typer.echo(f"{language}: {'downloaded' if fetched else 'already there'}: {path}", err=True)
        lines.append(f"{source.setting}={path.resolve()}")
    if lines:
        typer.echo("# settings (environment or .env):")
        for line in lines:
            typer.echo(line)
    if failed:
        raise typer.Exit(1)
