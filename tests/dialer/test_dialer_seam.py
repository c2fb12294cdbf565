"""One telephony seam: nothing outside a gateway talks to its private parts, and the
simulator runs the same day on any gateway that implements the public Protocol."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dialer.gateway import (
    Answered,
    AnswerKind,
    Busy,
    CallParameters,
    ConnectedToAgent,
    DtmfReceived,
    Failed,
    FailureCause,
    GatewayEvent,
    HangupParty,
    HungUp,
    MessageFinished,
    NoAnswer,
    OriginateRequest,
    Ringing,
    TelephonyGateway,
)
from dialer.pacing import PacingSnapshot
from dialer.scenario import parse_scenario
from dialer.simgateway import GatewayProfile, ProbabilitySchedule, SimulatedGateway
from dialer.simulator import CallRecord, Simulation

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("dialer", "campaigns", "surveys", "api", "benchmarks")
GATEWAY_MODULES = ("dialer.gateway", "dialer.simgateway", "dialer.sip")


def _module_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _gateway_of(module: str) -> str | None:
    return next(
        (g for g in GATEWAY_MODULES if module == g or module.startswith(g + ".")),
        None,
    )


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def seam_violations(source: str, module: str) -> list[str]:
    """Private names of gateway modules imported, and private attributes of objects named
    like a gateway used, by ``module`` (a gateway's own package may use its own)."""
    own = _gateway_of(module)
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            target = _gateway_of(node.module)
            if target is not None and target != own:
                found += [
                    f"{module}:{node.lineno} imports {alias.name} from {node.module}"
                    for alias in node.names
                    if _private(alias.name)
                ]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                target = _gateway_of(alias.name)
                parts = alias.name.split(".")
                if target is not None and target != own and any(map(_private, parts)):
                    found.append(f"{module}:{node.lineno} imports {alias.name}")
        elif isinstance(node, ast.Attribute) and _private(node.attr) and own is None:
            holder = node.value
            name = (
                holder.id
                if isinstance(holder, ast.Name)
                else holder.attr
                if isinstance(holder, ast.Attribute)
                else ""
            )
            if "gateway" in name.lower():
                found.append(f"{module}:{node.lineno} uses {name}.{node.attr}")
    return found


def test_no_module_reaches_into_a_gateways_private_parts():
    violations: list[str] = []
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            violations += seam_violations(path.read_text(), _module_of(path))
    assert violations == []


@pytest.mark.parametrize(
    "source",
    [
        "from dialer.simgateway import _BUSY, GatewayProfile",
        "from dialer.simgateway import _Call as GatewayCall",
        "from dialer.sip.transport import _parse",
        "import dialer.simgateway._internal",
        "def f(self):\n    return self.gateway._due(3.0)",
        "def f(gateway):\n    gateway._dial(0.0, 25.0, None)",
        "def f(sim):\n    sim.gateway._bridge('c', 'a', None, 1.0)",
    ],
)
def test_the_scan_finds_each_kind_of_private_use(source):
    assert seam_violations(source, "dialer.simulator")


def test_the_scan_allows_public_use_and_a_gateways_own_internals():
    public = (
        "from dialer.simgateway import GatewayProfile, SimulatedGateway\n"
        "def f(self):\n    self.gateway.poll(3.0)\n    self._gateway_at = 1\n"
    )
    assert seam_violations(public, "dialer.simulator") == []
    assert seam_violations("from dialer.sip.transport import _parse", "dialer.sip.ua") == []


# -- the simulator on a gateway it only knows by the Protocol ------------------------------


class ProtocolOnly:
    """Any gateway, as far as the simulation can tell: the Protocol's methods and nothing
    else (no attribute of the simulated gateway behind it is reachable)."""

    __slots__ = ("_inner", "calls")

    def __init__(self, inner: SimulatedGateway) -> None:
        self._inner = inner
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def originate(self, request: OriginateRequest, *, now: float) -> str:
        self._count("originate")
        assert request.params.callee_number, "a real gateway needs the number to dial"
        return self._inner.originate(request, now=now)

    def hang_up(self, call_id: str, *, now: float, by: HangupParty = HangupParty.SYSTEM) -> None:
        self._count("hang_up")
        self._inner.hang_up(call_id, now=now, by=by)

    def connect_to_agent(
        self, call_id: str, *, agent_id: str, skill_group: str | None, now: float
    ) -> None:
        self._count("connect_to_agent")
        self._inner.connect_to_agent(call_id, agent_id=agent_id, skill_group=skill_group, now=now)

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
        self._count("play_message")
        self._inner.play_message(
            call_id, message_id, now=now, expect_dtmf=expect_dtmf, text=text, language=language
        )

    def send_dtmf(self, call_id: str, digits: str, *, now: float) -> None:
        self._inner.send_dtmf(call_id, digits, now=now)

    def hold(self, call_id: str, *, now: float) -> None:
        self._count("hold")
        self._inner.hold(call_id, now=now)

    def unhold(self, call_id: str, *, now: float) -> None:
        self._count("unhold")
        self._inner.unhold(call_id, now=now)

    def transfer_to_agent(
        self, call_id: str, *, agent_id: str, skill_group: str | None, now: float
    ) -> None:
        self._count("transfer_to_agent")
        self._inner.transfer_to_agent(call_id, agent_id=agent_id, skill_group=skill_group, now=now)

    def conference(self, call_id: str, *, agent_id: str, now: float) -> None:
        self._count("conference")
        self._inner.conference(call_id, agent_id=agent_id, now=now)

    def detach_agents(self, call_id: str, *, now: float) -> None:
        self._count("detach_agents")
        self._inner.detach_agents(call_id, now=now)

    def transfer_out(self, call_id: str, number: str, *, now: float) -> None:
        self._count("transfer_out")
        self._inner.transfer_out(call_id, number, now=now)

    def connect_agent_phone(self, agent_id: str, address: str, *, now: float) -> None:
        self._count("connect_agent_phone")
        self._inner.connect_agent_phone(agent_id, address, now=now)

    def release_agent_phone(self, agent_id: str, *, now: float) -> None:
        self._inner.release_agent_phone(agent_id, now=now)

    def end_left_calls(self, handles: Sequence[str], *, now: float) -> list[bool]:
        self._count("end_left_calls")
        return self._inner.end_left_calls(handles, now=now)

    def next_event_time(self) -> float | None:
        return self._inner.next_event_time()

    def poll(self, until: float) -> list[GatewayEvent]:
        self._count("poll")
        return self._inner.poll(until)


@dataclass
class Sink:
    records: list[CallRecord] = field(default_factory=list)

    def call_finished(self, record: CallRecord) -> None:
        self.records.append(record)


DAY = {
    "duration_s": 1800,
    "answer_probability": 0.3,
    "talk_time_s": {"dist": "lognormal", "mean": 90, "sd": 60},
}


@pytest.mark.parametrize(
    ("extra", "with_sink"),
    [
        ({"agents": 20, "seed": 1}, False),
        ({"agents": 8, "seed": 2, "mode": "progressive"}, True),
        ({"agents": 10, "seed": 3, "amd_policy": "leave_message"}, False),
        ({"agents": 6, "seed": 4, "mode": "preview"}, True),
        ({"agents": 1, "seed": 5, "mode": "agentless", "agentless_lines": 6}, False),
    ],
)
def test_the_same_day_on_a_gateway_known_only_by_the_protocol(extra, with_sink):
    scenario = parse_scenario({**DAY, **extra})
    own_sink, other_sink = (Sink(), Sink()) if with_sink else (None, None)
    own = Simulation(scenario, outcome_sink=own_sink)
    expected = own.run()
    # A fresh simulated gateway as the run builds it (with ringing on when it keeps records).
    inner = Simulation(scenario, outcome_sink=Sink() if with_sink else None).gateway
    assert isinstance(inner, SimulatedGateway)
    gateway = ProtocolOnly(inner)
    assert isinstance(gateway, TelephonyGateway)
    result = Simulation(scenario, outcome_sink=other_sink, gateway=gateway).run()
    assert result == expected
    assert gateway.calls["originate"] == expected.dials
    assert gateway.calls["poll"] > 0
    if own_sink is not None and other_sink is not None:
        assert other_sink.records == own_sink.records


# -- the simulated gateway's events are the Protocol's own ---------------------------------


def test_fast_built_events_equal_the_dataclasses_they_are():
    profile = GatewayProfile(
        answer_probability=ProbabilitySchedule.constant(0.5),
        machine_probability=0.2,
        busy_probability=0.1,
        failure_probability=0.1,
        failure_causes=((FailureCause.INVALID_NUMBER, 1.0), (FailureCause.DECLINED, 1.0)),
        amd_delay_s=0.7,
    )
    gateway = SimulatedGateway(profile, seed=3)
    params = CallParameters("+861080000000", "+8613800000001", None, "sales")
    calls = [
        gateway.originate(OriginateRequest("c", f"l{i}", f"a{i}", params), now=0.0)
        for i in range(60)
    ]
    seen: dict[type, int] = {}
    for t in (5.0, 10.0, 20.0, 30.0, 400.0, 1000.0):
        for event in gateway.poll(t):
            seen[type(event)] = seen.get(type(event), 0) + 1
            assert isinstance(event, type(event))
            values = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
            assert event == type(event)(**values)
            assert hash(event) == hash(type(event)(**values))
            with pytest.raises(dataclasses.FrozenInstanceError):
                event.at_s = 0.0  # type: ignore[misc]
            if isinstance(event, Answered):
                assert event.media_answer_s is not None
                assert event.at_s == pytest.approx(event.media_answer_s + 0.7)
                if event.kind is AnswerKind.HUMAN and event.call_id in calls:
                    gateway.connect_to_agent(
                        event.call_id, agent_id="A1", skill_group=None, now=event.at_s
                    )
                else:
                    gateway.play_message(event.call_id, "m", now=event.at_s, expect_dtmf=True)
    assert {NoAnswer, Busy, Failed, Ringing, Answered, ConnectedToAgent, HungUp} <= set(seen)
    assert {MessageFinished} <= set(seen) or {DtmfReceived} <= set(seen)


class AskForEverything:
    def calls_to_launch(self, snapshot: PacingSnapshot) -> int:
        return 50


def test_the_safe_harbour_clock_starts_at_the_network_answer_not_the_amd_verdict():
    # One agent and far too many calls: most live answers wait and are abandoned. Detection
    # takes 1.5 s, so the 2-second grace leaves 0.5 s after the verdict.
    scenario = parse_scenario(
        {**DAY, "agents": 1, "seed": 6, "abandon_target": 1.0, "answer_probability": 0.6}
    )
    delayed = Simulation(scenario, AskForEverything(), outcome_sink=Sink())
    assert isinstance(delayed.gateway, SimulatedGateway)
    profile = dataclasses.replace(delayed.gateway.profile, amd_delay_s=1.5)
    sink = Sink()
    Simulation(
        scenario,
        AskForEverything(),
        outcome_sink=sink,
        gateway=SimulatedGateway(profile, seed=scenario.seed),
    ).run()
    abandoned = [r for r in sink.records if r.abandoned]
    assert len(abandoned) > 20
    message_s = 6.0  # the simulated safe-harbour message's length
    for record in abandoned:
        assert record.answered_s is not None
        # answered at the network answer; the message starts 2 s after it, then plays
        assert record.ended_s - record.answered_s == pytest.approx(
            scenario.abandon_grace_s + message_s
        )
