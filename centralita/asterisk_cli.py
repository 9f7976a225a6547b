"""`centralita asterisk ...`: Asterisk's configuration, rendered from the settings and the flows."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from centralita.settings_loading import settings_or_exit
from core.settings import Settings
from voice.asterisk_config import (
    RENDERED_MARK,
    AgentPhone,
    AsteriskConfigError,
    AsteriskPlan,
    InboundRoute,
    SipTrunk,
    agent_passwords,
    flow_queues,
    load_templates,
    parse_agents,
    parse_dids,
    queue_problem,
    render,
    templates_dir,
)
from voice.flows import flow_directories, load_catalogue

asterisk_app = typer.Typer(no_args_is_help=True, help="Asterisk: the configuration that sends calls here.")

# Files holding a password are readable by their owner and group only (Asterisk's user or group).
SECRET_FILES = {"ari.conf", "manager.conf", "pjsip.conf"}


@asterisk_app.command("config")
def config(
    out: Annotated[Path, typer.Option(help="directory to write to (Asterisk's, e.g. /etc/asterisk)")],
    force: Annotated[
        bool, typer.Option(help="overwrite files that this command did not write (e.g. Asterisk's samples)")
    ] = False,
    did: Annotated[
        list[str] | None, typer.Option(help="a number and its flow, NUMBER=FLOW; repeat for more")
    ] = None,
    dids_file: Annotated[
        Path | None, typer.Option(help="a file of NUMBER=FLOW lines (# starts a comment)")
    ] = None,
    default_flow: Annotated[
        str | None,
        typer.Option(help="the flow for numbers not listed [default: the only flow, if there is one]"),
    ] = None,
    agents: Annotated[
        str | None,
        typer.Option(
            help="agent phones: 1001,1002 or 1001:PASSWORD,...; without a password, the one rendered "
            "before is kept, or a new one is made and printed"
        ),
    ] = None,
    agents_file: Annotated[
        Path | None, typer.Option(help="a file of agent phones, one a line: EXTENSION PASSWORD [NAME]")
    ] = None,
    trunk_host: Annotated[str | None, typer.Option(help="the SIP provider's host (no trunk without)")] = None,
    trunk_port: Annotated[int, typer.Option(help="the SIP provider's port")] = 5060,
    trunk_user: Annotated[str | None, typer.Option(help="user name, if the provider registers")] = None,
    trunk_password: Annotated[
        str | None, typer.Option(envvar="CENTRALITA_SIP_TRUNK_PASSWORD", help="password, if it registers")
    ] = None,
    inbound: Annotated[
        InboundRoute, typer.Option(help="where the trunk's calls go: the FastAGI server or the ARI app")
    ] = InboundRoute.AGI,
    centralita_host: Annotated[
        str | None,
        typer.Option(help="where Asterisk reaches the FastAGI server [default: CENTRALITA_AGI_HOST]"),
    ] = None,
    bind: Annotated[str, typer.Option(help="address Asterisk's HTTP (ARI) and AMI listen on")] = "127.0.0.1",
    manager_permit: Annotated[
        list[str] | None, typer.Option(help="network allowed to log in to AMI [default: 127.0.0.1/32]")
    ] = None,
    sip_port: Annotated[int, typer.Option(help="SIP port (UDP)")] = 5060,
    rtp_ports: Annotated[str, typer.Option(help="media ports (UDP), FIRST-LAST")] = "10000-20000",
    external_address: Annotated[
        str | None, typer.Option(help="public address, when Asterisk is behind NAT")
    ] = None,
    local_net: Annotated[
        list[str] | None, typer.Option(help="a network not behind that NAT; repeat for more")
    ] = None,
    fallback_queue: Annotated[
        str | None, typer.Option(help="queue for callers when the IVR cannot run [default: hang up]")
    ] = None,
    templates: Annotated[
        Path | None, typer.Option(help="template directory [default: the shipped asterisk/templates]")
    ] = None,
) -> None:
    """Render Asterisk's configuration (dialplan, PJSIP, ARI, HTTP, AMI, modules, queues) from the
    settings and the flows, and write it to --out. Prints what it wrote."""
    settings = _settings()
    catalogue = load_catalogue(flow_directories(settings.flows_dir, settings.extra_flows_dirs))
    for problem in catalogue.problems:
        typer.echo(f"warning: flow not served: {problem}", err=True)
    flows = sorted(catalogue.flows)
    queues = []
    for queue in flow_queues(catalogue.flows.values()):
        unusable = queue_problem(queue)
        if unusable:  # the flow's queue step will fail over to its on_failure path; say so now
            typer.echo(f"warning: not rendered: {unusable}", err=True)
        else:
            queues.append(queue)
    template_dir = templates or templates_dir()
    if template_dir is None:
        _fail("no asterisk/templates directory here: give --templates DIR")
    try:
        dids = parse_dids([*(did or []), *_lines(dids_file)])
        phones, new_passwords = _agent_phones(
            parse_agents([*(agents.split(",") if agents else []), *_lines(agents_file)]), out
        )
        if default_flow is None and len(flows) != 1:
            _fail(f"give --default-flow, one of: {', '.join(flows) or '(no flows)'}")
        plan = AsteriskPlan(
            flows=flows,
            default_flow=default_flow or flows[0],
            dids=dids,
            queues=queues,
            agents=phones,
            trunk=(
                SipTrunk(trunk_host, trunk_port, trunk_user, trunk_password)
                if trunk_host is not None
                else None
            ),
            inbound=inbound,
            centralita_host=centralita_host or _reachable(settings.agi_host),
            bind_address=bind,
            manager_permit=manager_permit or ("127.0.0.1/32",),
            sip_port=sip_port,
            rtp_ports=_port_range(rtp_ports),
            external_address=external_address,
            local_nets=local_net or (),
            fallback_queue=fallback_queue,
        )
        files = render(settings, plan, load_templates(template_dir))
    except AsteriskConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    _write(out, files, force=force)
    for name in files:
        typer.echo(f"wrote {out / name}")
    for extension, password in new_passwords.items():
        typer.echo(f"agent {extension}: new SIP password {password}")
    via = f"AGI on {plan.centralita_host}:{settings.agi_port}" if inbound is InboundRoute.AGI else "Stasis"
    typer.echo(
        f"{len(dids)} numbers and the default flow {plan.default_flow} ({via}); "
        f"{len(plan.queues)} queues; {len(phones)} agent phones; "
        f"trunk {'to ' + trunk_host if trunk_host else 'none'}"
    )


def _settings() -> Settings:
    return settings_or_exit()


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _lines(path: Path | None) -> list[str]:
    if path is None:
        return []
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise AsteriskConfigError([f"{path}: {exc.strerror or exc}"]) from None


def _agent_phones(
    typed: list[tuple[str, str | None, str | None]], out: Path
) -> tuple[list[AgentPhone], dict[str, str]]:
    """The phones, a password for each: as typed, as rendered before into `out`, or a new one."""
    previous = out / "pjsip.conf"
    known = agent_passwords(previous.read_text(encoding="utf-8")) if _ours(previous) else {}
    phones, new = [], {}
    for extension, password, name in typed:
        if password is None:
            password = known.get(extension)
        if password is None:
            password = new[extension] = secrets.token_urlsafe(12)
        phones.append(AgentPhone(extension, password, name))
    return phones, new


def _port_range(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    try:
        return int(first), int(last)
    except ValueError:
        raise AsteriskConfigError([f"RTP ports {text!r}: write FIRST-LAST, e.g. 10000-20000"]) from None


def _reachable(host: str) -> str:
    """Where Asterisk on this machine reaches a server listening on `host`."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _ours(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as file:
            return file.readline().startswith(RENDERED_MARK)
    except (OSError, UnicodeDecodeError):
        return False


def _write(out: Path, files: dict[str, str], *, force: bool) -> None:
    """All or nothing: a file this command did not write stops the whole write (unless --force)."""
    foreign = [out / name for name in files if (out / name).exists() and not _ours(out / name)]
    if foreign and not force:
        listed = ", ".join(str(path) for path in foreign)
        _fail(f"nothing written: {listed} not written by this command (--force overwrites)", 1)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            # Beside the target, then renamed: Asterisk reloading meanwhile reads the old or the new file.
            handle, temporary = tempfile.mkstemp(dir=out, prefix=f".{name}.")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as file:
                    file.write(text)
                os.chmod(temporary, 0o640 if name in SECRET_FILES else 0o644)
                os.replace(temporary, out / name)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
    except OSError as exc:
        _fail(f"cannot write to {out}: {exc}", 1)
