"""Asterisk's configuration rendered from the settings and the flows (voice/asterisk_config.py and
`centralita asterisk config`): the dialplan passes asterisklint, and what Asterisk is told matches what
Centralita is configured with."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from typer.testing import CliRunner

from centralita.cli import app
from core.settings import Settings
from voice.asterisk_config import (
    RENDERED_MARK,
    TEMPLATE_FILES,
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
    render,
    templates_dir,
)
from voice.flows import load_catalogue, shipped_flows_dir

ASTERISKLINT = Path(sys.executable).parent / "asterisklint"


def settings(**values: Any) -> Settings:
    base: dict[str, Any] = {
        "asterisk_ari_url": "http://127.0.0.1:8088/ari",
        "asterisk_ari_password": "ari-pw",
        "asterisk_ami_password": "ami-pw",
    }
    return Settings(_env_file=None, **(base | values))  # type: ignore[call-arg]


def shipped_plan(**values: Any) -> AsteriskPlan:
    directory = shipped_flows_dir()
    assert directory is not None
    catalogue = load_catalogue([directory])
    base: dict[str, Any] = {
        "flows": sorted(catalogue.flows),
        "default_flow": "banco_es",
        "dids": {"912345678": "banco_es", "+442071234567": "support_en"},
        "queues": flow_queues(catalogue.flows.values()),
        "agents": [AgentPhone("1001", "pw-1001", "Ana García"), AgentPhone("1002", "pw-1002")],
        "trunk": SipTrunk("sip.example.net", username="centralita", password="trunk-pw"),
        "fallback_queue": "atencion_general",
    }
    return AsteriskPlan(**(base | values))


@pytest.fixture(scope="module")
def templates() -> dict[str, str]:
    directory = templates_dir()
    assert directory is not None, "asterisk/templates is missing"
    return load_templates(directory)


def sections(text: str) -> dict[str, list[dict[str, str]]]:
    """A config file read roughly as Asterisk does: section name -> its bodies (key -> value)."""
    found: dict[str, list[dict[str, str]]] = {}
    body: dict[str, str] | None = None
    for raw in text.splitlines():
        line = re.split(r"(?<!\\);", raw, maxsplit=1)[0].strip()
        header = re.match(r"^\[([^\]]+)\]", line)
        if header:
            body = {}
            found.setdefault(header.group(1), []).append(body)
        elif body is not None and "=" in line:
            key, _, value = line.partition("=")
            body[key.strip()] = value.removeprefix(">").strip()  # "exten => ..." as "exten = ..."
    return found


def lint(tmp_path: Path, dialplan: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "extensions.conf").write_text(dialplan)
    return subprocess.run(
        [sys.executable, str(ASTERISKLINT), "dialplan-check", str(tmp_path / "extensions.conf")],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "ALINT_IGNORE"},
    )


# --- the dialplan passes the linter ---------------------------------------------------------------


@pytest.mark.parametrize("inbound", list(InboundRoute))
def test_the_rendered_dialplan_passes_asterisklint(
    templates: dict[str, str], tmp_path: Path, inbound: InboundRoute
) -> None:
    files = render(settings(), shipped_plan(inbound=inbound), templates)
    result = lint(tmp_path, files["extensions.conf"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""


def test_asterisklint_catches_a_broken_dialplan(templates: dict[str, str], tmp_path: Path) -> None:
    files = render(settings(), shipped_plan(), templates)
    broken = (
        files["extensions.conf"] + "\n[broken]\nexten => s,1,NoOp(unbalanced\n same => n,Goto(nowhere,s,1)\n"
    )
    result = lint(tmp_path, broken)
    assert result.returncode == 1
    assert "W_APP_BALANCE" in result.stdout + result.stderr


# --- what Asterisk is told matches Centralita's settings ------------------------------------------


def test_every_number_runs_its_flow_on_the_configured_fastagi_port(templates: dict[str, str]) -> None:
    plan = shipped_plan(centralita_host="centralita")
    dialplan = render(settings(agi_port=4599), plan, templates)["extensions.conf"]
    assert "\nCENTRALITA_AGI=centralita:4599\n" in dialplan
    routes = re.findall(
        r"^exten => ([^,]+),1,.*\n same => n,AGI\(agi://\$\{CENTRALITA_AGI\}/([^)]+)\)", dialplan, re.M
    )
    assert dict(routes) == {
        "912345678": "banco_es",
        "+442071234567": "support_en",
        "_X.": "banco_es",  # any other number, and none, runs the default flow
        "_+X.": "banco_es",
        "s": "banco_es",
    }
    assert set(dict(routes).values()) <= set(plan.flows)


def test_an_ipv6_fastagi_host_is_bracketed(templates: dict[str, str]) -> None:
    dialplan = render(settings(), shipped_plan(centralita_host="::1"), templates)["extensions.conf"]
    assert "\nCENTRALITA_AGI=[::1]:4573\n" in dialplan


def test_the_stasis_route_names_the_ari_app_the_flow_and_the_number(templates: dict[str, str]) -> None:
    files = render(settings(asterisk_ari_app="cc-ivr"), shipped_plan(inbound=InboundRoute.STASIS), templates)
    dialplan = files["extensions.conf"]
    assert "\nCENTRALITA_ARI_APP=cc-ivr\n" in dialplan
    assert "exten => 912345678,1,Stasis(${CENTRALITA_ARI_APP},ivr,banco_es,${EXTEN})" in dialplan
    assert sections(files["pjsip.conf"])["trunk"][0]["context"] == "centralita-inbound-ari"
    agi = render(settings(), shipped_plan(), templates)
    assert sections(agi["pjsip.conf"])["trunk"][0]["context"] == "centralita-inbound"


def test_transfers_use_the_settings_context_and_reach_agents_and_the_trunk(templates: dict[str, str]) -> None:
    dialplan = render(settings(agi_transfer_context="xfer"), shipped_plan(), templates)["extensions.conf"]
    context = sections(dialplan)["xfer"][0]
    assert context["exten"].startswith("_[0-9+]X.,1,Goto(centralita-outbound")
    assert "[xfer]\nexten => 1001,1,Dial(PJSIP/1001)" in dialplan
    assert "\nCENTRALITA_TRUNK=trunk\n" in dialplan
    without_trunk = render(settings(), shipped_plan(trunk=None), templates)
    assert "\nCENTRALITA_TRUNK=\n" in without_trunk["extensions.conf"]
    assert "trunk" not in sections(without_trunk["pjsip.conf"])


def test_ari_and_ami_users_and_passwords_are_the_settings(templates: dict[str, str]) -> None:
    files = render(
        settings(
            asterisk_ari_url="http://asterisk:8089/pbx/ari",
            asterisk_ari_user="cc-ari",
            asterisk_ari_password="s3cret-ari",
            asterisk_ami_port=5039,
            asterisk_ami_user="cc-ami",
            asterisk_ami_password="s3cret-ami",
        ),
        shipped_plan(bind_address="0.0.0.0", manager_permit=["10.1.0.0/16", "127.0.0.1"]),
        templates,
    )
    ari = sections(files["ari.conf"])
    assert ari["cc-ari"] == [
        {"type": "user", "read_only": "no", "password_format": "plain", "password": "s3cret-ari"}
    ]
    http = sections(files["http.conf"])["general"][0]
    assert (http["bindaddr"], http["bindport"], http["prefix"]) == ("0.0.0.0", "8089", "pbx")
    manager = files["manager.conf"]
    general = sections(manager)["general"][0]
    assert (general["port"], general["bindaddr"]) == ("5039", "0.0.0.0")
    assert sections(manager)["cc-ami"][0]["secret"] == "s3cret-ami"
    assert "permit = 10.1.0.0/255.255.0.0\npermit = 127.0.0.1/255.255.255.255" in manager
    # The AMI events the dialer and the e2e suite follow.
    assert {"call", "agent", "agi", "dialplan"} <= set(sections(manager)["cc-ami"][0]["read"].split(","))


def test_agents_get_an_endpoint_auth_and_aor_and_ring_in_every_queue(templates: dict[str, str]) -> None:
    files = render(settings(), shipped_plan(), templates)
    pjsip = files["pjsip.conf"]
    assert '[1001](agent-phone)\nauth = 1001\naors = 1001\ncallerid = "Ana García" <1001>' in pjsip
    assert "[1001](agent-auth)\nusername = 1001\npassword = pw-1001" in pjsip
    assert "[1002](agent-aor)" in pjsip
    assert agent_passwords(pjsip) == {"1001": "pw-1001", "1002": "pw-1002"}
    queues = sections(files["queues.conf"])
    assert {"atencion_general", "facturacion", "technical", "billing"} <= set(queues)
    assert "general" in queues and "persistentmembers" in queues["general"][0]  # the settings, not a queue
    assert "member => PJSIP/1001,0,Ana García\nmember => PJSIP/1002,0,Agent 1002" in files["queues.conf"]


def test_every_file_says_it_was_rendered_and_nothing_is_left_unfilled(templates: dict[str, str]) -> None:
    files = render(settings(), shipped_plan(), templates)
    assert sorted(files) == sorted(TEMPLATE_FILES)
    for name, text in files.items():
        assert text.startswith(RENDERED_MARK), name
        assert "{{" not in text and "}}" not in text, name


def test_the_tone_zone_follows_the_default_region(templates: dict[str, str]) -> None:
    def country(region: str) -> str:
        return sections(
            render(settings(default_region=region), shipped_plan(), templates)["indications.conf"]
        )["general"][0]["country"]

    assert (country("ES"), country("GB"), country("DE")) == ("es", "uk", "us")


# --- bad input: a clear error naming every problem ------------------------------------------------


def test_bad_input_is_refused_with_every_problem_named(templates: dict[str, str]) -> None:
    with pytest.raises(AsteriskConfigError) as caught:
        render(
            settings(asterisk_ari_password="", asterisk_ami_password="a;b", agi_port=0),
            shipped_plan(
                default_flow="nope",
                dids={"912345678": "missing_flow", "12ab": "banco_es"},
                agents=[AgentPhone("1001", ""), AgentPhone("1001", "x"), AgentPhone("1", "x")],
                trunk=SipTrunk("sip.example.net", username="u"),
                queues=["general"],
                centralita_host="0.0.0.0",
                manager_permit=["not-a-network"],
                rtp_ports=(20000, 10000),
            ),
            templates,
        )
    problems = "\n".join(caught.value.problems)
    for expected in (
        "CENTRALITA_ASTERISK_ARI_PASSWORD is empty",
        "CENTRALITA_ASTERISK_AMI_PASSWORD: use printable characters without ';'",
        "CENTRALITA_AGI_PORT is 0",
        "default flow 'nope' does not exist (flows: banco_es, support_en)",
        "DID 912345678 -> flow 'missing_flow', which does not exist",
        "DID '12ab': digits only",
        "agent 1001's password is empty",
        "agent 1001: listed twice",
        "agent '1': an extension is 2 to 10 digits",
        "trunk: give both a user name and a password, or neither",
        "queue 'general' cannot exist in Asterisk",
        "Centralita's host '0.0.0.0' is where the server listens",
        "'not-a-network': not an IP network",
        "RTP ports 20000-10000",
    ):
        assert expected in problems, problems
    assert str(caught.value).startswith("cannot render the Asterisk configuration:\n- ")


def test_an_https_ari_url_or_a_template_with_an_unknown_placeholder_is_refused(
    templates: dict[str, str],
) -> None:
    with pytest.raises(AsteriskConfigError, match="CENTRALITA_ASTERISK_ARI_URL is https"):
        render(settings(asterisk_ari_url="https://pbx:8089/ari"), shipped_plan(), templates)
    broken = templates | {"rtp.conf": "[general]\nrtpstart = {{rtp_first}}\n"}
    with pytest.raises(
        AsteriskConfigError, match=r"template rtp.conf: unknown placeholder \{\{rtp_first\}\}"
    ):
        render(settings(), shipped_plan(), broken)
    with pytest.raises(AsteriskConfigError, match=r"no template amd\.conf"):
        render(settings(), shipped_plan(), {k: v for k, v in templates.items() if k != "amd.conf"})


def test_dids_and_agents_are_read_as_typed() -> None:
    assert parse_dids(["912345678=banco_es", " +442071234567 = support_en # London", "", "# none"]) == {
        "912345678": "banco_es",
        "+442071234567": "support_en",
    }
    with pytest.raises(AsteriskConfigError, match="write NUMBER=FLOW"):
        parse_dids(["912345678"])
    with pytest.raises(AsteriskConfigError, match="given twice"):
        parse_dids(["1=a", "1=b"])
    assert parse_agents(["1001", "1002:pw#1", "1003 se#cret Ana García  # desk 3", "# 1004", ""]) == [
        ("1001", None, None),
        ("1002", "pw#1", None),
        ("1003", "se#cret", "Ana García"),
    ]


# --- the command ------------------------------------------------------------------------------------


def cli(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = {k: None for k in os.environ if k.startswith("CENTRALITA_")} | {
        "CENTRALITA_ASTERISK_ARI_PASSWORD": "ari-pw",
        "CENTRALITA_ASTERISK_AMI_PASSWORD": "ami-pw",
        "CENTRALITA_AGI_PORT": "4580",
    }
    result = CliRunner(env=env).invoke(app, ["asterisk", "config", "--out", str(tmp_path / "etc"), *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_command_writes_the_files_keeps_agent_passwords_and_spares_files_it_did_not_write(
    tmp_path: Path,
) -> None:
    code, out, err = cli(
        tmp_path, "--default-flow", "banco_es", "--did", "912345678=banco_es", "--agents", "1001"
    )
    assert code == 0, err
    etc = tmp_path / "etc"
    assert sorted(p.name for p in etc.iterdir()) == sorted(TEMPLATE_FILES)
    assert f"wrote {etc / 'extensions.conf'}" in out
    assert "cannot exist in Asterisk" not in err  # the shipped flows name only queues app_queue can have
    password = re.search(r"agent 1001: new SIP password (\S+)", out)
    assert password is not None
    assert oct((etc / "manager.conf").stat().st_mode & 0o777) == "0o640"
    assert "CENTRALITA_AGI=127.0.0.1:4580" in (etc / "extensions.conf").read_text()

    code, out, err = cli(tmp_path, "--default-flow", "banco_es", "--agents", "1001,1002:given")
    assert code == 0, err
    assert "new SIP password" not in out  # 1001 keeps the one made before; 1002's was given
    assert agent_passwords((etc / "pjsip.conf").read_text()) == {"1001": password.group(1), "1002": "given"}

    (etc / "extensions.conf").write_text("; the admin's own dialplan\n")
    before = (etc / "ari.conf").read_text()
    code, _, err = cli(tmp_path, "--default-flow", "banco_es")
    assert code == 1 and "extensions.conf not written by this command (--force overwrites)" in err
    assert (etc / "extensions.conf").read_text() == "; the admin's own dialplan\n"
    assert (etc / "ari.conf").read_text() == before  # all or nothing
    code, _, err = cli(tmp_path, "--default-flow", "banco_es", "--force")
    assert code == 0, err
    assert (etc / "extensions.conf").read_text().startswith(RENDERED_MARK)


def test_the_command_reports_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    code, _, err = cli(tmp_path)
    assert code == 2 and "give --default-flow, one of: banco_es, support_en" in err
    code, _, err = cli(tmp_path, "--default-flow", "banco_es", "--did", "5=nope", "--rtp-ports", "a-b")
    assert code == 2 and "RTP ports 'a-b'" in err
    code, _, err = cli(tmp_path, "--default-flow", "banco_es", "--did", "5=nope")
    assert code == 2 and "DID 5 -> flow 'nope', which does not exist" in err
    assert not (tmp_path / "etc").exists()


# --- docker-compose.yml's Asterisk ------------------------------------------------------------------

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def compose_defaults(text: str) -> str:
    """${NAME:-default} as compose fills it when NAME is not set; $$ as a literal $."""
    return re.sub(r"(?<!\$)\$\{[A-Z_]+:-([^}]*)\}", r"\1", text).replace("$$", "$")


def test_compose_runs_asterisk_on_the_configuration_it_renders_and_the_addresses_agree(
    tmp_path: Path,
) -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    asterisk, renderer, centralita = services["asterisk"], services["asterisk-config"], services["centralita"]
    tag = asterisk["image"].split(":")[1]
    assert tag.startswith("22.") and tag != "latest"  # pinned, Asterisk 22 LTS
    assert asterisk["depends_on"]["asterisk-config"]["condition"] == "service_completed_successfully"
    assert (
        "asterisk-etc:/etc/asterisk" in asterisk["volumes"]
        and "asterisk-etc:/etc/asterisk" in renderer["volumes"]
    )

    script = compose_defaults(renderer["command"][-1]).replace("\\\n", " ")
    command = next(line for line in script.splitlines() if line.startswith("centralita asterisk config"))
    args = shlex.split(command)[3:]
    option = dict(zip(args[::2], args[1::2], strict=True))
    asterisk_ip = asterisk["networks"]["voice"]["ipv4_address"]
    centralita_ip = centralita["networks"]["voice"]["ipv4_address"]
    env = centralita["environment"]
    assert env["CENTRALITA_AGI_ALLOWED"] == asterisk_ip  # FastAGI accepts Asterisk, and only it
    assert option["--centralita-host"] == centralita_ip
    assert option["--manager-permit"] == f"{centralita_ip}/32"  # AMI accepts Centralita, and only it
    first, last = option["--rtp-ports"].split("-")
    assert f"{first}-{last}:{first}-{last}/udp" in asterisk["ports"]
    assert f"127.0.0.1:{urlsplit(env['CENTRALITA_ASTERISK_ARI_URL']).port}:8088" in asterisk["ports"]
    assert renderer["environment"]["CENTRALITA_ASTERISK_ARI_URL"] == env["CENTRALITA_ASTERISK_ARI_URL"]

    # The command itself, with this checkout's templates and DID list and the passwords set.
    option["--out"] = str(tmp_path / "etc")
    option["--templates"] = str(COMPOSE.parent / "asterisk" / "templates")
    option["--dids-file"] = str(COMPOSE.parent / "asterisk" / "dids.txt")
    run_env = {k: None for k in os.environ if k.startswith("CENTRALITA_")} | {
        k: compose_defaults(str(v)) for k, v in renderer["environment"].items() if k != "CENTRALITA_FLOWS_DIR"
    }
    run_env |= {"CENTRALITA_ASTERISK_ARI_PASSWORD": "ari-pw", "CENTRALITA_ASTERISK_AMI_PASSWORD": "ami-pw"}
    result = CliRunner(env=run_env).invoke(
        app, ["asterisk", "config", *[x for kv in option.items() for x in kv]]
    )
    assert result.exit_code == 0, result.stderr
    rendered = (tmp_path / "etc" / "extensions.conf").read_text()
    assert f"\nCENTRALITA_AGI={centralita_ip}:{env['CENTRALITA_AGI_PORT']}\n" in rendered
    http_conf = sections((tmp_path / "etc" / "http.conf").read_text())["general"][0]
    assert (http_conf["bindaddr"], http_conf["bindport"]) == ("0.0.0.0", "8088")

    # Without the passwords the renderer stops, saying which, and Asterisk does not start.
    run_env |= {"CENTRALITA_ASTERISK_ARI_PASSWORD": "", "CENTRALITA_ASTERISK_AMI_PASSWORD": ""}
    option["--out"] = str(tmp_path / "empty")
    result = CliRunner(env=run_env).invoke(
        app, ["asterisk", "config", *[x for kv in option.items() for x in kv]]
    )
    assert result.exit_code == 2 and "CENTRALITA_ASTERISK_ARI_PASSWORD is empty" in result.stderr
