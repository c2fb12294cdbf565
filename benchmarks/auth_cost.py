"""Benchmark: what a key check costs, by outcome (issue 18: a timing signal and a CPU drain).

Before, a wrong secret for a real prefix cost an argon2 verification (33 ms against 4.6 ms for
an unknown prefix on the reporter's machine): a measurable signal that the prefix exists, and
CPU anyone could burn. Now every outcome is one indexed lookup plus a SHA-256 comparison. This
times ``authenticate`` for each outcome on a migrated SQLite file, with argon2's verification
(the old cost) measured in the same run as the reference. Run: ``python benchmarks/auth_cost.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def _median_ms(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="pilotdial-auth-"))
    url = f"sqlite:///{workdir / 'auth.db'}"
    os.environ.update(PILOTDIAL_DATABASE_URL=url, PILOTDIAL_SECRET_KEY="b" * 48)

    from core import security
    from core.admin import create_client, issue_key
    from core.db import system_session
    from core.migrate import upgrade
    from core.models import Role

    upgrade(url)
    with system_session() as session:
        client = create_client(session=session, name="bench", default_region="CN", slug="bench")
        key_row, plain = issue_key(
            session=session, name="bench", role=Role.client, client_refs=[str(client.id)]
        )
        argon2_hash = key_row.secret_hash
    prefix = plain.split("_")[1]
    cases = {
        "valid key": plain,
        "real prefix, wrong secret": f"pd_{prefix}_{'x' * 43}",
        "unknown prefix": f"pd_{'0' * 12}_{'x' * 43}",
    }
    results = {}
    with system_session() as session:
        for name, presented in cases.items():
            results[name] = _median_ms(
                lambda p=presented: security.authenticate(session=session, plain_key=p),
                args.repeat,
            )
    reference = _median_ms(
        lambda: security._hasher.verify(argon2_hash, plain), max(10, args.repeat // 10)
    )
    base = results["unknown prefix"]
    for name, ms in results.items():
        print(f"{name:<28} {ms:7.3f} ms   x{ms / base:5.2f} of an unknown prefix")
    print(f"{'argon2 verify (old cost)':<28} {reference:7.3f} ms   x{reference / base:5.2f}")
    wrong = results["real prefix, wrong secret"]
    print(f"wrong secret vs unknown prefix: x{wrong / base:.2f} (before: x{33 / 4.6:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
