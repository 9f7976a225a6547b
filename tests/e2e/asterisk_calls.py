"""Placing calls through a real Asterisk for the end-to-end tests, with the rendered dialplan's contexts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.settings import Settings
from voice.ami.client import AmiClient
from voice.ami.events import AGIExecStart, AmiEvent, Hangup

INBOUND = "centralita-inbound"  # the trunk's context: a number runs its flow over FastAGI
INBOUND_ARI = "centralita-inbound-ari"  # the alternative: the number enters the ARI application
TEST_CALLEE = "centralita-test-callee"
# An agent's phone for the dialer's tests: Local/<extension>@centralita-test-agent rings 1 s and answers.
TEST_AGENT = "centralita-test-agent"
# Numbers for whole campaigns: Local/<digits>@centralita-test-numbers behaves as its last digit says
# (1-5 a person, 6-7 an answering machine, 8 busy, 9 no answer, 0 congested).
TEST_NUMBERS = "centralita-test-numbers"
# A phone that answers at once and stays on the line; the test plays its keys (AMI PlayDTMF).
PHONE = f"Local/phone@{TEST_CALLEE}"


def ari_base_url(settings: Settings) -> str:
    """AriClient and AriEventStream take Asterisk's HTTP server; the setting may name its /ari path."""
    assert settings.asterisk_ari_url is not None
    url = settings.asterisk_ari_url.rstrip("/")
    return url[: -len("/ari")] if url.endswith("/ari") else url


def ami_client(settings: Settings, *, secret: str | None = None) -> AmiClient:
    assert settings.asterisk_ami_host is not None
    return AmiClient(
        settings.asterisk_ami_host,
        settings.asterisk_ami_port,
        username=settings.asterisk_ami_user,
        secret=settings.asterisk_ami_password if secret is None else secret,
        ping_interval=None,
    )


def agi_address(env: dict[str, str]) -> str:
    """host:port of the FastAGI server under test, as the dialplan's CENTRALITA_AGI variable."""
    host = env["CENTRALITA_AGI_HOST"]
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"[{host}]:{env['CENTRALITA_AGI_PORT']}" if ":" in host else f"{host}:{env['CENTRALITA_AGI_PORT']}"


@dataclass
class Caller:
    """Presses keys when the IVR asks for them, as a person would: the next key of `keys` when the
    IVR's channel starts collecting digits (AGI `GET DATA`), `#` a moment after a recording starts.

    The IVR runs on the `;1` half of Local/phone@centralita-test-callee; the keys are played on the
    `;2` half, which sends them across as DTMF."""

    ami: AmiClient
    keys: Sequence[str]
    commands: list[str] = field(default_factory=list)  # every AGI command the IVR sent, in order
    pressed: list[str] = field(default_factory=list)
    linkedid: str | None = None
    channel: str | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    problems: list[str] = field(default_factory=list)

    def on_event(self, event: AmiEvent) -> None:
        if isinstance(event, AGIExecStart) and event.channel.startswith(f"{PHONE}-"):
            if self.channel is None:
                self.channel, self.linkedid = event.channel, event.linkedid
            if event.channel != self.channel:
                return
            self.commands.append(event.command)
            verb = event.command.upper()
            if verb.startswith("GET DATA"):
                if len(self.pressed) < len(self.keys):
                    self._press(self.keys[len(self.pressed)], delay=0.3)
            elif verb.startswith("RECORD FILE"):
                self._press("#", delay=1.5)  # after the beep: a caller who has nothing to say
        elif isinstance(event, Hangup) and event.channel == self.channel:
            self.finished.set()

    def _press(self, key: str, *, delay: float) -> None:
        self.pressed.append(key)
        asyncio.get_running_loop().create_task(self._play(key, delay))

    async def _play(self, key: str, delay: float) -> None:
        await asyncio.sleep(delay)
        assert self.channel is not None
        other_half = self.channel[: -len(";1")] + ";2"
        try:
            await self.ami.send_action("PlayDTMF", {"Channel": other_half, "Digit": key, "Duration": 250})
        except Exception as exc:  # reported by the test: a handler's failure is only logged
            self.problems.append(f"PlayDTMF {key} on {other_half}: {exc}")


async def hang_up_leftovers(ami: AmiClient, prefix: str) -> None:
    """A failed test must not leave its calls running on a shared Asterisk."""
    with contextlib.suppress(Exception):
        for channel in await ami.core_show_channels():
            if channel.channel.startswith(prefix):
                with contextlib.suppress(Exception):
                    await ami.hangup(channel.channel)
