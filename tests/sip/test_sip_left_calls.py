"""Calls a dead process left up are ended by the next one: a SIP gateway process killed (-9)
with a SIPp callee answered leaves the call up; another process's gateway ends it with a BYE
built from the dialog the answer carried (``Answered.handle``), and under run control the
worker that adopts the campaign does it before it dials on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sip.sip_peers import MakeGateway, StartSipp, free_port, rtp_range, sip_settings

from helpers import SUPERVISOR
from helpers import wait_until as _wait

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

#: A process that dials one call through its own SipGateway, prints the answer's handle and
#: then waits to be killed (it never hangs up).
DIALER = """
import json, sys, time
from dialer.gateway import Answered, CallParameters, OriginateRequest
from dialer.sip.gateway import SipGateway, SipGatewayConfig, SipTrunk
port, sip_port, low, high = (int(v) for v in sys.argv[1:5])
start = time.monotonic()
trunk = SipTrunk(host="127.0.0.1", port=port)
gw = SipGateway(
    SipGatewayConfig(trunk=trunk, sip_port=sip_port, rtp_port_range=(low, high)),
    clock=lambda: time.monotonic() - start,
)
params = CallParameters("+862155550000", "+8613900000001", None, "sales")
gw.originate(OriginateRequest("camp", "lead", "att", params), now=0.0)
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    for event in gw.poll(gw.clock()):
        if isinstance(event, Answered):
            print(json.dumps({"handle": event.handle}), flush=True)
            time.sleep(600)
    time.sleep(0.02)
sys.exit("no answer")
"""


def test_a_call_left_up_by_a_killed_process_is_ended_by_another_gateway(
    sipp: StartSipp, make_gateway: MakeGateway
) -> None:
    peer = sipp("answer_echo.xml")  # answers, then waits for a BYE
    low, high = rtp_range()
    sip_port = free_port()
    dialer = subprocess.Popen(
        [sys.executable, "-c", DIALER, str(peer.port), str(sip_port), str(low), str(high)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert dialer.stdout is not None
        line = dialer.stdout.readline()
    finally:
        dialer.send_signal(signal.SIGKILL)
        _, stderr = dialer.communicate(timeout=10)  # and close the pipes
    assert line, stderr.decode(errors="replace")
    handle = json.loads(line)["handle"]
    assert handle
    assert json.loads(handle)["dialog"]["remote_tag"]
    time.sleep(1.0)
    assert peer.proc is not None
    assert peer.proc.poll() is None  # the call is still up

    # its successor on the same address (SIPp answers a BYE where its dialog came from)
    survivor = make_gateway(peer.port, sip_port=sip_port)
    started = time.monotonic()
    ended = survivor.end_left_calls(
        [handle, "not a handle", json.dumps({"kind": "simulated"})], now=0.0
    )
    took = time.monotonic() - started
    assert ended == [True, False, False]
    assert took < 2.0, f"ending the call took {took:.1f} s"  # answered: no retransmissions
    assert peer.wait(10) == 0, peer.errors()  # SIPp took the BYE as its dialog's and ended
    assert survivor.end_left_calls([], now=0.0) == []


@pytest.mark.postgres
def test_the_worker_adopting_a_campaign_ends_the_calls_its_killed_pacer_left_up(
    pg_url: str,
    pg_engine: Any,
    redis_url: str,
    configure: Callable[..., None],
    sipp: StartSipp,
    tmp_path: Path,
) -> None:
    """An agentless survey over SIP under two `pilotdial worker` supervisors: the worker
    dialing it is killed while its first callee is being interviewed; the other adopts the
    campaign, BYEs that call (SIPp would wait for ever) and interviews the next lead."""
    from redis import Redis
    from sip.sip_peers import need
    from sqlmodel import select
    from survey_builders import agentless_campaign

    from campaigns.models import AttemptStatus, CallAttempt
    from core.db import system_session, tenant_session
    from core.models import JobRecord, JobStatus
    from dialer.attended import AgentsMode
    from dialer.leadership import pacer_key
    from dialer.pacer import LEFT_CALL_CAUSE
    from dialer.run_control import PacerSettings, control_campaign, start_dialing

    need("espeak-ng", "espeak-ng")
    # both callees answer and key 1, 4, 2, # from 1.5 s on; a BYE ends them at any moment
    peer = sipp("ivr_keys_or_bye.xml", calls=2, echo=False, first_ms="1500", then_ms="2500")
    peer.timeout_s = 120
    configure(
        database_url=pg_url,
        redis_url=redis_url,
        **sip_settings(peer, data_dir=str(tmp_path / "data")),
    )
    first_number, second_number = "+8613900000001", "+8613900000002"
    client_id, campaign_id = agentless_campaign([first_number, second_number], lines=1)
    run = start_dialing(
        client_id=client_id,
        campaign_id=campaign_id,
        settings=PacerSettings(agents_mode=AgentsMode.LIVE),
    )
    redis = Redis.from_url(redis_url)

    def attempts() -> dict[str, CallAttempt]:
        with tenant_session([client_id]) as session:
            rows = session.exec(select(CallAttempt).where(CallAttempt.campaign_id == campaign_id))
            return {a.number_dialed: a for a in rows}

    def job(job_id: uuid.UUID) -> JobRecord:
        with system_session() as session:
            record = session.get(JobRecord, job_id)
            assert record is not None
            return record

    env = dict(os.environ.items())
    procs: list[subprocess.Popen[bytes]] = []
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b")}

    def spawn(name: str) -> subprocess.Popen[bytes]:
        with logs[name].open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-c", SUPERVISOR], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        procs.append(proc)
        return proc

    try:
        worker_a = spawn("a")
        _wait(lambda: job(run.id).status is JobStatus.running, "a worker to take the run")

        def first_answered() -> bool:
            first = attempts().get(first_number)
            return first is not None and first.gateway_handle is not None

        _wait(first_answered, "the first callee to answer")
        holder_a = redis.get(pacer_key(campaign_id))
        spawn("b")
        _wait(lambda: b"looks for campaigns" in logs["b"].read_bytes(), "the standby to start")
        worker_a.send_signal(signal.SIGKILL)
        worker_a.wait(timeout=10)
        killed = time.monotonic()
        _wait(
            lambda: redis.get(pacer_key(campaign_id)) not in (None, holder_a),
            "the standby to adopt the campaign",
            30,
        )
        _wait(lambda: attempts()[first_number].hangup_cause == LEFT_CALL_CAUSE,
              "the left call to be ended", 30)  # fmt: skip
        ended_after_s = time.monotonic() - killed
        _wait(
            lambda: (
                second_number in attempts()
                and attempts()[second_number].status is AttemptStatus.finished
            ),
            "the second lead to be interviewed",
            60,
        )
        assert peer.wait(30) == 0, peer.errors()  # both calls got a BYE: none left up
    finally:
        control_campaign(client_id=client_id, campaign_id=campaign_id, action="stop")
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    first, second = attempts()[first_number], attempts()[second_number]
    assert ended_after_s < 20.0, f"the left call was ended {ended_after_s:.1f} s after the kill"
    assert first.gateway_handle is None  # tried once, then dropped
    assert first.status is not AttemptStatus.finished  # its outcome is unknown: it expires
    assert second.disposition == "complete"
    assert second.gateway_handle is None  # completed: nothing left to end
    runs = [job(run.id)]
    assert runs[0].status is JobStatus.failed  # the killed run, marked by the adopter
