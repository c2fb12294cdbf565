"""Inputs of the feasibility modeler: pilot attempts, the lead list, targets, costs, history.

Attempts and leads come either from CSV files (``read_attempts_csv``, ``read_leads_csv``) or from
plain records such as database rows (``attempts_from_records``, ``leads_from_records``). Both
paths end in ``validate_inputs``, which raises ``InputError`` for data that cannot be modelled
(unknown leads, unknown dispositions, negative talk times, ...) and returns explicit warnings for
data that can be modelled but deserves a caveat (no contacts, no conversions, tiny pilot, ...).

``Costs`` defaults are the outsourcing contract's example (see DOMAIN.md): 3000 CNY per agent
month, management coefficient 1.4, 18 valid calls per agent-hour, 8 h days, 21.75 days a month,
ramp months at 80 % and 90 %, holidays at 3x, prices before 6 % VAT.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from feasibility.exceptions import CostError, InputError

__all__ = [
    "ATTEMPT_COLUMNS",
    "AttemptsInput",
    "Costs",
    "Disposition",
    "LeadsInput",
    "PastCampaign",
    "PilotInputs",
    "PriceScheme",
    "Targets",
    "attempts_from_records",
    "costs_warnings",
    "leads_from_records",
    "load_costs",
    "load_targets",
    "read_attempts_csv",
    "read_leads_csv",
    "validate_inputs",
]

M = TypeVar("M", bound=BaseModel)

ATTEMPT_COLUMNS = ("lead_id", "attempt_no", "started_at", "disposition", "talk_s", "converted")


class Disposition(StrEnum):
    """Outcome of one dial."""

    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    INVALID_NUMBER = "invalid_number"
    MACHINE = "machine"
    ABANDONED = "abandoned"
    CONTACT = "contact"


#: Dispositions where the line was answered (by a person, a machine, or dropped by the dialer).
ANSWERED = frozenset({Disposition.MACHINE, Disposition.ABANDONED, Disposition.CONTACT})

PriceScheme = Literal["valid_call", "contact", "conversion", "agent_hour", "seat_month"]

AttemptsInput = pd.DataFrame | Iterable[Mapping[str, Any]]
LeadsInput = pd.DataFrame | Iterable[Mapping[str, Any]]


class Targets(BaseModel):
    """What the client wants; every field is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    conversions: int | None = Field(default=None, ge=1, description="Conversions wanted.")
    deadline_days: float | None = Field(
        default=None, gt=0, description="Working days available to dial the rest of the list."
    )
    seats: int | None = Field(default=None, ge=1, description="Seats (agents) available.")
    max_price: float | None = Field(
        default=None, gt=0, description="Highest unit price the client accepts, before VAT."
    )
    max_price_scheme: PriceScheme = Field(
        default="valid_call", description="Unit that max_price is expressed in."
    )
    attempt_limit: int | None = Field(
        default=None,
        ge=1,
        le=50,
        description="Most attempts per lead the campaign allows; recommendations stay within it.",
    )
    price_precision: float = Field(
        default=0.10,
        gt=0,
        lt=1,
        description="Relative precision wanted on the price per valid call (0.10 = +-10 %).",
    )


class Costs(BaseModel):
    """Cost and operating parameters; defaults are the contract example of DOMAIN.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_monthly_cost: float = Field(default=3000.0, gt=0, description="CNY per agent-month.")
    management_coefficient: float = Field(default=1.4, gt=0)
    valid_calls_per_agent_hour: float = Field(default=18.0, gt=0, le=240)
    hours_per_day: float = Field(default=8.0, gt=0, le=24)
    days_per_month: float = Field(default=21.75, gt=0, le=31)
    actual_working_days_per_month: float = Field(
        default=20.67, gt=0, le=31, description="Working days net of public holidays (caveat)."
    )
    ramp_month_1: float = Field(default=0.8, gt=0, le=1, description="Share of target settled.")
    ramp_month_2: float = Field(default=0.9, gt=0, le=1)
    holiday_multiplier: float = Field(default=3.0, ge=1)
    vat_rate: float = Field(default=0.06, ge=0, lt=1)
    valid_call_min_talk_s: float = Field(default=15.0, ge=0)
    telecom_cost_per_minute: float = Field(default=0.1, ge=0, description="CNY per talk minute.")
    margin: float = Field(default=0.0, gt=-1, description="Markup on top of the coefficient.")
    wrap_up_s: float = Field(default=20.0, ge=0, description="After-call work per contact.")
    noncontact_agent_s: float = Field(
        default=20.0, ge=0, description="Agent seconds spent on a dial that reaches no one."
    )
    occupancy: float = Field(default=0.85, gt=0, le=1, description="Target agent occupancy.")
    shrinkage: float = Field(default=0.15, ge=0, lt=1, description="Breaks, training, absence.")
    abandon_target: float = Field(
        default=0.03, gt=0, lt=1, description="Highest share of connected calls with no agent."
    )
    pilot_agent_hours: float | None = Field(
        default=None, gt=0, description="Logged-in agent-hours of the pilot, if measured."
    )


class PastCampaign(BaseModel):
    """Outcome of a past campaign of the client or the house, for empirical-Bayes priors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    leads: int = Field(ge=1)
    contacted: int = Field(ge=0, description="Leads with at least one contact.")
    conversions: int = Field(ge=0)


@dataclass(frozen=True)
class PilotInputs:
    """Validated attempts and leads, plus the warnings raised while validating them."""

    attempts: pd.DataFrame
    leads: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    @property
    def pilot_lead_ids(self) -> set[str]:
        """Lead ids dialled in the pilot."""
        return set(self.attempts["lead_id"].unique())


def _format_examples(values: Iterable[Any], limit: int = 3) -> str:
    items = [repr(v) for v in list(values)[:limit]]
    return ", ".join(items)


def attempts_from_records(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Build an attempts frame from plain records (dicts or DB rows as mappings)."""
    frame = pd.DataFrame.from_records(list(records))
    if frame.empty:
        frame = pd.DataFrame(columns=list(ATTEMPT_COLUMNS))
    return frame


def leads_from_records(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Build a lead-list frame from plain records; ``lead_id`` plus any attribute columns."""
    frame = pd.DataFrame.from_records(list(records))
    if frame.empty:
        frame = pd.DataFrame(columns=["lead_id"])
    return frame


def _read_csv(path: str | Path, what: str) -> pd.DataFrame:
    source = Path(path)
    if not source.is_file():
        raise InputError(f"{what} file {str(source)!r} does not exist: check the path")
    try:
        return pd.read_csv(
            source, dtype={"lead_id": str}, keep_default_na=True, sep=None, engine="python"
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(
            f"{what} file {str(source)!r} is not a readable CSV ({exc}): save it as UTF-8 CSV"
        ) from exc


def read_attempts_csv(path: str | Path) -> pd.DataFrame:
    """Read pilot attempts from a CSV with the columns in ``ATTEMPT_COLUMNS``."""
    return _read_csv(path, "attempts")


def read_leads_csv(path: str | Path) -> pd.DataFrame:
    """Read the full lead list from a CSV with a ``lead_id`` column."""
    return _read_csv(path, "leads")


def _load_json_model(path: str | Path, model: type[M], what: str) -> M:
    source = Path(path)
    if not source.is_file():
        raise CostError(f"{what} file {str(source)!r} does not exist: check the path")
    try:
        return model.model_validate_json(source.read_text(encoding="utf-8"))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise CostError(f"{what} file {str(source)!r} is invalid: {problems}") from exc


def load_targets(path: str | Path) -> Targets:
    """Load ``Targets`` from a JSON file, raising ``CostError`` with the offending fields."""
    return _load_json_model(path, Targets, "targets")


def load_costs(path: str | Path) -> Costs:
    """Load ``Costs`` from a JSON file (missing fields take the contract defaults)."""
    return _load_json_model(path, Costs, "costs")


def costs_warnings(costs: Costs) -> list[str]:
    """Warnings for cost parameters that are valid but unusual enough to check."""
    warnings: list[str] = []
    if costs.management_coefficient < 1:
        warnings.append(
            f"management coefficient {costs.management_coefficient} is below 1: the unit price "
            "does not even cover the agent's cost"
        )
    if costs.margin < 0:
        warnings.append(f"margin {costs.margin:.0%} is negative: prices are below cost")
    if costs.valid_calls_per_agent_hour > 60:
        warnings.append(
            f"{costs.valid_calls_per_agent_hour} valid calls per agent-hour is more than one a "
            "minute; the contract target is 18"
        )
    if costs.ramp_month_1 > costs.ramp_month_2:
        warnings.append("ramp month 1 settles a higher share of target than month 2")
    if costs.hours_per_day * costs.days_per_month > 260:
        warnings.append(
            f"{costs.hours_per_day} h x {costs.days_per_month} days is more than 260 hours per "
            "agent-month"
        )
    return warnings


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"{what} lack the column(s) {', '.join(missing)}; found: "
            f"{', '.join(map(str, frame.columns)) or 'none'}"
        )


def _clean_leads(leads: pd.DataFrame) -> pd.DataFrame:
    _require_columns(leads, ["lead_id"], "leads")
    if leads.empty:
        raise InputError("the lead list is empty: give the full list, pilot leads included")
    out = leads.copy()
    if out["lead_id"].isna().any():
        rows = list(np.flatnonzero(out["lead_id"].isna().to_numpy())[:3] + 2)
        raise InputError(f"leads have empty lead_id (file rows {rows}): fill or remove them")
    out["lead_id"] = out["lead_id"].astype(str).str.strip()
    duplicated = out["lead_id"][out["lead_id"].duplicated()]
    if not duplicated.empty:
        raise InputError(
            f"{duplicated.nunique()} lead_id(s) appear more than once in the lead list (e.g. "
            f"{_format_examples(duplicated.unique())}): deduplicate the list first"
        )
    return out.reset_index(drop=True)


def _to_numeric(series: pd.Series, column: str) -> pd.Series:
    numeric = pd.to_numeric(series, errors="coerce")
    bad = series[numeric.isna() & series.notna()]
    if not bad.empty:
        raise InputError(
            f"attempts column {column} has non-numeric values (e.g. "
            f"{_format_examples(bad.unique())}): use plain numbers"
        )
    return numeric


def _clean_attempts(attempts: pd.DataFrame, warnings: list[str]) -> pd.DataFrame:
    _require_columns(attempts, [c for c in ATTEMPT_COLUMNS if c != "started_at"], "attempts")
    if attempts.empty:
        raise InputError("there are no pilot attempts: dial a pilot batch first")
    out = attempts.copy()
    if "started_at" not in out.columns:
        out["started_at"] = pd.NaT
    if out["lead_id"].isna().any():
        raise InputError("some attempts have no lead_id: fill or remove them")
    out["lead_id"] = out["lead_id"].astype(str).str.strip()

    disposition = out["disposition"].astype(str).str.strip().str.lower()
    allowed = {d.value for d in Disposition}
    unknown = sorted(set(disposition) - allowed)
    if unknown:
        raise InputError(
            f"unknown disposition(s) {_format_examples(unknown, 5)}; allowed: "
            f"{', '.join(sorted(allowed))}. Map your dialer's codes to these first"
        )
    out["disposition"] = disposition

    attempt_no = _to_numeric(out["attempt_no"], "attempt_no")
    if attempt_no.isna().any() or (attempt_no < 1).any() or (attempt_no % 1 != 0).any():
        raise InputError("attempt_no must be a whole number >= 1 on every attempt")
    out["attempt_no"] = attempt_no.astype(int)
    duplicated = out.duplicated(["lead_id", "attempt_no"])
    if duplicated.any():
        example = out.loc[duplicated, ["lead_id", "attempt_no"]].iloc[0]
        raise InputError(
            f"{int(duplicated.sum())} attempt(s) repeat a (lead_id, attempt_no) pair, e.g. lead "
            f"{example['lead_id']!r} attempt {example['attempt_no']}: number attempts 1, 2, 3..."
        )

    talk = _to_numeric(out["talk_s"], "talk_s")
    if (talk < 0).any():
        rows = out.loc[talk < 0, "lead_id"].unique()
        raise InputError(
            f"{int((talk < 0).sum())} attempt(s) have a negative talk_s (leads "
            f"{_format_examples(rows)}): talk time is seconds >= 0"
        )
    is_contact = out["disposition"] == Disposition.CONTACT.value
    missing_talk = talk.isna() & is_contact
    if missing_talk.any():
        warnings.append(
            f"{int(missing_talk.sum())} contact(s) have no talk_s; they count as 0 s, so not as "
            "valid calls"
        )
    out["talk_s"] = talk.fillna(0.0).astype(float)

    converted = _to_numeric(out["converted"], "converted").fillna(0)
    if not converted.isin([0, 1]).all():
        raise InputError("converted must be 0 or 1 on every attempt")
    converted_noncontact = (converted == 1) & ~is_contact
    if converted_noncontact.any():
        raise InputError(
            f"{int(converted_noncontact.sum())} attempt(s) are converted but not a contact: "
            "only a human conversation (disposition contact) can convert"
        )
    out["converted"] = converted.astype(int)

    if out["started_at"].notna().any():
        parsed = pd.to_datetime(out["started_at"], errors="coerce", utc=True, format="mixed")
        unparsable = parsed.isna() & out["started_at"].notna()
        if unparsable.any():
            raise InputError(
                f"started_at has values that are not timestamps (e.g. "
                f"{_format_examples(out.loc[unparsable, 'started_at'].unique())}): use ISO 8601"
            )
        out["started_at"] = parsed
    else:
        out["started_at"] = pd.to_datetime(out["started_at"], utc=True)
    return out.sort_values(["lead_id", "attempt_no"], kind="stable").reset_index(drop=True)


def validate_inputs(attempts: AttemptsInput, leads: LeadsInput) -> PilotInputs:
    """Validate attempts against the lead list; raise ``InputError`` or return warnings."""
    attempts_frame = (
        attempts if isinstance(attempts, pd.DataFrame) else attempts_from_records(attempts)
    )
    leads_frame = leads if isinstance(leads, pd.DataFrame) else leads_from_records(leads)
    warnings: list[str] = []
    clean_leads = _clean_leads(leads_frame)
    clean_attempts = _clean_attempts(attempts_frame, warnings)

    unknown = sorted(set(clean_attempts["lead_id"]) - set(clean_leads["lead_id"]))
    if unknown:
        raise InputError(
            f"{len(unknown)} pilot lead(s) are not in the lead list (e.g. "
            f"{_format_examples(unknown)}): the list must include the pilot leads"
        )

    n_pilot = clean_attempts["lead_id"].nunique()
    contacts = int((clean_attempts["disposition"] == Disposition.CONTACT.value).sum())
    conversions = int(clean_attempts["converted"].sum())
    if contacts == 0:
        warnings.append(
            "the pilot reached no one: contact and conversion rates rest on the prior only, so "
            "their intervals are wide; dial more before quoting"
        )
    elif conversions == 0:
        warnings.append(
            "the pilot has no conversions: the conversion rate is an upper bound, not zero; "
            "dial more before quoting a price per conversion"
        )
    if n_pilot < 100:
        warnings.append(f"the pilot has only {n_pilot} leads: expect wide intervals")
    if n_pilot >= len(clean_leads):
        warnings.append("every lead was dialled in the pilot: nothing is left to project")
    after = clean_attempts.groupby("lead_id")["attempt_no"].agg(["min", "max", "count"])
    gaps = after[(after["min"] != 1) | (after["max"] != after["count"])]
    if not gaps.empty:
        warnings.append(
            f"{len(gaps)} pilot lead(s) have gaps in attempt_no (e.g. "
            f"{_format_examples(gaps.index)}): missing attempts are treated as not made"
        )
    talk_contact = clean_attempts.loc[
        clean_attempts["disposition"] == Disposition.CONTACT.value, "talk_s"
    ]
    if len(talk_contact) and float(talk_contact.max()) > 4 * 3600:
        warnings.append("some contacts last more than 4 hours: check talk_s is in seconds")
    return PilotInputs(attempts=clean_attempts, leads=clean_leads, warnings=warnings)
