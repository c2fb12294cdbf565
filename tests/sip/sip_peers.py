"""Real SIP peers on 127.0.0.1 for the SIP gateway's tests: SIPp callees, tones, free ports.

Without ``sipp`` (or ``baresip``) the tests that need it skip, saying what to install; with
``CI=true`` they fail instead (CI installs them in ``.ci/run``). Every peer gets free ports
of its own, so tests can run in parallel (pytest-xdist).
"""

from __future__ import annotations

import math
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dialer.gateway import CallParameters, GatewayEvent, OriginateRequest
from dialer.sip.gateway import SipGateway

IN_CI = os.environ.get("CI", "").lower() == "true"
SCENARIOS = Path(__file__).parent / "scenarios"


def need(tool: str, package: str) -> None:
    """Skip (fail under CI=true) when ``tool`` is not on PATH."""
    if shutil.which(tool) is None:
        message = f"{tool} is not installed: apt-get install {package}"
        if IN_CI:
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)


def free_port(kind: int = socket.SOCK_DGRAM, pair: bool = False) -> int:
    """A port free for UDP (and TCP), even and with its odd neighbour free when ``pair``."""
    for _ in range(200):
        # Below Linux's ephemeral range (32768-60999): a port the kernel hands out for
        # outgoing connections (every PostgreSQL and Redis client of a parallel test) could be
        # taken between this probe and the peer's own bind.
        port = random.randrange(10_000, 32_000)
        if pair and port % 2:
            port += 1
        try:
            socks = []
            for p in (port, port + 1, port + 2, port + 3) if pair else (port,):
                for k in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(socket.AF_INET, k)
                    socks.append(s)
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return port
    raise RuntimeError("no free port found")


def rtp_range(legs: int = 2) -> tuple[int, int]:
    """A range of free even RTP ports for a gateway with ``legs`` call legs at once."""
    for _ in range(50):
        base = free_port(pair=True)  # base .. base+3 are free
        socks: list[socket.socket] = []
        try:
            for port in range(base + 4, base + 2 * legs):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return (base, base + 2 * max(legs, 2))
    raise RuntimeError("no free RTP port range")


@dataclass
class Sipp:
    """One SIPp UAS process playing a scenario file."""

    scenario: str
    port: int
    media_port: int
    keys: dict[str, str]
    workdir: Path
    calls: int = 1
    echo: bool = True
    transport: str = "u1"
    timeout_s: int = 40  # SIPp's whole run
    proc: subprocess.Popen[bytes] | None = None
    extra: list[str] = field(default_factory=list)

    def start(self) -> Sipp:
        # SIPp reads status codes when it loads a scenario, before keyword substitution:
        # %name% placeholders are filled in here, into a copy in the test's directory.
        text = (SCENARIOS / self.scenario).read_text()
        for key, value in self.keys.items():
            text = text.replace(f"%{key}%", value)
        scenario = self.workdir / f"{self.port}-{self.scenario}"
        scenario.write_text(text)
        args = [
            "sipp", "-sf", str(scenario), "-i", "127.0.0.1",
            "-p", str(self.port), "-mp", str(self.media_port), "-m", str(self.calls),
            "-t", self.transport, "-nostdin", "-timeout", f"{self.timeout_s}s", "-timeout_error",
            "-trace_err", "-error_file", str(self.workdir / f"sipp-{self.port}-err.log"),
            "-trace_stat", "-stf", str(self.workdir / f"sipp-{self.port}-stat.csv"),
            "-max_recv_loops", "10000",
        ]  # fmt: skip
        if self.echo:
            args.append("-rtp_echo")
        keys = dict(self.keys)
        args += ["-d", keys.pop("pause_ms", "200")]  # what a bare <pause/> waits
        for key, value in keys.items():
            args += ["-key", key, value]
        args += self.extra
        with open(self.workdir / f"sipp-{self.port}.stderr", "wb") as stderr:
            self.proc = subprocess.Popen(
                args,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        time.sleep(0.3)
        assert self.proc.poll() is None, self.errors()
        return self

    def wait(self, timeout: float = 30.0) -> int:
        """SIPp's exit code (0: every call followed the scenario; 1: some failed)."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9

    def errors(self) -> str:
        texts = []
        for path in self.workdir.glob(f"sipp-{self.port}*"):
            if path.suffix in (".log", ".stderr"):
                texts.append(path.read_text(errors="replace")[-3000:])
        return "\n".join(texts)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Clock:
    """The caller's clock: seconds since the test started."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.start


def wait_for(
    gw: SipGateway,
    done: Callable[[list[GatewayEvent]], bool],
    *,
    timeout: float = 15.0,
    into: list[GatewayEvent] | None = None,
) -> list[GatewayEvent]:
    """Poll the gateway until ``done(events so far)``; returns all events polled."""
    events = into if into is not None else []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events.extend(gw.poll(gw.clock()))
        if done(events):
            return events
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting; events so far: {events}")


def bridged_call(
    gw: SipGateway, address: str, *, agent_id: str = "S001"
) -> tuple[str, list[GatewayEvent]]:
    """Sign the agent's phone at ``address`` in, place a call and bridge it to them once it
    is answered: (call id, the events so far)."""
    from dialer.gateway import AgentLegEvent, AgentLegState, Answered, ConnectedToAgent

    gw.connect_agent_phone(agent_id, address, now=gw.clock())
    events = wait_for(gw, lambda es: any(isinstance(e, AgentLegEvent) for e in es))
    leg = next(e for e in events if isinstance(e, AgentLegEvent))
    assert leg.state is AgentLegState.CONNECTED, leg
    call_id = gw.originate(request(), now=gw.clock())
    wait_for(gw, lambda es: any(isinstance(e, Answered) for e in es), into=events)
    gw.connect_to_agent(call_id, agent_id=agent_id, skill_group="sales", now=gw.clock())
    wait_for(gw, lambda es: any(isinstance(e, ConnectedToAgent) for e in es), into=events)
    return call_id, events


def tone(path: Path, freq: float, seconds: float = 2.0) -> Path:
    """Write an 8 kHz mono 16-bit sine tone (what sox would make, without needing it)."""
    n = int(8000 * seconds)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        frames = bytearray()
        for i in range(n):
            value = int(12000 * math.sin(2 * math.pi * freq * i / 8000))
            frames += value.to_bytes(2, "little", signed=True)
        wav.writeframes(bytes(frames))
    return path


def energy_at(samples: list[int], freq: float, rate: int = 8000) -> float:
    """Relative energy of ``samples`` at ``freq`` (Goertzel), normalised by total energy."""
    if not samples:
        return 0.0
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    total = sum(x * x for x in samples) or 1.0
    return power / (total * len(samples) / 2)


def read_wav(path: Path) -> list[int]:
    """The samples of a 16-bit mono WAV."""
    with wave.open(str(path), "rb") as wav:
        data = wav.readframes(wav.getnframes())
    return [int.from_bytes(data[i : i + 2], "little", signed=True) for i in range(0, len(data), 2)]


@dataclass
class Baresip:
    """A baresip phone answering automatically on 127.0.0.1, playing ``source`` (a WAV) and
    dumping what it hears (``dump-*-dec.wav``) and sends into ``workdir/rec``."""

    workdir: Path
    source: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    registrar: int | None = None  # register as 1001 to a registrar on this port
    user: str = "agent"  # the account's user: a trunk's INVITE for another user gets a 404

    @property
    def address(self) -> str:
        if self.registrar is not None:
            return f"sip:1001@127.0.0.1:{self.registrar}"  # reached through the proxy
        return f"sip:{self.user}@127.0.0.1:{self.port}"

    def start(self, tries: int = 3) -> Baresip:
        for attempt in range(tries):
            try:
                return self._start()
            except AssertionError:
                if attempt == tries - 1 or "Address already in use" not in self.log():
                    raise
                self.stop()  # a port taken between the probe and baresip's bind: new ports
        raise AssertionError("unreachable")

    def _start(self) -> Baresip:
        self.port = free_port()
        rtp = free_port(pair=True)
        config = self.workdir / "baresip"
        (config / "rec").mkdir(parents=True, exist_ok=True)
        (config / "config").write_text(
            "\n".join(
                [
                    "poll_method epoll",
                    f"sip_listen 127.0.0.1:{self.port}",
                    "sip_transports udp",
                    "net_interface 127.0.0.1",
                    f"rtp_ports {rtp}-{rtp + 3}",
                    f"audio_source aufile,{self.source}",
                    "audio_player aubridge,nil",
                    "audio_alert aubridge,nil",
                    "ausrc_srate 8000",
                    "auplay_srate 8000",
                    "audio_channels 1",
                    "module_path /usr/lib/baresip/modules",
                    "module g711.so",
                    "module aufile.so",
                    "module aubridge.so",
                    "module sndfile.so",
                    "module_app account.so",
                    "module_app menu.so",
                    f"snd_path {config / 'rec'}",
                    "",
                ]
            )
        )
        account = f"<sip:{self.user}@127.0.0.1>;regint=0;answermode=auto"
        if self.registrar is not None:
            account = f"<sip:1001@127.0.0.1:{self.registrar}>;regint=60;answermode=auto"
        (config / "accounts").write_text(account + "\n")
        (config / "contacts").write_text("")
        with open(self.workdir / "baresip.log", "wb") as log:
            self.proc = subprocess.Popen(
                ["baresip", "-s", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        ready = "baresip is ready" if self.registrar is None else "200 OK (kamailio"
        while ready not in self.log():
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.05)
        return self

    def log(self) -> str:
        path = self.workdir / "baresip.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def invites(self) -> int:
        """How many INVITEs the phone received (its SIP trace)."""
        return sum(1 for line in self.log().splitlines() if line.startswith("INVITE sip:"))

    def heard(self) -> list[int]:
        """What the phone heard (its decoded-audio dump, once the call ended)."""
        dumps = sorted((self.workdir / "baresip" / "rec").glob("dump-*-dec.wav"))
        return read_wav(dumps[-1]) if dumps else []

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


CALLER = "+862155550000"


def sip_settings(peer: Sipp, **extra: str) -> dict[str, str]:
    """The ``configure`` settings of a run dialing through the SIP gateway towards ``peer``
    (a free SIP port, an RTP range of its own), with ``extra`` ones."""
    low, high = rtp_range(4)
    return {
        "gateway": "sip",
        "sip_port": "0",
        "sip_rtp_port_min": str(low),
        "sip_rtp_port_max": str(high),
        "sip_trunk_host": "127.0.0.1",
        "sip_trunk_port": str(peer.port),
        **extra,
    }


def request(callee: str = "+8613900000001", timeout_s: float = 25.0) -> OriginateRequest:
    return OriginateRequest(
        campaign_id="camp",
        lead_id="lead",
        attempt_id="att",
        params=CallParameters(CALLER, callee, None, "sales"),
        timeout_s=timeout_s,
    )


MakeGateway = Callable[..., SipGateway]
StartSipp = Callable[..., Sipp]


KAMAILIO_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=1
disable_tcp=yes
listen=udp:127.0.0.1:{port}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("usrloc", "db_mode", 0)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (is_method("REGISTER")) {{ save("location"); exit; }}
    if (is_method("INVITE")) {{ record_route(); }}
    if (!lookup("location")) {{ {unknown} }}
    t_relay();
}}
"""


@dataclass
class Kamailio:
    """A Kamailio registrar/proxy on 127.0.0.1 that record-routes INVITEs (in memory)."""

    workdir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    #: where INVITEs for users nobody registered go (a SIPp callee: the proxy as a trunk);
    #: None: 404
    fallback: int | None = None

    def start(self) -> Kamailio:
        self.port = free_port()
        config = self.workdir / "kamailio.cfg"
        unknown = 'sl_send_reply("404", "Not Found"); exit;'
        if self.fallback is not None:
            unknown = f'$du = "sip:127.0.0.1:{self.fallback}"; t_relay(); exit;'
        config.write_text(KAMAILIO_CFG.format(port=self.port, unknown=unknown))
        with open(self.workdir / "kamailio.log", "wb") as log:
            self.proc = subprocess.Popen(
                ["kamailio", "-DD", "-E", "-f", str(config), "-P", str(self.workdir / "k.pid")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        time.sleep(0.5)
        assert self.proc.poll() is None, (self.workdir / "kamailio.log").read_text()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


#: The pilot's numbers, in scenarios/pilot.xml's order: the agent's sale, busy, 404, 480,
#: callee hangs up.
PILOT_NUMBERS = [f"+861390000000{i}" for i in range(5)]


def sip_pilot(
    phone_uri: str, *, numbers: list[str] = PILOT_NUMBERS, mode: str = "progressive"
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A piloting campaign over ``numbers`` (:data:`PILOT_NUMBERS`) dialed in ``mode``, and one
    ready agent (S001) whose phone is ``phone_uri``: (client id, campaign id, agent seat id)."""
    from campaign_builders import make_campaign, make_list

    from campaigns.models import BatchCreate, CampaignStatus
    from campaigns.service import create_batch, transition_campaign
    from core.admin import create_client
    from core.db import system_session, tenant_session

    with system_session() as session:
        client_id = create_client(session=session, name=f"c{uuid.uuid4().hex[:6]}").id
    with tenant_session([client_id]) as session:
        lead_list, _ = make_list(session, client_id, numbers=numbers)
        campaign = make_campaign(
            session,
            client_id,
            [lead_list.id],
            name="sip pilot",
            max_attempts=3,
            pacing_mode=mode,
            skill_group="sales",
            caller_id="+862155550000",
            max_ring_s=15,
        )
        batch = BatchCreate(size=len(numbers), seed=1)
        create_batch(session=session, campaign=campaign, batch_in=batch)
        transition_campaign(session=session, campaign=campaign, target=CampaignStatus.piloting)
        campaign_id = campaign.id
    # its phone is called once by the loop when the run starts
    return client_id, campaign_id, ready_agent(client_id, "S001", phone_uri)


def ready_agent(client_id: uuid.UUID, code: str, phone_uri: str) -> uuid.UUID:
    """A signed-in, ready agent of the "sales" group whose soft-phone is ``phone_uri``."""
    from core.db import system_session
    from dialer import agent_service as svc
    from dialer.models import AgentCreate

    with system_session() as session:
        seat_id = svc.create_agent(
            session=session,
            agent_in=AgentCreate(
                agent_code=code,
                name="座席",
                skill_groups=["sales"],
                client_ids=[client_id],
                phone_uri=phone_uri,
            ),
        ).id
        for command in (svc.SignIn(), svc.GoReady()):
            svc.apply_agent_action(
                session=session, agent_id=seat_id, command=command, at=datetime.now(UTC)
            )
    return seat_id


def agent_desk(seat_id: uuid.UUID) -> None:
    """The agent, looked at once: hangs up 3 s into a call with "sale", finishes wrap-up
    after 0.5 s."""
    from core.db import system_session
    from dialer import agent_service as svc
    from dialer.agents import AgentState

    now = datetime.now(UTC)
    with system_session() as session:
        agent = svc.get_agent(session=session, agent_id=seat_id)
        elapsed = (now - agent.state_since).total_seconds()
        if agent.state is AgentState.ON_CALL and elapsed >= 3.0:
            svc.apply_agent_action(
                session=session,
                agent_id=seat_id,
                command=svc.HangUp(disposition="sale"),
                at=now,
            )
        elif agent.state is AgentState.WRAP_UP and elapsed >= 0.5:
            svc.apply_agent_action(
                session=session, agent_id=seat_id, command=svc.FinishWrap(), at=now
            )
