"""Synthetic lead lists and pilot dialing, for tests, the back-test benchmark and the demo.

``make_lead_list`` draws a list with segment effects (region, phone type, age, product) and a
hidden per-lead contactability p ~ Beta, so leads differ beyond their attributes, as real ones
do. ``dial_leads`` dials chosen leads with the same rules the projection assumes (until first
contact, an invalid number, or ``max_attempts``) and returns attempt rows in the input format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from scipy import special

__all__ = [
    "SyntheticList",
    "dial_leads",
    "first_contact_attempts",
    "make_lead_list",
    "outcome_totals",
]

REGIONS = ("north", "south", "east", "west", "centre")
REGION_CONTACT = {"north": 0.4, "south": -0.3, "east": 0.0, "west": -0.6, "centre": 0.3}
REGION_CONVERSION = {"north": 0.0, "south": 0.3, "east": -0.2, "west": 0.2, "centre": 0.0}
NONCONTACT = ("no_answer", "busy", "machine", "failed", "abandoned")
NONCONTACT_WEIGHTS = (0.6, 0.12, 0.18, 0.05, 0.05)


@dataclass(frozen=True)
class SyntheticList:
    """A lead list and its hidden truth (per-lead contact and conversion probabilities)."""

    leads: pd.DataFrame
    contact_probability: np.ndarray
    conversion_probability: np.ndarray
    invalid: np.ndarray


def make_lead_list(
    size: int = 20_000,
    *,
    seed: int = 0,
    base_contact: float = 0.28,
    base_conversion: float = 0.12,
    heterogeneity: float = 2.0,
    invalid_share: float = 0.05,
) -> SyntheticList:
    """Draw a lead list with segment effects and heterogeneous contactability."""
    rng = np.random.default_rng(seed)
    region = rng.choice(REGIONS, size=size, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    phone = rng.choice(["mobile", "landline"], size=size, p=[0.7, 0.3])
    age = rng.integers(20, 76, size=size)
    product = rng.choice(["basic", "premium"], size=size, p=[0.75, 0.25])
    contact_logit = (
        special.logit(base_contact)
        + np.vectorize(REGION_CONTACT.get)(region)
        + np.where(phone == "landline", -0.7, 0.0)
        + 0.015 * (age - 45)
    )
    mean = special.expit(contact_logit)
    contact_probability = rng.beta(mean * heterogeneity, (1 - mean) * heterogeneity)
    conversion_logit = (
        special.logit(base_conversion)
        + np.vectorize(REGION_CONVERSION.get)(region)
        + np.where(product == "premium", -0.8, 0.0)
        - 0.02 * (age - 45)
    )
    leads = pd.DataFrame(
        {
            "lead_id": [f"L{i:06d}" for i in range(size)],
            "region": region,
            "phone_type": phone,
            "age": age,
            "product": product,
        }
    )
    return SyntheticList(
        leads=leads,
        contact_probability=contact_probability,
        conversion_probability=special.expit(conversion_logit),
        invalid=rng.random(size) < invalid_share,
    )


def first_contact_attempts(
    synthetic: SyntheticList, indices: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Attempt of first contact per lead if dialled forever; 0 for invalid numbers."""
    index = np.asarray(indices)
    first = rng.geometric(np.maximum(synthetic.contact_probability[index], 1e-12))
    return np.where(synthetic.invalid[index], 0, first)


def outcome_totals(
    synthetic: SyntheticList, indices: np.ndarray, *, max_attempts: int, seed: int = 0
) -> dict[str, int]:
    """Realised contacts, conversions and dials of dialling these leads (vectorised)."""
    rng = np.random.default_rng(seed)
    index = np.asarray(indices)
    first = first_contact_attempts(synthetic, index, rng)
    contacted = (first >= 1) & (first <= max_attempts)
    converted = contacted & (rng.random(index.size) < synthetic.conversion_probability[index])
    dials = np.where(first == 0, 1, np.minimum(first, max_attempts))
    return {
        "contacts": int(contacted.sum()),
        "conversions": int(converted.sum()),
        "dials": int(dials.sum()),
    }


def dial_leads(
    synthetic: SyntheticList,
    indices: np.ndarray,
    *,
    max_attempts: int,
    seed: int = 0,
    start: datetime | None = None,
) -> pd.DataFrame:
    """Dial leads ``indices`` until contact, invalid number or ``max_attempts``; attempt rows."""
    rng = np.random.default_rng(seed)
    clock = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    index = np.asarray(indices)
    first = first_contact_attempts(synthetic, index, rng)
    converted = rng.random(index.size) < synthetic.conversion_probability[index]
    talk = np.round(rng.lognormal(np.log(80), 0.8, size=index.size), 1)
    noncontact = rng.choice(len(NONCONTACT), p=NONCONTACT_WEIGHTS, size=(index.size, max_attempts))
    lead_ids = synthetic.leads["lead_id"].to_numpy()
    rows: list[dict[str, object]] = []
    for position, lead in enumerate(index):
        for attempt in range(1, max_attempts + 1):
            started = clock + timedelta(days=attempt - 1, minutes=int(position % 480))
            if first[position] == 0:
                rows.append(_row(lead_ids[lead], attempt, started, "invalid_number", 0.0, 0))
                break
            if first[position] == attempt:
                rows.append(
                    _row(
                        lead_ids[lead],
                        attempt,
                        started,
                        "contact",
                        float(talk[position]),
                        int(converted[position]),
                    )
                )
                break
            disposition = NONCONTACT[noncontact[position, attempt - 1]]
            rows.append(_row(lead_ids[lead], attempt, started, disposition, 0.0, 0))
    return pd.DataFrame(rows)


def _row(
    lead_id: str, attempt: int, started: datetime, disposition: str, talk: float, converted: int
) -> dict[str, object]:
    return {
        "lead_id": lead_id,
        "attempt_no": attempt,
        "started_at": started.isoformat(),
        "disposition": disposition,
        "talk_s": talk,
        "converted": converted,
    }
