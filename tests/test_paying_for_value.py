"""Paying for value (issue 12): outcome-based contract pieces steer providers through probing.

Every arm of a seed is forked from one world (``vbpsim.run_arms``: common random numbers,
same patients and random streams), so the paired, same-seed difference isolates the
contract piece; each test asserts the direction with a two-sided 95% Student-t confidence
interval of that difference. Scenario ``small``, 3 years from the start of the contract
(no status-quo history), 6 seeds (16 for the readmission penalty, whose effect is small).
Realised readmissions are too rare in the small world to count (about 0.3 a year in 2,000
adults), so readmissions are measured by the readmission risk per hand-off
(``readmission_risk / handoffs``: each discharge's readmission probability given its
sender's coordination), which is what the realised counts estimate. Each test's docstring
holds the numbers measured when it was written (treatment - capitation).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import vbpsim
from vbpsim.experiments import run_arms
from vbpsim.schemes import Blend, Capitation, Observation, PaymentScheme

SEEDS = tuple(range(6))  # large responses (prevention, PROM)
READMISSION_SEEDS = tuple(range(16))  # the penalty's effect is small: more replications
YEARS = 3
# Contract effects on the same world from its start: no status-quo history (faster; issue 7's
# history and inertia are switched off only by history_years = 0, inertia stays on).
WORLD = {"simulation.history_years": 0}


class PerAvoidedStroke(PaymentScheme):
    """A novel scheme, not registered: EUR 20,000 per stroke below the risk-adjusted expectation.

    Settled monthly and two-sided (a stroke above the expectation costs the same), written
    only against the public observation fields.
    """

    name = "test_per_avoided_stroke"

    def __init__(self, *, per_stroke: float = 20_000.0):
        self.per_stroke = per_stroke

    def pay(self, observation: Observation) -> np.ndarray:
        return self.per_stroke * (observation.expected_acute_events - observation.acute_events)


ARMS: dict[str, Callable[[], str | PaymentScheme]] = {
    "capitation": lambda: "capitation",
    "readmission_penalty": lambda: "capitation+readmission_penalty",
    "outcome_bonus": lambda: "capitation+outcome_bonus",
    "prom_bonus": lambda: "capitation+prom_bonus",
    "novel": lambda: Blend(parts=[(1.0, Capitation()), (1.0, PerAvoidedStroke())]),
}
FAST = ("capitation", "outcome_bonus", "prom_bonus", "novel")


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, int], pd.DataFrame]:
    """Time series per (arm, seed): every arm of a seed forked from one world (common random numbers)."""
    out: dict[tuple[str, int], pd.DataFrame] = {}
    for seed in READMISSION_SEEDS:
        arms = ("capitation", "readmission_penalty", *(FAST[1:] if seed in SEEDS else ()))
        results = run_arms([ARMS[a]() for a in arms], seed, "small", years=YEARS, **WORLD)
        out.update({(arm, seed): r.timeseries for arm, r in zip(arms, results, strict=True)})
    return out


def paired_ci(
    runs: dict[tuple[str, int], pd.DataFrame], treatment: str, control: str, metric: Callable[[pd.DataFrame], float]
) -> tuple[float, float, float]:
    """Mean of (treatment - control) over the seeds both ran, with its 95% Student-t CI."""
    seeds = sorted(s for (arm, s) in runs if arm == treatment)
    diff = np.array([metric(runs[treatment, s]) - metric(runs[control, s]) for s in seeds])
    half = float(stats.t.ppf(0.975, len(diff) - 1)) * float(diff.std(ddof=1)) / np.sqrt(len(diff))
    return float(diff.mean()), float(diff.mean()) - half, float(diff.mean()) + half


def mean_of(column: str) -> Callable[[pd.DataFrame], float]:
    """A run's average of a time-series column."""
    return lambda ts: float(ts[column].mean())


def final_year(column: str) -> Callable[[pd.DataFrame], float]:
    """A run's average of a column over its last year (responses build up under practice inertia)."""

    def value(ts: pd.DataFrame) -> float:
        return float(ts[column].iloc[-12:].mean())

    value.__name__ = f"{column}_final_year"
    return value


def readmission_rate(ts: pd.DataFrame) -> float:
    """Readmission risk per hand-off over the run (the rate the realised counts estimate)."""
    return float(ts.readmission_risk.sum() / ts.handoffs.sum())


def assert_direction(
    runs: dict[tuple[str, int], pd.DataFrame],
    treatment: str,
    metric: str | Callable[[pd.DataFrame], float],
    sign: int,
    control: str = "capitation",
) -> None:
    """The 95% CI of treatment - control lies on the ``sign`` side of zero."""
    name = metric if isinstance(metric, str) else metric.__name__
    ci = paired_ci(runs, treatment, control, mean_of(metric) if isinstance(metric, str) else metric)
    message = f"{treatment} - {control}, {name}: {ci[0]:+.6f} [{ci[1]:+.6f}, {ci[2]:+.6f}]"
    print(message)
    assert (ci[1] > 0) if sign > 0 else (ci[2] < 0), message


def test_readmission_penalty_lowers_readmissions(runs) -> None:
    """The HRRP-like penalty raises coordination and lowers the readmission rate, a little.

    Measured (16 seeds, 3 years): readmission risk per hand-off -0.000064 [-0.000099,
    -0.000030]; coordination effort +0.0026 [+0.0017, +0.0035]. Small because the penalty
    bites only above last year's average readmission risk (not in the first year, when the
    reference is usual care), so only providers expecting to be above average gain by
    coordinating more; practice inertia slows the response further.
    """
    assert_direction(runs, "readmission_penalty", readmission_rate, -1)
    assert_direction(runs, "readmission_penalty", "effort_coordination", +1)


def test_outcome_bonus_per_avoided_stroke_raises_prevention(runs) -> None:
    """Measured (final year): prevention effort +0.0141 [+0.0051, +0.0232]; prevention stock
    +0.0072 [+0.0013, +0.0132]; strokes -0.005 a month [-0.017, +0.007] (n.s.).
    """
    assert_direction(runs, "outcome_bonus", final_year("effort_prevention"), +1)
    assert_direction(runs, "outcome_bonus", final_year("prevention_stock"), +1)


def test_prom_bonus_raises_the_measured_outcome_and_unmeasured_quality(runs) -> None:
    """The PROM rises; what happens to unmeasured quality was measured, not assumed: it rises too.

    A PROM reports what patients feel, which unmeasured quality also moves, so unlike a
    process-indicator bonus (``p4p``: unmeasured quality falls, tests/test_behaviours.py) it
    does not teach to the test. Measured: PROM score +0.00021 [+0.00007, +0.00035];
    unmeasured effort +0.0047 [+0.0030, +0.0065]; measured effort +0.0023 [-0.0001, +0.0048];
    true quality +0.0011 [+0.0004, +0.0018]; spending +2,578 EUR a month [+2,156, +3,001],
    mostly the bonus paid (a bonus for what providers already deliver).
    """
    assert_direction(runs, "prom_bonus", "prom_score", +1)
    assert_direction(runs, "prom_bonus", "effort_unmeasured", +1)
    assert_direction(runs, "prom_bonus", "true_quality", +1)


def test_a_novel_scheme_paying_per_avoided_stroke_steers_prevention(runs) -> None:
    """A scheme written here, not registered, reads the new outcome fields and providers respond.

    Measured: prevention effort +0.038 [+0.033, +0.044]; strokes -0.019 a month
    [-0.042, +0.005] (n.s.).
    """
    assert PerAvoidedStroke.name not in vbpsim.list_schemes()
    assert_direction(runs, "novel", "effort_prevention", +1)


def test_report_other_responses(runs) -> None:
    """Numbers reported with ``-s``, not asserted: strokes under the bonuses, the bonus paid."""
    for arm, metric in (
        ("outcome_bonus", "strokes"),
        ("novel", "strokes"),
        ("readmission_penalty", "readmission_risk"),
        ("prom_bonus", "effort_measured"),
        ("prom_bonus", "spending"),
    ):
        ci = paired_ci(runs, arm, "capitation", mean_of(metric))
        print(f"{arm} - capitation, {metric}: {ci[0]:+.5f} [{ci[1]:+.5f}, {ci[2]:+.5f}]")
        assert np.isfinite(ci).all()


# -- treatment by need class (item 5) -------------------------------------------------------
NEED_SEEDS = tuple(range(5))


@pytest.fixture(scope="module")
def need_runs() -> dict[tuple[str, int], pd.DataFrame]:
    """FFS and capitation with need classes on, forked from one world per seed."""
    out: dict[tuple[str, int], pd.DataFrame] = {}
    for seed in NEED_SEEDS:
        arms = ("ffs", "capitation")
        results = run_arms(list(arms), seed, "small", years=YEARS, **WORLD, **{"mechanisms.need_classes": True})
        out.update({(arm, seed): r.timeseries for arm, r in zip(arms, results, strict=True)})
    return out


def final_year_tilt(ts: pd.DataFrame) -> float:
    """Mean need tilt over the last simulated year."""
    return float(ts.decision_need_tilt.iloc[-12:].mean())


def care_gap(ts: pd.DataFrame) -> float:
    """Care ratio of high-need minus low-need patients over the run."""
    return float((ts.intensity_high_need - ts.intensity_low_need).mean())


def test_capitation_treats_high_need_patients_relatively_less_than_ffs(need_runs) -> None:
    """Distributional effects emerge from the same rule: nothing about need is written in a scheme.

    Under capitation a unit of care is a cost, and high-need patients carry more units, so
    providers shave their care first; under FFS each unit earns its fee, so high-need patients
    get more. Measured (5 seeds, 3 years): need tilt in the last year, FFS - capitation
    +0.023 [+0.020, +0.025]; care-ratio gap high - low need, FFS - capitation +0.045
    [+0.035, +0.054].
    """
    assert_direction(need_runs, "ffs", final_year_tilt, +1, control="capitation")
    assert_direction(need_runs, "ffs", care_gap, +1, control="capitation")
