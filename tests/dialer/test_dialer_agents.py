"""The agent soft-phone state machine."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.agents import (
    Agent,
    AgentAction,
    AgentState,
    TransferKind,
    TransferTarget,
    allowed_actions,
)
from dialer.exceptions import AgentError, IllegalTransition

A = AgentAction


def ready_agent(at: float = 0.0) -> Agent:
    agent = Agent("a1", ("sales",)).apply(A.SIGN_IN, at_s=at).agent
    return agent.apply(A.GO_READY, at_s=at).agent


def test_full_call_cycle_records_times_and_states():
    agent = ready_agent(10.0)
    on_call = agent.apply(A.CONNECT, at_s=20.0, call_id="c1", lead_id="L1")
    assert on_call.state is AgentState.ON_CALL
    assert on_call.previous_state is AgentState.READY
    assert on_call.agent.call_id == "c1"
    assert on_call.agent.since_s == 20.0
    held = on_call.agent.apply(A.HOLD, at_s=30.0).agent.apply(A.UNHOLD, at_s=35.0).agent
    wrap = held.apply(A.HANG_UP, at_s=90.0).agent
    assert wrap.state is AgentState.WRAP_UP
    assert wrap.call_id == "c1"  # kept for the disposition
    ready = wrap.apply(A.FINISH_WRAP, at_s=100.0).agent
    assert ready.state is AgentState.READY
    assert ready.call_id is None
    assert ready.lead_id is None


def test_not_ready_needs_a_reason_and_keeps_it():
    agent = ready_agent()
    with pytest.raises(AgentError, match="reason"):
        agent.apply(A.GO_NOT_READY, at_s=1.0)
    paused = agent.apply(A.GO_NOT_READY, at_s=1.0, reason="break").agent
    assert paused.state is AgentState.NOT_READY
    assert paused.reason == "break"
    assert paused.apply(A.GO_READY, at_s=2.0).agent.reason is None


def test_illegal_transition_lists_allowed_actions():
    agent = Agent("a7")
    with pytest.raises(IllegalTransition) as caught:
        agent.apply(A.CONNECT, at_s=0.0, call_id="c")
    error = caught.value
    assert error.allowed == ("sign_in",)
    assert "a7" in str(error)
    assert "allowed now: sign_in" in str(error)


def test_cannot_sign_out_mid_call():
    on_call = ready_agent().apply(A.CONNECT, at_s=1.0, call_id="c").agent
    with pytest.raises(IllegalTransition) as caught:
        on_call.apply(A.SIGN_OUT, at_s=2.0)
    assert "hang_up" in caught.value.allowed
    assert "sign_out" not in caught.value.allowed


def test_timestamps_must_not_go_backwards():
    agent = ready_agent(50.0)
    with pytest.raises(AgentError, match="earlier"):
        agent.apply(A.GO_NOT_READY, at_s=49.0, reason="lunch")


def test_consult_three_way_and_transfer():
    on_call = ready_agent().apply(A.CONNECT, at_s=1.0, call_id="c").agent
    consulting = on_call.apply(A.INTERNAL_CALL, at_s=2.0).agent
    assert consulting.state is AgentState.CONSULTING
    conference = consulting.apply(A.THREE_WAY, at_s=3.0).agent
    assert conference.state is AgentState.CONFERENCE
    with pytest.raises(AgentError, match="TransferTarget"):
        conference.apply(A.TRANSFER, at_s=4.0)
    target = TransferTarget(TransferKind.SKILL_GROUP, "retention")
    moved = conference.apply(A.TRANSFER, at_s=4.0, transfer=target)
    assert moved.state is AgentState.WRAP_UP
    assert moved.transfer == target


def test_preview_then_dial_then_failed_call():
    agent = ready_agent()
    previewing = agent.apply(A.OFFER_PREVIEW, at_s=1.0, lead_id="L9").agent
    assert previewing.lead_id == "L9"
    dialing = previewing.apply(A.DIAL, at_s=4.0, call_id="c9").agent
    assert dialing.state is AgentState.DIALING
    assert dialing.apply(A.CALL_FAILED, at_s=30.0).state is AgentState.WRAP_UP


def test_callback_scheduled_from_a_call():
    on_call = ready_agent().apply(A.CONNECT, at_s=5.0, call_id="c", lead_id="L3").agent
    with pytest.raises(AgentError, match="later"):
        on_call.apply(A.SCHEDULE_CALLBACK, at_s=6.0, callback_at_s=6.0)
    step = on_call.apply(A.SCHEDULE_CALLBACK, at_s=6.0, callback_at_s=3600.0, reason="evening")
    assert step.state is AgentState.ON_CALL
    assert step.agent.since_s == 5.0  # still the same call
    assert step.callback is not None
    assert (step.callback.lead_id, step.callback.callback_at_s) == ("L3", 3600.0)
    assert step.callback.agent_id == "a1"


def test_timed_wrap_up_expires_at_its_deadline():
    agent = Agent("a2", wrap_limit_s=15.0).apply(A.SIGN_IN, at_s=0.0).agent
    agent = agent.apply(A.GO_READY, at_s=0.0).agent
    agent = agent.apply(A.CONNECT, at_s=1.0, call_id="c").agent
    wrap = agent.apply(A.HANG_UP, at_s=60.0).agent
    assert wrap.wrap_deadline_s == 75.0
    assert wrap.expire_wrap(70.0) is None
    expired = wrap.expire_wrap(80.0)
    assert expired is not None
    assert expired.state is AgentState.READY
    assert expired.at_s == 75.0


def test_hand_to_ivr_ends_the_agents_part():
    on_call = ready_agent().apply(A.CONNECT, at_s=1.0, call_id="c").agent
    assert on_call.apply(A.HAND_TO_IVR, at_s=2.0).state is AgentState.WRAP_UP


@given(st.lists(st.sampled_from(list(AgentAction)), max_size=30))
def test_any_action_sequence_follows_the_table(actions):
    agent = Agent("p", lead_id=None)
    clock = 0.0
    for action in actions:
        clock += 1.0
        allowed = allowed_actions(agent.state)
        details = {
            "reason": "r",
            "call_id": "c",
            "lead_id": "L",
            "transfer": TransferTarget(TransferKind.AGENT, "a2"),
            "callback_at_s": clock + 100.0,
        }
        if action in allowed:
            step = agent.apply(action, at_s=clock, **details)
            assert step.previous_state is agent.state
            agent = step.agent
        else:
            with pytest.raises(IllegalTransition) as caught:
                agent.apply(action, at_s=clock, **details)
            assert set(caught.value.allowed) == {a.value for a in allowed}
