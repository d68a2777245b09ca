"""Paying for value (issue 12): outcome-based contract pieces steer providers through probing.

Each arm runs on the same seeds (common random numbers: same patients and random streams),
so the paired, same-seed difference isolates the contract piece; each test asserts the
direction with a two-sided 95% Student-t confidence interval of that difference. Scenario
``small``, 3 years, 8 seeds. Realised readmissions are too rare in the small world to count
(about 0.3 a year in 2,000 adults), so readmissions are measured by the readmission risk of
the discharges (``readmission_risk``: the expected readmissions given each discharging
provider's coordination), which is what the realised counts estimate.

Measured when written (seeds 0-7, capitation base, treatment - control): in each test's docstring.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import vbpsim
from vbpsim.schemes import Blend, Capitation, Observation, PaymentScheme

SEEDS = tuple(range(8))
YEARS = 3


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


@pytest.fixture(scope="module")
def series() -> Callable[[str], list[pd.DataFrame]]:
    """Time series of each arm on every seed, each run once per module."""
    cache: dict[str, list[pd.DataFrame]] = {}

    def get(arm: str) -> list[pd.DataFrame]:
        if arm not in cache:
            cache[arm] = [vbpsim.run(ARMS[arm](), scenario="small", years=YEARS, seed=s).timeseries for s in SEEDS]
        return cache[arm]

    return get


def paired_ci(
    series: Callable[[str], list[pd.DataFrame]], treatment: str, control: str, metric: str
) -> tuple[float, float, float]:
    """Mean of (treatment - control) over seeds of a metric's run average, with its 95% CI."""
    diff = np.array(
        [t[metric].mean() - c[metric].mean() for t, c in zip(series(treatment), series(control), strict=True)]
    )
    half = float(stats.t.ppf(0.975, len(diff) - 1)) * float(diff.std(ddof=1)) / np.sqrt(len(diff))
    return float(diff.mean()), float(diff.mean()) - half, float(diff.mean()) + half


def assert_direction(series, treatment: str, control: str, metric: str, sign: int) -> tuple[float, float, float]:
    ci = paired_ci(series, treatment, control, metric)
    message = f"{treatment} - {control}, {metric}: {ci[0]:+.5f} [{ci[1]:+.5f}, {ci[2]:+.5f}]"
    assert (ci[1] > 0) if sign > 0 else (ci[2] < 0), message
    return ci


def test_readmission_penalty_lowers_readmissions(series) -> None:
    """Measured: readmission risk -0.00006 [-0.00010, -0.00001] per month (about -0.6% of 0.011);
    coordination effort +0.0087 [+0.0023, +0.0151]. Small: the HRRP-like penalty bites only
    above last year's average risk and at most 3% of case value."""
    assert_direction(series, "readmission_penalty", "capitation", "readmission_risk", -1)
    assert_direction(series, "readmission_penalty", "capitation", "effort_coordination", +1)


def test_outcome_bonus_per_avoided_stroke_raises_prevention(series) -> None:
    """Measured: prevention effort +0.049 [+0.034, +0.064]; prevention stock +0.020 [+0.011, +0.029];
    strokes -0.014 [-0.026, -0.001] a month (of about 1.3)."""
    assert_direction(series, "outcome_bonus", "capitation", "effort_prevention", +1)
    assert_direction(series, "outcome_bonus", "capitation", "prevention_stock", +1)


def test_prom_bonus_raises_the_measured_outcome_and_unmeasured_quality(series) -> None:
    """The PROM rises; what happens to unmeasured quality was measured, not assumed: it rises too.

    A PROM reports what patients feel, which unmeasured quality also moves, so unlike a
    process-indicator bonus (``p4p``: unmeasured quality falls, tests/test_behaviours.py) it
    does not teach to the test. Measured: PROM score +0.0029 [+0.0020, +0.0038]; unmeasured
    effort +0.018 [+0.011, +0.026]; measured effort +0.016 [+0.009, +0.023]; true quality
    +0.015 [+0.010, +0.019]; spending +1,992 EUR a month [+1,658, +2,325] (the bonus paid).
    """
    assert_direction(series, "prom_bonus", "capitation", "prom_score", +1)
    assert_direction(series, "prom_bonus", "capitation", "effort_unmeasured", +1)
    assert_direction(series, "prom_bonus", "capitation", "true_quality", +1)


def test_a_novel_scheme_paying_per_avoided_stroke_steers_prevention(series) -> None:
    """A scheme written here, not registered, reads the new outcome fields and providers respond.

    Measured: prevention effort +0.154 [+0.128, +0.180]; strokes -0.017 [-0.045, +0.010] (n.s.).
    """
    assert PerAvoidedStroke.name not in vbpsim.list_schemes()
    assert_direction(series, "novel", "capitation", "effort_prevention", +1)
