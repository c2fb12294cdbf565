"""Fixtures for the SIP gateway's tests: SIPp callees and gateways on free local ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sip.sip_peers import Baresip, Clock, Kamailio, Sipp, free_port, need, rtp_range, tone

from dialer.sip.gateway import SipGateway, SipGatewayConfig, SipTrunk

#: Seconds of the agent phone's tone: baresip ends its call when its audio file runs out, so
#: the file outlasts any test on a loaded machine (a 10 s tone once hung up the agent mid-run).
AGENT_TONE_S = 180.0


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[Callable[..., Sipp]]:
    """Start a SIPp callee: ``sipp("answer_echo.xml", status="486", ...)``."""
    need("sipp", "sip-tester")
    started: list[Sipp] = []

    def start(
        scenario: str, *, calls: int = 1, echo: bool = True, transport: str = "u1", **keys: str
    ) -> Sipp:
        defaults = {"codec": "8"}
        peer = Sipp(
            scenario,
            free_port(),
            free_port(pair=True),
            {**defaults, **keys},
            tmp_path,
            calls=calls,
            echo=echo,
            transport=transport,
        )
        started.append(peer.start())
        return peer

    yield start
    for peer in started:
        peer.stop()


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[Callable[..., SipGateway]]:
    """A SipGateway towards a trunk at 127.0.0.1:``port`` (closed after the test)."""
    made: list[SipGateway] = []

    def make(
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        transport: str = "udp",
        **config: object,
    ) -> SipGateway:
        trunk = SipTrunk(
            host="127.0.0.1", port=port, username=username, password=password, transport=transport
        )
        config.setdefault("rtp_port_range", rtp_range())
        gw = SipGateway(
            SipGatewayConfig(trunk=trunk, **config),  # type: ignore[arg-type]
            clock=Clock(),
        )
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.close()


@pytest.fixture
def baresip(tmp_path: Path) -> Iterator[Baresip]:
    """An auto-answering baresip agent phone playing a 600 Hz tone."""
    need("baresip", "baresip-core")
    phone = Baresip(tmp_path, tone(tmp_path / "agent-600.wav", 600.0, AGENT_TONE_S)).start()
    yield phone
    phone.stop()


@pytest.fixture
def registered_phone(tmp_path: Path) -> Iterator[Baresip]:
    """A baresip agent phone registered as 1001 to a Kamailio proxy (reached through it)."""
    need("kamailio", "kamailio")
    need("baresip", "baresip-core")
    proxy = Kamailio(tmp_path).start()
    phone_dir = tmp_path / "phone"
    phone_dir.mkdir()
    source = tone(phone_dir / "agent-600.wav", 600.0, AGENT_TONE_S)
    phone = Baresip(phone_dir, source, registrar=proxy.port).start()
    yield phone
    phone.stop()
    proxy.stop()
