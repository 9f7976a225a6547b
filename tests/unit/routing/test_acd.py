"""The routing decision: longest-idle matching agent, priority then wait, widening, preferred agents."""

from datetime import UTC, datetime, timedelta

import pytest

from routing.acd import (
    ANY_LEVEL,
    REQUIRED_ONLY,
    STRICT,
    Assignment,
    ReadyAgent,
    SkillNeed,
    WaitingCall,
    assign,
    merge_needs,
    next_widening,
    stage_of,
)

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def call(
    call_id: str,
    *needs: SkillNeed,
    priority: int = 0,
    entered: float = 0,
    widen: float | None = None,
    preferred: int | None = None,
) -> WaitingCall:
    return WaitingCall(call_id, "q", priority, at(entered), tuple(needs), widen, preferred)


def agent(agent_id: int, idle_since: float, **skills: int) -> ReadyAgent:
    return ReadyAgent(agent_id, skills, at(idle_since))


BILLING_5 = SkillNeed("billing", 5)
SPANISH = SkillNeed("spanish")
VIP_OPTIONAL = SkillNeed("vip", 3, optional=True)


@pytest.mark.parametrize(
    ("calls", "agents", "now", "expected"),
    [
        pytest.param(
            [call("a", BILLING_5)],
            [agent(1, 10, billing=5), agent(2, 5, billing=9), agent(3, 0, sales=9)],
            30,
            [("a", 2)],
            id="the longest-idle agent with the skill, not the longest-idle agent",
        ),
        pytest.param(
            [call("a", BILLING_5)],
            [agent(1, 0, billing=4)],
            30,
            [],
            id="a level below the minimum does not match before widening",
        ),
        pytest.param(
            [call("low", entered=0), call("high", priority=5, entered=20)],
            [agent(1, 0)],
            30,
            [("high", 1)],
            id="higher priority first, even if it came later",
        ),
        pytest.param(
            [call("later", entered=10), call("earlier", entered=5)],
            [agent(1, 0), agent(2, 3)],
            30,
            [("earlier", 1), ("later", 2)],
            id="same priority: longest waiting first, to the longest idle",
        ),
        pytest.param(
            [call("b"), call("a")],
            [agent(2, 0), agent(1, 0)],
            30,
            [("a", 1), ("b", 2)],
            id="ties on everything are broken by call id and agent id",
        ),
        pytest.param(
            [call("es", SPANISH, entered=0), call("any", entered=10)],
            [agent(1, 0)],
            30,
            [("any", 1)],
            id="a call nobody can take does not block the calls behind it",
        ),
        pytest.param(
            [call("a", SPANISH, widen=10)],
            [agent(1, 0, billing=10)],
            600,
            [],
            id="a required skill is never dropped, however long the wait",
        ),
        pytest.param(
            [call("a", preferred=2)],
            [agent(1, 0), agent(2, 20)],
            30,
            [("a", 2)],
            id="the preferred agent wins over the longest idle",
        ),
        pytest.param(
            [call("a", preferred=3)],
            [agent(1, 0), agent(2, 20)],
            30,
            [("a", 1)],
            id="a preferred agent who is not ready does not hold the call",
        ),
        pytest.param(
            [call("a", SPANISH, preferred=2)],
            [agent(1, 0, spanish=1), agent(2, 0, english=9)],
            30,
            [("a", 1)],
            id="a preferred agent without the required skill is passed over",
        ),
        pytest.param(
            [call("a", preferred=1), call("b", priority=1, preferred=1)],
            [agent(1, 0), agent(2, 5)],
            30,
            [("b", 1), ("a", 2)],
            id="two calls preferring one agent: the first served gets them",
        ),
    ],
)
def test_assignments(
    calls: list[WaitingCall], agents: list[ReadyAgent], now: float, expected: list[tuple[str, int]]
) -> None:
    assert [(a.call_id, a.agent_id) for a in assign(calls, agents, at(now))] == expected


@pytest.mark.parametrize(
    ("waited", "agents", "expected_agent", "stage"),
    [
        (59, [agent(1, 0, billing=2, vip=9), agent(2, 0, billing=7)], None, STRICT),
        (60, [agent(1, 0, billing=2, vip=9), agent(2, 1, billing=7)], 1, ANY_LEVEL),
        (60, [agent(2, 0, billing=7)], None, ANY_LEVEL),  # still needs the optional skill
        (120, [agent(2, 0, billing=7)], 2, REQUIRED_ONLY),
        (120, [agent(3, 0, vip=9)], None, REQUIRED_ONLY),  # billing is required
    ],
)
def test_the_match_widens_first_levels_then_optional_skills(
    waited: float, agents: list[ReadyAgent], expected_agent: int | None, stage: int
) -> None:
    waiting = call("a", BILLING_5, VIP_OPTIONAL, widen=60)
    assert stage_of(waiting, at(waited)) == stage
    decided = assign([waiting], agents, at(waited))
    assert [d.agent_id for d in decided] == ([expected_agent] if expected_agent else [])
    if decided:
        assert decided[0] == Assignment("a", expected_agent, stage, False)  # type: ignore[arg-type]


def test_strict_match_with_every_skill_at_its_level() -> None:
    waiting = call("a", BILLING_5, VIP_OPTIONAL, widen=60)
    assert assign([waiting], [agent(4, 0, billing=5, vip=3)], at(0)) == [Assignment("a", 4, STRICT, False)]


def test_fairness_the_busiest_agent_waits_their_turn() -> None:
    """Ten calls over three equally skilled agents: each becomes ready again at the back of the line."""
    idle = {1: 0.0, 2: 1.0, 3: 2.0}
    served: list[int] = []
    for n in range(9):
        now = 10.0 + n
        agents = [agent(agent_id, since) for agent_id, since in idle.items()]
        (decision,) = assign([call(f"c{n}", entered=now)], agents, at(now))
        served.append(decision.agent_id)
        idle[decision.agent_id] = now  # the call ended at once: idle from now
    assert served == [1, 2, 3] * 3


def test_no_agents_or_no_calls_decide_nothing() -> None:
    assert assign([], [agent(1, 0)], at(0)) == []
    assert assign([call("a")], [], at(0)) == []


def test_merge_needs_adds_the_ivr_skills_and_makes_them_required() -> None:
    merged = merge_needs([BILLING_5, VIP_OPTIONAL], ["vip", "spanish", "billing"])
    assert merged == (BILLING_5, SkillNeed("vip", 3), SkillNeed("spanish"))


def test_next_widening_is_the_earliest_step_still_to_come() -> None:
    calls = [call("a", widen=60, entered=0), call("b", widen=30, entered=50), call("c")]
    assert next_widening(calls, at(70)) == at(80)  # b's first step; a's next is at 120
    assert next_widening(calls, at(200)) is None  # both fully widened; c never widens
