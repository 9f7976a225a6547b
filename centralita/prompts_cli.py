"""`centralita prompts`: the audio files Asterisk plays for the IVR flows."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from voice.flows import FlowCatalogue
from voice.prompt_files import (
    DEFAULT_FORMATS,
    FfmpegDecoder,
    FfmpegEncoder,
    PromptFileError,
    build_prompts,
    parse_formats,
)
from voice.prompts import flow_prompts
from voice.text_to_speech import DEFAULT_SPEED, DEFAULT_VOICES, EspeakSynthesizer, SynthesisError

prompts_app = typer.Typer(no_args_is_help=True, help="Prompt audio for Asterisk.")

DEFAULT_OUT = Path("sounds")


@prompts_app.command("build")
def prompts_build(
    out: Annotated[
        Path | None,
        typer.Option(
            help="Asterisk's sounds directory (e.g. /var/lib/asterisk/sounds); files go under "
            "centralita/<lang>/ in it",
            # Shown by typer itself: rich takes a "[default: …]" written in the help text for markup.
            show_default="./sounds",
        ),
    ] = None,
    flows: Annotated[
        list[str] | None,
        typer.Option("--flow", help="only this flow; repeat for more", show_default="every served flow"),
    ] = None,
    formats: Annotated[
        str, typer.Option("--format", help="comma-separated: wav (8 kHz), sln16 (16 kHz), ulaw (8 kHz µ-law)")
    ] = ",".join(DEFAULT_FORMATS),
    force: Annotated[bool, typer.Option("--force", help="make every prompt again, even unchanged")] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="also check that each recording a flow names is beside the flows (recordings/) or in "
            "--out; fail if not",
        ),
    ] = False,
    voices: Annotated[
        list[str] | None,
        typer.Option(
            "--voice",
            help="LANG=VOICE: the espeak-ng voice for a language (`espeak-ng --voices` lists them); "
            "repeat for more",
            show_default=f"{', '.join(f'{k}={v}' for k, v in DEFAULT_VOICES.items())}, "
            "other languages: the voice named like the language",
        ),
    ] = None,
    speed: Annotated[int, typer.Option(min=80, max=450, help="words a minute")] = DEFAULT_SPEED,
    jobs: Annotated[
        int | None, typer.Option(min=1, max=64, help="prompts rendered at once", show_default="one a core")
    ] = None,
) -> None:
    """Render every text-only prompt of the served flows with espeak-ng into the files Asterisk plays,
    and install the flows' own recordings from recordings/ beside the flow files (needs espeak-ng and
    ffmpeg). Unchanged prompts are not made again, and a recording already in --out that this command
    did not install is left alone. Prints what it did and exits 1 if any prompt failed."""
    directory = out or DEFAULT_OUT
    try:
        chosen_formats = parse_formats(formats)
    except ValueError as exc:
        typer.echo(f"error: --format: {exc}", err=True)
        raise typer.Exit(2) from None
    voice_of = _parse_voices(voices or [])
    catalogue = _catalogue()
    for problem in catalogue.problems:
        typer.echo(f"warning: not served: {problem}", err=True)
    names = list(dict.fromkeys(flows)) if flows else sorted(catalogue.flows)
    unknown = [name for name in names if name not in catalogue]
    if unknown:
        served = ", ".join(sorted(catalogue.flows)) or "none"
        typer.echo(f"error: no flow named {', '.join(unknown)} (served: {served})", err=True)
        raise typer.Exit(2)
    try:
        synthesizer = EspeakSynthesizer(voices=voice_of, speed=speed)
        encoder = FfmpegEncoder()
        decoder = FfmpegDecoder()
    except (SynthesisError, PromptFileError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None

    started = time.perf_counter()
    report = build_prompts(
        [prompt for name in names for prompt in flow_prompts(catalogue.flows[name])],
        out=directory,
        synthesizer=synthesizer,
        encoder=encoder,
        decoder=decoder,
        flow_directories=catalogue.directories,
        formats=chosen_formats,
        force=force,
        check_recorded=check,
        jobs=jobs,
    )
    elapsed = time.perf_counter() - started
    if report.manifest_problem:
        typer.echo(f"warning: {report.manifest_problem}", err=True)
    for failure in report.failures:
        typer.echo(f"error: {failure}", err=True)
    for missing in report.missing_recordings:
        typer.echo(f"error: missing recording: {missing}", err=True)
    for kept in report.kept:
        typer.echo(f"note: {kept}", err=True)
    missing_note = f", {len(report.missing_recordings)} recordings missing" if check else ""
    typer.echo(
        f"{len(report.rendered)} rendered, {len(report.installed)} installed, {len(report.cached)} cached, "
        f"{len(report.recorded)} recorded, {len(report.failures)} failed{missing_note}: "
        f"{len(names)} flow{'s' if len(names) != 1 else ''}, "
        f"{','.join(chosen_formats)}, in {directory} ({elapsed:.1f} s)"
    )
    if not report.ok:
        raise typer.Exit(1)


def _parse_voices(pairs: list[str]) -> dict[str, str]:
    voices: dict[str, str] = {}
    for pair in pairs:
        language, _, voice = pair.partition("=")
        if not language.strip() or not voice.strip():
            typer.echo(f"error: --voice {pair!r}: write LANG=VOICE, e.g. es=es-419", err=True)
            raise typer.Exit(2)
        voices[language.strip()] = voice.strip()
    return voices


def _catalogue() -> FlowCatalogue:
    # Imported here: centralita.cli imports this module. Its container reads the settings the way every
    # other command does (a bad setting exits 2 with its name).
    from centralita.cli import _container

    container = _container()
    try:
        return container.flows()
    finally:
        container.close()
