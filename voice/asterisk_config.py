"""Asterisk's configuration from one source of truth: Centralita's settings and flows.

    templates = load_templates(templates_dir())
    files = render(settings, AsteriskPlan(flows=("banco_es", "support_en"), default_flow="banco_es",
                                          dids={"912345678": "banco_es"}), templates)
    # {"extensions.conf": "...", "pjsip.conf": "...", ...}

`render` is pure: the templates (`asterisk/templates/*.conf`, with `{{name}}` placeholders), the settings
(FastAGI port, transfer context, ARI and AMI users and passwords) and a plan (which number runs which
flow, the agents' phones, the trunk) in; file texts out. Everything it refuses, it refuses at once with
every problem named (`AsteriskConfigError`), so a half-right configuration never reaches Asterisk: an
empty password, a DID pointing at a flow nobody has, an AGI URL on port 0.

The placeholders are `{{name}}` rather than `$name` or `{name}` because Asterisk's own syntax is full of
`${VAR}` and `$[expr]`; a template naming a value the renderer does not have is an error, not a blank.
"""

from __future__ import annotations

import ipaddress
import re
import string
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from core.settings import Settings
from voice.ivr.schema import CallbackOfferNode, Flow, QueueNode

TEMPLATE_FILES = (
    "extensions.conf",
    "pjsip.conf",
    "ari.conf",
    "http.conf",
    "manager.conf",
    "modules.conf",
    "queues.conf",
    "rtp.conf",
    "logger.conf",
    "amd.conf",
    "indications.conf",
    "musiconhold.conf",
    # Core files Asterisk reports as missing at start-up otherwise.
    "cdr.conf",
    "cel.conf",
    "features.conf",
    "acl.conf",
    "udptl.conf",
    "ccss.conf",
    "pjproject.conf",
    "websocket_client.conf",
)
# CENTRALITA_DEFAULT_REGION -> the tone zone of indications.conf; others get "us".
TONE_ZONES = {"ES": "es", "GB": "uk", "US": "us", "CA": "us", "MX": "mx"}
# The first line of every rendered file: `centralita asterisk config` overwrites only files that start so.
RENDERED_MARK = "; Rendered by `centralita asterisk config`"
DEFAULT_ARI_PORT = 8088
DEFAULT_SIP_PORT = 5060

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")  # a config section name: users, flows, queues
_FLOW = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")  # voice.ivr.schema.Name
_DID = re.compile(r"^\+?[0-9]{1,32}$")
_EXTENSION = re.compile(r"^[0-9]{2,10}$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_RESERVED_SECTIONS = {"general", "global", "globals", "modules", "logfiles"}


class AsteriskConfigError(ValueError):
    """The configuration cannot be rendered; `problems` names each thing to fix."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__(
            "cannot render the Asterisk configuration:\n" + "\n".join(f"- {p}" for p in problems)
        )
        self.problems = list(problems)


class InboundRoute(StrEnum):
    AGI = "agi"  # AGI(agi://centralita:4573/<flow>): what `centralita serve` answers today
    STASIS = "stasis"  # Stasis(<ari app>,ivr,<flow>,<number>): for an ARI runner


@dataclass(frozen=True, slots=True)
class AgentPhone:
    extension: str
    password: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class SipTrunk:
    """The phone company's side. With a user name and password Asterisk registers and authenticates to
    it; without, the provider recognises Asterisk by its address (and Asterisk it by `host`)."""

    host: str
    port: int = DEFAULT_SIP_PORT
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True)
class AsteriskPlan:
    """What the settings do not say: the flows, which number runs which, phones, trunk, network."""

    flows: Sequence[str]  # the flows Centralita serves
    default_flow: str  # numbers not in `dids` (and trunks that send none)
    dids: Mapping[str, str] = field(default_factory=dict)  # dialled number -> flow
    queues: Sequence[str] = ()  # the queues the flows name (see `flow_queues`)
    agents: Sequence[AgentPhone] = ()
    trunk: SipTrunk | None = None
    inbound: InboundRoute = InboundRoute.AGI
    centralita_host: str = "127.0.0.1"  # where Asterisk reaches the FastAGI server
    bind_address: str = "127.0.0.1"  # where Asterisk's HTTP (ARI) and AMI listen
    manager_permit: Sequence[str] = ("127.0.0.1/32",)  # who may log in to AMI
    sip_port: int = DEFAULT_SIP_PORT
    rtp_ports: tuple[int, int] = (10000, 20000)
    external_address: str | None = None  # the public address, when Asterisk is behind NAT
    local_nets: Sequence[str] = ()  # networks not behind that NAT
    fallback_queue: str | None = None  # where callers go when the IVR cannot run


class _Template(string.Template):
    """`{{name}}` placeholders: Asterisk's configuration uses `$` and `{}` itself."""

    pattern = r"""
    \{\{(?:
      (?P<escaped>(?!))|
      \s*(?P<named>[a-z_][a-z0-9_]*)\s*\}\}|
      (?P<braced>(?!))|
      (?P<invalid>)
    )
    """  # type: ignore[assignment]


def templates_dir() -> Path | None:
    """`asterisk/templates`: beside the packages in a checkout or an editable install; under
    `<prefix>/share/centralita/` where a wheel puts data files."""
    source_root = Path(__file__).resolve().parent.parent
    candidates = (
        source_root / "asterisk" / "templates",
        Path(sys.prefix) / "share" / "centralita" / "asterisk" / "templates",
    )
    return next((candidate for candidate in candidates if candidate.is_dir()), None)


def load_templates(directory: Path) -> dict[str, str]:
    """The template texts by file name. Raises AsteriskConfigError naming each missing file."""
    missing = [name for name in TEMPLATE_FILES if not (directory / name).is_file()]
    if missing:
        raise AsteriskConfigError([f"{directory}: no template {name}" for name in missing])
    return {name: (directory / name).read_text(encoding="utf-8") for name in TEMPLATE_FILES}


def flow_queues(flows: Iterable[Flow]) -> list[str]:
    """Every queue the flows send callers to or offer call-backs from, sorted."""
    names = {
        node.queue
        for flow in flows
        for node in flow.nodes.values()
        if isinstance(node, QueueNode | CallbackOfferNode)
    }
    return sorted(names)


def queue_problem(name: str) -> str | None:
    """Why app_queue cannot have a queue of this name, or None. ("general" is queues.conf's settings
    section: Queue(general) can never find agents.)"""
    if not _NAME.match(name):
        return f"queue {name!r}: not a name Asterisk accepts (letters, digits, '_', '.', '-')"
    if name.lower() in _RESERVED_SECTIONS:
        return (
            f"queue {name!r} cannot exist in Asterisk (queues.conf reserves [{name}]): rename it in the flow"
        )
    return None


def _without_comment(line: str) -> str:
    """A list line without its `# comment` (a '#' inside a password is kept: comments follow a space)."""
    return re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()


# --- parsing what an admin types ------------------------------------------------------------------


def parse_dids(entries: Iterable[str]) -> dict[str, str]:
    """["912345678=banco_es", "+442071234567 = support_en"] -> {number: flow}. Blank lines and
    `#` comments are skipped, so a file's lines can be passed as they are."""
    dids: dict[str, str] = {}
    problems: list[str] = []
    for raw in entries:
        entry = _without_comment(raw)
        if not entry:
            continue
        number, sep, flow = (part.strip() for part in entry.partition("="))
        if not sep or not number or not flow:
            problems.append(f"DID {raw.strip()!r}: write NUMBER=FLOW, e.g. 912345678=banco_es")
        elif number in dids and dids[number] != flow:
            problems.append(f"DID {number}: given twice ({dids[number]} and {flow})")
        else:
            dids[number] = flow
    if problems:
        raise AsteriskConfigError(problems)
    return dids


def parse_agents(entries: Iterable[str]) -> list[tuple[str, str | None, str | None]]:
    """Agent phones as typed: "1001", "1001:password", or a file's "1001 password Ana García" lines ->
    (extension, password or None, name or None). Checking is `render`'s job."""
    agents: list[tuple[str, str | None, str | None]] = []
    for raw in entries:
        entry = _without_comment(raw)
        if not entry:
            continue
        if ":" in entry and " " not in entry:
            extension, password = entry.split(":", 1)
            agents.append((extension.strip(), password or None, None))
            continue
        extension, _, rest = entry.partition(" ")
        password, _, name = rest.strip().partition(" ")
        agents.append((extension, password or None, name.strip() or None))
    return agents


def agent_passwords(pjsip_conf: str) -> dict[str, str]:
    """The agents' passwords in a pjsip.conf rendered earlier: re-rendering keeps the phones working."""
    passwords: dict[str, str] = {}
    section: str | None = None
    for line in pjsip_conf.splitlines():
        header = re.match(r"^\[([^\]]+)\]\(agent-auth\)", line)
        if header:
            section = header.group(1)
        elif line.startswith("["):
            section = None
        elif section is not None:
            key, sep, value = line.partition("=")
            if sep and key.strip() == "password":
                passwords[section] = _unescape(value.strip())
    return passwords


# --- rendering ------------------------------------------------------------------------------------


def render(settings: Settings, plan: AsteriskPlan, templates: Mapping[str, str]) -> dict[str, str]:
    """{file name: text} for every template. Raises AsteriskConfigError with every problem found."""
    problems: list[str] = []
    ari_port, ari_prefix = _ari_http(settings.asterisk_ari_url, problems)
    _check(settings, plan, problems)
    missing = [name for name in TEMPLATE_FILES if name not in templates]
    problems += [f"no template {name}" for name in missing]
    if problems:
        raise AsteriskConfigError(problems)

    values = _values(settings, plan, ari_port, ari_prefix)
    files: dict[str, str] = {}
    for name in TEMPLATE_FILES:
        try:
            body = _Template(templates[name]).substitute(values)
        except KeyError as exc:
            problems.append(f"template {name}: unknown placeholder {{{{{exc.args[0]}}}}}")
            continue
        except ValueError as exc:
            problems.append(f"template {name}: {exc}")
            continue
        files[name] = _header(name) + body.rstrip("\n") + "\n"
    if problems:
        raise AsteriskConfigError(problems)
    return files


def _header(name: str) -> str:
    return (
        f"{RENDERED_MARK} from asterisk/templates/{name}.\n"
        "; Change the template, the CENTRALITA_* settings or the command's options and render again:\n"
        "; edits made here are lost at the next rendering.\n"
    )


def _ari_http(url: str | None, problems: list[str]) -> tuple[int, str]:
    """The HTTP port and path prefix Asterisk must serve ARI on for CENTRALITA_ASTERISK_ARI_URL."""
    if url is None:
        return DEFAULT_ARI_PORT, ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(f"CENTRALITA_ASTERISK_ARI_URL {url!r}: write http://HOST:PORT/ari")
        return DEFAULT_ARI_PORT, ""
    if parts.scheme == "https":
        problems.append(
            "CENTRALITA_ASTERISK_ARI_URL is https: the rendered http.conf serves plain HTTP; "
            "put a TLS proxy in front of Asterisk and render with its http:// address"
        )
    try:
        port = parts.port or DEFAULT_ARI_PORT
    except ValueError:
        problems.append(f"CENTRALITA_ASTERISK_ARI_URL {url!r}: the port is not a number from 1 to 65535")
        return DEFAULT_ARI_PORT, ""
    path = parts.path.rstrip("/")
    if path.endswith("/ari"):
        path = path[: -len("/ari")]
    prefix = path.strip("/")
    if prefix and not re.fullmatch(r"[A-Za-z0-9_.-]+", prefix):
        problems.append(
            f"CENTRALITA_ASTERISK_ARI_URL {url!r}: use at most one plain path segment before /ari"
        )
    return port, prefix


def _secret_problem(what: str, value: str | None) -> str | None:
    if not value:
        return f"{what} is empty: Asterisk would let anyone who can reach it in"
    if any(ch in value for ch in ";\r\n\t") or value != value.strip() or not value.isprintable():
        return f"{what}: use printable characters without ';', tabs or surrounding spaces"
    return None


def _check(settings: Settings, plan: AsteriskPlan, problems: list[str]) -> None:
    for what, value in (
        ("CENTRALITA_ASTERISK_ARI_PASSWORD", settings.asterisk_ari_password),
        ("CENTRALITA_ASTERISK_AMI_PASSWORD", settings.asterisk_ami_password),
    ):
        problem = _secret_problem(what, value)
        if problem:
            problems.append(problem)
    for what, name in (
        ("CENTRALITA_ASTERISK_ARI_USER", settings.asterisk_ari_user),
        ("CENTRALITA_ASTERISK_AMI_USER", settings.asterisk_ami_user),
    ):
        if not _NAME.match(name) or name.lower() in _RESERVED_SECTIONS:
            problems.append(f"{what} {name!r}: use letters, digits, '_', '.' or '-' (not 'general')")
    if settings.agi_port == 0:
        problems.append("CENTRALITA_AGI_PORT is 0 (any free port): Asterisk needs the port the server uses")

    flows = set(plan.flows)
    for flow in sorted(flows):
        if not _FLOW.match(flow):
            problems.append(f"flow {flow!r}: not a flow name (lower-case letters, digits, '_', '.', '-')")
    if not flows:
        problems.append("no flows: Centralita serves none, so no number could reach one")
    if plan.default_flow not in flows:
        problems.append(
            f"default flow {plan.default_flow!r} does not exist (flows: {', '.join(sorted(flows)) or 'none'})"
        )
    for number, flow in plan.dids.items():
        if not _DID.match(number):
            problems.append(f"DID {number!r}: digits only, with an optional leading '+'")
        if flow not in flows:
            problems.append(f"DID {number} -> flow {flow!r}, which does not exist")

    seen: set[str] = set()
    for agent in plan.agents:
        if not _EXTENSION.match(agent.extension):
            problems.append(f"agent {agent.extension!r}: an extension is 2 to 10 digits")
        elif agent.extension in seen:
            problems.append(f"agent {agent.extension}: listed twice")
        seen.add(agent.extension)
        problem = _secret_problem(f"agent {agent.extension}'s password", agent.password)
        if problem:
            problems.append(problem)
        if agent.name is not None and any(ch in agent.name for ch in ';,"<>\r\n'):
            problems.append(f"agent {agent.extension}'s name: no ';', ',', '\"', '<', '>' or line breaks")

    for queue in (*plan.queues, *([plan.fallback_queue] if plan.fallback_queue else [])):
        problem = queue_problem(queue)
        if problem:
            problems.append(problem)
    if plan.fallback_queue and plan.fallback_queue not in plan.queues:
        problems.append(f"fallback queue {plan.fallback_queue!r} is not one of the flows' queues")

    if plan.trunk is not None:
        trunk = plan.trunk
        if not _HOST.match(trunk.host):
            problems.append(f"trunk host {trunk.host!r}: a host name or IPv4 address, without a port")
        if not 1 <= trunk.port <= 65535:
            problems.append(f"trunk port {trunk.port}: 1 to 65535")
        if (trunk.username is None) != (trunk.password is None):
            problems.append("trunk: give both a user name and a password, or neither")
        if trunk.username is not None and not re.fullmatch(r"[A-Za-z0-9_.+-]{1,80}", trunk.username):
            problems.append(f"trunk user {trunk.username!r}: letters, digits, '_', '.', '+' or '-'")
        if trunk.password is not None:
            problem = _secret_problem("the trunk password", trunk.password)
            if problem:
                problems.append(problem)

    if not _address(plan.centralita_host) and not _HOST.match(plan.centralita_host):
        problems.append(f"Centralita's host {plan.centralita_host!r}: an address or a host name")
    elif plan.centralita_host in ("0.0.0.0", "::"):
        problems.append(
            f"Centralita's host {plan.centralita_host!r} is where the server listens, not where Asterisk "
            "finds it: give its address (e.g. 127.0.0.1, or the service name in docker compose)"
        )
    addresses = [("bind address", plan.bind_address)]
    if plan.external_address is not None:
        addresses.append(("external address", plan.external_address))
    for what, value in addresses:
        if not _address(value):
            problems.append(f"{what} {value!r}: an IP address")
    for network in (*plan.manager_permit, *plan.local_nets):
        if not _network(network):
            problems.append(f"{network!r}: not an IP network (e.g. 10.0.0.0/24)")
    if not plan.manager_permit:
        problems.append("AMI permits no address: Centralita could not log in")
    if not 1 <= plan.sip_port <= 65535:
        problems.append(f"SIP port {plan.sip_port}: 1 to 65535")
    start, end = plan.rtp_ports
    if not (1024 <= start < end <= 65535):
        problems.append(f"RTP ports {start}-{end}: a range within 1024-65535")


def _address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _network(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _escape(value: str) -> str:
    """Asterisk reads ';' as the start of a comment; the checks keep it out of secrets anyway."""
    return value.replace(";", r"\;")


def _unescape(value: str) -> str:
    return value.replace(r"\;", ";")


def _values(settings: Settings, plan: AsteriskPlan, ari_port: int, ari_prefix: str) -> dict[str, str]:
    host = plan.centralita_host
    agi_host = f"[{host}]" if ":" in host else host
    trunk_context = "centralita-inbound" if plan.inbound is InboundRoute.AGI else "centralita-inbound-ari"
    return {
        "agi_address": f"{agi_host}:{settings.agi_port}",
        "ari_app": settings.asterisk_ari_app,
        "default_flow": plan.default_flow,
        "trunk_endpoint": "trunk" if plan.trunk is not None else "",
        "fallback_queue": plan.fallback_queue or "",
        "agi_routes": _agi_routes(plan),
        "stasis_routes": _stasis_routes(plan),
        "transfer_context": settings.agi_transfer_context,
        "transfer_agents": _agent_dials(plan.agents),
        "agent_extensions": _agent_dials(plan.agents),
        "sip_bind": f"0.0.0.0:{plan.sip_port}",
        "nat": _nat(plan),
        "trunk_context": trunk_context,
        "trunk": _trunk(plan.trunk, trunk_context),
        "agents": _agents(plan.agents),
        "ari_user": settings.asterisk_ari_user,
        "ari_password": _escape(settings.asterisk_ari_password),
        "ari_url": settings.asterisk_ari_url or f"not set: the default port {DEFAULT_ARI_PORT}",
        "http_bind": plan.bind_address,
        "http_port": str(ari_port),
        "http_prefix": f"prefix = {ari_prefix}" if ari_prefix else "; no prefix: ARI is at /ari",
        "http_prefix_path": f"/{ari_prefix}" if ari_prefix else "",
        "ami_port": str(settings.asterisk_ami_port),
        "ami_bind": plan.bind_address,
        "ami_user": settings.asterisk_ami_user,
        "ami_password": _escape(settings.asterisk_ami_password),
        "ami_permit": "\n".join(f"permit = {_netmask(n)}" for n in plan.manager_permit),
        "rtp_start": str(plan.rtp_ports[0]),
        "rtp_end": str(plan.rtp_ports[1]),
        "queues": _queues(plan),
        "tone_country": TONE_ZONES.get(settings.default_region, "us"),
    }


def _routes(plan: AsteriskPlan) -> list[tuple[str, str]]:
    """(extension, flow): each DID, then the default flow for any other number and for none (`s`)."""
    listed = sorted(plan.dids.items())
    return [*listed, ("_X.", plan.default_flow), ("_+X.", plan.default_flow), ("s", plan.default_flow)]


def _agi_routes(plan: AsteriskPlan) -> str:
    blocks = []
    for extension, flow in _routes(plan):
        blocks.append(
            f"exten => {extension},1,NoOp(Centralita: ${{EXTEN}} from ${{CALLERID(num)}} -> flow {flow})\n"
            f" same => n,AGI(agi://${{CENTRALITA_AGI}}/{flow})\n"
            ' same => n,GotoIf($["${AGISTATUS}" = "FAILURE"]?centralita-ivr-failed,s,1)\n'
            " same => n,Hangup()"
        )
    return "\n".join(blocks)


def _stasis_routes(plan: AsteriskPlan) -> str:
    blocks = []
    for extension, flow in _routes(plan):
        blocks.append(
            f"exten => {extension},1,Stasis(${{CENTRALITA_ARI_APP}},ivr,{flow},${{EXTEN}})\n"
            ' same => n,GotoIf($["${STASISSTATUS}" = "FAILED"]?centralita-ivr-failed,s,1)\n'
            " same => n,Hangup()"
        )
    return "\n".join(blocks)


def _agent_dials(agents: Sequence[AgentPhone]) -> str:
    return "\n".join(
        f"exten => {agent.extension},1,Dial(PJSIP/{agent.extension})\n same => n,Hangup()"
        for agent in sorted(agents, key=lambda a: a.extension)
    )


def _nat(plan: AsteriskPlan) -> str:
    if plan.external_address is None:
        return "; Behind NAT? Render with --external-address (and --local-net for the private networks)."
    lines = [
        f"external_media_address = {plan.external_address}",
        f"external_signaling_address = {plan.external_address}",
    ]
    lines += [f"local_net = {network}" for network in plan.local_nets]
    return "\n".join(lines)


def _trunk(trunk: SipTrunk | None, context: str) -> str:
    if trunk is None:
        return (
            "; None: render with --trunk-host (and --trunk-user, --trunk-password if the provider\n"
            "; registers). Until then only agent phones and Local channels reach the dialplan, and\n"
            "; transfers to outside numbers fail (the flow takes its on_failure path)."
        )
    server = f"sip:{trunk.host}" + (f":{trunk.port}" if trunk.port != DEFAULT_SIP_PORT else "")
    endpoint = [
        "[trunk]",
        "type = endpoint",
        f"context = {context}",
        "disallow = all",
        "allow = ulaw,alaw,g722",
        "direct_media = no",
        "rtp_symmetric = yes",
        "dtmf_mode = rfc4733",
        "send_pai = yes",
        "aors = trunk",
    ]
    sections = []
    if trunk.username is not None and trunk.password is not None:
        endpoint += [
            "outbound_auth = trunk-auth",
            f"from_user = {trunk.username}",
            f"from_domain = {trunk.host}",
        ]
        sections += [
            "[trunk-auth]\ntype = auth\nauth_type = userpass\n"
            f"username = {trunk.username}\npassword = {_escape(trunk.password)}",
            "[trunk-registration]\ntype = registration\ntransport = transport-udp\n"
            f"outbound_auth = trunk-auth\nserver_uri = {server}\n"
            f"client_uri = sip:{trunk.username}@{trunk.host}\ncontact_user = {trunk.username}\n"
            "retry_interval = 60\nforbidden_retry_interval = 600\nexpiration = 3600\nline = yes\n"
            "endpoint = trunk",
        ]
    sections = [
        "\n".join(endpoint),
        f"[trunk]\ntype = aor\ncontact = {server}\nqualify_frequency = 60",
        f"[trunk]\ntype = identify\nendpoint = trunk\nmatch = {trunk.host}",
        *sections,
    ]
    return "\n\n".join(sections)


def _agents(agents: Sequence[AgentPhone]) -> str:
    blocks = []
    for agent in sorted(agents, key=lambda a: a.extension):
        name = agent.name or f"Agent {agent.extension}"
        blocks.append(
            f"\n[{agent.extension}](agent-phone)\n"
            f"auth = {agent.extension}\n"
            f"aors = {agent.extension}\n"
            f'callerid = "{name}" <{agent.extension}>\n'
            f"\n[{agent.extension}](agent-auth)\n"
            f"username = {agent.extension}\n"
            f"password = {_escape(agent.password)}\n"
            f"\n[{agent.extension}](agent-aor)"
        )
    return "\n".join(blocks)


def _queues(plan: AsteriskPlan) -> str:
    members = "".join(
        f"member => PJSIP/{agent.extension},0,{agent.name or 'Agent ' + agent.extension}\n"
        for agent in sorted(plan.agents, key=lambda a: a.extension)
    )
    return "\n".join(f"\n[{queue}](centralita-queue)\n{members}".rstrip("\n") for queue in plan.queues)


def _netmask(network: str) -> str:
    """Asterisk's ACLs take "address/mask" (manager.conf's permit)."""
    parsed = ipaddress.ip_network(network, strict=False)
    if parsed.version == 6:
        return f"{parsed.network_address}/{parsed.prefixlen}"
    return f"{parsed.network_address}/{parsed.netmask}"
