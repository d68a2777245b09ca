"""Small helpers for the teaching notebooks: arms on common seeds, confidence intervals, bands.

A classroom experiment compares *arms* (a contract with its parameters, or a scenario
lever) on the same seeds, so every arm sees the same patients and random streams (common
random numbers) and the paired difference between two arms is the arm's doing. These
helpers run such arms, put them in the table format of :func:`vbpsim.replicate` (one row
per run, the arm's label in the ``scheme`` column, so :func:`vbpsim.compare` and
:func:`vbpsim.paired_difference` work on it), and draw yearly means over seeds with a 95%
confidence band. Intervals use Student's t over seeds: classroom runs have few seeds,
where the normal 1.96 would be too narrow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .errors import ParameterError
from .experiments import STATUS_QUO, Result, paired_difference, run, split_overrides
from .experiments import run_arms as fork
from .model import check_seed
from .scenarios import load_scenario
from .schemes import PaymentScheme, make_scheme, with_world_defaults

Arm = str | PaymentScheme | None | tuple[str | PaymentScheme | None, Mapping[str, Any]]
Column = str | Callable[[pd.DataFrame], pd.Series]


def _series(ts: pd.DataFrame, column: Column) -> pd.Series:
    if callable(column):
        return pd.Series(np.asarray(column(ts), dtype=float), index=ts.index)
    if column not in ts:
        raise ParameterError("column", column, f"a time-series column ({', '.join(ts.columns)}) or a function of it")
    return ts[column]


def _arm_parts(label: str, arm: Arm) -> tuple[str | PaymentScheme | None, dict[str, Any]]:
    if isinstance(arm, tuple):
        if len(arm) != 2 or not isinstance(arm[1], Mapping):
            raise ParameterError(f"arms[{label!r}]", arm, "a scheme, or a (scheme, {parameter: value}) pair")
        return arm[0], dict(arm[1])
    return arm, {}


def arms_over_seeds(
    arms: Mapping[str, Arm],
    seeds: Iterable[int],
    scenario: str = "small",
    years: int = 3,
    **common: Any,
) -> dict[str, list[Result]]:
    """Run every arm on every seed (common random numbers); results by arm label, in seed order.

    An arm is a scheme (a name, a :class:`PaymentScheme`, or ``None`` for the scenario's own
    contract) or a ``(scheme, overrides)`` pair; ``common`` overrides apply to every arm and
    an arm's own overrides win over them. Arms that share their scenario (and differ only in
    their contract) are forked from one status-quo history per seed (:func:`vbpsim.run_arms`),
    which gives the same numbers as separate runs in less time.
    """
    seeds = [check_seed(s) for s in seeds]
    if not seeds:
        raise ParameterError("seeds", seeds, "at least one non-negative integer seed")
    parts = {label: _arm_parts(label, arm) for label, arm in arms.items()}
    forkable: dict[tuple, list[str]] = {}
    contracts: dict[str, str | PaymentScheme | None] = {}
    for label, (scheme, overrides) in parts.items():
        world, scheme_params = split_overrides({**common, **overrides})
        if scheme_params:
            if scheme == STATUS_QUO or isinstance(scheme, PaymentScheme):
                continue  # run on its own
            contracts[label] = _contract(scheme, scheme_params, scenario, world)
        elif scheme is None or isinstance(scheme, str):
            contracts[label] = scheme
        else:
            continue
        forkable.setdefault(tuple(sorted(world.items(), key=lambda kv: kv[0])), []).append(label)
    shared = {label: key for key, labels in forkable.items() if len(labels) > 1 for label in labels}
    out: dict[str, list[Result]] = {label: [] for label in arms}
    for seed in seeds:
        done: set[str] = set()
        for label, (scheme, overrides) in parts.items():
            if label in done:
                continue
            if label in shared:
                group = forkable[shared[label]]
                schemes = [contracts[g] for g in group]
                world = dict(shared[label])
                for g, result in zip(group, fork(schemes, seed, scenario, years, **world), strict=True):
                    out[g].append(result)
                done.update(group)
            else:
                out[label].append(run(scheme, scenario, years, seed, **{**common, **overrides}))
    return out


def _contract(scheme: str | None, scheme_params: dict[str, Any], scenario: str, world: dict[str, Any]) -> PaymentScheme:
    """The contract object a run would build from a scheme name (or the scenario's own) and its parameters."""
    sc = load_scenario(scenario)
    if world:
        sc = sc.with_overrides(**world)
    name, params = (
        (sc.contract.scheme, {**sc.contract.params, **scheme_params})
        if scheme is None
        else (
            scheme,
            scheme_params,
        )
    )
    return make_scheme(name, with_world_defaults(name, params, sc.contract.status_quo_params))


def table(results: Mapping[str, Sequence[Result]], **final: Column) -> pd.DataFrame:
    """One row per run (arm label in ``scheme``, ``seed``, value dimensions, indicators), like ``replicate``.

    Each keyword adds a column ``name=column``: the run's final-year mean of a time-series
    column (or of a function of the time series), for effects that build up after the switch.
    """
    rows = [
        {
            "scheme": label,
            "seed": r.seed,
            **r.value_dimensions,
            **r.indicators,
            **{name: final_year(r, column) for name, column in final.items()},
        }
        for label, runs in results.items()
        for r in runs
    ]
    return pd.DataFrame(rows)


def final_year(result: Result, column: Column) -> float:
    """Mean of a time-series column (or of a function of the time series) over a run's last year."""
    ts = result.timeseries
    last = ts["year"] == ts["year"].max()
    return float(_series(ts, column)[last].mean())


def t_quantile(n: int, level: float = 0.95) -> float:
    """Two-sided Student-t quantile for a mean over ``n`` seeds (the ``z`` of :func:`paired_difference`)."""
    if n < 2:
        raise ParameterError("n", n, "at least 2 seeds for a confidence interval")
    if not 0 < level < 1:
        raise ParameterError("level", level, "a confidence level strictly between 0 and 1")
    return float(stats.t.ppf(0.5 + level / 2, df=n - 1))


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean over seeds with a two-sided Student-t confidence interval: (mean, low, high)."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    half = t_quantile(len(x), level) * float(x.std(ddof=1)) / np.sqrt(len(x))
    return mean, mean - half, mean + half


def paired_ci(
    runs: pd.DataFrame, metric: str, treatment: str, control: str, level: float = 0.95
) -> tuple[float, float, float]:
    """Mean paired (same-seed) difference treatment - control of a metric, with a Student-t CI."""
    n = int(runs.loc[runs.scheme == treatment, "seed"].nunique())
    mean, low, high = paired_difference(runs, metric, treatment, control, z=t_quantile(n, level))
    return float(mean), float(low), float(high)


def yearly(results: Sequence[Result], column: Column) -> pd.DataFrame:
    """Yearly mean of a time-series column (or a function of the time series): rows years, columns seeds."""
    return pd.DataFrame({r.seed: _series(r.timeseries, column).groupby(r.timeseries["year"]).mean() for r in results})


def intensity(ts: pd.DataFrame) -> pd.Series:
    """Per step: cost of care delivered / cost of guideline care (1 = the patient optimum)."""
    delivered = ts.guideline_cost - ts.shortfall_cost + ts.low_value_cost
    return delivered / ts.guideline_cost.where(ts.guideline_cost > 0)


def band(results: Sequence[Result], column: Column, level: float = 0.95) -> pd.DataFrame:
    """Mean over seeds of a column's yearly means, with a Student-t confidence band (mean, low, high)."""
    per_seed = yearly(results, column)
    mean = per_seed.mean(axis=1)
    half = t_quantile(per_seed.shape[1], level) * per_seed.std(axis=1, ddof=1) / np.sqrt(per_seed.shape[1])
    return pd.DataFrame({"mean": mean, "low": mean - half, "high": mean + half})


def plot_band(ax: Any, results: Sequence[Result], column: Column, label: str | None = None, **style: Any) -> Any:
    """Draw a column's yearly mean over seeds with its 95% band on a matplotlib axis; returns the line."""
    b = band(results, column)
    years = b.index.to_numpy() + 1  # year 0 is the first simulated year
    (line,) = ax.plot(years, b["mean"], marker="o", label=label, **style)
    ax.fill_between(years, b["low"], b["high"], color=line.get_color(), alpha=0.2)
    return line


def plot_means(ax: Any, runs: pd.DataFrame, metric: str, labels: Sequence[str] | None = None) -> None:
    """Bar chart of a metric's mean by arm with 95% Student-t error bars."""
    labels = list(labels or runs.scheme.unique())
    cis = [mean_ci(runs.loc[runs.scheme == label, metric]) for label in labels]
    means = [c[0] for c in cis]
    errors = [[c[0] - c[1] for c in cis], [c[2] - c[0] for c in cis]]
    ax.bar(labels, means, yerr=errors, capsize=4, color="lightsteelblue", edgecolor="grey")
    ax.set_ylabel(metric)
