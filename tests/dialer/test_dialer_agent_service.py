"""Agents persisted: actions through the pure machine, pops, wrap-up expiry, locking, scoping."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.admin import create_client
from core.db import get_engine, system_session, tenant_session
from dialer import agent_service as svc
from dialer.agents import Agent, AgentAction, AgentState, TransferKind, TransferTarget
from dialer.exceptions import AgentError, IllegalTransition
from dialer.gateway import CallParameters
from dialer.models import AgentCreate, AgentEvent, AgentEventKind, AgentSeat, AgentStateLog

A = AgentAction
# Agents are created "now"; scripted actions happen after that.
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
LEAD = {"id": "lead-1", "name": "王小明", "phone": "+8613812345678", "product": "智慧電表"}
SCRIPT = {"questionnaire_id": "q-1", "greeting": "您好，這裡是..."}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def params(skill_group: str | None = "sales") -> CallParameters:
    return CallParameters("+862155550000", "+8613812345678", skill_group=skill_group)


def make_clients(engine: Engine, *names: str) -> list[uuid.UUID]:
    with system_session(engine) as session:
        return [
            create_client(session=session, name=n, slug=f"{n}-{uuid.uuid4().hex[:6]}").id
            for n in names
        ]


def make_agent(
    engine: Engine,
    clients: list[uuid.UUID],
    *,
    code: str | None = None,
    groups: tuple[str, ...] = ("sales",),
    wrap_limit_s: float | None = None,
    ready_at: float | None = 0.0,
) -> uuid.UUID:
    with system_session(engine) as session:
        seat = svc.create_agent(
            session=session,
            agent_in=AgentCreate(
                agent_code=code or f"A{uuid.uuid4().hex[:6]}",
                name="Agent",
                skill_groups=list(groups),
                client_ids=clients,
                wrap_limit_s=wrap_limit_s,
            ),
        )
        if ready_at is not None:
            for command in (svc.SignIn(), svc.GoReady()):
                svc.apply_agent_action(
                    session=session, agent_id=seat.id, command=command, at=at(ready_at)
                )
        return seat.id


def act(engine: Engine, agent_id: uuid.UUID, command: svc.AgentCommand, t: float) -> Any:
    with system_session(engine) as session:
        return svc.apply_agent_action(session=session, agent_id=agent_id, command=command, at=at(t))


def pop(engine: Engine, agent_id: uuid.UUID, client_id: uuid.UUID, t: float, **kw: Any) -> str:
    with system_session(engine) as session:
        event = svc.pop_call(
            session=session,
            agent_id=agent_id,
            client_id=client_id,
            attempt_id=kw.pop("attempt_id", uuid.uuid4()),
            lead=kw.pop("lead", LEAD),
            params=kw.pop("params", params()),
            script=kw.pop("script", SCRIPT),
            at=at(t),
            **kw,
        )
        return event.payload["call_id"]


def logs(engine: Engine, agent_id: uuid.UUID) -> list[AgentStateLog]:
    with system_session(engine) as session:
        return svc.state_log(session=session, agent_id=agent_id)


@pytest.fixture
def engine(database_url: str) -> Engine:
    return get_engine(database_url)


def test_call_cycle_is_persisted_with_log_events_and_contiguous_sequence(engine: Engine) -> None:
    (client,) = make_clients(engine, "alpha")
    agent_id = make_agent(engine, [client])
    call_id = pop(engine, agent_id, client, 10)
    act(engine, agent_id, svc.Hold(), 20)
    act(engine, agent_id, svc.Unhold(), 25)
    act(engine, agent_id, svc.HangUp(), 40)
    act(engine, agent_id, svc.FinishWrap(), 55)

    with system_session(engine) as session:
        seat = svc.get_agent(session=session, agent_id=agent_id)
        assert seat.state is AgentState.READY
        assert seat.state_since == at(55)
        assert seat.current_client_id is None
        assert svc.agent_from_seat(seat).call_id is None
        entries = svc.events_after(session=session, agent_id=agent_id, after_seq=0)
    transitions = [(e.from_state, e.to_state, e.action) for e in logs(engine, agent_id)]
    assert transitions == [
        (AgentState.SIGNED_OUT, AgentState.SIGNED_IN, A.SIGN_IN),
        (AgentState.SIGNED_IN, AgentState.READY, A.GO_READY),
        (AgentState.READY, AgentState.ON_CALL, A.CONNECT),
        (AgentState.ON_CALL, AgentState.ON_HOLD, A.HOLD),
        (AgentState.ON_HOLD, AgentState.ON_CALL, A.UNHOLD),
        (AgentState.ON_CALL, AgentState.WRAP_UP, A.HANG_UP),
        (AgentState.WRAP_UP, AgentState.READY, A.FINISH_WRAP),
    ]
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    kinds = [e.kind for e in entries]
    assert kinds.count(AgentEventKind.CALL_CONNECTED) == 1
    assert kinds.count(AgentEventKind.CALL_ENDED) == 1
    connected = next(e for e in entries if e.kind is AgentEventKind.CALL_CONNECTED)
    assert connected.payload["lead"] == LEAD
    assert connected.payload["script"] == SCRIPT
    assert connected.payload["params"] == {
        "agent_id": seat.agent_code,  # the pop names the agent (工號) it went to
        "skill_group": "sales",
        "caller_number": "+862155550000",
        "callee_number": "+8613812345678",
    }
    ended = next(e for e in entries if e.kind is AgentEventKind.CALL_ENDED)
    assert ended.payload["call_id"] == call_id
    assert ended.payload["action"] == "hang_up"
    assert ended.client_id == client


def test_illegal_action_lists_allowed_and_writes_nothing(engine: Engine) -> None:
    (client,) = make_clients(engine, "alpha")
    agent_id = make_agent(engine, [client])
    with pytest.raises(IllegalTransition) as info:
        act(engine, agent_id, svc.Hold(), 5)
    assert info.value.state == "ready"
    assert set(info.value.allowed) == {
        "go_not_ready",
        "connect",
        "offer_preview",
        "dial",
        "internal_call",
        "sign_out",
        "phone_lost",
    }
    with system_session(engine) as session:
        assert svc.get_agent(session=session, agent_id=agent_id).last_seq == 2
    assert len(logs(engine, agent_id)) == 2


def test_not_ready_needs_reason_and_records_it(engine: Engine) -> None:
    (client,) = make_clients(engine, "alpha")
    agent_id = make_agent(engine, [client])
    with pytest.raises(AgentError, match="reason"):
        act(engine, agent_id, svc.GoNotReady(), 5)
    act(engine, agent_id, svc.GoNotReady(reason="lunch"), 6)
    with system_session(engine) as session:
        seat = svc.get_agent(session=session, agent_id=agent_id)
    assert (seat.state, seat.state_reason, seat.state_since) == (
        AgentState.NOT_READY,
        "lunch",
        at(6),
    )
    assert logs(engine, agent_id)[-1].reason == "lunch"


def test_timed_wrap_up_expires_at_its_deadline_and_agent_becomes_ready(engine: Engine) -> None:
    (client,) = make_clients(engine, "alpha")
    agent_id = make_agent(engine, [client], wrap_limit_s=30)
    pop(engine, agent_id, client, 10)
    act(engine, agent_id, svc.HangUp(), 40)
    with system_session(engine) as session:
        assert svc.ready_agents(session=session, skill_group="sales", now=at(69)) == []
    with system_session(engine) as session:
        ready = svc.ready_agents(session=session, skill_group="sales", now=at(75))
        assert [s.id for s in ready] == [agent_id]
    last = logs(engine, agent_id)[-1]
    assert (last.action, last.reason, last.at) == (A.FINISH_WRAP, "wrap_timeout", at(70))


def test_ready_agents_filters_group_and_client_longest_waiting_first(engine: Engine) -> None:
    alpha, bravo = make_clients(engine, "alpha", "bravo")
    late = make_agent(engine, [alpha], ready_at=30)
    early = make_agent(engine, [alpha, bravo], ready_at=10)
    make_agent(engine, [alpha], groups=("support",), ready_at=0)
    make_agent(engine, [alpha], ready_at=None)  # signed out
    with system_session(engine) as session:
        assert [s.id for s in svc.ready_agents(session=session, skill_group="sales")] == [
            early,
            late,
        ]
        assert [
            s.id for s in svc.ready_agents(session=session, skill_group="sales", client_id=bravo)
        ] == [early]


def test_pop_refuses_wrong_client_group_or_busy_agent_and_writes_nothing(engine: Engine) -> None:
    alpha, bravo = make_clients(engine, "alpha", "bravo")
    agent_id = make_agent(engine, [alpha])
    with pytest.raises(AgentError, match="does not take calls for client"):
        pop(engine, agent_id, bravo, 5)
    with pytest.raises(AgentError, match="skill group"):
        pop(engine, agent_id, alpha, 5, params=params("support"))
    pop(engine, agent_id, alpha, 6)
    with pytest.raises(IllegalTransition):
        pop(engine, agent_id, alpha, 7)
    with system_session(engine) as session:
        pops = session.exec(select(AgentEvent).where(AgentEvent.agent_seat_id == agent_id)).all()
    assert len(pops) == 1


def test_manual_dial_gets_the_checks_every_dial_gets(engine: Engine) -> None:
    """Regression (issue 18 item 7): a number on the do-not-call list was dialed by hand, and
    numbers in the forms the cleaner accepts were refused."""
    from campaigns.compliance import ManualDialRefused, suppress_number
    from core.errors import InvalidInput

    (alpha,) = make_clients(engine, "alpha")
    agent_id = make_agent(engine, [alpha])
    with system_session(engine) as session:
        suppress_number(session=session, client_id=alpha, e164="+8613912345678", source="manual")
    for written in ("+86 139 1234 5678", "139-1234-5678", "(0086) 13912345678"):
        with pytest.raises(ManualDialRefused, match="do-not-call"):
            act(engine, agent_id, svc.Dial(number=written), 5)
    with pytest.raises(InvalidInput, match="not a phone number"):
        act(engine, agent_id, svc.Dial(number="12"), 5)
    with system_session(engine) as session:
        assert svc.get_agent(session=session, agent_id=agent_id).state is AgentState.READY
    outcome = act(engine, agent_id, svc.Dial(number="+86 138 1234 5678"), 6)
    assert outcome.seat.state is AgentState.DIALING
    assert outcome.log.details["number"] == "+8613812345678"


def test_manual_call_needs_a_number_and_a_served_client(engine: Engine) -> None:
    alpha, bravo = make_clients(engine, "alpha", "bravo")
    agent_id = make_agent(engine, [alpha, bravo])
    with pytest.raises(AgentError, match="say which client"):
        act(engine, agent_id, svc.Dial(number="13812345678"), 5)
    with pytest.raises(AgentError, match="number"):
        act(engine, agent_id, svc.Dial(client_id=alpha), 5)
    outcome = act(engine, agent_id, svc.Dial(client_id=alpha, number="13812345678"), 5)
    assert outcome.seat.state is AgentState.DIALING
    assert outcome.client_id == alpha
    assert outcome.log.details["number"] == "+8613812345678"  # stored as the cleaner reads it
    # the dialled call connects with its pop
    pop(engine, agent_id, alpha, 9, lead={"id": "manual-1"})
    with system_session(engine) as session:
        seat = svc.get_agent(session=session, agent_id=agent_id)
        assert seat.state is AgentState.ON_CALL
        assert svc.agent_from_seat(seat).call_id == outcome.log.call_id


def test_preview_then_dial_then_connect(engine: Engine) -> None:
    (client,) = make_clients(engine, "alpha")
    agent_id = make_agent(engine, [client])
    with system_session(engine) as session:
        event = svc.offer_preview(
            session=session,
            agent_id=agent_id,
            client_id=client,
            lead=LEAD,
            params=params(),
            script=SCRIPT,
            at=at(3),
        )
        assert event.kind is AgentEventKind.PREVIEW_OFFERED
    act(engine, agent_id, svc.Dial(), 10)
    pop(engine, agent_id, client, 15)
    with system_session(engine) as session:
        seat = svc.get_agent(session=session, agent_id=agent_id)
        assert seat.state is AgentState.ON_CALL
        assert svc.agent_from_seat(seat).lead_id == "lead-1"


def test_transfer_targets_are_checked_and_callbacks_returned(engine: Engine) -> None:
    (client,) = make_clients(engine, "alpha")
    make_agent(engine, [client], code="B002")
    agent_id = make_agent(engine, [client], code="B001")
    pop(engine, agent_id, client, 10)
    outcome = act(
        engine,
        agent_id,
        svc.ScheduleCallback(callback_at=at(3600), reason="call after lunch"),
        20,
    )
    assert outcome.callback.lead_id == "lead-1"
    assert outcome.callback_public().callback_at == at(3600)
    assert outcome.callback_public().client_id == client
    with pytest.raises(AgentError, match="no agent has"):
        act(engine, agent_id, svc.Transfer(target=TransferTarget(TransferKind.AGENT, "X9")), 30)
    with pytest.raises(AgentError, match="not a phone number"):
        act(
            engine,
            agent_id,
            svc.Transfer(target=TransferTarget(TransferKind.EXTERNAL, "hello")),
            30,
        )
    done = act(
        engine, agent_id, svc.Transfer(target=TransferTarget(TransferKind.AGENT, "B002")), 30
    )
    assert done.seat.state is AgentState.WRAP_UP
    assert done.log.details["target"] == {"kind": "agent", "target": "B002"}
    assert done.events[0].kind is AgentEventKind.CALL_ENDED


def test_events_after_hides_other_clients_pops_and_call_ids(engine: Engine) -> None:
    alpha, bravo = make_clients(engine, "alpha", "bravo")
    agent_id = make_agent(engine, [alpha, bravo])
    pop(engine, agent_id, alpha, 10, lead={"id": "alpha-lead"})
    act(engine, agent_id, svc.HangUp(), 20)
    act(engine, agent_id, svc.FinishWrap(), 21)
    bravo_call = pop(engine, agent_id, bravo, 30, lead={"id": "bravo-lead", "secret": "B"})

    with tenant_session([alpha], engine) as session:
        seen = svc.events_after(
            session=session, agent_id=agent_id, after_seq=0, client_scope=[alpha]
        )
    text = repr([e.payload for e in seen])
    for secret in ("bravo-lead", bravo_call, str(bravo)):
        assert secret not in text
    assert any(e.payload.get("lead", {}).get("id") == "alpha-lead" for e in seen)
    # the state change into bravo's call is still visible, without its call id
    last = seen[-1]
    assert last.kind is AgentEventKind.STATE_CHANGED
    assert last.payload["to"] == "on_call"
    assert last.payload["call_id"] is None

    with tenant_session([alpha, bravo], engine) as session:
        both = svc.events_after(session=session, agent_id=agent_id, after_seq=0)
    assert len(both) == len(seen) + 1
    assert [e.seq for e in both] == sorted(e.seq for e in both)


def test_agent_visibility_follows_the_clients_it_serves(engine: Engine) -> None:
    alpha, bravo = make_clients(engine, "alpha", "bravo")
    agent_id = make_agent(engine, [bravo], ready_at=None)
    with system_session(engine) as session:
        with pytest.raises(svc.AgentNotFound):
            svc.get_agent(session=session, agent_id=agent_id, client_scope=[alpha])
        assert svc.list_agents(session=session, client_scope=[alpha]) == []
        assert svc.get_agent(session=session, agent_id=agent_id, client_scope=[bravo])
        seat = session.get(AgentSeat, agent_id)
        assert seat is not None
        with pytest.raises(svc.DuplicateAgent):
            svc.create_agent(
                session=session,
                agent_in=AgentCreate(agent_code=seat.agent_code, name="again"),
            )


def test_concurrent_actions_serialise_on_postgres(pg_engine: Engine) -> None:
    """Many processes acting on one agent at once: every action applied exactly once, in
    order, with gap-free sequence numbers (no lost update, no duplicate seq)."""
    (client,) = make_clients(pg_engine, "alpha")
    agent_id = make_agent(pg_engine, [client])
    act(pg_engine, agent_id, svc.GoNotReady(reason="start"), 1)
    threads_n, per_thread = 6, 8
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                with system_session(pg_engine) as session:
                    svc.apply_agent_action(
                        session=session,
                        agent_id=agent_id,
                        command=svc.GoNotReady(reason=f"t{n}-{i}"),
                    )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    entries = logs(pg_engine, agent_id)
    assert [e.seq for e in entries] == list(range(1, 4 + threads_n * per_thread))
    reasons = [e.reason for e in entries[3:]]
    assert sorted(reasons) == sorted(f"t{n}-{i}" for n in range(threads_n) for i in range(8))
    assert [e.at for e in entries] == sorted(e.at for e in entries)


def test_concurrent_pops_to_one_agent_connect_exactly_one(pg_engine: Engine) -> None:
    (client,) = make_clients(pg_engine, "alpha")
    agent_id = make_agent(pg_engine, [client])
    barrier = threading.Barrier(5)
    results: list[str] = []

    def worker() -> None:
        barrier.wait()
        try:
            pop(pg_engine, agent_id, client, 10)
            results.append("connected")
        except IllegalTransition:
            results.append("busy")

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["busy"] * 4 + ["connected"]
    with system_session(pg_engine) as session:
        pops = session.exec(select(AgentEvent).where(AgentEvent.agent_seat_id == agent_id)).all()
    assert len(pops) == 1


ACTIONS = st.lists(
    st.tuples(st.sampled_from(list(AgentAction)), st.floats(min_value=0, max_value=100)),
    max_size=12,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=ACTIONS)
def test_stored_agent_matches_the_pure_machine(sqlite_url: str, steps: Any) -> None:
    """Load → apply → store never drifts from applying the same actions to the pure Agent."""
    engine = get_engine(sqlite_url)
    (client,) = make_clients(engine, "alpha")
    agent_id = make_agent(engine, [client], wrap_limit_s=None, ready_at=None)
    with Session(engine) as session:
        seat = session.get(AgentSeat, agent_id)
        assert seat is not None
        pure: Agent = svc.agent_from_seat(seat)
    t = pure.since_s
    outcomes = []
    for action, gap in steps:
        t += gap
        # every detail some command takes; each action's command takes its own
        offered: dict[str, Any] = {
            "reason": "r",
            "call_id": "c1",
            "lead_id": "L1",
            "target": TransferTarget(TransferKind.SKILL_GROUP, "g"),
            "callback_at": datetime.fromtimestamp(t + 60, UTC),
            "client_id": client,
            "number": "13812345678",
        }
        cls = svc.COMMANDS[action]
        taken = {f.name: offered[f.name] for f in dataclasses.fields(cls) if f.name in offered}
        try:
            expected = pure.apply(
                action,
                at_s=t,
                reason=taken["reason"],
                call_id=taken.get("call_id"),
                lead_id=taken.get("lead_id"),
                transfer=taken.get("target"),
                callback_at_s=t + 60 if "callback_at" in taken else None,
            ).agent
        except AgentError as exc:
            expected_error: type[Exception] | None = type(exc)
        else:
            expected_error = None
        try:
            act(engine, agent_id, cls(**taken), t - T0.timestamp())
        except AgentError as exc:
            refused: type[Exception] | None = type(exc)
        else:
            refused = None
        # the persisted agent refuses exactly what the pure one refuses, the same way
        assert refused is expected_error
        if refused is not None:
            outcomes.append("refused")
            continue
        pure = expected
        outcomes.append("applied")
    with Session(engine) as session:
        seat = session.get(AgentSeat, agent_id)
        assert seat is not None
        stored = svc.agent_from_seat(seat)
    assert (stored.state, stored.reason, stored.lead_id) == (pure.state, pure.reason, pure.lead_id)
    assert stored.since_s == pytest.approx(pure.since_s)
    assert len(logs(engine, agent_id)) == outcomes.count("applied")


def test_far_end_hang_up_wraps_up_the_agent_still_on_the_call_only(engine: Engine) -> None:
    (client,) = make_clients(engine, "alpha")
    agent_id = make_agent(engine, [client], wrap_limit_s=30)
    call_id = pop(engine, agent_id, client, 10)
    with system_session(engine) as session:
        # another call's hang-up, and a gateway clock behind the agent's: no change / clamped
        assert svc.far_end_hung_up(session=session, agent_id=agent_id, call_id="other") is None
        outcome = svc.far_end_hung_up(session=session, agent_id=agent_id, call_id=call_id, at=at(5))
        assert outcome is not None
        assert outcome.seat.state is AgentState.WRAP_UP
        assert outcome.log.reason == "callee_hung_up"
        assert outcome.log.at == at(10)  # never earlier than the pop
        assert [e.kind for e in outcome.events] == [AgentEventKind.CALL_ENDED]
        # the agent already left the call: nothing more happens
        again = svc.far_end_hung_up(session=session, agent_id=agent_id, call_id=call_id, at=at(12))
        assert again is None
    assert [e.to_state for e in logs(engine, agent_id)][-1] is AgentState.WRAP_UP


def test_manual_calls_take_no_disposition(engine: Engine) -> None:
    (client,) = make_clients(engine, "alpha")
    agent_id = make_agent(engine, [client])
    pop(engine, agent_id, client, 10)  # a pop whose attempt id is not a dialer attempt
    with (
        system_session(engine) as session,
        pytest.raises(svc.NoDialerCall, match="no dialer call"),
    ):
        svc.submit_disposition(session=session, agent_id=agent_id, disposition="sale", at=at(11))
    with system_session(engine) as session:
        # a callback on such a call is still returned to the caller, and nothing is stored
        outcome = svc.apply_agent_action(
            session=session,
            agent_id=agent_id,
            command=svc.ScheduleCallback(callback_at=at(3600)),
            at=at(12),
        )
        assert outcome.callback is not None
        assert outcome.disposition is None
