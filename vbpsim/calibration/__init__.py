"""Calibration: the default world against documented targets, by the method of simulated moments.

``targets.toml`` (beside this module) lists every target with its value, the range the
default scenario must fall in, its source and its role: ``fit`` moments are what
:func:`calibrate` fits the free behavioural parameters to; ``fixed`` parameters come
straight from their source; ``check`` quantities are validation, never fitted;
``assumption`` marks what no source could be found for. A model quantity is computed from
replications with common random numbers (the same seeds for every candidate parameter
vector, so the objective is smooth in the parameters), and the fit minimises the sum of
squared distances to the target values in units of each target's half-range
(McFadden 1989; Gourieroux & Monfort 1996), with scipy's Nelder-Mead.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..parameters import DISCIPLINES, Scenario

TARGETS_FILE = Path(__file__).with_name("targets.toml")
ROLES = ("fit", "fixed", "check", "assumption")
#: Free parameters :func:`calibrate` fits, with the bounds it searches within.
FREE_PARAMETERS: dict[str, tuple[float, float]] = {
    "providers.altruism_mean": (0.2, 1.0),
    "clinical.overtreatment_harm": (0.05, 1.0),
    "providers.change_cost": (0.0, 200.0),
}
HISTORY_WINDOW = 3  # last years of the status-quo history over which status-quo quantities are measured
SWITCH_PRESET = "aqc"  # the contract whose year-1 vs year-4 response calibrates practice inertia
#: The default world at a fifth of its size (the `small` scenario's numbers): the fit runs here for speed,
#: since every target is a ratio per capita; the report and the test measure the full default world.
SMALL_WORLD: dict[str, Any] = {"n_patients": 2000, "n_gp": 6, "n_hospital": 2, "n_rehab": 2, "n_nursing": 2}


@dataclass(frozen=True)
class Target:
    """One documented target: a model quantity, its value and range, and where it comes from."""

    quantity: str
    value: float
    low: float
    high: float
    role: str
    source: str
    maps_to: str

    @property
    def half_range(self) -> float:
        """Half the width of the target's range: the unit of distance in the fit."""
        return max((self.high - self.low) / 2, 1e-9)


def load_targets(path: str | Path = TARGETS_FILE) -> list[Target]:
    """Read and validate a targets file (every target needs a source and a known role)."""
    data = tomllib.loads(Path(path).read_text())
    targets = []
    for i, raw in enumerate(data.get("target", [])):
        try:
            target = Target(**raw)
        except TypeError as exc:
            raise ParameterError(f"target[{i}]", raw, f"fields {list(Target.__dataclass_fields__)}: {exc}") from None
        if target.role not in ROLES:
            raise ParameterError(f"target[{i}].role", target.role, f"one of {list(ROLES)}")
        if not target.low <= target.value <= target.high:
            raise ParameterError(f"target[{i}].value", target.value, f"within [{target.low}, {target.high}]")
        if not target.source.strip():
            raise ParameterError(f"target[{i}].source", target.source, "a source, or 'ASSUMPTION: ...'")
        targets.append(target)
    return targets


def _status_quo_window(history: pd.DataFrame) -> pd.DataFrame:
    return history[history["year"] >= -HISTORY_WINDOW]


def _net_excess_share(frame: pd.DataFrame, disciplines: Sequence[str]) -> float:
    """Share of delivered care beyond the patients' optimum, in resource cost (net of shortfalls)."""
    guideline = sum(float(frame[f"guideline_{d}"].sum()) for d in disciplines)
    delivered = sum(float((frame[f"intensity_{d}"] * frame[f"guideline_{d}"]).sum()) for d in disciplines)
    return 1.0 - guideline / max(delivered, 1e-12)


def status_quo_quantities(history: pd.DataFrame) -> dict[str, float]:
    """Quantities measured on the status-quo history: low-value shares overall and by sector."""
    window = _status_quo_window(history)
    out = {"status_quo.low_value_share": _net_excess_share(window, DISCIPLINES)}
    for name, group in (("hospital", ["hospital"]), ("gp", ["gp"]), ("post_acute", ["rehab", "nursing"])):
        out[f"status_quo.low_value_share.{name}"] = _net_excess_share(window, group)
    return out


def scenario_quantities(scenario: Scenario) -> dict[str, float]:
    """Quantities that are parameters of the scenario itself (fixed from sources or prior moments)."""
    out: dict[str, float] = {"providers.altruism_mean": scenario.providers.altruism_mean}
    fees = scenario.contract.status_quo_params.get("fee_to_cost", 1.25)
    for d in DISCIPLINES:
        out[f"fee_to_cost.{d}"] = float(fees[d] if isinstance(fees, dict) else fees)
    return out


def switch_quantities(status_quo: pd.DataFrame, contract: pd.DataFrame) -> dict[str, float]:
    """Response to a switch: the resource-cost change in contract year 1 relative to year 4."""
    change = contract.groupby("year")["provider_cost"].sum() / status_quo.groupby("year")["provider_cost"].sum() - 1.0
    year4 = float(change.get(3, np.nan))
    ratio = float(change.get(0, np.nan)) / year4 if year4 < 0 else float("nan")
    return {"switch.year1_to_year4": ratio}


def measure(
    seeds: Sequence[int] = (0, 1, 2),
    scenario: str | Scenario = "default",
    progress: Callable[[int, int], None] | None = None,
    **overrides: Any,
) -> pd.DataFrame:
    """Every calibration quantity, one row per seed (common random numbers across calls)."""
    from ..experiments import _scenario_and_contract, run_arms  # late: experiments imports the model

    rows = []
    for i, seed in enumerate(seeds):
        status_quo, switched = run_arms(["status_quo", None], seed, SWITCH_PRESET, years=4, **overrides)
        world, _ = _scenario_and_contract(None, scenario, None, **overrides)
        own_status_quo = run_arms(["status_quo"], seed, scenario, years=1, **overrides)[0]
        rows.append(
            {
                "seed": seed,
                **status_quo_quantities(own_status_quo.history),
                **scenario_quantities(world),
                **switch_quantities(status_quo.timeseries, switched.timeseries),
            }
        )
        if progress is not None:
            progress(i + 1, len(seeds))
    return pd.DataFrame(rows)


def report(targets: Sequence[Target], runs: pd.DataFrame, z: float = 1.96) -> pd.DataFrame:
    """Target, range, model mean with 95% CI over seeds, and whether the mean lies in the range."""
    rows = []
    for t in targets:
        values = runs[t.quantity].to_numpy(dtype=float)
        mean = float(np.nanmean(values))
        half = z * float(np.nanstd(values, ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else 0.0
        rows.append(
            {
                "quantity": t.quantity,
                "role": t.role,
                "target": t.value,
                "low": t.low,
                "high": t.high,
                "model": mean,
                "ci_low": mean - half,
                "ci_high": mean + half,
                "inside": bool(t.low <= mean <= t.high),
            }
        )
    return pd.DataFrame(rows)


def objective(targets: Sequence[Target], runs: pd.DataFrame) -> float:
    """Sum of squared distances of the fitted moments from their targets, in half-ranges."""
    total = 0.0
    for t in targets:
        if t.role != "fit":
            continue
        value = float(np.nanmean(runs[t.quantity].to_numpy(dtype=float)))
        total += ((value - t.value) / t.half_range) ** 2 if np.isfinite(value) else 1e6
    return total


@dataclass
class Calibration:
    """The fitted parameters, the search trace and the report at the optimum."""

    parameters: dict[str, float]
    trace: pd.DataFrame
    table: pd.DataFrame
    objective: float


def calibrate(
    seeds: Sequence[int] = (0, 1, 2),
    free: dict[str, tuple[float, float]] | None = None,
    start: dict[str, float] | None = None,
    max_evaluations: int = 40,
    targets: Sequence[Target] | None = None,
    progress: Callable[[int, int], None] | None = None,
    fit_world: dict[str, Any] | None = None,
    log: str | Path | None = None,
) -> Calibration:
    """Fit the free parameters to the ``fit`` targets by simulated moments (Nelder-Mead, CRN).

    The search runs on ``fit_world`` (default: the small world) and the report at the
    optimum on the default world. ``log``: a CSV the trace is appended to as it goes.
    """
    from scipy.optimize import minimize

    targets = list(targets or load_targets())
    free = dict(free or FREE_PARAMETERS)
    fit_world = dict(SMALL_WORLD if fit_world is None else fit_world)
    defaults = Scenario()
    start = start or {name: _get(defaults, name) for name in free}
    names = list(free)
    lows = np.array([free[n][0] for n in names])
    highs = np.array([free[n][1] for n in names])
    trace: list[dict[str, float]] = []

    def evaluate(x: np.ndarray) -> float:
        point = dict(zip(names, np.clip(x, lows, highs).tolist(), strict=True))
        runs = measure(seeds, **fit_world, **point)
        value = objective(targets, runs)
        trace.append({**point, "objective": value})
        if log is not None:
            pd.DataFrame(trace).to_csv(log, index=False)
        if progress is not None:
            progress(len(trace), max_evaluations)
        return value

    x0 = np.array([start[n] for n in names], dtype=float)
    result = minimize(
        evaluate, x0, method="Nelder-Mead", options={"maxfev": max_evaluations, "xatol": 1e-3, "fatol": 1e-2}
    )
    best = dict(zip(names, np.clip(result.x, lows, highs).tolist(), strict=True))
    table = report(targets, measure(seeds, **best))
    return Calibration(best, pd.DataFrame(trace), table, float(result.fun))


def _get(scenario: Scenario, dotted: str) -> float:
    section, field = dotted.split(".", 1)
    return float(getattr(getattr(scenario, section), field))


def markdown_table(table: pd.DataFrame) -> str:
    """The report as a Markdown table (for docs/CALIBRATION.md)."""
    lines = [
        "| quantity | role | target | range | model (95% CI) | inside |",
        "|---|---|---|---|---|---|",
    ]
    for row in table.itertuples():
        lines.append(
            f"| `{row.quantity}` | {row.role} | {row.target:g} | [{row.low:g}, {row.high:g}] | "
            f"{row.model:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}] | {'yes' if row.inside else '**no**'} |"
        )
    return "\n".join(lines)
