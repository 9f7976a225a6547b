"""Agents' phone feature codes over FastAGI: the code and the phone read from the call, the state change
made by the live ACD as `phone <endpoint>`, and the sound the phone hears (an error sound when refused)."""

from __future__ import annotations

import asyncio

import pytest

from routing.agent_features import (
    AgentFeatures,
    FeatureRefused,
    agent_feature_router,
    endpoint_of,
    feature_code,
)
from routing.agent_state import AgentState, Login, Logout
from routing.live_queues import AgentProfile, FakeAgentConnector, FakeRoutingEvents, LiveQueues
from voice.agi.fake_asterisk import FakeAsterisk, environment_lines, exchange
from voice.agi.protocol import AgiEnvironment, AgiReader
from voice.agi.server import Handler
from voice.agi.session import AgiTimeouts

FAST = AgiTimeouts(environment=0.5, command=0.3, media=0.3, application=0.3)
HOMES = {"PJSIP/1001": AgentProfile(1, "ana", {}), "PJSIP/1002": AgentProfile(2, "luis", {})}


class DeskPhones(AgentFeatures):
    """The features with the agents' usual phones from a table instead of the database."""

    def _home_agent(self, endpoint: str) -> AgentProfile:
        if endpoint not in HOMES:
            raise FeatureRefused(f"no agent has {endpoint} as their phone")
        return HOMES[endpoint]


def env(code: str, channel: str) -> list[bytes]:
    return environment_lines(f"agent-feature?code={code}", channel=channel)


def press(features: AgentFeatures, code: str, channel: str, sound: str) -> None:
    async def main() -> None:
        fake = FakeAsterisk(
            [
                exchange("ANSWER", "200 result=0"),
                exchange(f'STREAM FILE {sound} ""', "200 result=0 endpos=800"),
            ],
            environment=env(code, channel),
        )
        session = await fake.session(FAST)
        route = agent_feature_router(lambda _: None, features)
        handler: Handler | None = route(session.env)
        assert handler is not None
        await handler(session)
        fake.assert_finished()

    asyncio.run(main())


def test_the_endpoint_is_the_channel_without_its_sequence_number() -> None:
    assert endpoint_of("PJSIP/1001-0000001a") == "PJSIP/1001"
    assert endpoint_of("PJSIP/ana-desk-00000002") == "PJSIP/ana-desk"
    with pytest.raises(FeatureRefused):
        endpoint_of("nothing")


def test_the_code_comes_from_the_url_or_the_first_argument() -> None:
    def parsed(lines: list[bytes]) -> AgiEnvironment:
        (found,) = [e for e in AgiReader().feed(b"".join(lines)) if isinstance(e, AgiEnvironment)]
        return found

    assert feature_code(parsed(env("pause", "PJSIP/1001-1"))) == "pause"
    assert feature_code(parsed(environment_lines("agent-feature", arg_1="Ready"))) == "ready"
    with pytest.raises(FeatureRefused, match="unknown feature code 'reboot'"):
        feature_code(parsed(env("reboot", "PJSIP/1001-1")))


def test_an_agent_logs_in_pauses_becomes_ready_and_logs_out_from_the_phone() -> None:
    events = FakeRoutingEvents()
    live = LiveQueues(FakeAgentConnector(), events)
    features = DeskPhones(live, None)  # type: ignore[arg-type]

    press(features, "login", "PJSIP/1001-0000001a", "agent-loginok")
    assert live.status_of(1).state is AgentState.READY and live.status_of(1).endpoint == "PJSIP/1001"
    press(features, "pause", "PJSIP/1001-0000001b", "beep")
    assert live.status_of(1).state is AgentState.PAUSED
    press(features, "ready", "PJSIP/1001-0000001c", "beep")
    press(features, "logout", "PJSIP/1001-0000001d", "agent-loggedoff")
    assert live.status_of(1).state is AgentState.LOGGED_OUT
    assert events.states(1) == ["ready", "paused", "ready", "logged_out"]
    assert {change.actor for change in events.changes} == {"phone PJSIP/1001"}


def test_refused_codes_sound_the_error_and_change_nothing() -> None:
    events = FakeRoutingEvents()
    live = LiveQueues(FakeAgentConnector(), events)
    features = DeskPhones(live, None)  # type: ignore[arg-type]
    error = "an-error-has-occurred"

    press(features, "login", "PJSIP/9999-00000001", error)  # nobody sits at that phone
    press(features, "pause", "PJSIP/1001-00000002", error)  # nobody logged in on it
    press(features, "login", "PJSIP/1001-00000003", "agent-loginok")
    press(features, "login", "PJSIP/1001-00000004", error)  # already logged in
    assert events.states(1) == ["ready"]

    # Luis's phone is held by Ana (hot-desking): Luis cannot log in on his own phone until she leaves.
    async def ana_moves() -> None:
        await live.change(1, Logout(), actor="test")
        await live.change(1, Login("PJSIP/1002"), actor="test")

    asyncio.run(ana_moves())
    press(features, "login", "PJSIP/1002-00000005", error)
    assert live.status_of(2).state is AgentState.LOGGED_OUT


def test_other_scripts_go_to_the_ivr() -> None:
    features = DeskPhones(LiveQueues(FakeAgentConnector(), FakeRoutingEvents()), None)  # type: ignore[arg-type]
    seen: list[str] = []

    def ivr(environment: AgiEnvironment) -> Handler | None:
        seen.append(environment.flow)
        return None

    async def main() -> None:
        fake = FakeAsterisk([], environment=environment_lines("banco_es"))
        session = await fake.session(FAST)
        assert agent_feature_router(ivr, features)(session.env) is None

    asyncio.run(main())
    assert seen == ["banco_es"]
