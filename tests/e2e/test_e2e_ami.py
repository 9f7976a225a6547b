"""The AMI client against a real Asterisk: the rendered manager.conf's user logs in and a wrong password
is refused; and the rendered test callee answers like a person or a machine, as answering-machine
detection (app_amd, configured by the rendered amd.conf) hears it."""

from __future__ import annotations

import asyncio
import time

import pytest
from asterisk_calls import TEST_CALLEE, ami_client, hang_up_leftovers

from core.settings import Settings
from voice.ami.errors import AmiLoginFailed
from voice.ami.events import AmiEvent, OriginateReason, VarSet


def test_the_rendered_manager_user_logs_in_and_a_wrong_password_is_refused(ami_settings: Settings) -> None:
    async def main() -> float:
        async with ami_client(ami_settings) as ami:
            assert ami.banner is not None and ami.banner.text.startswith("Asterisk Call Manager/")
            pong = await ami.ping()
            assert pong.get("Ping") == "Pong"
            assert isinstance(await ami.core_show_channels(), list)
        started = time.monotonic()
        with pytest.raises(AmiLoginFailed, match="Authentication failed"):
            async with ami_client(ami_settings, secret="not-the-password"):
                pass
        return time.monotonic() - started

    refused_after = asyncio.run(main())
    assert refused_after < 5  # a clear, prompt answer (Asterisk closes the socket about 1 s later)


@pytest.mark.parametrize(("callee", "heard"), [("human", "HUMAN"), ("machine", "MACHINE")])
def test_the_test_callee_sounds_like_a_person_or_a_machine(
    ami_settings: Settings, callee: str, heard: str
) -> None:
    async def main() -> str:
        async with ami_client(ami_settings) as ami:
            status: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            channel = f"Local/{callee}@{TEST_CALLEE}"

            def on_varset(event: AmiEvent) -> None:
                if (
                    isinstance(event, VarSet)
                    and event.variable == "AMDSTATUS"
                    and event.channel.startswith(f"{channel}-")
                    and not status.done()
                ):
                    status.set_result(event.value)

            subscription = ami.subscribe(on_varset, events=["VarSet"])
            try:
                answered = await ami.originate(channel, application="AMD", timeout=10)
                assert answered.reason == OriginateReason.ANSWERED, answered
                async with asyncio.timeout(15):
                    return await status
            finally:
                subscription.cancel()
                await hang_up_leftovers(ami, f"{channel}-")

    assert asyncio.run(main()) == heard
