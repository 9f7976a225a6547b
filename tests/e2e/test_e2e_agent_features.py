"""The agents' feature codes through a real Asterisk: `*20` log in, `*22` pause, `*23` ready, `*21` log out,
dialled in the rendered `centralita-agents` context from an agent's "phone", and carried out by the
`centralita serve` under test over FastAGI (`agent-feature?code=…`).

A Local channel stands in for the agent's desk phone: `Local/1001@centralita-test-agent` answers after a
second, and its `;1` half dials the code. Centralita takes the phone from the calling channel's name
(`Local/1001@centralita-test-agent-0000001a;1` -> `Local/1001@centralita-test-agent`), so an agent whose
`home_endpoint` is that string logs in from it, as one with `PJSIP/1001` would from a SIP phone."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from asterisk_calls import TEST_AGENT, admin_key, agent_events, agi_address, ami_client, hang_up_leftovers
from served import http, serving

from core.settings import Settings
from voice.ami.client import AmiClient
from voice.ami.events import AGIExecStart, AmiEvent, Hangup, OriginateReason

AGENTS = "centralita-agents"  # the agent phones' context
AGENT_PHONE = f"Local/1001@{TEST_AGENT}"
NOBODYS_PHONE = f"Local/1002@{TEST_AGENT}"  # no agent's home_endpoint
AGENT = "e2e-luis"


@dataclass
class Dialled:
    """One feature code dialled from a phone: the AGI commands its channel ran."""

    channel: str = ""
    commands: list[str] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def on_event(self, phone: str, event: AmiEvent) -> None:
        name = getattr(event, "channel", "")
        if not (name.startswith(f"{phone}-") and name.endswith(";1")):
            return
        self.channel = self.channel or name
        if isinstance(event, AGIExecStart):
            self.commands.append(event.command)
        elif isinstance(event, Hangup):
            self.ended.set()

    def played(self) -> str:
        """The sound the phone was answered with (the one STREAM FILE, after ANSWER)."""
        streamed = [c for c in self.commands if c.startswith("STREAM FILE ")]
        assert self.commands[:1] == ["ANSWER"] and len(streamed) == 1, self.commands
        return streamed[0].removeprefix("STREAM FILE ").removesuffix(' ""')


async def dial(ami: AmiClient, env: dict[str, str], phone: str, code: str) -> Dialled:
    """`code` dialled from `phone` in the agents' context, until the phone is hung up on."""
    dialled = Dialled()
    subscription = ami.subscribe(
        lambda event: dialled.on_event(phone, event), events=["AGIExecStart", "Hangup"]
    )
    try:
        answered = await ami.originate(
            phone,
            context=AGENTS,
            exten=code,
            priority=1,
            variables={"CENTRALITA_AGI": agi_address(env)},
            timeout=10,
        )
        assert answered.reason == OriginateReason.ANSWERED, answered
        async with asyncio.timeout(15):
            await dialled.ended.wait()
    finally:
        subscription.cancel()
        await hang_up_leftovers(ami, f"{phone}-")
    return dialled


def test_feature_codes_log_the_agent_in_pause_ready_and_log_out_from_their_phone(
    ami_settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    key = admin_key(env, tmp_path)

    async def main(base: str, agent_id: int) -> None:
        async with ami_client(ami_settings) as ami, agent_events(base, key, agent_id) as events:
            for code, sound, state in [
                ("*20", "agent-loginok", "ready"),
                ("*22", "beep", "paused"),
                ("*23", "beep", "ready"),
                ("*21", "agent-loggedoff", "logged_out"),
            ]:
                dialled = await dial(ami, env, AGENT_PHONE, code)
                assert dialled.played() == sound, (code, dialled.commands)
                change = await events.state(state, seconds=5)
                assert change["actor"] == f"phone {AGENT_PHONE}", change
                if state != "logged_out":
                    assert change["endpoint"] == AGENT_PHONE, change

            # Refused, with the error sound and no change: pausing while logged out, and logging in
            # from a phone that is nobody's.
            for phone, code in [(AGENT_PHONE, "*22"), (NOBODYS_PHONE, "*20")]:
                dialled = await dial(ami, env, phone, code)
                assert dialled.played() == "an-error-has-occurred", (phone, code, dialled.commands)
            assert [e["state"] for e in events.seen] == [
                "logged_out",
                "ready",
                "paused",
                "ready",
                "logged_out",
            ]

    with serving(env=env, cwd=tmp_path) as (_, base):
        agent = {"name": AGENT, "display_name": "Luis (e2e)", "home_endpoint": AGENT_PHONE}
        status, made = http("POST", f"{base}/api/v1/agents", key, agent)
        assert status == 201, made
        asyncio.run(main(base, made["id"]))
        status, history = http("GET", f"{base}/api/v1/agents/{made['id']}/history", key)

    assert status == 200, history
    assert [row["state"] for row in reversed(history)] == ["ready", "paused", "ready", "logged_out"], history
    assert {row["actor"] for row in history} == {f"phone {AGENT_PHONE}"}, history
