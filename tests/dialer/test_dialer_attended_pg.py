"""The attended live loop on real PostgreSQL, in fake time, with real agent seats.

The last part is the telephony seam: failure causes keep their meaning, the safe-harbour
clock starts at the network answer, and agents' phone legs decide who gets calls (a lost
phone never leaves a call without a disposition).

Agents are moved by small scripted "desks" through the agent service (as the agent API
would), called from the loop's injected ``sleep`` while the fake clock advances; callees live
on the simulated gateway.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from campaign_builders import make_campaign as make_campaign_row
from campaign_builders import make_list
from sqlmodel import col, delete, select

from campaigns.models import (
    AttemptStatus,
    BatchCreate,
    CallAttempt,
    Campaign,
    CampaignLead,
    CampaignStatus,
    Disposition,
    LeadState,
)
from campaigns.service import create_batch, transition_campaign
from core.admin import create_client
from core.db import system_session, tenant_session
from dialer import agent_service as svc
from dialer.agents import AgentAction, AgentState
from dialer.attended import (
    SAFE_HARBOUR_MESSAGE,
    AttendedConfig,
    AttendedResult,
    run_attended,
)
from dialer.distributions import Fixed, LogNormal
from dialer.gateway import (
    AgentLegEvent,
    AgentLegState,
    FailureCause,
    GatewayEvent,
    HangupParty,
    HungUp,
    OriginateRequest,
)
from dialer.leadership import LocalLeadership
from dialer.models import AgentCreate, AgentEvent, AgentEventKind, AgentStateLog, AgentUpdate
from dialer.pacing import PacingSnapshot
from dialer.simgateway import GatewayProfile, ProbabilitySchedule, SimulatedGateway

from helpers import FakeClock

A = AgentAction


@pytest.fixture
def live(pg_url: str, pg_engine: Any, configure: Callable[..., None]) -> Iterator[None]:
    """The process settings on the test's PostgreSQL database (committed, truncated after)."""
    configure(database_url=pg_url)
    return


class RecordingGateway:
    """The simulated gateway, checking that each attempt row exists before it is dialed."""

    def __init__(self, inner: SimulatedGateway) -> None:
        self.inner = inner
        self.originated: list[str] = []
        self.messages: list[tuple[str, str]] = []
        self.hang_ups: list[tuple[str, HangupParty]] = []
        self.holds: list[tuple[str, str, float]] = []  # (hold or unhold, call id, when)
        self.conferences: list[tuple[str, str]] = []  # (call id, agent added)
        self.detached: list[str] = []  # calls handed back to the IVR
        self.transfers_out: list[tuple[str, str]] = []  # (call id, outside number)

    def originate(self, request: OriginateRequest, *, now: float) -> str:
        with system_session() as session:
            attempt = session.get(CallAttempt, uuid.UUID(request.attempt_id))
            assert attempt is not None, "originate before the attempt row was written"
            assert attempt.status is AttemptStatus.started
        assert request.attempt_id not in self.originated, "an attempt was dialed twice"
        self.originated.append(request.attempt_id)
        return self.inner.originate(request, now=now)

    def hang_up(self, call_id: str, *, now: float, by: HangupParty = HangupParty.SYSTEM) -> None:
        self.hang_ups.append((call_id, by))
        self.inner.hang_up(call_id, now=now, by=by)

    def connect_to_agent(
        self, call_id: str, *, agent_id: str, skill_group: str | None, now: float
    ) -> None:
        self.inner.connect_to_agent(call_id, agent_id=agent_id, skill_group=skill_group, now=now)

    def play_message(
        self,
        call_id: str,
        message_id: str,
        *,
        now: float,
        expect_dtmf: bool = False,
        text: str | None = None,
        language: str | None = None,
    ) -> None:
        self.messages.append((call_id, message_id))
        self.inner.play_message(
            call_id, message_id, now=now, expect_dtmf=expect_dtmf, text=text, language=language
        )

    def send_dtmf(self, call_id: str, digits: str, *, now: float) -> None:
        self.inner.send_dtmf(call_id, digits, now=now)

    def hold(self, call_id: str, *, now: float) -> None:
        self.holds.append(("hold", call_id, now))
        self.inner.hold(call_id, now=now)

    def unhold(self, call_id: str, *, now: float) -> None:
        self.holds.append(("unhold", call_id, now))
        self.inner.unhold(call_id, now=now)

    def transfer_to_agent(
        self, call_id: str, *, agent_id: str, skill_group: str | None, now: float
    ) -> None:
        self.inner.transfer_to_agent(call_id, agent_id=agent_id, skill_group=skill_group, now=now)

    def conference(self, call_id: str, *, agent_id: str, now: float) -> None:
        self.conferences.append((call_id, agent_id))
        self.inner.conference(call_id, agent_id=agent_id, now=now)

    def detach_agents(self, call_id: str, *, now: float) -> None:
        self.detached.append(call_id)
        self.inner.detach_agents(call_id, now=now)

    def transfer_out(self, call_id: str, number: str, *, now: float) -> None:
        self.transfers_out.append((call_id, number))
        self.inner.transfer_out(call_id, number, now=now)

    def next_event_time(self) -> float | None:
        return self.inner.next_event_time()

    def connect_agent_phone(self, agent_id: str, address: str, *, now: float) -> None:
        self.inner.connect_agent_phone(agent_id, address, now=now)

    def release_agent_phone(self, agent_id: str, *, now: float) -> None:
        self.inner.release_agent_phone(agent_id, now=now)

    def poll(self, until: float) -> list[GatewayEvent]:
        return self.inner.poll(until)


def gateway(
    *,
    answer: float = 1.0,
    ring_s: float = 2.0,
    talk: Any = None,
    seed: int = 0,
    transfer_answer: float = 1.0,
) -> RecordingGateway:
    profile = GatewayProfile(
        transfer_answer_probability=transfer_answer,
        answer_probability=ProbabilitySchedule.constant(answer),
        machine_probability=0.0,
        busy_probability=0.0,
        failure_probability=0.0,
        ring_time=Fixed(ring_s),
        talk_time=talk or Fixed(3600.0),
        message_time=Fixed(4.0),
    )
    return RecordingGateway(SimulatedGateway(profile, seed=seed))


def make_campaign(
    *,
    leads: int,
    mode: str = "progressive",
    skill_group: str | None = "sales",
    cap: float = 0.03,
    pacing_params: dict[str, float] | None = None,
) -> tuple[uuid.UUID, uuid.UUID]:
    with system_session() as session:
        client_id = create_client(session=session, name=f"c{uuid.uuid4().hex[:6]}").id
    with tenant_session([client_id]) as session:
        lead_list, _ = make_list(
            session,
            client_id,
            numbers=[f"+86139{i:08d}" for i in range(leads)],
            attributes=[{"name": f"客戶{i}", "product": "智慧電表"} for i in range(leads)],
        )
        campaign = make_campaign_row(
            session,
            client_id,
            [lead_list.id],
            name="attended",
            max_attempts=3,
            pacing_mode=mode,
            pacing_params=pacing_params or {},
            skill_group=skill_group,
            caller_id="+862155550000",
            abandon_rate_cap=cap,
        )
        create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=leads, seed=1))
        transition_campaign(session=session, campaign=campaign, target=CampaignStatus.piloting)
        return client_id, campaign.id


def act(agent_id: uuid.UUID, command: svc.AgentCommand, at: datetime) -> Any:
    """The agent's move ``command`` at ``at``, in a session of its own."""
    with system_session() as session:
        return svc.apply_agent_action(session=session, agent_id=agent_id, command=command, at=at)


def make_agent(
    client_id: uuid.UUID,
    clock: FakeClock,
    *,
    code: str | None = None,
    ready: bool = True,
    wrap_limit_s: float | None = None,
    group: str = "sales",
) -> uuid.UUID:
    with system_session() as session:
        seat = svc.create_agent(
            session=session,
            agent_in=AgentCreate(
                agent_code=code or f"A{uuid.uuid4().hex[:6]}",
                name="座席",
                skill_groups=[group],
                client_ids=[client_id],
                wrap_limit_s=wrap_limit_s,
            ),
        )
        svc.apply_agent_action(
            session=session, agent_id=seat.id, command=svc.SignIn(), at=clock.now
        )
        if ready:
            svc.apply_agent_action(
                session=session, agent_id=seat.id, command=svc.GoReady(), at=clock.now
            )
        return seat.id


@dataclass
class Desk:
    """A scripted agent: talks ``talk_s`` then hangs up (with a disposition), wraps ``wrap_s``.

    ``on_call(seat, now)`` runs once per call before hanging up (e.g. to schedule a callback).
    ``talk_s=None`` never hangs up (the callee does); ``wrap_s=None`` never finishes wrap-up.
    """

    seat_id: uuid.UUID
    talk_s: float | None = 5.0
    wrap_s: float | None = 2.0
    disposition: str | None = "sale"
    on_call: Callable[[uuid.UUID, datetime], None] | None = None
    calls: list[str] = field(default_factory=list)

    def __call__(self, now: datetime) -> None:
        with system_session() as session:
            seat = svc.get_agent(session=session, agent_id=self.seat_id)
            state, since = seat.state, seat.state_since
            call_id = svc.agent_from_seat(seat).call_id
        elapsed = (now - since).total_seconds()
        if state is AgentState.ON_CALL and call_id is not None and call_id not in self.calls:
            self.calls.append(call_id)
        if state is AgentState.ON_CALL and self.talk_s is not None and elapsed >= self.talk_s:
            if self.on_call is not None:
                self.on_call(self.seat_id, now)
            act(self.seat_id, svc.HangUp(disposition=self.disposition), now)
        elif state is AgentState.WRAP_UP and self.wrap_s is not None and elapsed >= self.wrap_s:
            act(self.seat_id, svc.FinishWrap(), now)


def run(
    client_id: uuid.UUID,
    campaign_id: uuid.UUID,
    clock: FakeClock,
    gw: RecordingGateway,
    **kwargs: Any,
) -> AttendedResult:
    config = kwargs.pop("config", None) or AttendedConfig(duration_s=kwargs.pop("duration_s", 60))
    return run_attended(
        client_id=client_id,
        campaign_id=campaign_id,
        leadership=LocalLeadership(campaign_id, f"test-{uuid.uuid4().hex[:6]}"),
        gateway=gw,
        config=config,
        clock=clock,
        sleep=clock.sleep,
        **kwargs,
    )


def attempts_of(client_id: uuid.UUID, campaign_id: uuid.UUID) -> list[CallAttempt]:
    with tenant_session([client_id]) as session:
        return list(
            session.exec(
                select(CallAttempt)
                .where(CallAttempt.campaign_id == campaign_id)
                .order_by(col(CallAttempt.dialed_at))
            )
        )


def events_of(client_id: uuid.UUID, seat_id: uuid.UUID) -> list[AgentEvent]:
    with tenant_session([client_id]) as session:
        return list(
            session.exec(
                select(AgentEvent)
                .where(AgentEvent.agent_seat_id == seat_id)
                .order_by(col(AgentEvent.seq))
            )
        )


def log_of(seat_id: uuid.UUID) -> list[AgentStateLog]:
    with system_session() as session:
        return svc.state_log(session=session, agent_id=seat_id)


# --------------------------------------------------------------------------- tests


def test_human_answer_pops_to_the_ready_agent_who_dispositions_it(live: None) -> None:
    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    seat_id = make_agent(client_id, clock, code="S001")
    desk = Desk(seat_id, talk_s=5.0, disposition="sale")
    clock.desks.append(desk)
    gw = gateway(ring_s=2.0)

    result = run(client_id, campaign_id, clock, gw, duration_s=30)

    [attempt] = attempts_of(client_id, campaign_id)
    assert gw.originated == [str(attempt.id)]
    assert attempt.status is AttemptStatus.finished
    assert attempt.disposition == "sale"
    assert attempt.converted is True
    assert attempt.agent_id == "S001"
    assert attempt.skill_group == "sales"
    assert attempt.hangup_cause == "caller"  # the agent hung up, through the agent service
    assert attempt.talk_s is not None
    assert 4.0 <= attempt.talk_s <= 7.0
    assert attempt.agent_connected_at is not None
    assert attempt.answered_at is not None
    assert (attempt.agent_connected_at - attempt.answered_at).total_seconds() < 2.0
    # the agent's hang-up reached the gateway as an agent hang-up
    assert [by for _, by in gw.hang_ups] == [HangupParty.AGENT]

    events = events_of(client_id, seat_id)
    kinds = [e.kind for e in events]
    assert kinds[:2] == [AgentEventKind.CALL_OFFERED, AgentEventKind.CALL_CONNECTED]
    pop = events[1].payload
    assert pop["attempt_id"] == str(attempt.id)
    assert pop["lead"]["id"] == str(attempt.lead_id)
    assert pop["lead"]["attributes"]["product"] == "智慧電表"
    assert pop["params"] == {
        "agent_id": "S001",
        "skill_group": "sales",
        "caller_number": "+862155550000",
        "callee_number": attempt.number_dialed,
    }
    assert pop["script"]["campaign"] == "attended"
    assert pop["script"]["campaign_id"] == str(campaign_id)
    assert result.dials == 1
    assert result.completed == 1
    assert result.agent_dispositions == 1
    assert result.stopped_because == "end of the requested duration"
    with tenant_session([client_id]) as session:
        lead = session.exec(
            select(CampaignLead).where(CampaignLead.lead_id == attempt.lead_id)
        ).one()
    assert lead.final_disposition == "sale"
    assert lead.lease_token is None


class RecordingsGateway(RecordingGateway):
    """A gateway that records its calls: a WAV for each answered call, reported after its
    hang-up (as the SIP gateway does once the file is written)."""

    def __init__(self, inner: SimulatedGateway, spool: Path) -> None:
        super().__init__(inner)
        self.spool = spool
        self.written: list[Path] = []

    def poll(self, until: float) -> list[Any]:
        import wave

        from dialer.gateway import RecordingReady

        events: list[Any] = []
        for event in super().poll(until):
            events.append(event)
            if isinstance(event, HungUp):
                path = self.spool / f"{event.call_id}-call.wav"
                with wave.open(str(path), "wb") as wav:
                    wav.setnchannels(2)
                    wav.setsampwidth(2)
                    wav.setframerate(8000)
                    wav.writeframes(b"\x01\x00" * 2 * 8000)
                self.written.append(path)
                head = {f: getattr(event, f) for f in ("call_id", "params", "campaign_id")}
                ids = {f: getattr(event, f) for f in ("lead_id", "attempt_id")}
                events.append(RecordingReady(at_s=event.at_s, **head, **ids, path=str(path),
                                             duration_s=1.0))  # fmt: skip
        return events


def test_a_calls_recording_is_stored_with_its_attempt_and_the_spooled_file_removed(
    live: None, tmp_path: Path
) -> None:
    """The gateway's RecordingReady (after the hang-up, whatever became of the call) is
    stored in the recordings store, linked to the attempt and downloadable, and the file
    the gateway left is removed."""
    from dialer.recordings import Recording, recording_chunks

    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    seat_id = make_agent(client_id, clock, code="R001")
    clock.desks.append(Desk(seat_id, talk_s=5.0, disposition="sale"))
    gw = RecordingsGateway(gateway().inner, tmp_path)

    result = run(client_id, campaign_id, clock, gw, duration_s=30)

    assert result.recordings == 1
    [attempt] = attempts_of(client_id, campaign_id)
    assert attempt.disposition == "sale"
    with tenant_session([client_id]) as session:
        [recording] = session.exec(select(Recording)).all()
        assert recording.attempt_id == attempt.id
        assert attempt.recording_ref == f"recording:{recording.id}"
        assert recording.duration_s == 1.0
    data = b"".join(recording_chunks(recording))
    assert data[:4] == b"RIFF"
    assert [p.exists() for p in gw.written] == [False]


def test_callback_scheduled_by_the_agent_lands_on_the_campaign_lead_and_comes_back(
    live: None,
) -> None:
    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    other = make_agent(client_id, clock, code="S100")  # longest ready
    clock.now += timedelta(seconds=1)
    seat_id = make_agent(client_id, clock, code="S200")
    wanted: list[datetime] = []

    def schedule(seat: uuid.UUID, now: datetime) -> None:
        callback_at = now + timedelta(hours=2)
        wanted.append(callback_at)
        act(seat, svc.ScheduleCallback(callback_at=callback_at, reason="after 3 pm"), now)

    # S100 takes the first call and asks for a callback; S200 stays idle
    clock.desks.append(Desk(other, disposition="callback_requested", on_call=schedule))
    result = run(client_id, campaign_id, clock, gateway(), duration_s=30)

    [first] = attempts_of(client_id, campaign_id)
    assert first.disposition == "callback_requested"
    assert result.agent_dispositions == 1
    with tenant_session([client_id]) as session:
        lead = session.exec(select(CampaignLead).where(CampaignLead.lead_id == first.lead_id)).one()
    assert lead.callback_at == wanted[0]
    assert lead.callback_agent == "S100"
    assert lead.next_attempt_at == wanted[0]

    # when it is due, S100 hears callback_due and gets the call, though S200 waited longer
    clock.now = wanted[0] + timedelta(seconds=1)
    with system_session() as session:
        for seat in (seat_id, other):
            agent = svc.get_agent(session=session, agent_id=seat)
            if agent.state is not AgentState.READY:
                svc.apply_agent_action(
                    session=session, agent_id=seat, command=svc.FinishWrap(), at=clock.now
                )
        svc.apply_agent_action(
            session=session, agent_id=seat_id, command=svc.GoNotReady(reason="x"), at=clock.now
        )
        svc.apply_agent_action(
            session=session, agent_id=seat_id, command=svc.GoReady(), at=clock.now
        )
        clock.now += timedelta(seconds=1)
        svc.apply_agent_action(
            session=session, agent_id=other, command=svc.GoNotReady(reason="x"), at=clock.now
        )
        svc.apply_agent_action(session=session, agent_id=other, command=svc.GoReady(), at=clock.now)
    clock.desks[:] = [Desk(other, disposition="sale")]
    run(client_id, campaign_id, clock, gateway(), duration_s=30)

    second = attempts_of(client_id, campaign_id)[-1]
    assert second.attempt_no == 2
    assert second.agent_id == "S100"
    assert second.disposition == "sale"
    kinds = [e.kind for e in events_of(client_id, other)]
    assert AgentEventKind.CALLBACK_DUE in kinds
    due = next(e for e in events_of(client_id, other) if e.kind is AgentEventKind.CALLBACK_DUE)
    assert due.payload["attempt_id"] == str(second.id)
    assert events_of(client_id, seat_id) == []


def test_no_ready_agent_means_no_call(live: None) -> None:
    client_id, campaign_id = make_campaign(leads=5, mode="predictive")
    clock = FakeClock()
    make_agent(client_id, clock, ready=False)  # signed in, not ready
    with system_session() as session:
        svc.create_agent(
            session=session,
            agent_in=AgentCreate(
                agent_code=f"A{uuid.uuid4().hex[:6]}",
                name="x",
                skill_groups=["sales"],
                client_ids=[client_id],
            ),
        )  # signed out
    decisions: list[int] = []
    gw = gateway()
    result = run(
        client_id,
        campaign_id,
        clock,
        gw,
        duration_s=20,
        on_launch=lambda snapshot, n: decisions.append(n),
    )
    assert decisions
    assert set(decisions) == {0}
    assert gw.originated == []
    assert result.dials == 0
    assert attempts_of(client_id, campaign_id) == []


def test_callee_hang_up_moves_the_agent_to_wrap_up_and_timed_wrap_up_gets_the_default(
    live: None,
) -> None:
    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    seat_id = make_agent(client_id, clock, code="W001", wrap_limit_s=5.0)
    # the agent never hangs up and never dispositions: the callee ends the call after 4 s
    clock.desks.append(Desk(seat_id, talk_s=None, wrap_s=None, disposition=None))
    result = run(client_id, campaign_id, clock, gateway(talk=Fixed(4.0)), duration_s=30)

    [attempt] = attempts_of(client_id, campaign_id)
    assert attempt.disposition == "callback_requested"  # the documented default
    assert attempt.hangup_cause == "callee"
    assert attempt.talk_s == pytest.approx(4.0, abs=0.5)
    assert attempt.wrap_s == pytest.approx(5.0, abs=1.5)
    assert result.default_dispositions == 1
    log = [(e.action, e.to_state, e.reason) for e in log_of(seat_id)]
    assert (A.HANG_UP, AgentState.WRAP_UP, "callee_hung_up") in log
    assert log[-1] == (A.FINISH_WRAP, AgentState.READY, "wrap_timeout")
    ended = [e for e in events_of(client_id, seat_id) if e.kind is AgentEventKind.CALL_ENDED]
    assert len(ended) == 1
    assert ended[0].payload["reason"] == "callee_hung_up"
    with tenant_session([client_id]) as session:
        lead = session.exec(
            select(CampaignLead).where(CampaignLead.lead_id == attempt.lead_id)
        ).one()
    assert lead.callback_agent is None  # nobody asked for it: not pinned to an agent


def test_default_disposition_is_configurable(live: None) -> None:
    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    seat_id = make_agent(client_id, clock, wrap_limit_s=3.0)
    clock.desks.append(Desk(seat_id, talk_s=4.0, wrap_s=None, disposition=None))
    config = AttendedConfig(duration_s=30, default_disposition="refused")
    run(client_id, campaign_id, clock, gateway(), config=config)
    [attempt] = attempts_of(client_id, campaign_id)
    assert attempt.disposition == "refused"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_abandons_get_the_safe_harbour_message_and_never_exceed_the_cap(
    live: None, seed: int
) -> None:
    cap = 0.1
    client_id, campaign_id = make_campaign(
        leads=80, mode="power", cap=cap, pacing_params={"ratio": 3.0}
    )
    clock = FakeClock()
    desks = [
        Desk(make_agent(client_id, clock), talk_s=None, wrap_s=1.0, disposition=None)
        for _ in range(2)
    ]
    clock.desks.extend(desks)
    rates: list[float] = []
    answers: list[tuple[float, bool]] = []

    def check_launch(snapshot: PacingSnapshot, launched: int) -> None:
        assert snapshot.abandoned_in_window <= cap * snapshot.live_answers_in_window + 1e-9
        rates.append(snapshot.window_abandon_rate)
        if snapshot.agents_ready == 0:
            assert launched == 0

    def check_answer(at_s: float, abandoned: bool) -> None:
        answers.append((at_s, abandoned))
        live_count = len(answers)
        abandons = sum(1 for _, a in answers if a)
        assert abandons <= cap * live_count + 1e-9, answers

    gw = gateway(answer=0.6, ring_s=3.0, talk=LogNormal(20.0, 10.0), seed=seed)
    result = run(
        client_id,
        campaign_id,
        clock,
        gw,
        config=AttendedConfig(duration_s=240, default_disposition="refused"),
        on_launch=check_launch,
        on_live_answer=check_answer,
    )
    attempts = attempts_of(client_id, campaign_id)
    assert len(attempts) == len(gw.originated) == len(set(gw.originated)) == result.dials
    assert all(a.status is AttemptStatus.finished for a in attempts)
    abandoned = [a for a in attempts if a.abandoned]
    assert all(a.disposition == "abandoned" for a in abandoned)
    assert len(abandoned) == result.abandoned
    assert len(abandoned) <= cap * result.live_answers + 1e-9
    harboured = [call for call, message in gw.messages if message == SAFE_HARBOUR_MESSAGE]
    assert len(harboured) == len(abandoned)
    assert result.connected > 0


def test_abandons_happen_when_agents_are_too_few(live: None) -> None:
    # with a generous cap and three lines per agent the clamp lets some abandons through:
    # each one is counted, hears the safe-harbour message and keeps the rate at the cap
    cap = 0.2
    client_id, campaign_id = make_campaign(
        leads=120, mode="power", cap=cap, pacing_params={"ratio": 3.0}
    )
    clock = FakeClock()
    seat_id = make_agent(client_id, clock)
    clock.desks.append(Desk(seat_id, talk_s=None, wrap_s=0.5, disposition=None))
    gw = gateway(answer=0.9, ring_s=2.0, talk=Fixed(15.0), seed=5)
    result = run(
        client_id,
        campaign_id,
        clock,
        gw,
        config=AttendedConfig(duration_s=600, default_disposition="refused"),
    )
    assert result.abandoned > 0
    assert result.abandoned <= cap * result.live_answers + 1e-9
    assert sum(1 for _, m in gw.messages if m == SAFE_HARBOUR_MESSAGE) == result.abandoned


class LosingLeadership(LocalLeadership):
    """Loses the lease after ``renewals`` renewals."""

    def __init__(self, campaign_id: uuid.UUID, renewals: int) -> None:
        super().__init__(campaign_id, f"losing-{uuid.uuid4().hex[:6]}")
        self.left = renewals

    def renew(self) -> bool:
        self.left -= 1
        return self.left >= 0 and super().renew()


def test_losing_leadership_stops_launching_and_calls_in_flight_finish(live: None) -> None:
    client_id, campaign_id = make_campaign(leads=20)
    clock = FakeClock()
    seat_id = make_agent(client_id, clock)
    clock.desks.append(Desk(seat_id, talk_s=6.0, wrap_s=1.0, disposition="refused"))
    gw = gateway()
    result = run_attended(
        client_id=client_id,
        campaign_id=campaign_id,
        leadership=LosingLeadership(campaign_id, renewals=3),
        gateway=gw,
        config=AttendedConfig(duration_s=600),
        clock=clock,
        sleep=clock.sleep,
    )
    assert result.stopped_because == "leadership lost"
    attempts = attempts_of(client_id, campaign_id)
    assert 1 <= len(attempts) <= 2
    assert all(a.status is AttemptStatus.finished for a in attempts)
    assert all(a.disposition == "refused" for a in attempts)


def test_pausing_the_campaign_stops_the_loop(live: None) -> None:
    client_id, campaign_id = make_campaign(leads=20)
    clock = FakeClock()
    seat_id = make_agent(client_id, clock)
    paused: list[bool] = []

    def pause(now: datetime) -> None:
        if not paused and now - clock_start >= timedelta(seconds=10):
            paused.append(True)
            from campaigns.models import Campaign

            with tenant_session([client_id]) as session:
                campaign = session.get(Campaign, campaign_id)
                assert campaign is not None
                campaign.status = CampaignStatus.paused
                session.add(campaign)

    clock_start = clock.now
    clock.desks.extend([Desk(seat_id, talk_s=3.0, wrap_s=1.0, disposition="refused"), pause])
    result = run(client_id, campaign_id, clock, gateway(), duration_s=600)
    assert result.stopped_because == "paused by the operator"
    assert all(a.status is AttemptStatus.finished for a in attempts_of(client_id, campaign_id))
    assert clock.now - clock_start < timedelta(seconds=60)


def test_agent_api_in_another_process_drives_the_loop_through_the_database(
    live: None, pg_url: str, app_factory: Callable[..., Any]
) -> None:
    """The agent hangs up and dispositions over HTTP; the loop only sees the database."""
    from core.admin import issue_key
    from core.models import Role

    http = app_factory(pg_url)
    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    seat_id = make_agent(client_id, clock, code="H001")
    with system_session() as session:
        _key, plain = issue_key(
            session=session, name="ops", role=Role.operator, client_refs=[str(client_id)]
        )
    headers = {"Authorization": f"Bearer {plain}"}
    sent: list[str] = []

    def desk(now: datetime) -> None:
        agent = http.get(f"/agents/{seat_id}", headers=headers).json()
        if agent["state"] == "on_call" and not sent:
            wrong = http.post(
                f"/agents/{seat_id}/actions",
                json={"action": "hang_up", "disposition": "no_such_code"},
                headers=headers,
            )
            assert wrong.status_code == 422
            assert "dnc_request" in wrong.json()["allowed"]
            response = http.post(
                f"/agents/{seat_id}/actions",
                json={"action": "hang_up", "disposition": "dnc_request"},
                headers=headers,
            )
            assert response.status_code == 200, response.text
            sent.append(response.json()["disposition"]["disposition"])

    clock.desks.append(desk)
    run(client_id, campaign_id, clock, gateway(), duration_s=20)
    [attempt] = attempts_of(client_id, campaign_id)
    assert sent == ["dnc_request"]
    assert attempt.disposition == "dnc_request"
    assert attempt.hangup_cause == "caller"
    stream = http.get(f"/agents/{seat_id}/events?after=0&once=true", headers=headers).text
    assert "event: call_offered" in stream
    assert "event: call_connected" in stream
    with tenant_session([client_id]) as session:
        from dialer.models import AgentDisposition

        row = session.exec(
            select(AgentDisposition).where(AgentDisposition.attempt_id == attempt.id)
        ).one()
        assert row.applied_at is not None
        assert row.agent_code == "H001"


# --------------------------------------------------------------------------- the seam


def profiled(**overrides: object) -> RecordingGateway:
    settings: dict[str, object] = {
        "answer_probability": ProbabilitySchedule.constant(1.0),
        "machine_probability": 0.0,
        "busy_probability": 0.0,
        "failure_probability": 0.0,
        "ring_time": Fixed(2.0),
        "talk_time": Fixed(3600.0),
        "message_time": Fixed(4.0),
        **overrides,
    }
    return RecordingGateway(SimulatedGateway(GatewayProfile(**settings), seed=1))  # type: ignore[arg-type]


def failing(cause: FailureCause) -> RecordingGateway:
    return profiled(
        answer_probability=ProbabilitySchedule.constant(0.0),
        failure_probability=1.0,
        failure_causes=((cause, 1.0),),
    )


def lead_rows(client_id: uuid.UUID, campaign_id: uuid.UUID) -> list[CampaignLead]:
    with tenant_session([client_id]) as session:
        return list(
            session.exec(select(CampaignLead).where(CampaignLead.campaign_id == campaign_id))
        )


# -- failure causes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cause", "disposition", "final"),
    [
        (FailureCause.INVALID_NUMBER, "invalid_number", True),
        (FailureCause.CONGESTION, "network_failure", False),
        (FailureCause.UNKNOWN, "network_failure", False),
        (FailureCause.DECLINED, "declined", False),
    ],
)
def test_a_failed_call_gets_the_disposition_of_its_cause(
    live: None, cause: FailureCause, disposition: str, final: bool
) -> None:
    client_id, campaign_id = make_campaign(leads=3)
    clock = FakeClock()
    make_agent(client_id, clock)
    result = run(client_id, campaign_id, clock, failing(cause), duration_s=120)

    attempts = attempts_of(client_id, campaign_id)
    assert len(attempts) == 3  # each lead once: the retries are far beyond two minutes
    assert {a.disposition for a in attempts} == {disposition}
    assert all(a.status is AttemptStatus.finished for a in attempts)
    assert result.stopped_because == "end of the requested duration"
    for lead in lead_rows(client_id, campaign_id):
        if final:  # never retried
            assert lead.state is LeadState.final
            assert lead.final_disposition == "invalid_number"
            assert lead.next_attempt_at is None
        else:  # retried later, after the disposition's delay
            assert lead.state is LeadState.scheduled
            assert lead.final_disposition is None
            assert lead.next_attempt_at is not None
    if cause is FailureCause.DECLINED:
        [attempt] = attempts[:1]
        [lead] = [x for x in lead_rows(client_id, campaign_id) if x.lead_id == attempt.lead_id]
        assert lead.next_attempt_at is not None
        assert attempt.ended_at is not None
        assert lead.next_attempt_at - attempt.ended_at >= timedelta(minutes=240)


def test_a_campaign_without_the_declined_code_retries_declined_calls_as_network_failures(
    live: None,
) -> None:
    client_id, campaign_id = make_campaign(leads=2)
    with tenant_session([client_id]) as session:  # an old campaign's vocabulary
        session.exec(  # type: ignore[call-overload]
            delete(Disposition).where(
                Disposition.campaign_id == campaign_id,  # type: ignore[arg-type]
                Disposition.code == "declined",  # type: ignore[arg-type]
            )
        )
    clock = FakeClock()
    make_agent(client_id, clock)
    run(client_id, campaign_id, clock, failing(FailureCause.DECLINED), duration_s=60)
    attempts = attempts_of(client_id, campaign_id)
    assert len(attempts) == 2
    assert {a.disposition for a in attempts} == {"network_failure"}


def test_a_refusing_trunk_stops_the_run_and_says_why(live: None) -> None:
    client_id, campaign_id = make_campaign(leads=30, mode="power", pacing_params={"ratio": 2.0})
    clock = FakeClock()
    make_agent(client_id, clock)
    gw = failing(FailureCause.TRUNK_REFUSED)
    result = run(client_id, campaign_id, clock, gw, duration_s=600)

    assert result.stopped_because == (
        "trunk refused: SIP 403 Forbidden; check the trunk credentials"
    )
    attempts = attempts_of(client_id, campaign_id)
    # only the calls of the first launch were dialed: no lead was burnt after the refusal
    assert 1 <= len(attempts) <= 2
    assert len(gw.originated) == len(attempts)
    assert {a.disposition for a in attempts} == {"network_failure"}
    leads = lead_rows(client_id, campaign_id)
    assert all(lead.final_disposition is None for lead in leads)  # every lead can be retried
    assert all(lead.lease_token is None for lead in leads)


# -- the safe-harbour clock -----------------------------------------------------------------


def test_the_grace_period_runs_from_the_network_answer_not_the_amd_verdict(live: None) -> None:
    # Three lines per agent and a generous cap: some live answers wait and are abandoned.
    # Answer detection takes 1.5 s, so the safe-harbour message starts 2 s after the network
    # answer, 0.5 s after the verdict.
    client_id, campaign_id = make_campaign(
        leads=120, mode="power", cap=0.2, pacing_params={"ratio": 3.0}
    )
    clock = FakeClock()
    seat_id = make_agent(client_id, clock)
    clock.desks.append(Desk(seat_id, talk_s=None, wrap_s=0.5, disposition=None))
    gw = profiled(amd_delay_s=1.5, talk_time=Fixed(15.0))
    config = AttendedConfig(duration_s=300, default_disposition="refused")
    result = run(client_id, campaign_id, clock, gw, config=config)

    abandoned = [a for a in attempts_of(client_id, campaign_id) if a.abandoned]
    assert result.abandoned == len(abandoned) > 0
    assert sum(1 for _, m in gw.messages if m == SAFE_HARBOUR_MESSAGE) == len(abandoned)
    for attempt in abandoned:
        assert attempt.disposition == "abandoned"
        assert attempt.answered_at is not None
        assert attempt.ended_at is not None
        # answered at the network answer (2 s of ringing after the dial), not at the verdict
        ring_s = (attempt.answered_at - attempt.dialed_at).total_seconds()
        assert ring_s == pytest.approx(2.0, abs=0.01)
        # the grace period from that answer, then the 4-second message
        after_answer_s = (attempt.ended_at - attempt.answered_at).total_seconds()
        assert after_answer_s == pytest.approx(2.0 + 4.0, abs=0.01)


# -- agents' phone legs ---------------------------------------------------------------------


class LegGateway(RecordingGateway):
    """The simulated gateway whose phones for ``unreachable`` agents never answer."""

    def __init__(self, inner: SimulatedGateway, unreachable: set[str]) -> None:
        super().__init__(inner)
        self.unreachable = unreachable
        self.phone_calls: list[tuple[str, str]] = []
        self.released: list[str] = []
        self.pending: list[GatewayEvent] = []

    def connect_agent_phone(self, agent_id: str, address: str, *, now: float) -> None:
        self.phone_calls.append((agent_id, address))
        if agent_id in self.unreachable:
            self.pending.append(
                AgentLegEvent(agent_id, now, AgentLegState.UNREACHABLE, "SIP 480 Unavailable")
            )
            return
        super().connect_agent_phone(agent_id, address, now=now)

    def release_agent_phone(self, agent_id: str, *, now: float) -> None:
        self.released.append(agent_id)
        super().release_agent_phone(agent_id, now=now)

    def next_event_time(self) -> float | None:
        if self.pending:
            return self.pending[0].at_s if isinstance(self.pending[0], AgentLegEvent) else 0.0
        return super().next_event_time()

    def poll(self, until: float) -> list[GatewayEvent]:
        events, self.pending = self.pending, []
        return events + super().poll(until)


def test_only_agents_whose_phone_answered_get_calls_and_the_lost_one_sees_why(live: None) -> None:
    client_id, campaign_id = make_campaign(leads=2)
    clock = FakeClock()
    reachable = make_agent(client_id, clock, code="P100")
    lost = make_agent(client_id, clock, code="P200")
    with system_session() as session:
        svc.update_agent(
            session=session,
            agent_id=reachable,
            agent_in=AgentUpdate(phone_uri="sip:100@pbx.example.com"),
        )
    desk = Desk(reachable, talk_s=5.0, wrap_s=1.0, disposition="sale")
    clock.desks.append(desk)
    gw = LegGateway(profiled(talk_time=Fixed(3600.0)).inner, unreachable={"P200"})
    result = run(client_id, campaign_id, clock, gw, duration_s=60)

    assert sorted(gw.phone_calls) == [("P100", "sip:100@pbx.example.com"), ("P200", "sim:P200")]
    attempts = attempts_of(client_id, campaign_id)
    assert len(attempts) == 2
    assert {a.agent_id for a in attempts} == {"P100"}  # never the agent without a phone
    assert result.phones_lost == 1
    with system_session() as session:
        seat = svc.get_agent(session=session, agent_id=lost)
        assert seat.state is AgentState.PHONE_LOST
        assert seat.state_reason == "phone unreachable: SIP 480 Unavailable"
        public = svc.agent_public(seat)
        assert A.RECONNECT_PHONE in public.allowed_actions
        assert A.GO_READY not in public.allowed_actions
    assert "P100" in gw.released  # the run's end releases the legs it holds


def test_a_phone_lost_mid_call_finishes_the_call_and_the_agent_can_reconnect(live: None) -> None:
    client_id, campaign_id = make_campaign(leads=3)
    clock = FakeClock()
    start = clock.now
    seat_id = make_agent(client_id, clock, code="D100")
    gw = profiled(talk_time=Fixed(3600.0))
    inner = gw.inner
    dropped: list[str] = []

    def phone_drops_once(now: object) -> None:
        with system_session() as session:
            seat = svc.get_agent(session=session, agent_id=seat_id)
            state, since = seat.state, seat.state_since
        if state is AgentState.ON_CALL and not dropped:
            at_s = (clock.now - start).total_seconds()
            if (clock.now - since).total_seconds() >= 3.0:
                dropped.append("D100")
                inner.drop_agent_phone("D100", now=at_s, cause="SIP BYE from the phone")
        elif state is AgentState.PHONE_LOST:
            with system_session() as session:
                svc.apply_agent_action(
                    session=session, agent_id=seat_id, command=svc.ReconnectPhone(), at=clock.now
                )
                svc.apply_agent_action(
                    session=session, agent_id=seat_id, command=svc.GoReady(), at=clock.now
                )

    clock.desks.append(phone_drops_once)
    clock.desks.append(Desk(seat_id, talk_s=20.0, wrap_s=1.0, disposition="sale"))
    result = run(client_id, campaign_id, clock, gw, duration_s=120)

    attempts = attempts_of(client_id, campaign_id)
    assert all(a.status is AttemptStatus.finished for a in attempts)  # none left open
    first = attempts[0]
    assert first.disposition == "callback_requested"  # a dropped contact: called again
    assert first.hangup_cause == "system"
    assert first.agent_id == "D100"
    assert first.talk_s == pytest.approx(3.0, abs=1.5)
    assert result.dropped_calls == 1
    assert result.phones_lost == 1
    # the callee's leg was hung up by the system, at once
    assert (inner.agent_phones or {}) == {} or "D100" in inner.agent_phones
    log = [(e.action, e.to_state, e.reason) for e in log_of(seat_id)]
    assert (A.PHONE_LOST, AgentState.PHONE_LOST, "phone hung up: SIP BYE from the phone") in log
    ended = [e for e in events_of(client_id, seat_id) if e.kind is AgentEventKind.CALL_ENDED]
    assert ended  # the console heard the call end
    # reconnected: the phone was called again and the agent took the next leads
    later = [a for a in attempts[1:] if a.agent_id == "D100"]
    assert later
    assert later[0].disposition == "sale"
    assert any(by is HangupParty.SYSTEM for _, by in gw.hang_ups)


def test_signing_out_releases_the_agents_phone(live: None) -> None:
    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    seat_id = make_agent(client_id, clock, code="R100")
    gw = LegGateway(profiled().inner, unreachable=set())
    signed_out: list[bool] = []

    def sign_out_after_a_while(now: object) -> None:
        if not signed_out and gw.phone_calls:
            with system_session() as session:
                seat = svc.get_agent(session=session, agent_id=seat_id)
                if seat.state is AgentState.ON_CALL:
                    svc.apply_agent_action(
                        session=session, agent_id=seat_id, command=svc.HangUp(), at=clock.now
                    )
                if svc.get_agent(session=session, agent_id=seat_id).state is AgentState.WRAP_UP:
                    svc.apply_agent_action(
                        session=session, agent_id=seat_id, command=svc.FinishWrap(), at=clock.now
                    )
                svc.apply_agent_action(
                    session=session, agent_id=seat_id, command=svc.SignOut(), at=clock.now
                )
            signed_out.append(True)

    clock.desks.append(sign_out_after_a_while)
    run(client_id, campaign_id, clock, gw, duration_s=20)
    assert gw.phone_calls == [("R100", "sim:R100")]
    assert gw.released.count("R100") == 1
    assert "R100" not in gw.inner.agent_phones


def test_a_callback_for_the_group_is_not_pinned_to_the_agent(live: None) -> None:
    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    seat_id = make_agent(client_id, clock, code="G100")
    wanted: list[datetime] = []

    def schedule(seat: uuid.UUID, now: datetime) -> None:
        callback_at = now + timedelta(hours=2)
        wanted.append(callback_at)
        act(
            seat,
            svc.ScheduleCallback(callback_at=callback_at, to_group=True, reason="any of us"),
            now,
        )

    clock.desks.append(Desk(seat_id, disposition="callback_requested", on_call=schedule))
    run(client_id, campaign_id, clock, gateway(), duration_s=30)

    [first] = attempts_of(client_id, campaign_id)
    assert first.disposition == "callback_requested"
    with tenant_session([client_id]) as session:
        lead = session.exec(select(CampaignLead).where(CampaignLead.lead_id == first.lead_id)).one()
    assert lead.callback_at == wanted[0]
    assert lead.next_attempt_at == wanted[0]
    assert lead.callback_agent is None  # whichever agent of the group is free takes it


def _guarded_run(guard: str | None, seed: int) -> tuple[list[tuple[int, int]], AttendedResult]:
    """A power 3.0 run at a low answer rate under ``guard`` (None: nothing stored, today's
    default); each decision's (ready agents not covered by calls in flight, launched)."""
    cap = 0.03
    client_id, campaign_id = make_campaign(
        leads=150, mode="power", cap=cap, pacing_params={"ratio": 3.0}
    )
    if guard is not None:
        with tenant_session([client_id]) as session:
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None
            campaign.pacer_settings = {"abandon_guard": guard, "abandon_risk": 0.05}
            session.add(campaign)
            session.commit()
    clock = FakeClock()
    desks = [
        Desk(make_agent(client_id, clock), talk_s=None, wrap_s=1.0, disposition=None)
        for _ in range(3)
    ]
    clock.desks.extend(desks)
    decisions: list[tuple[int, int]] = []

    def check_launch(snapshot: PacingSnapshot, launched: int) -> None:
        free = snapshot.agents_ready - len(snapshot.ringing_elapsed_s) - snapshot.calls_waiting
        decisions.append((free, launched))

    gw = gateway(answer=0.15, ring_s=4.0, talk=LogNormal(20.0, 10.0), seed=seed)
    result = run(
        client_id,
        campaign_id,
        clock,
        gw,
        config=AttendedConfig(duration_s=120, default_disposition="refused"),
        on_launch=check_launch,
    )
    return decisions, result


def test_the_campaigns_statistical_guard_dials_ahead_where_strict_does_not(live: None) -> None:
    # At a low answer rate early in the window the strict clamp has no room for a call no
    # free agent waits for; the statistical guard (stored in the campaign's pacer settings)
    # launches such calls while the risk of ending above the cap stays small.
    strict, strict_result = _guarded_run("strict", seed=3)
    default, default_result = _guarded_run(None, seed=3)
    assert default == strict
    statistical, stat_result = _guarded_run("statistical", seed=3)
    assert default_result.dials == strict_result.dials
    assert all(launched <= max(0, free) for free, launched in strict)
    assert any(launched > max(0, free) for free, launched in statistical)
    assert stat_result.dials > strict_result.dials
    assert stat_result.abandoned <= 0.03 * stat_result.live_answers + 1e-9


# ------------------------------------------------------ an agent leaves while their call rings


@pytest.mark.parametrize("cancel", [True, False])
def test_a_call_left_without_its_agent_is_hung_up_ringing_not_abandoned(
    live: None, cancel: bool
) -> None:
    """Two agents ready, two calls launched; one agent takes a break while both ring.

    Without the surplus rule the second answer found nobody: an abandon (50 % of the
    campaign's live answers, issue 18). With it the call no agent would be free for is hung
    up after 15 s of ringing, before the callee answers at 18 s: a no-answer attempt.
    """
    from dialer.attended import SURPLUS_CAUSE

    client_id, campaign_id = make_campaign(leads=2)
    clock = FakeClock()
    stays = make_agent(client_id, clock, code="S001")
    leaves = make_agent(client_id, clock, code="S002")
    started = clock.now

    def takes_a_break(now: datetime) -> None:
        if now - started >= timedelta(seconds=3) and not getattr(takes_a_break, "done", False):
            takes_a_break.done = True  # type: ignore[attr-defined]
            act(leaves, svc.GoNotReady(reason="break"), now)

    clock.desks[:] = [takes_a_break, Desk(stays, talk_s=5.0, disposition="sale")]
    config = AttendedConfig(duration_s=60, surplus_min_ring_s=15.0 if cancel else None)
    gw = gateway(ring_s=18.0)
    result = run(client_id, campaign_id, clock, gw, config=config)

    attempts = attempts_of(client_id, campaign_id)
    assert result.dials == len(attempts) == 2
    if not cancel:  # the defect, kept visible: the test fails if the rule stops working
        assert result.abandoned == 1
        assert [m for _, m in gw.messages] == [SAFE_HARBOUR_MESSAGE]
        return
    assert result.abandoned == 0
    assert result.surplus_cancelled == 1
    assert gw.messages == []
    by_cause = {a.hangup_cause: a for a in attempts}
    cancelled = by_cause[SURPLUS_CAUSE]
    assert cancelled.disposition == "no_answer"
    assert cancelled.answered_at is None
    assert cancelled.abandoned is False
    assert cancelled.ended_at is not None
    assert cancelled.dialed_at is not None
    assert (cancelled.ended_at - cancelled.dialed_at).total_seconds() >= 15.0
    served = next(a for a in attempts if a is not cancelled)
    assert (served.agent_id, served.disposition) == ("S001", "sale")
    with tenant_session([client_id]) as session:
        lead = session.exec(
            select(CampaignLead).where(CampaignLead.lead_id == cancelled.lead_id)
        ).one()
    assert lead.state is LeadState.scheduled  # called again later, one attempt used
    assert lead.attempts == 1


def test_holding_or_consulting_puts_the_callee_on_hold_at_the_gateway(live: None) -> None:
    """The agent holds, takes the call back, consults a colleague, cancels the consultation
    and takes the call back: the callee hears hold music exactly while held or consulting."""
    from dialer.agents import TransferKind, TransferTarget

    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    seat_id = make_agent(client_id, clock, code="H001")
    make_agent(client_id, clock, code="H002", ready=False)  # the colleague consulted
    steps = [
        (A.HOLD, {}),
        (A.UNHOLD, {}),
        (A.INTERNAL_CALL, {"transfer": TransferTarget(TransferKind.AGENT, "H002")}),
        (A.CANCEL_CONSULT, {}),
        (A.UNHOLD, {}),
        (A.HANG_UP, {"disposition": "sale"}),
    ]
    done: list[tuple[AgentAction, datetime]] = []

    def desk(now: datetime) -> None:
        with system_session() as session:
            seat = svc.get_agent(session=session, agent_id=seat_id)
        if seat.state not in (AgentState.ON_CALL, AgentState.ON_HOLD, AgentState.CONSULTING):
            return
        if len(done) == len(steps) or (done and (now - done[-1][1]).total_seconds() < 3):
            return
        action, extra = steps[len(done)]
        act(
            seat_id,
            svc.command_for(
                action, target=extra.get("transfer"), disposition=extra.get("disposition")
            ),
            now,
        )
        done.append((action, now))

    clock.desks[:] = [desk]
    gw = gateway()
    loop_start = clock.now  # the loop's second 0
    run(client_id, campaign_id, clock, gw, duration_s=40)

    assert [a for a, _ in done] == [a for a, _ in steps]
    assert [kind for kind, _, _ in gw.holds] == ["hold", "unhold", "hold", "unhold"]
    assert len({call for _, call, _ in gw.holds}) == 1
    # each within a tick of the agent's action: hold, unhold, consult (hold), back (unhold)
    moments = [done[0][1], done[1][1], done[2][1], done[4][1]]
    for (_, _, at_s), acted in zip(gw.holds, moments, strict=True):
        lag = at_s - (acted - loop_start).total_seconds()
        assert -0.01 <= lag <= 1.5, (at_s, acted)
    (attempt,) = attempts_of(client_id, campaign_id)
    assert (attempt.disposition, attempt.agent_id) == ("sale", "H001")


def transfer_call(seat_id: uuid.UUID, code: str, now: datetime) -> None:
    """The agent transfers their call to the agent with 工號 ``code``."""
    from dialer.agents import TransferKind, TransferTarget

    act(seat_id, svc.Transfer(target=TransferTarget(TransferKind.AGENT, code)), now)


def test_a_transfer_to_a_ready_colleague_moves_the_call_and_their_disposition_counts(
    live: None,
) -> None:
    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    first = make_agent(client_id, clock, code="T001")
    colleague = make_agent(client_id, clock, code="T002", ready=False)
    transferred: list[datetime] = []

    def desk_first(now: datetime) -> None:
        with system_session() as session:
            seat = svc.get_agent(session=session, agent_id=first)
        if seat.state is AgentState.ON_CALL and not transferred:
            if (now - seat.state_since).total_seconds() < 3:
                return
            act(colleague, svc.GoReady(), now)  # the colleague gets ready, then the transfer
            transfer_call(first, "T002", now)
            transferred.append(now)
        elif seat.state is AgentState.WRAP_UP and transferred:
            act(first, svc.FinishWrap(), now)  # the first agent wraps up on their own

    clock.desks[:] = [desk_first, Desk(colleague, talk_s=4.0, disposition="sale")]
    gw = gateway()
    result = run(client_id, campaign_id, clock, gw, duration_s=40)

    assert transferred
    assert result.transfers == 1
    assert result.abandoned == 0
    (attempt,) = attempts_of(client_id, campaign_id)
    assert attempt.status is AttemptStatus.finished
    assert (attempt.agent_id, attempt.disposition) == ("T002", "sale")
    # the callee was not hung up at the transfer: one hang-up, by the colleague at the end
    assert [by for _, by in gw.hang_ups] == [HangupParty.AGENT]
    kinds = [e.kind for e in events_of(client_id, colleague)]
    assert AgentEventKind.CALL_CONNECTED in kinds
    with system_session() as session:
        assert svc.get_agent(session=session, agent_id=first).state is AgentState.READY


def test_a_transfer_to_a_colleague_who_is_not_ready_ends_the_call_as_before(live: None) -> None:
    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    first = make_agent(client_id, clock, code="U001")
    make_agent(client_id, clock, code="U002", ready=False)
    done: list[bool] = []

    def desk(now: datetime) -> None:
        with system_session() as session:
            seat = svc.get_agent(session=session, agent_id=first)
        if seat.state is AgentState.ON_CALL and not done:
            transfer_call(first, "U002", now)
            done.append(True)

    clock.desks[:] = [desk]
    gw = gateway()
    result = run(client_id, campaign_id, clock, gw, duration_s=30)
    assert result.transfers == 0
    assert [by for _, by in gw.hang_ups] == [HangupParty.AGENT]
    (attempt,) = attempts_of(client_id, campaign_id)
    assert attempt.agent_id == "U001"


@pytest.mark.parametrize("answers", [True, False], ids=["answered", "not answered"])
def test_a_call_transferred_out_leaves_the_agent_to_wrap_up_with_their_disposition(
    live: None, answers: bool
) -> None:
    """The agent transfers the callee to an outside number (e.g. the client's hotline): the
    gateway calls it (no hang-up at the transfer), the agent wraps up at once and their
    disposition is the attempt's; an outside number that does not answer leaves the callee
    on hold with nobody, so the loop hangs it up, never leaving it there."""
    from dialer.agents import TransferKind, TransferTarget

    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    agent = make_agent(client_id, clock, code="X001")
    outside = "+8610955880000"
    moves: list[str] = []

    def desk(now: datetime) -> None:
        with system_session() as session:
            seat = svc.get_agent(session=session, agent_id=agent)
        elapsed = (now - seat.state_since).total_seconds()
        if seat.state is AgentState.ON_CALL and not moves and elapsed >= 3:
            act(agent, svc.Transfer(target=TransferTarget(TransferKind.EXTERNAL, outside)), now)
            moves.append("transfer")
        elif seat.state is AgentState.WRAP_UP and moves == ["transfer"] and elapsed >= 2:
            act(agent, svc.FinishWrap(disposition="sale"), now)
            moves.append("wrapped")

    clock.desks[:] = [desk]
    began = clock.now
    # the outside party talks 60 s: the run, asked to stop at 40 s, waits for that call
    gw = gateway(transfer_answer=1.0 if answers else 0.0, talk=Fixed(60.0))
    result = run(client_id, campaign_id, clock, gw, duration_s=40)

    assert moves == ["transfer", "wrapped"]
    [(call_id, number)] = gw.transfers_out
    assert number == outside
    assert (result.transfers_out, result.transfers_out_failed) == (1, 0 if answers else 1)
    assert result.abandoned == 0
    (attempt,) = attempts_of(client_id, campaign_id)
    assert attempt.status is AttemptStatus.finished
    assert (attempt.agent_id, attempt.disposition) == ("X001", "sale")
    if answers:  # the callee talked on with the outside party: nobody hung up on it
        assert gw.hang_ups == []
        assert gw.inner.calls_in_progress == 0  # it ended by itself, the run waited
        assert (clock.now - began).total_seconds() >= 3 + 4 + 60
    else:  # the outside number was busy: the callee was hung up, not left on hold
        assert gw.hang_ups == [(call_id, HangupParty.SYSTEM)]
        assert gw.inner.calls_in_progress == 0
    with system_session() as session:
        assert svc.get_agent(session=session, agent_id=agent).state is AgentState.READY


# --------------------------------------------------------------------------- manual calls


def due_callback(
    client_id: uuid.UUID, campaign_id: uuid.UUID, code: str, at: datetime
) -> uuid.UUID:
    """Make the campaign's (only) lead a callback of agent ``code``'s, due at ``at``."""
    with tenant_session([client_id]) as session:
        row = session.exec(
            select(CampaignLead).where(CampaignLead.campaign_id == campaign_id)
        ).one()
        row.state = LeadState.scheduled
        row.callback_at = at
        row.callback_agent = code
        row.next_attempt_at = at
        session.add(row)
        return row.id


@dataclass
class ManualDesk:
    """An agent who is not ready (so the pacer launches nothing for them) and dials their due
    callback by hand once the run is under way, then talks and dispositions as Desk does."""

    seat_id: uuid.UUID
    campaign_lead_id: uuid.UUID
    started: datetime
    before_dial: Callable[[datetime], None] | None = None
    desk: Desk | None = None
    dialed: list[datetime] = field(default_factory=list)

    def __call__(self, now: datetime) -> None:
        if not self.dialed and now >= self.started + timedelta(seconds=3):
            with system_session() as session:
                svc.dial_callback(
                    session=session,
                    agent_id=self.seat_id,
                    campaign_lead_id=self.campaign_lead_id,
                    now=now,
                )
            self.dialed.append(now)
            if self.before_dial is not None:
                self.before_dial(now)
            return
        if self.desk is not None:
            self.desk(now)


def test_an_agent_dials_their_due_callback_through_the_pacer_and_gets_the_call(
    live: None,
) -> None:
    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    seat_id = make_agent(client_id, clock, code="M001", ready=False)
    campaign_lead_id = due_callback(
        client_id, campaign_id, "M001", clock.now - timedelta(minutes=5)
    )
    desk = ManualDesk(
        seat_id, campaign_lead_id, clock.now, desk=Desk(seat_id, talk_s=5.0, disposition="sale")
    )
    clock.desks.append(desk)
    gw = gateway(ring_s=2.0)

    result = run(client_id, campaign_id, clock, gw, duration_s=40)

    [attempt] = attempts_of(client_id, campaign_id)
    assert gw.originated == [str(attempt.id)]  # the attempt row came first (RecordingGateway)
    assert attempt.status is AttemptStatus.finished
    assert attempt.disposition == "sale"
    assert attempt.agent_id == "M001"
    assert attempt.agent_connected_at is not None
    assert attempt.dialed_at is not None
    # placed within a tick of the agent's dial
    assert (attempt.dialed_at - desk.dialed[0]).total_seconds() <= 1.5
    # the agent's own call: put through whatever answered, never counted as a paced answer
    assert result.connected == 1
    assert result.live_answers == 0
    assert result.abandoned == 0
    log = log_of(seat_id)
    actions = [e.action for e in log]
    dial = actions.index(A.DIAL)
    assert actions[dial + 1] == A.CONNECT
    assert log[dial].call_id == log[dial + 1].call_id  # the soft-phone keeps its call
    pop = next(e for e in events_of(client_id, seat_id) if e.kind is AgentEventKind.CALL_CONNECTED)
    assert pop.payload["attempt_id"] == str(attempt.id)
    assert pop.payload["params"]["agent_id"] == "M001"
    assert pop.payload["params"]["callee_number"] == attempt.number_dialed
    with tenant_session([client_id]) as session:
        lead = session.get(CampaignLead, campaign_lead_id)
    assert lead is not None
    assert lead.final_disposition == "sale"
    assert lead.attempts == 1


def test_a_busy_manual_call_is_an_attempt_and_the_agent_wraps_up(live: None) -> None:
    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    seat_id = make_agent(client_id, clock, code="M002", ready=False)
    campaign_lead_id = due_callback(
        client_id, campaign_id, "M002", clock.now - timedelta(minutes=5)
    )
    clock.desks.append(ManualDesk(seat_id, campaign_lead_id, clock.now))
    gw = profiled(answer_probability=ProbabilitySchedule.constant(0.0), busy_probability=1.0)

    run(client_id, campaign_id, clock, gw, duration_s=20)

    [attempt] = attempts_of(client_id, campaign_id)
    assert attempt.status is AttemptStatus.finished
    assert attempt.disposition == "busy"
    with system_session() as session:
        seat = svc.get_agent(session=session, agent_id=seat_id)
    assert seat.state is AgentState.WRAP_UP
    failed = [e for e in log_of(seat_id) if e.action is A.CALL_FAILED]
    assert len(failed) == 1
    assert failed[0].reason == "busy"


def test_a_manual_call_the_rules_refuse_is_never_placed_and_the_agent_hears_why(
    live: None,
) -> None:
    from campaigns.compliance import suppress_number

    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    seat_id = make_agent(client_id, clock, code="M003", ready=False)
    campaign_lead_id = due_callback(
        client_id, campaign_id, "M003", clock.now - timedelta(minutes=5)
    )
    with tenant_session([client_id]) as session:
        number = session.get(CampaignLead, campaign_lead_id).phone_e164  # type: ignore[union-attr]

    def opt_out(now: datetime) -> None:
        # the person asked not to be called between the agent's click and the pacer's tick
        with tenant_session([client_id]) as session:
            suppress_number(session=session, client_id=client_id, e164=number, source="api")

    clock.desks.append(ManualDesk(seat_id, campaign_lead_id, clock.now, before_dial=opt_out))
    gw = gateway()

    result = run(client_id, campaign_id, clock, gw, duration_s=20)

    assert gw.originated == []
    assert attempts_of(client_id, campaign_id) == []
    assert result.dials == 0
    [failed] = [e for e in log_of(seat_id) if e.action is A.CALL_FAILED]
    assert failed.reason is not None
    assert "do-not-call" in failed.reason
    with tenant_session([client_id]) as session:
        lead = session.get(CampaignLead, campaign_lead_id)
    assert lead is not None
    assert lead.state is LeadState.final  # a do-not-call number closes the lead


def test_an_agent_who_hangs_up_while_their_call_rings_cancels_it(live: None) -> None:
    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    seat_id = make_agent(client_id, clock, code="M004", ready=False)
    campaign_lead_id = due_callback(
        client_id, campaign_id, "M004", clock.now - timedelta(minutes=5)
    )

    def hang_up_ringing(now: datetime) -> None:
        with system_session() as session:
            seat = svc.get_agent(session=session, agent_id=seat_id)
            if seat.state is AgentState.DIALING and attempts_of(client_id, campaign_id):
                svc.apply_agent_action(
                    session=session, agent_id=seat_id, command=svc.HangUp(), at=now
                )

    desk = ManualDesk(seat_id, campaign_lead_id, clock.now)
    clock.desks += [desk, hang_up_ringing]
    gw = gateway(ring_s=30.0)

    run(client_id, campaign_id, clock, gw, duration_s=20)

    [attempt] = attempts_of(client_id, campaign_id)
    assert attempt.status is AttemptStatus.finished
    assert attempt.disposition == "no_answer"
    assert attempt.hangup_cause == "caller"
    assert attempt.agent_connected_at is None
    assert [by for _, by in gw.hang_ups] == [HangupParty.AGENT]


def test_a_callback_cannot_be_dialed_by_hand_while_no_pacer_runs_the_campaign(
    live: None,
) -> None:
    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    seat_id = make_agent(client_id, clock, code="M005", ready=False)
    campaign_lead_id = due_callback(
        client_id, campaign_id, "M005", datetime.now(UTC) - timedelta(minutes=5)
    )
    with pytest.raises(svc.CallbackNotDialable, match="no pacer"), system_session() as session:
        svc.dial_callback(session=session, agent_id=seat_id, campaign_lead_id=campaign_lead_id)
    with system_session() as session:
        assert svc.get_agent(session=session, agent_id=seat_id).state is AgentState.SIGNED_IN
    assert attempts_of(client_id, campaign_id) == []


# --------------------------------------------------------------------------- preview


def test_preview_mode_shows_the_agent_each_lead_who_dials_or_skips_it(live: None) -> None:
    client_id, campaign_id = make_campaign(leads=2, mode="preview")
    clock = FakeClock()
    seat_id = make_agent(client_id, clock, code="P001")
    talk = Desk(seat_id, talk_s=3.0, wrap_s=1.0, disposition="sale")
    offers: list[str] = []  # the lead of each preview, in order
    seen: set[datetime] = set()  # each preview starts the agent's state anew
    shown_while_dialing: list[AgentEvent | None] = []

    def desk(now: datetime) -> None:
        with system_session() as session:
            seat = svc.get_agent(session=session, agent_id=seat_id)
            agent = svc.agent_from_seat(seat)
            if seat.state is AgentState.DIALING:
                shown_while_dialing.append(svc.current_pop(session=session, seat=seat))
        if seat.state is not AgentState.PREVIEWING or seat.state_since in seen:
            talk(now)
            return
        seen.add(seat.state_since)
        assert agent.lead_id is not None
        offers.append(agent.lead_id)
        commands: list[svc.AgentCommand] = [svc.Dial()]
        if len(offers) == 2:
            commands = [svc.SkipPreview(reason="wrong person")]
        elif len(offers) > 2:  # the skipped lead, offered again: enough for today
            commands = [svc.SkipPreview(), svc.GoNotReady(reason="break")]
        with system_session() as session:
            for command in commands:
                svc.apply_agent_action(session=session, agent_id=seat_id, command=command, at=now)

    clock.desks.append(desk)
    gw = gateway(ring_s=2.0)

    result = run(client_id, campaign_id, clock, gw, duration_s=40)

    [attempt] = attempts_of(client_id, campaign_id)  # only the lead the agent dialed
    assert gw.originated == [str(attempt.id)]
    assert str(attempt.lead_id) == offers[0]
    assert attempt.disposition == "sale"
    assert attempt.agent_id == "P001"
    assert result.connected == 1
    assert result.live_answers == 0  # the agent's own call, never at risk of abandon
    assert offers[2] == offers[1] != offers[0]  # a skipped lead goes back to the hopper
    # while the call rings, the agent's screen still shows the lead they previewed
    assert shown_while_dialing
    assert all(p is not None for p in shown_while_dialing)
    assert {p.kind for p in shown_while_dialing if p} == {AgentEventKind.PREVIEW_OFFERED}
    assert {p.payload["lead"]["id"] for p in shown_while_dialing if p} == {offers[0]}
    with tenant_session([client_id]) as session:
        skipped = session.exec(
            select(CampaignLead).where(CampaignLead.lead_id == uuid.UUID(offers[1]))
        ).one()
    assert skipped.attempts == 0
    assert skipped.state is LeadState.new
    assert skipped.lease_token is None
    pops = [e for e in events_of(client_id, seat_id) if e.kind is AgentEventKind.PREVIEW_OFFERED]
    assert len(pops) == 3
    assert pops[0].payload["lead"]["attributes"]["product"] == "智慧電表"
    assert pops[0].payload["params"]["agent_id"] == "P001"
    assert pops[0].payload["script"]["campaign_id"] == str(campaign_id)


def test_a_preview_left_open_when_dialing_stops_goes_back_to_the_hopper(live: None) -> None:
    client_id, campaign_id = make_campaign(leads=1, mode="preview")
    clock = FakeClock()
    seat_id = make_agent(client_id, clock, code="P002")  # looks and never decides

    result = run(client_id, campaign_id, clock, gateway(), duration_s=10)

    assert result.stopped_because == "end of the requested duration"
    assert attempts_of(client_id, campaign_id) == []
    actions = [e.action for e in log_of(seat_id)]
    assert actions[-2:] == [A.OFFER_PREVIEW, A.SKIP_PREVIEW]
    assert log_of(seat_id)[-1].reason == "dialing stopped"
    with tenant_session([client_id]) as session:
        row = session.exec(
            select(CampaignLead).where(CampaignLead.campaign_id == campaign_id)
        ).one()
    assert row.lease_token is None
    assert row.state is LeadState.new


def test_a_preview_looked_at_too_long_is_dialed_for_the_agent(live: None) -> None:
    client_id, campaign_id = make_campaign(
        leads=1, mode="preview", pacing_params={"preview_dial_after_s": 5.0}
    )
    clock = FakeClock()
    seat_id = make_agent(client_id, clock, code="P003")  # looks and never decides
    clock.desks.append(Desk(seat_id, talk_s=2.0, disposition="sale"))

    run(client_id, campaign_id, clock, gateway(ring_s=2.0), duration_s=30)

    [attempt] = attempts_of(client_id, campaign_id)
    assert attempt.agent_id == "P003"
    assert attempt.disposition == "sale"
    log = log_of(seat_id)
    offered = next(e for e in log if e.action is A.OFFER_PREVIEW)
    dialed = next(e for e in log if e.action is A.DIAL)
    assert dialed.reason == "preview timed out"
    waited = (dialed.at - offered.at).total_seconds()
    assert 5.0 <= waited <= 6.5


def test_a_transfer_to_a_skill_group_goes_to_its_longest_ready_agent_this_loop_reaches(
    live: None,
) -> None:
    from dialer.agents import TransferKind, TransferTarget

    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    first = make_agent(client_id, clock, code="G001")
    # retention agents: one only in retention (this campaign's loop has no phone leg to them),
    # one also in sales (its phone is connected by this loop)
    elsewhere = make_agent(client_id, clock, code="R001", ready=False, group="retention")
    both = make_agent(client_id, clock, code="R002", ready=False, group="retention")
    with system_session() as session:
        svc.update_agent(
            session=session,
            agent_id=both,
            agent_in=AgentUpdate(skill_groups=["sales", "retention"]),
        )
    transferred: list[datetime] = []

    def desk_first(now: datetime) -> None:
        with system_session() as session:
            seat = svc.get_agent(session=session, agent_id=first)
        if seat.state is AgentState.ON_CALL and not transferred:
            if (now - seat.state_since).total_seconds() < 3:
                return
            with system_session() as session:  # retention gets ready, R001 longest
                for agent in (elsewhere, both):
                    svc.apply_agent_action(
                        session=session, agent_id=agent, command=svc.GoReady(), at=now
                    )
                svc.apply_agent_action(
                    session=session,
                    agent_id=first,
                    command=svc.Transfer(
                        target=TransferTarget(TransferKind.SKILL_GROUP, "retention")
                    ),
                    at=now,
                )
            transferred.append(now)
        elif seat.state is AgentState.WRAP_UP and transferred:
            act(first, svc.FinishWrap(), now)

    clock.desks[:] = [desk_first, Desk(both, talk_s=4.0, disposition="sale")]
    gw = gateway()
    result = run(client_id, campaign_id, clock, gw, duration_s=40)

    assert transferred
    assert result.transfers == 1
    (attempt,) = attempts_of(client_id, campaign_id)
    assert (attempt.agent_id, attempt.disposition) == ("R002", "sale")
    assert [by for _, by in gw.hang_ups] == [HangupParty.AGENT]  # not hung up at the transfer
    pop = next(e for e in events_of(client_id, both) if e.kind is AgentEventKind.CALL_CONNECTED)
    assert pop.payload["params"]["skill_group"] == "retention"  # 技能組 follows the transfer
    assert pop.payload["params"]["agent_id"] == "R002"
    with system_session() as session:
        assert svc.get_agent(session=session, agent_id=elsewhere).state is AgentState.READY


def test_a_typed_number_that_is_a_waiting_lead_is_placed_by_the_campaigns_pacer(
    live: None,
) -> None:
    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    seat_id = make_agent(client_id, clock, code="N001", ready=False)
    other = make_agent(client_id, clock, code="N002", ready=False)
    started = clock.now
    dialed: list[str] = []

    def typist(now: datetime) -> None:
        if dialed or now < started + timedelta(seconds=3):
            return
        with system_session() as session:
            # the lead's own number, as an agent types it; and a number that is no lead
            for seat, number in ((seat_id, "139 0000 0000"), (other, "139 8888 7777")):
                outcome = svc.apply_agent_action(
                    session=session,
                    agent_id=seat,
                    command=svc.Dial(number=number, client_id=client_id),
                    at=now,
                )
                dialed.append(str(outcome.log.details.get("campaign_lead_id")))

    clock.desks += [typist, Desk(seat_id, talk_s=3.0, disposition="sale")]
    gw = gateway(ring_s=2.0)

    run(client_id, campaign_id, clock, gw, duration_s=30)

    [attempt] = attempts_of(client_id, campaign_id)
    assert gw.originated == [str(attempt.id)]  # the typed lead only
    assert attempt.number_dialed == "+8613900000000"
    assert (attempt.agent_id, attempt.disposition) == ("N001", "sale")
    with tenant_session([client_id]) as session:
        row = session.exec(
            select(CampaignLead).where(CampaignLead.campaign_id == campaign_id)
        ).one()
    assert dialed == [str(row.id), "None"]
    with system_session() as session:  # the other number is the soft-phone's only
        assert svc.get_agent(session=session, agent_id=other).state is AgentState.DIALING


# --------------------------------------------------------------------------- consult, three-way


def consulting_desk(
    seat_id: uuid.UUID, colleague: uuid.UUID, code: str, *, then: str
) -> Callable[[datetime], None]:
    """An agent who, 3 s into the call, consults agent ``code``; once the colleague has the
    call on their soft-phone (2 s later), ``then`` is ``three_way`` (and hangs up 2 s into it)
    or ``cancel`` (takes the call back and talks on); wraps up on their own."""
    from dialer.agents import TransferKind, TransferTarget

    done: list[str] = []

    def desk(now: datetime) -> None:
        with system_session() as session:
            seat = svc.get_agent(session=session, agent_id=seat_id)
            other = svc.get_agent(session=session, agent_id=colleague)
        elapsed = (now - seat.state_since).total_seconds()
        command: svc.AgentCommand | None = None
        if seat.state is AgentState.ON_CALL and not done and elapsed >= 3:
            target = TransferTarget(TransferKind.AGENT, code)
            command = svc.InternalCall(target=target)
            done.append("consult")
        elif seat.state is AgentState.CONSULTING and other.state is AgentState.ON_CALL:
            if elapsed >= 2:
                command = svc.ThreeWay() if then == "three_way" else svc.CancelConsult()
                done.append(then)
        elif seat.state is AgentState.CONFERENCE and elapsed >= 2:
            command = svc.HangUp()
            done.append("left")
        elif seat.state is AgentState.ON_HOLD:
            command = svc.Unhold()
        elif seat.state is AgentState.ON_CALL and "cancel" in done and elapsed >= 2:
            command = svc.HangUp(disposition="sale")
            done.append("hung up")
        elif seat.state is AgentState.WRAP_UP:
            command = svc.FinishWrap()
        if command is not None:
            act(seat_id, command, now)

    return desk


def test_a_consulted_colleague_joins_a_three_way_call_and_keeps_it_when_the_agent_leaves(
    live: None,
) -> None:
    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    first = make_agent(client_id, clock, code="C001")
    clock.now += timedelta(seconds=1)
    colleague = make_agent(client_id, clock, code="C002")
    clock.desks[:] = [
        consulting_desk(first, colleague, "C002", then="three_way"),
        Desk(colleague, talk_s=12.0, disposition="sale"),
    ]
    gw = gateway()

    result = run(client_id, campaign_id, clock, gw, duration_s=40)

    (attempt,) = attempts_of(client_id, campaign_id)
    assert (attempt.agent_id, attempt.disposition) == ("C002", "sale")
    assert result.transfers == 1
    assert [agent for _, agent in gw.conferences] == ["C002"]
    assert [h[0] for h in gw.holds] == ["hold", "unhold"]  # held while consulting
    assert [by for _, by in gw.hang_ups] == [HangupParty.AGENT]  # the colleague, at the end
    pop = next(
        e for e in events_of(client_id, colleague) if e.kind is AgentEventKind.CALL_CONNECTED
    )
    assert pop.payload["attempt_id"] == str(attempt.id)
    assert pop.payload["params"]["agent_id"] == "C002"


def test_a_cancelled_consultation_releases_the_colleague(live: None) -> None:
    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    first = make_agent(client_id, clock, code="C003")
    clock.now += timedelta(seconds=1)
    colleague = make_agent(client_id, clock, code="C004")
    clock.desks[:] = [consulting_desk(first, colleague, "C004", then="cancel")]
    gw = gateway()

    result = run(client_id, campaign_id, clock, gw, duration_s=40)

    (attempt,) = attempts_of(client_id, campaign_id)
    assert (attempt.agent_id, attempt.disposition) == ("C003", "sale")
    assert result.transfers == 0
    assert gw.conferences == []
    released = [e for e in log_of(colleague) if e.reason == "consult ended"]
    assert [e.action for e in released] == [A.HANG_UP]
    assert [h[0] for h in gw.holds] == ["hold", "unhold"]


# --------------------------------------------------------------------------- hand back to the IVR


def test_an_agent_hands_the_callee_back_to_the_ivr_which_finishes_the_interview(
    live: None,
) -> None:
    """人工轉自動: a survey campaign's agent greets the callee, then hands them to the IVR; the
    gateway takes the call from the agent (free for the next call), the questionnaire is
    asked by the IVR, and the attempt gets the interview's disposition."""
    from survey_builders import agentless_campaign

    from campaigns.models import PacingMode as CampaignPacingMode
    from dialer.respondents import RespondentPrompt, RespondentReply
    from surveys.models import Interview

    client_id, campaign_id = agentless_campaign(["+8613900000001"])
    with tenant_session([client_id]) as session:  # agents run this one
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        campaign.pacing_mode = CampaignPacingMode.progressive
        campaign.skill_group = "sales"
        session.add(campaign)
    clock = FakeClock()
    seat_id = make_agent(client_id, clock, code="H001")
    handed: list[datetime] = []

    def desk(now: datetime) -> None:
        with system_session() as session:
            seat = svc.get_agent(session=session, agent_id=seat_id)
            elapsed = (now - seat.state_since).total_seconds()
            if seat.state is AgentState.ON_CALL and elapsed >= 3 and not handed:
                svc.apply_agent_action(
                    session=session, agent_id=seat_id, command=svc.HandToIvr(), at=now
                )
                handed.append(now)
            elif seat.state is AgentState.WRAP_UP and elapsed >= 1:
                svc.apply_agent_action(
                    session=session, agent_id=seat_id, command=svc.FinishWrap(), at=now
                )

    def keys(prompt: RespondentPrompt) -> RespondentReply:
        return RespondentReply("1" if prompt.prompt_index == 1 else "42#", 2.0)

    clock.desks.append(desk)
    gw = profiled(message_time=Fixed(3.0), respondent=keys)

    result = run(client_id, campaign_id, clock, gw, duration_s=60)

    assert handed
    (attempt,) = attempts_of(client_id, campaign_id)
    assert len(gw.detached) == 1
    assert attempt.status is AttemptStatus.finished
    assert attempt.disposition == "complete"  # the interview's end, not the agent's wrap-up
    assert attempt.agent_id == "H001"
    assert attempt.hangup_cause == "system"  # the IVR's goodbye hung up
    assert result.interviews_stored == 1
    with tenant_session([client_id]) as session:
        [interview] = session.exec(select(Interview)).all()
    assert interview.call_id == str(attempt.id)
    assert interview.status.value == "completed"
    with system_session() as session:  # the agent is free again
        assert svc.get_agent(session=session, agent_id=seat_id).state is AgentState.READY


def test_a_second_consultation_on_the_same_call_reserves_its_colleague(live: None) -> None:
    """The first colleague asked is not ready (nobody reserved); after taking the call back,
    the agent consults a ready one, who is reserved and keeps the call when the agent leaves."""
    from dialer.agents import TransferKind, TransferTarget

    client_id, campaign_id = make_campaign(leads=1)
    clock = FakeClock()
    first = make_agent(client_id, clock, code="C005")
    busy = make_agent(client_id, clock, code="C006", ready=False)
    clock.now += timedelta(seconds=1)
    ready = make_agent(client_id, clock, code="C007")
    asked: list[str] = []

    def desk(now: datetime) -> None:
        with system_session() as session:
            seat = svc.get_agent(session=session, agent_id=first)
            other = svc.get_agent(session=session, agent_id=ready)
        elapsed = (now - seat.state_since).total_seconds()
        command: svc.AgentCommand | None = None
        if seat.state is AgentState.ON_CALL and elapsed >= 2 and len(asked) < 2:
            code = "C006" if not asked else "C007"
            command = svc.InternalCall(target=TransferTarget(TransferKind.AGENT, code))
            asked.append(code)
        elif seat.state is AgentState.CONSULTING and asked == ["C006"] and elapsed >= 2:
            command = svc.CancelConsult()
        elif seat.state is AgentState.ON_HOLD:
            command = svc.Unhold()
        elif seat.state is AgentState.CONSULTING and other.state is AgentState.ON_CALL:
            command = svc.HangUp()  # the colleague has it: an attended transfer
        elif seat.state is AgentState.WRAP_UP:
            command = svc.FinishWrap()
        if command is not None:
            act(first, command, now)

    clock.desks[:] = [desk, Desk(ready, talk_s=6.0, disposition="sale")]
    result = run(client_id, campaign_id, clock, gateway(), duration_s=60)

    assert asked == ["C006", "C007"]
    (attempt,) = attempts_of(client_id, campaign_id)
    assert (attempt.agent_id, attempt.disposition) == ("C007", "sale")
    assert result.transfers == 1
    with system_session() as session:
        assert svc.get_agent(session=session, agent_id=busy).state is AgentState.SIGNED_IN


def test_a_callback_in_a_preview_campaign_is_shown_to_its_agent(live: None) -> None:
    client_id, campaign_id = make_campaign(leads=2, mode="preview")
    clock = FakeClock()
    longest = make_agent(client_id, clock, code="P010")
    clock.now += timedelta(seconds=1)
    theirs = make_agent(client_id, clock, code="P011")
    with tenant_session([client_id]) as session:  # one lead is a due callback of P011's
        row = session.exec(
            select(CampaignLead).where(CampaignLead.campaign_id == campaign_id)
        ).first()
        assert row is not None
        row.state = LeadState.scheduled
        row.callback_at = row.next_attempt_at = datetime.now(UTC) - timedelta(minutes=5)
        row.callback_agent = "P011"
        session.add(row)
        callback_lead = str(row.lead_id)

    run(client_id, campaign_id, clock, gateway(), duration_s=5)

    def shown(seat_id: uuid.UUID) -> str:
        [offer] = [
            e for e in events_of(client_id, seat_id) if e.kind is AgentEventKind.PREVIEW_OFFERED
        ]
        return str(offer.payload["lead"]["id"])

    assert shown(theirs) == callback_lead
    assert shown(longest) != callback_lead  # the longest-ready agent gets the other lead
