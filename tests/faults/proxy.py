"""A loopback TCP proxy the fault tests put between Pilotdial and PostgreSQL or Redis.

``cut()`` is a network failure as a client sees it: every live connection is reset and new
ones are refused (the listening port is closed) until ``restore()`` opens the same port again.
Threads, not asyncio: the proxy keeps forwarding while the test thread sleeps or blocks on a
synchronous client.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator

__all__ = ["TcpProxy"]


class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port``; cut and restore at will."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections_made = 0
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._live: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._open = threading.Event()

    # -- control ---------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        """Listen (on a free port the first time, on the same port after a cut)."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._open.set()
        self._accepting = threading.Thread(
            target=self._accept, args=(listener,), name=f"proxy-{self.port}", daemon=True
        )
        self._accepting.start()
        return self

    def cut(self) -> None:
        """Reset every live connection and refuse new ones until :meth:`restore`."""
        self._open.clear()
        if self._accepting is not None:
            self._accepting.join(timeout=5)
            self._accepting = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            live = list(self._live)
            self._live.clear()
        for sock in live:
            _reset(sock)

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        if not self._open.is_set():
            self.start()

    def stop(self) -> None:
        self.cut()

    @contextlib.contextmanager
    def outage(self, seconds: float) -> Iterator[None]:
        """Cut now, run the body, and restore ``seconds`` after the cut (at the earliest)."""
        began = time.monotonic()
        self.cut()
        try:
            yield
            time.sleep(max(0.0, seconds - (time.monotonic() - began)))
        finally:
            self.restore()

    @property
    def url_netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- forwarding ------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while self._open.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if not self._open.is_set():  # cut while connecting
                    _reset(client)
                    _reset(upstream)
                    return
                self._live.update((client, upstream))
                self.connections_made += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink), name="proxy-pump", daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            # one side ended: so does the other (a reset, like the cut)
            with self._lock:
                self._live.discard(source)
                self._live.discard(sink)
            _reset(sink)
            _reset(source)


def _reset(sock: socket.socket) -> None:
    """Close with RST (linger 0), waking any thread blocked in ``recv`` on it."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
