"""Back-test of the feasibility projection on synthetic 20k lead lists.

Each run draws a fresh 20,000-lead list with segment effects and heterogeneous contactability
(``feasibility.synthetic``), dials a pilot of 2-10 % of it (random, or deliberately skewed
toward mobile numbers in the north and centre, 6x or 24x), fits the models, projects the rest
of the list with P10 / P50 / P90, then dials the rest for real (simulated) and checks:

- coverage: how often the realised total falls inside P10-P90 (calibrated: about 80 %, target
  75-90 %);
- the median absolute % error of P50;
- the same for a naive pooled-rate projection (pilot rate x remaining leads, with a Jeffreys
  interval and binomial noise) measured in the same runs, as the baseline.

Run: ``.venv/bin/python benchmarks/feasibility_backtest.py --runs 100`` (50 random + 50 skewed;
the default) or ``--runs 20`` for a quick smoke run; ``--kinds random,skewed,cherry-picked``
adds pilots 24x as likely to come from mobile numbers in the north and centre. ``width`` is
the median P10-P90 band width as a share of the realised total.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from feasibility.inputs import Costs, validate_inputs
from feasibility.projection import fit_pilot_models, project
from feasibility.synthetic import dial_leads, make_lead_list, outcome_totals

LIST_SIZE = 20_000
MAX_ATTEMPTS = 5
DRAWS = 400
QUANTITIES = ("contacts", "conversions", "dials")
#: How much likelier a mobile number, and a lead in the north or centre, is to be in the pilot.
SKEWS = {"skewed": (3.0, 2.0), "cherry-picked": (6.0, 4.0)}
KINDS = ("random", "skewed", "cherry-picked")


@dataclass(frozen=True)
class RunResult:
    kind: str
    pilot_share: float
    seconds: float
    actual: dict[str, int]
    model: dict[str, tuple[float, float, float]]
    naive: dict[str, tuple[float, float, float]]
    conversion_model: str


def _pilot_indices(
    leads: pd.DataFrame, share: float, kind: str, rng: np.random.Generator
) -> np.ndarray:
    size = round(share * len(leads))
    if kind == "random":
        return rng.choice(len(leads), size, replace=False)
    # Skewed: mobile numbers in the north and centre are 6x as likely to be in the pilot;
    # cherry-picked: 24x (a sales person piloting where they expect the best results).
    mobile, north = SKEWS[kind]
    weight = np.where(leads["phone_type"] == "mobile", mobile, 1.0) * np.where(
        leads["region"].isin(["north", "centre"]), north, 1.0
    )
    return rng.choice(len(leads), size, replace=False, p=weight / weight.sum())


def _naive(
    pilot: pd.DataFrame, remaining: int, rng: np.random.Generator
) -> dict[str, tuple[float, float, float]]:
    """Pooled pilot rates x remaining leads, Jeffreys parameter draws plus binomial noise."""
    per_lead = (
        pilot.assign(contact=pilot["disposition"] == "contact")
        .groupby("lead_id")
        .agg(
            contacted=("contact", "max"),
            converted=("converted", "max"),
            dials=("attempt_no", "size"),
        )
    )
    n = len(per_lead)
    out: dict[str, tuple[float, float, float]] = {}
    for name, successes in (
        ("contacts", per_lead["contacted"].sum()),
        ("conversions", per_lead["converted"].sum()),
    ):
        rate = rng.beta(successes + 0.5, n - successes + 0.5, size=DRAWS)
        totals = rng.binomial(remaining, rate)
        out[name] = tuple(np.quantile(totals, [0.1, 0.5, 0.9]))  # type: ignore[assignment]
    dials = per_lead["dials"].to_numpy(dtype=float)
    means = rng.choice(dials, size=(DRAWS, dials.size)).mean(axis=1) * remaining
    out["dials"] = tuple(np.quantile(means, [0.1, 0.5, 0.9]))  # type: ignore[assignment]
    return out


def run_once(run: int, kinds: tuple[str, ...] = ("random", "skewed")) -> RunResult:
    rng = np.random.default_rng(10_000 + run)
    kind = kinds[run % len(kinds)]
    share = float(rng.uniform(0.02, 0.10))
    synthetic = make_lead_list(
        LIST_SIZE,
        seed=run,
        base_contact=float(rng.uniform(0.15, 0.4)),
        base_conversion=float(rng.uniform(0.05, 0.2)),
        heterogeneity=float(rng.uniform(1.0, 4.0)),
    )
    pilot_index = _pilot_indices(synthetic.leads, share, kind, rng)
    started = time.perf_counter()
    attempts = dial_leads(synthetic, pilot_index, max_attempts=MAX_ATTEMPTS, seed=run)
    inputs = validate_inputs(attempts, synthetic.leads)
    costs = Costs()
    models = fit_pilot_models(inputs.attempts, inputs.leads, costs=costs, seed=run)
    rest_mask = np.ones(LIST_SIZE, dtype=bool)
    rest_mask[pilot_index] = False
    rest = synthetic.leads[rest_mask]
    projection = project(
        models, rest, max_attempts=MAX_ATTEMPTS, costs=costs, seed=run, draws=DRAWS
    )
    seconds = time.perf_counter() - started
    actual = outcome_totals(
        synthetic, np.flatnonzero(rest_mask), max_attempts=MAX_ATTEMPTS, seed=run + 1
    )
    model = {
        q: (getattr(projection, q).p10, getattr(projection, q).p50, getattr(projection, q).p90)
        for q in QUANTITIES
    }
    return RunResult(
        kind=kind,
        pilot_share=share,
        seconds=seconds,
        actual=actual,
        model=model,
        naive=_naive(inputs.attempts, int(rest_mask.sum()), rng),
        conversion_model=models.conversion_selection.chosen,
    )


def summarise(results: list[RunResult]) -> pd.DataFrame:
    rows = []
    for kind in KINDS:
        subset = [r for r in results if r.kind == kind]
        if not subset:
            continue
        for quantity in QUANTITIES:
            row: dict[str, object] = {"pilot": kind, "quantity": quantity, "runs": len(subset)}
            for method in ("model", "naive"):
                covered, errors, widths = [], [], []
                for r in subset:
                    p10, p50, p90 = getattr(r, method)[quantity]
                    actual = r.actual[quantity]
                    covered.append(p10 <= actual <= p90)
                    errors.append(abs(p50 - actual) / max(actual, 1))
                    widths.append((p90 - p10) / max(actual, 1))
                row[f"{method} coverage"] = f"{np.mean(covered):.0%}"
                row[f"{method} MdAPE"] = f"{np.median(errors):.1%}"
                row[f"{method} width"] = f"{np.median(widths):.1%}"
            rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="back-tests (half random pilots)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument(
        "--kinds",
        default="random,skewed",
        help=f"pilot kinds, taken in turn ({', '.join(KINDS)})",
    )
    args = parser.parse_args()
    kinds = tuple(kind.strip() for kind in args.kinds.split(","))
    if unknown := set(kinds) - set(KINDS):
        parser.error(f"unknown pilot kind(s) {sorted(unknown)}; use {', '.join(KINDS)}")
    runner = functools.partial(run_once, kinds=kinds)
    started = time.perf_counter()
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            results = list(pool.map(runner, range(args.runs)))
    else:
        results = [runner(run) for run in range(args.runs)]
    elapsed = time.perf_counter() - started
    table = summarise(results)
    print(
        f"Feasibility back-test: {args.runs} runs on {LIST_SIZE:,}-lead synthetic lists, pilots "
        f"of 2-10 %, up to {MAX_ATTEMPTS} attempts, {DRAWS} simulation draws"
    )
    print(
        "coverage = share of runs whose realised total falls in P10-P90 (target 75-90 %); "
        "MdAPE = median absolute % error of P50"
    )
    print(table.to_string(index=False))
    chosen = pd.Series([f"{r.kind}: {r.conversion_model}" for r in results]).value_counts()
    print("\nconversion model chosen on the pilot (runs):")
    print(chosen.sort_index().to_string())
    seconds = [r.seconds for r in results]
    print(
        f"\nfit + projection per run: median {np.median(seconds):.2f} s; "
        f"wall time {elapsed:.0f} s with {args.workers} worker(s)"
    )


if __name__ == "__main__":
    main()
