"""Contracts as switches from a status-quo history; practice inertia; the risk-adjustment R^2 dial (issue 7).

Statistical tests run arms on the same seeds from one shared history per seed (common
random numbers) and assert a direction with a 95% confidence interval over seeds.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from scipy import stats

import vbpsim
from vbpsim.experiments import build_model, run_arms
from vbpsim.parameters import RISK_ADJUSTMENT_LEVELS
from vbpsim.risk import r_squared

SEEDS = tuple(range(6))


def ci(values: np.ndarray) -> tuple[float, float]:
    """95% Student-t confidence interval of a mean over seeds."""
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return values.mean() - half, values.mean() + half


@functools.cache
def budget_vs_status_quo(seed: int, change_cost: float | None = None) -> tuple[vbpsim.Result, vbpsim.Result]:
    over = {} if change_cost is None else {"providers.change_cost": change_cost}
    budget = vbpsim.make_scheme("global_budget", {"benchmark": "historical"})
    sq, arm = run_arms(["status_quo", budget], seed, "small", years=3, **over)
    return sq, arm


def yearly_cost_change(sq: vbpsim.Result, arm: vbpsim.Result) -> np.ndarray:
    a = arm.timeseries.groupby("year")["provider_cost"].sum()
    s = sq.timeseries.groupby("year")["provider_cost"].sum()
    return (a / s - 1).to_numpy()


def test_forked_arms_equal_separate_runs() -> None:
    arms = run_arms(["ffs", "capitation"], 3, "small", years=1)
    alone = vbpsim.run("capitation", scenario="small", years=1, seed=3)
    assert arms[1].value_dimensions == alone.value_dimensions
    assert arms[1].indicators["spending_per_capita"] == alone.indicators["spending_per_capita"]


def test_status_quo_arm_is_the_world_fee_schedule_continued() -> None:
    sq, ffs = run_arms(["status_quo", "ffs"], 2, "small", years=1)
    assert sq.indicators == ffs.indicators
    assert len(sq.history) == 3 * 12 and sq.history["year"].max() == -1
    assert sq.timeseries["year"].min() == 0


def test_budget_effect_builds_up_over_years() -> None:
    """A global budget cuts resource cost less in contract year 1 than in year 3."""
    changes = np.array([yearly_cost_change(*budget_vs_status_quo(seed)) for seed in SEEDS])
    assert ci(changes[:, 2])[1] < 0, "the budget lowers cost by year 3"
    low, high = ci(changes[:, 2] - changes[:, 0])
    assert high < 0, f"year-3 cut deeper than year-1 cut: diff CI [{low:.4f}, {high:.4f}]"


def _year_one_shares() -> tuple[np.ndarray, np.ndarray]:
    """Year-1 cost change as a share of the year-3 change, without and with practice inertia."""
    fast = np.array([yearly_cost_change(*budget_vs_status_quo(seed, 0.0)) for seed in SEEDS])
    slow = np.array([yearly_cost_change(*budget_vs_status_quo(seed)) for seed in SEEDS])
    return fast[:, 0] / fast[:, 2], slow[:, 0] / slow[:, 2]


def test_without_inertia_the_response_is_faster() -> None:
    """With change_cost 0, more of the year-3 effect is there in year 1 than with inertia.

    Measured (seeds 0-5): share in year 1, no inertia - inertia, CI [+0.175, +0.411].
    """
    share_fast, share_slow = _year_one_shares()
    assert ci(share_fast - share_slow)[0] > 0, (share_fast, share_slow)


@pytest.mark.xfail(
    reason="year-1 share of the year-3 cost cut without inertia 0.77, 95% CI [0.654, 0.885] (seeds 0-5): most "
    "of it, but the CI now reaches below 0.7 since discretionary admissions are on (off: 0.837 [0.766, "
    "0.908]). The hospitals' admission threshold is a decision that moves by effort.effort_step a step "
    "whatever the practice inertia, so the budget's cut in admissions builds up over the years",
    strict=True,
)
def test_without_inertia_the_response_is_immediate() -> None:
    """With change_cost 0, most (over 70%) of the year-3 effect is there in year 1."""
    share_fast, _ = _year_one_shares()
    assert ci(share_fast)[0] > 0.7, share_fast


def test_historical_benchmark_is_the_history_spending() -> None:
    model = build_model("global_budget", "small", years=1, seed=4, benchmark="historical")
    while model.step_index < model.history_steps:
        model.step()
    last_year = model.records[-12:]
    model.step()  # the switch happens at the start of this step
    paid = model._last_year[0]
    np.testing.assert_allclose(model.historical_cost, paid / 12)
    spent = sum(r["spending"] for r in last_year)
    np.testing.assert_allclose(model.historical_cost.sum() * 12, spent, rtol=1e-9)
    # under a global budget on that benchmark the purchaser pays exactly the history's spending rate
    assert model.records[0]["spending"] == pytest.approx(spent / 12, rel=1e-9)


@pytest.mark.parametrize("level", ["demographic", "prospective", "concurrent", 0.25, 0.7])
def test_risk_adjustment_dial_delivers_the_requested_r2(level: str | float) -> None:
    model = build_model(
        "capitation", "small", years=1, seed=0, n_patients=100_000, risk_adjustment=level, history_years=0
    )
    care = model.care_need()
    scores = model._risk_scores(care)
    alive = model.population.alive
    achieved = r_squared(scores.sum(axis=1)[alive], care["cost"].sum(axis=1)[alive])
    wanted = RISK_ADJUSTMENT_LEVELS[level] if isinstance(level, str) else level
    assert achieved == pytest.approx(wanted, abs=0.02)


def test_no_risk_adjustment_is_flat_and_results_report_r2() -> None:
    result = vbpsim.run("capitation", scenario="small", years=1, seed=1, risk_adjustment="none")
    assert result.indicators["risk_score_r2"] == 0.0
    prospective = vbpsim.run("capitation", scenario="small", years=1, seed=1)
    assert prospective.indicators["risk_score_r2"] == pytest.approx(0.11, abs=0.02)
    assert 0 < prospective.indicators["risk_score_r2_realised"] < prospective.indicators["risk_score_r2"]


@pytest.mark.parametrize("bad", [1.5, -0.1, "hcc", True])
def test_bad_risk_adjustment_level_is_refused(bad: object) -> None:
    with pytest.raises(vbpsim.ParameterError, match="risk_adjustment"):
        vbpsim.run("capitation", scenario="small", years=1, risk_adjustment=bad)
