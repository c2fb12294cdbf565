"""The simulated telephony gateway and its events."""

from __future__ import annotations

from collections import Counter

import pytest

from dialer.distributions import Fixed
from dialer.exceptions import GatewayError, UnknownCall
from dialer.gateway import (
    Answered,
    AnswerKind,
    Busy,
    CallParameters,
    ConnectedToAgent,
    DtmfReceived,
    Failed,
    HangupParty,
    HungUp,
    MessageFinished,
    NoAnswer,
    OriginateRequest,
    Ringing,
    TelephonyGateway,
)
from dialer.simgateway import (
    GatewayProfile,
    ProbabilitySchedule,
    RespondentPrompt,
    RespondentReply,
    SimulatedGateway,
)

PARAMS = CallParameters("+861080000000", "+8613800000001", None, "sales")


def request(n: int = 1, timeout: float = 25.0) -> OriginateRequest:
    return OriginateRequest("camp-1", f"lead-{n}", f"att-{n}", PARAMS, timeout)


def always(kind: str, **extra: object) -> GatewayProfile:
    probabilities = {"human": (1.0, 0.0, 0.0, 0.0), "machine": (0.0, 1.0, 0.0, 0.0),
                     "busy": (0.0, 0.0, 1.0, 0.0), "failed": (0.0, 0.0, 0.0, 1.0),
                     "no_answer": (0.0, 0.0, 0.0, 0.0)}[kind]  # fmt: skip
    human, machine, busy, failed = probabilities
    return GatewayProfile(
        answer_probability=ProbabilitySchedule.constant(human),
        machine_probability=machine,
        busy_probability=busy,
        failure_probability=failed,
        ring_time=Fixed(8.0),
        talk_time=Fixed(60.0),
        message_time=Fixed(5.0),
        **extra,  # type: ignore[arg-type]
    )


def test_simulated_gateway_satisfies_the_protocol():
    assert isinstance(SimulatedGateway(), TelephonyGateway)


def test_answer_connect_and_callee_hangup_carry_call_parameters():
    gateway = SimulatedGateway(always("human"), seed=3)
    call = gateway.originate(request(), now=100.0)
    events = gateway.poll(200.0)
    assert [type(e) for e in events] == [Ringing, Answered]
    answered = events[1]
    assert isinstance(answered, Answered)
    assert answered.kind is AnswerKind.HUMAN
    assert answered.at_s == 108.0
    assert (answered.caller_number, answered.callee_number) == (
        "+861080000000",
        "+8613800000001",
    )
    assert (answered.campaign_id, answered.lead_id, answered.attempt_id) == (
        "camp-1",
        "lead-1",
        "att-1",
    )
    gateway.connect_to_agent(call, agent_id="agent-7", skill_group="sales", now=110.0)
    events = gateway.poll(1000.0)
    assert [type(e) for e in events] == [ConnectedToAgent, HungUp]
    hung = events[1]
    assert isinstance(hung, HungUp)
    assert hung.by is HangupParty.CALLEE
    assert hung.agent_id == "agent-7"
    assert hung.skill_group == "sales"
    assert hung.at_s == 170.0
    assert gateway.calls_in_progress == 0


@pytest.mark.parametrize(
    ("kind", "event_type", "at"),
    [("busy", Busy, 3.0), ("failed", Failed, 1.0), ("no_answer", NoAnswer, 25.0)],
)
def test_unanswered_outcomes(kind, event_type, at):
    gateway = SimulatedGateway(always(kind), seed=1)
    gateway.originate(request(), now=0.0)
    events = [e for e in gateway.poll(100.0) if not isinstance(e, Ringing)]
    assert [type(e) for e in events] == [event_type]
    assert events[0].at_s == at
    assert events[0].callee_number == PARAMS.callee_number
    if isinstance(events[0], Failed):
        assert events[0].cause


def test_ring_longer_than_timeout_is_no_answer():
    gateway = SimulatedGateway(always("human"), seed=1)
    gateway.originate(request(timeout=5.0), now=0.0)
    events = [e for e in gateway.poll(100.0) if not isinstance(e, Ringing)]
    assert [type(e) for e in events] == [NoAnswer]


def test_hanging_up_a_ringing_call_cancels_its_outcome():
    gateway = SimulatedGateway(always("human"), seed=1)
    call = gateway.originate(request(), now=0.0)
    gateway.hang_up(call, now=2.0)
    assert [e for e in gateway.poll(100.0) if not isinstance(e, Ringing)] == []
    with pytest.raises(UnknownCall):
        gateway.hang_up(call, now=3.0)


def test_system_hangup_of_answered_call_reports_who():
    gateway = SimulatedGateway(always("machine"), seed=1)
    call = gateway.originate(request(), now=0.0)
    answered = [e for e in gateway.poll(10.0) if isinstance(e, Answered)]
    assert answered[0].kind is AnswerKind.MACHINE
    gateway.hang_up(call, now=10.0)
    (hung,) = gateway.poll(10.0)
    assert isinstance(hung, HungUp)
    assert hung.by is HangupParty.SYSTEM


def test_connect_requires_an_answered_call():
    gateway = SimulatedGateway(always("human"), seed=1)
    call = gateway.originate(request(), now=0.0)
    with pytest.raises(GatewayError, match="not answered"):
        gateway.connect_to_agent(call, agent_id="a", skill_group=None, now=1.0)
    with pytest.raises(GatewayError, match="ringing"):
        gateway.send_dtmf(call, "1", now=1.0)


def test_respondent_callback_answers_ivr_prompts():
    seen: list[RespondentPrompt] = []

    def respondent(prompt: RespondentPrompt) -> RespondentReply:
        seen.append(prompt)
        return RespondentReply("4" if prompt.prompt_index == 1 else None, delay_s=2.0)

    gateway = SimulatedGateway(always("human", respondent=respondent), seed=1)
    call = gateway.originate(request(), now=0.0)
    gateway.poll(8.0)
    gateway.play_message(call, "q1", now=8.0, expect_dtmf=True)
    events = gateway.poll(100.0)
    assert [type(e) for e in events] == [MessageFinished, DtmfReceived]
    assert isinstance(events[1], DtmfReceived)
    assert (events[1].digits, events[1].at_s) == ("4", 15.0)
    gateway.play_message(call, "q2", now=15.0, expect_dtmf=True)
    events = gateway.poll(100.0)
    assert [type(e) for e in events] == [MessageFinished, HungUp]
    assert events[1].by is HangupParty.CALLEE  # type: ignore[attr-defined]
    assert [p.message_id for p in seen] == ["q1", "q2"]
    assert seen[0].lead_id == "lead-1"


def test_same_seed_same_events_and_probabilities_hold():
    def outcomes(seed: int) -> list[tuple[str, float]]:
        gateway = SimulatedGateway(GatewayProfile(), seed=seed)
        for n in range(4000):
            gateway.originate(request(n), now=n * 0.5)
        return [(type(e).__name__, e.at_s) for e in gateway.poll(1e9) if not isinstance(e, Ringing)]

    first = outcomes(5)
    assert first == outcomes(5)
    assert first != outcomes(6)
    counts = Counter(name for name, _ in first)
    # Defaults: 25 % would answer (a few ring past 25 s), 10 % machine, 5 % busy, 1 % failed.
    assert 0.21 < counts["Answered"] / 4000 * (0.25 / 0.35) < 0.27
    assert 0.035 < counts["Busy"] / 4000 < 0.065
    assert counts["Failed"] / 4000 < 0.02


def test_answer_probability_schedule_steps():
    schedule = ProbabilitySchedule(((0.0, 0.35), (14400.0, 0.15)))
    assert schedule.at(0.0) == 0.35
    assert schedule.at(14399.0) == 0.35
    assert schedule.at(14400.0) == 0.15
    with pytest.raises(ValueError, match="sum to at most 1"):
        GatewayProfile(answer_probability=ProbabilitySchedule.constant(0.9))


def test_hold_transfer_and_three_way_on_the_simulated_gateway():
    gateway = SimulatedGateway(always("human"), seed=1)
    for agent in ("a1", "a2", "a3"):
        gateway.connect_agent_phone(agent, f"sim:{agent}", now=0.0)
    first = gateway.originate(request(1), now=0.0)
    other = gateway.originate(request(2), now=0.0)
    gateway.poll(10.0)
    with pytest.raises(GatewayError, match="not connected to an agent"):
        gateway.hold(first, now=10.0)  # answered but with nobody yet
    gateway.connect_to_agent(first, agent_id="a1", skill_group="sales", now=10.0)
    gateway.connect_to_agent(other, agent_id="a3", skill_group="sales", now=10.0)
    gateway.poll(10.0)
    gateway.hold(first, now=11.0)
    gateway.unhold(first, now=12.0)
    with pytest.raises(GatewayError, match="already on call"):
        gateway.conference(first, agent_id="a3", now=12.0)  # a3 has the other call
    gateway.conference(first, agent_id="a2", now=13.0)
    with pytest.raises(GatewayError, match="already on call"):
        gateway.conference(first, agent_id="a2", now=13.0)
    gateway.transfer_to_agent(first, agent_id="a2", skill_group="support", now=14.0)
    [moved] = gateway.poll(14.0)
    assert isinstance(moved, ConnectedToAgent)
    assert (moved.agent_id, moved.skill_group) == ("a2", "support")
    assert moved.callee_number == PARAMS.callee_number  # the call's 被叫 follows it
    with pytest.raises(GatewayError, match="already with agent"):
        gateway.transfer_to_agent(first, agent_id="a2", skill_group="support", now=15.0)
    # the callee's hang-up names the agent who has the call now
    hung = [e for e in gateway.poll(1000.0) if isinstance(e, HungUp) and e.call_id == first]
    assert hung[0].agent_id == "a2"


@pytest.mark.parametrize("answers", [True, False], ids=["answered", "busy"])
def test_a_transfer_out_frees_the_agent_and_reports_the_outside_answer(answers: bool) -> None:
    from dialer.gateway import TransferOutFailed, TransferredOut

    profile = always("human", transfer_ring_s=5.0, transfer_answer_probability=float(answers))
    gateway = SimulatedGateway(profile, seed=3)
    gateway.connect_agent_phone("a1", "sim:a1", now=0.0)
    call = gateway.originate(request(1), now=0.0)
    other = gateway.originate(request(2), now=0.0)
    gateway.poll(10.0)
    with pytest.raises(GatewayError, match="not connected to an agent"):
        gateway.transfer_out(call, "+8610955880000", now=10.0)  # nobody has it yet
    gateway.connect_to_agent(call, agent_id="a1", skill_group="sales", now=10.0)
    gateway.poll(10.0)
    with pytest.raises(GatewayError, match="not a number"):
        gateway.transfer_out(call, "sip:x@y", now=11.0)
    gateway.transfer_out(call, "+8610955880000", now=11.0)
    # the agent is free at once: the other call is theirs while the number rings
    gateway.connect_to_agent(other, agent_id="a1", skill_group="sales", now=11.0)
    assert [type(e) for e in gateway.poll(15.9)] == [ConnectedToAgent]
    [outcome] = [e for e in gateway.poll(16.0) if e.call_id == call]
    assert outcome.at_s == 16.0
    assert outcome.agent_id is None
    assert outcome.callee_number == PARAMS.callee_number  # 被叫 and 主叫 follow the call
    if answers:
        assert isinstance(outcome, TransferredOut)
        assert outcome.number == "+8610955880000"
        # the callee talks with the outside party until one of them hangs up
        [hung] = [e for e in gateway.poll(1000.0) if isinstance(e, HungUp) and e.call_id == call]
        assert hung.by is HangupParty.CALLEE
        assert hung.at_s == 16.0 + 60.0
    else:
        assert isinstance(outcome, TransferOutFailed)
        assert outcome.reason == "busy"
        assert gateway.calls_in_progress == 2  # the callee is still up, on hold
        gateway.hang_up(call, now=17.0, by=HangupParty.SYSTEM)
        [hung] = [e for e in gateway.poll(17.0) if isinstance(e, HungUp)]
        assert hung.call_id == call
