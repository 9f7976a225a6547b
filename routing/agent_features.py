"""Agents' phone feature codes: log in, log out, pause and ready from the desk phone.

The dialplan's agents' context sends the code over FastAGI (asterisk/templates/extensions.conf):

    exten => *20,1,AGI(agi://127.0.0.1:4573/agent-feature?code=login)     ; *21 logout, *22 pause, *23 ready

`agent_feature_router` wraps the IVR's router and serves `agent-feature` itself. The phone is the calling
channel's endpoint (`PJSIP/1001-0000001a` -> `PJSIP/1001`). Logging in picks the agent whose usual phone
it is (`home_endpoint`); the other codes act on the agent logged in on that phone. The change goes
through the live ACD like the API's, with the actor `phone PJSIP/1001`, so it is recorded, audited and
published the same way.

The phone answers with one of Asterisk's core sounds: `agent-loginok` (logged in), `agent-loggedoff`
(logged out), `beep` (paused, ready), `an-error-has-occurred` for anything refused (no agent sits at that
phone, the phone is held by another agent, a change the agent's state does not allow), which is logged
with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qs

from sqlalchemy.orm import Session, sessionmaker

from core.errors import DomainError
from routing import service
from routing.agent_state import AgentEvent, Login, Logout, Pause, Ready
from routing.live_queues import AgentProfile, LiveQueues
from voice.agi.errors import AgiError
from voice.agi.protocol import AgiEnvironment
from voice.agi.server import Handler, Router
from voice.agi.session import AgiSession

log = logging.getLogger(__name__)

FEATURE_SCRIPT = "agent-feature"
PHONE_PAUSE_REASON = "paused from the phone"
ERROR_SOUND = "an-error-has-occurred"
SOUNDS = {"login": "agent-loginok", "logout": "agent-loggedoff", "pause": "beep", "ready": "beep"}


class FeatureRefused(DomainError):
    """The code cannot be carried out from this phone; the message says why."""


def endpoint_of(channel: str) -> str:
    """The phone a channel belongs to: `PJSIP/1001-0000001a` -> `PJSIP/1001`."""
    technology, _, rest = channel.partition("/")
    if not rest:
        raise FeatureRefused(f"channel {channel!r} names no endpoint")
    name = rest.rsplit("-", 1)[0] if "-" in rest else rest
    return f"{technology}/{name}"


def feature_code(env: AgiEnvironment) -> str:
    """The code asked for: `?code=` in the AGI URL, else the first AGI argument."""
    _, _, query = env.network_script.partition("?")
    codes = parse_qs(query).get("code") or list(env.arguments[:1])
    code = codes[0].strip().lower() if codes else ""
    if code not in SOUNDS:
        raise FeatureRefused(f"unknown feature code {code!r} (login, logout, pause, ready)")
    return code


class AgentFeatures:
    """Carries out one code for one phone."""

    def __init__(self, live: LiveQueues, read_sessions: sessionmaker[Session]) -> None:
        self.live = live
        self._reads = read_sessions

    async def apply(self, code: str, endpoint: str) -> str:
        """Changes the state of the agent at `endpoint`; returns the agent's name. Raises FeatureRefused,
        or the ACD's IllegalTransition / EndpointHeld."""
        actor = f"phone {endpoint}"
        event: AgentEvent
        if code == "login":
            profile = await asyncio.to_thread(self._home_agent, endpoint)
            self.live.set_agent(profile)  # in case its creation event has not arrived yet
            agent_id, event = profile.agent_id, Login(endpoint)
            name = profile.name
        else:
            held_by = self.live.agent_for_endpoint(endpoint)
            if held_by is None:
                raise FeatureRefused(f"no agent is logged in on {endpoint}")
            agent_id, name = held_by, f"agent {held_by}"
            if code == "logout":
                event = Logout()
            elif code == "pause":
                event = Pause(PHONE_PAUSE_REASON)
            else:
                event = Ready()
        await self.live.change(agent_id, event, actor=actor)
        return name

    def _home_agent(self, endpoint: str) -> AgentProfile:
        with self._reads() as db:
            agent = service.agent_at_home(db=db, endpoint=endpoint)
            if agent is None:
                raise FeatureRefused(
                    f"no agent has {endpoint} as their phone (set the agent's home_endpoint)"
                )
            return service.profile_of(agent)


def agent_feature_router(inner: Router, features: AgentFeatures) -> Router:
    """`agent-feature` served here; every other script by `inner` (the IVR's router)."""

    def route(env: AgiEnvironment) -> Handler | None:
        if env.flow != FEATURE_SCRIPT:
            return inner(env)

        async def handle(session: AgiSession) -> None:
            sound = ERROR_SOUND
            try:
                code = feature_code(session.env)
                endpoint = endpoint_of(session.env.channel)
                name = await features.apply(code, endpoint)
            except DomainError as exc:
                log.warning("feature code from %s refused: %s", session.env.channel, exc)
            else:
                log.info("%s: %s from %s", name, code, endpoint)
                sound = SOUNDS[code]
            try:
                await session.answer()
                await session.stream_file(sound, "")
            except AgiError as exc:  # the agent hung up before hearing it: the change stands
                log.info("feature code sound not played to %s: %s", session.env.channel, exc)

        return handle

    return route
