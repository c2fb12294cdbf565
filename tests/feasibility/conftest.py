"""Fixtures for the feasibility tests: a small synthetic list and pilots dialled on it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from feasibility.synthetic import SyntheticList, dial_leads, make_lead_list


@pytest.fixture(scope="session")
def synthetic_list() -> SyntheticList:
    """A 3,000-lead list with segment effects and heterogeneous contactability."""
    return make_lead_list(3000, seed=11)


@pytest.fixture(scope="session")
def pilot_attempts(synthetic_list: SyntheticList) -> pd.DataFrame:
    """A random 10 % pilot dialled up to 5 times per lead."""
    indices = np.random.default_rng(5).choice(3000, 300, replace=False)
    return dial_leads(synthetic_list, indices, max_attempts=5, seed=6)


AttemptRow = tuple[str, int, str, float, int]


def _make_attempts(rows: list[AttemptRow]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "lead_id": lead,
                "attempt_no": n,
                "started_at": "2026-01-05T09:00:00+00:00",
                "disposition": d,
                "talk_s": t,
                "converted": c,
            }
            for lead, n, d, t, c in rows
        ]
    )


@pytest.fixture
def make_attempts() -> Callable[[list[AttemptRow]], pd.DataFrame]:
    """Attempts frame from (lead_id, attempt_no, disposition, talk_s, converted) tuples."""
    return _make_attempts
