"""Staffing: seats needed to finish by a deadline, days needed with the seats available.

Outbound dialing with a predictive or progressive dialer is a loss system: a connected call
that finds no free agent is abandoned. Agents are sized with the Erlang B formula so that the
share of connected calls abandoned stays under ``abandon_target`` and occupancy stays under the
target; seats then add shrinkage (breaks, training, absence): seats = agents / (1 - shrinkage).
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

from feasibility.inputs import Costs
from feasibility.projection import Band

__all__ = [
    "Operations",
    "StaffingPlan",
    "agents_for_load",
    "erlang_b",
    "max_load_for_agents",
    "plan_operations",
]


class StaffingPlan(BaseModel):
    """Seats or days for one workload quantile."""

    model_config = ConfigDict(frozen=True)

    quantile: str
    busy_hours: float
    seats_for_deadline: int | None
    days_with_seats: float | None


class Operations(BaseModel):
    """Staffing figures for the projected workload."""

    model_config = ConfigDict(frozen=True)

    deadline_days: float | None
    seats_available: int | None
    hours_per_day: float
    occupancy_target: float
    shrinkage: float
    abandon_target: float
    plans: list[StaffingPlan]
    seats_needed: int | None
    days_needed: float | None
    note: str = ""


def erlang_b(agents: int, load: float) -> float:
    """Erlang B blocking probability for ``agents`` servers and ``load`` Erlangs."""
    if agents < 0 or load < 0:
        raise ValueError("agents and load must be >= 0")
    blocking = 1.0
    for n in range(1, agents + 1):
        blocking = load * blocking / (n + load * blocking)
    return blocking


def agents_for_load(load: float, *, occupancy: float, abandon_target: float) -> int:
    """Fewest agents that carry ``load`` Erlangs within the occupancy and abandon targets."""
    if load <= 0:
        return 0
    agents = max(1, math.ceil(load / occupancy))
    while erlang_b(agents, load) > abandon_target:
        agents += 1
    return agents


def max_load_for_agents(agents: int, *, occupancy: float, abandon_target: float) -> float:
    """Largest load in Erlangs that ``agents`` carry within both targets (bisection)."""
    if agents <= 0:
        return 0.0
    low, high = 0.0, agents * occupancy
    for _ in range(60):
        middle = (low + high) / 2
        if erlang_b(agents, middle) <= abandon_target:
            low = middle
        else:
            high = middle
    return low


def plan_operations(
    busy_hours: Band,
    *,
    costs: Costs,
    deadline_days: float | None,
    seats_available: int | None,
) -> Operations:
    """Seats for the deadline and days with the seats available, at P50 and P90 workload."""
    plans = []
    for quantile, hours in (("p50", busy_hours.p50), ("p90", busy_hours.p90)):
        seats = None
        days = None
        if deadline_days is not None:
            load = hours / (deadline_days * costs.hours_per_day)
            agents = agents_for_load(
                load, occupancy=costs.occupancy, abandon_target=costs.abandon_target
            )
            seats = math.ceil(agents / (1 - costs.shrinkage) - 1e-9)
        if seats_available is not None:
            agents_on_phone = math.floor(seats_available * (1 - costs.shrinkage) + 1e-9)
            capacity = max_load_for_agents(
                agents_on_phone, occupancy=costs.occupancy, abandon_target=costs.abandon_target
            )
            days = hours / (capacity * costs.hours_per_day) if capacity > 0 else None
        plans.append(
            StaffingPlan(
                quantile=quantile, busy_hours=hours, seats_for_deadline=seats, days_with_seats=days
            )
        )
    note = ""
    if seats_available is not None and plans[0].days_with_seats is None:
        note = (
            f"{seats_available} seat(s) leave no agent on the phone after "
            f"{costs.shrinkage:.0%} shrinkage"
        )
    if deadline_days is None and seats_available is None:
        note = "give a deadline or the seats available to size the operation"
    return Operations(
        deadline_days=deadline_days,
        seats_available=seats_available,
        hours_per_day=costs.hours_per_day,
        occupancy_target=costs.occupancy,
        shrinkage=costs.shrinkage,
        abandon_target=costs.abandon_target,
        plans=plans,
        seats_needed=plans[0].seats_for_deadline,
        days_needed=plans[0].days_with_seats,
        note=note,
    )
