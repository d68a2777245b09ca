"""Admissions are decisions (issue 12, item 4): discretionary admissions and hospital-side selection.

Every arm of a seed is forked from one world (``vbpsim.run_arms``: common random numbers),
so the paired, same-seed difference isolates the contract; each test asserts a direction
with a two-sided 95% Student-t confidence interval of that difference over the seeds. The
world is ``tests/data/small_equilibrium.toml`` (practice inertia off) with
``mechanisms.discretionary_admissions`` on and no status-quo history, 3 years. Each test's
docstring holds the numbers measured when it was written.
"""

from __future__ import annotations

from pathlib import Path
from typing import override

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_scorecard import account_total

import vbpsim
from vbpsim.contracts import GlobalBudget, vbp_contract
from vbpsim.errors import ParameterError
from vbpsim.experiments import run_arms
from vbpsim.model import VBPModel
from vbpsim.parameters import DISCIPLINES
from vbpsim.population import CHRONIC, HOSPITAL
from vbpsim.schemes import Observation

WORLD = str(Path(__file__).parent / "data" / "small_equilibrium.toml")
ON = {"mechanisms.discretionary_admissions": True, "simulation.history_years": 0}
YEARS = 3
SEEDS = tuple(range(4))
SELECTION_SEEDS = tuple(range(8))  # redirected episodes are few: more replications
BUNDLE = {**ON, "groups.composition": "hospital_rehab"}  # the hospital and rehab hold the bundle together


def paired_ci(treatment: list[float], control: list[float]) -> tuple[float, float, float]:
    """Mean of the paired differences with its two-sided 95% Student-t interval."""
    diff = np.asarray(treatment) - np.asarray(control)
    half = float(stats.t.ppf(0.975, len(diff) - 1)) * float(diff.std(ddof=1)) / np.sqrt(len(diff))
    return float(diff.mean()), float(diff.mean()) - half, float(diff.mean()) + half


def indicator(results: list[vbpsim.Result], name: str) -> list[float]:
    return [float(r.indicators[name]) for r in results]


# -- volume: per-case payment rewards discretionary admissions, budgets restrain them -------------
@pytest.fixture(scope="module")
def volume() -> dict[str, list[vbpsim.Result]]:
    """FFS, per-case, capitation and per-period arms per seed, solo contracts."""
    schemes = ("ffs", "per_case", "capitation", "per_period")
    runs = [run_arms(list(schemes), seed, WORLD, years=YEARS, **ON) for seed in SEEDS]
    return {s: [arms[i] for arms in runs] for i, s in enumerate(schemes)}


@pytest.mark.parametrize("control", ["capitation", "per_period"])
def test_per_case_raises_discretionary_admissions(volume: dict[str, list[vbpsim.Result]], control: str) -> None:
    """Per case pays each admission (price 1.05 x its case value), capitation and a budget pay none.

    Measured (seeds 0-3): discretionary admissions per 1,000 person-years per_case - capitation
    +23.7 [+19.4, +27.9], per_case - per_period +25.6 [+20.8, +30.4] (per_case 50.7, capitation
    27.1, per_period 25.1; capitation charging back outside care, so its hospitals no longer
    redirect); chosen admission share in the last year 0.74 vs 0.36 and 0.33 (health optimum 0.75).
    """
    metric = "discretionary_admissions_per_1000"
    mean, low, high = paired_ci(indicator(volume["per_case"], metric), indicator(volume[control], metric))
    assert low > 0, f"per_case - {control}: {mean:+.2f} [{low:+.2f}, {high:+.2f}]"
    mean, low, high = paired_ci(
        indicator(volume["per_case"], "decision_admission"), indicator(volume[control], "decision_admission")
    )
    assert low > 0, f"admission share per_case - {control}: {mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def test_capitation_admits_below_the_health_optimum_and_below_ffs(volume: dict[str, list[vbpsim.Result]]) -> None:
    """Capitation pays nothing per admission: its hospitals admit well below the health optimum (0.75).

    Measured (seeds 0-3, last year): capitation 0.36 (every admission a cost), FFS at the
    status-quo fees 0.73 (hospital fee 1.04 x cost: a thin margin, against the harm of
    admitting beyond the optimum and the overtime premium beyond capacity).
    """
    optimum = vbpsim.Scenario().clinical.admission_appropriate_share
    cap = indicator(volume["capitation"], "decision_admission")
    ffs = indicator(volume["ffs"], "decision_admission")
    assert max(cap) < optimum - 0.1, cap
    assert min(ffs) > max(cap), (ffs, cap)


def test_no_emergency_is_ever_declined(volume: dict[str, list[vbpsim.Result]]) -> None:
    """Strokes always get hospital care, whatever the contract."""
    for results in volume.values():
        assert indicator(results, "declined_emergencies") == [0.0] * len(results)


# -- substitution: better GP chronic care and prevention mean fewer ACS admissions ----------------
def test_acs_hazard_falls_with_gp_care_and_prevention() -> None:
    """The mechanism's own function: ACS candidates fall with GP benefit of care and prevention."""
    model = VBPModel(vbpsim.load_scenario("small").model_copy(deep=True), seed=0)
    chronic = model.population.state == CHRONIC
    assert chronic.any()
    ones = np.ones(model.population.size)
    rates = [model._admission_rates(ones * b)[1][chronic].sum() for b in (0.6, 0.8, 1.0)]
    assert rates[0] > rates[1] > rates[2] > 0
    if model.mechanisms.prevention:
        model.prevention_stock[:] = 1.0
        prevented = model._admission_rates(ones)[1][chronic].sum()
        efficacy = model.config.effort.prevention_efficacy
        assert prevented == pytest.approx(rates[2] * (1 - efficacy))


def test_gp_prevention_bonus_lowers_acs_admissions() -> None:
    """A contract rewarding avoided strokes raises GP prevention, and the ACS hazard falls with it.

    Capitation + outcome_bonus against capitation, solo contracts. The ACS hazard (expected ACS
    candidates, what the realised counts estimate) is compared in the last contract year.
    Measured (seeds 0-3): final-year prevention effort +0.041 [+0.013, +0.068]; last-year ACS
    hazard per 1,000 person-years -0.13 [-0.20, -0.06] (8.81 vs 8.94).
    """
    effort, hazard = [], []
    for seed in SEEDS:
        bonus, base = run_arms(["capitation+outcome_bonus", "capitation"], seed, WORLD, years=YEARS, **ON)
        effort.append((bonus.indicators["effort_prevention"], base.indicators["effort_prevention"]))
        hazard.append((last_year_rate(bonus.timeseries, "acs_hazard"), last_year_rate(base.timeseries, "acs_hazard")))
    mean, low, high = paired_ci(*zip(*effort, strict=True))
    assert low > 0, f"prevention effort: {mean:+.3f} [{low:+.3f}, {high:+.3f}]"
    mean, low, high = paired_ci(*zip(*hazard, strict=True))
    assert high < 0, f"ACS hazard per 1,000: {mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def last_year_rate(ts: pd.DataFrame, column: str) -> float:
    """Per 1,000 person-years in the last year of a run."""
    last = ts[ts.year == ts.year.max()]
    return 1000 * float(last[column].sum()) / float(last.alive.sum() / 12)


# -- hospital-side selection under a bundle with downside risk ---------------------------------------
@pytest.fixture(scope="module")
def selection() -> dict[str, list[vbpsim.Result]]:
    """FFS and the hospital+rehab bundle, without and with full risk adjustment, per seed."""
    out: dict[str, list[vbpsim.Result]] = {"ffs": [], "bundle": [], "bundle_adjusted": []}
    for seed in SELECTION_SEEDS:
        unadjusted = {**BUNDLE, "purchaser.risk_adjustment": "none"}
        ffs, bundle = run_arms(["ffs", "bundle"], seed, WORLD, years=YEARS, **unadjusted)
        (adjusted,) = run_arms(["bundle"], seed, WORLD, years=YEARS, **BUNDLE, **{"purchaser.risk_adjustment": "full"})
        out["ffs"].append(ffs)
        out["bundle"].append(bundle)
        out["bundle_adjusted"].append(adjusted)
    return out


def test_bundle_without_risk_adjustment_redirects_more_than_ffs(selection: dict[str, list[vbpsim.Result]]) -> None:
    """Hospitals in a bundle without risk adjustment redirect planned episodes; under FFS none pay to.

    Measured (seeds 0-7): redirected planned episodes per 1,000 person-years bundle - FFS
    +1.11 [+0.47, +1.75] (FFS 0: every billed unit pays 1.04 x its cost); hospitals' redirect
    share in the last year 0.26 (their ethics bound) vs 0; 2.4% of planned episodes redirected.
    """
    mean, low, high = paired_ci(
        indicator(selection["bundle"], "redirected_per_1000"), indicator(selection["ffs"], "redirected_per_1000")
    )
    assert low > 0, f"bundle - ffs: {mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def test_redirected_episodes_are_the_highest_risk(selection: dict[str, list[vbpsim.Result]]) -> None:
    """Redirected episodes come mostly from the top risk quartile (a quarter if risk did not matter).

    Measured (seeds 0-7, pooled): 43 of 52 redirected episodes (0.83) in the top frailty quartile.
    """
    ts = pd.concat([r.timeseries for r in selection["bundle"]])
    redirected = ts.redirected_planned.sum()
    high = ts.redirected_high_risk.sum()
    assert redirected >= 10, redirected
    test = stats.binomtest(int(high), int(redirected), 0.25, alternative="greater")
    assert test.pvalue < 0.01, (high, redirected)


def test_risk_adjustment_reduces_redirecting(selection: dict[str, list[vbpsim.Result]]) -> None:
    """With the case price following the patient's risk no planned episode loses money: fewer redirected.

    Measured (seeds 0-7): redirected per 1,000 person-years full - no risk adjustment
    -1.11 [-1.75, -0.47]; hospitals' redirect share in the last year 0.00 vs 0.26.
    """
    mean, low, high = paired_ci(
        indicator(selection["bundle_adjusted"], "redirected_per_1000"),
        indicator(selection["bundle"], "redirected_per_1000"),
    )
    assert high < 0, f"adjusted - unadjusted: {mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def test_bundle_never_declines_an_emergency(selection: dict[str, list[vbpsim.Result]]) -> None:
    """Redirecting applies to planned episodes only: no stroke is ever declined."""
    for results in selection.values():
        assert indicator(results, "declined_emergencies") == [0.0] * len(results)


# -- who pays for redirected care: the contract decides ----------------------------------------------
def _year_with_outside(outside: float) -> Observation:
    """A yearly observation of one hospital payee with ``outside`` EUR of redirected care."""
    services = np.zeros((1, len(DISCIPLINES)))
    services[0, HOSPITAL] = 100.0
    cost_mix = np.zeros((1, len(DISCIPLINES)))
    cost_mix[0, HOSPITAL] = 90_000.0
    zero = Observation.zeros(1, np.full(len(DISCIPLINES), 1000.0), 12.0)
    return zero.replace(
        services=services,
        cases=np.array([20.0]),
        case_value=np.array([100_000.0]),
        case_mix=services * 1000.0,
        member_months=np.array([1200.0]),
        expected_cost=np.array([100_000.0]),
        average_cost=np.array([100_000.0]),
        baseline_cost=np.array([100_000.0]),
        cost=np.array([90_000.0]),
        cost_mix=cost_mix,
        measured_quality=np.array([0.9]),
        outside_cost=np.array([outside]),
    )


SS = {"shared_savings_loss_rate": 0.5, "shared_savings_min_loss_rate": 0.0, "shared_savings_min_savings_rate": 0.0}


@pytest.mark.parametrize(
    ("scheme", "params", "charged"),
    [
        ("capitation", {}, 1.0),  # covers_outside_care: comprehensive capitation covers referred care
        ("capitation", {"covers_outside_care": False}, 0.0),
        ("global_budget", {}, 1.0),
        ("global_budget", {"carve_out": ["hospital"]}, 0.0),  # hospital care is paid outside the contract anyway
        ("global_budget+shared_savings", SS, 0.5),  # the payee bears its loss share of it, like any cost
        ("ffs+shared_savings", SS, 0.5),
        ("vbp_contract", {}, None),  # charged in part (corridors): checked for direction only
        ("ffs", {}, 0.0),
        ("per_case", {}, 0.0),
        ("per_period", {}, 0.0),
        ("bundle", {}, 0.0),
    ],
)
def test_outside_cost_is_charged_back_only_by_population_contracts(
    scheme: str, params: dict[str, object], charged: float | None
) -> None:
    """Population-based contracts count the payee's redirected care; per case, per period and FFS do not."""
    contract = vbp_contract() if scheme == "vbp_contract" else vbpsim.make_scheme(scheme, params)
    before = contract.pay(_year_with_outside(0.0))[0]
    after = contract.pay(_year_with_outside(10_000.0))[0]
    if charged is None:
        assert after < before
    else:
        assert before - after == pytest.approx(charged * 10_000.0)


def test_capitation_covering_outside_care_takes_away_the_free_lunch() -> None:
    """Redirecting under capitation falls when the capitation covers the care bought outside.

    Same contract (solo capitation, risk-adjusted), with and without ``covers_outside_care``:
    without it a redirected planned episode is pure saving (the purchaser pays it), so hospitals
    redirect up to their ethics bound; with it the payee pays the outside cost and redirecting
    saves nothing but harms the patient. Measured (seeds 0-7): redirected per 1,000
    person-years covered - not covered -3.98 [-5.36, -2.59] (covered 0.00 in every seed, not
    covered 3.98); hospitals' redirect share in the last year 0.00 vs 0.26 (their ethics bound).
    """
    covered, uncovered = [], []
    for seed in SELECTION_SEEDS:
        arms = run_arms(
            [
                vbpsim.make_scheme("capitation", {"covers_outside_care": True}),
                vbpsim.make_scheme("capitation", {"covers_outside_care": False}),
            ],
            seed,
            WORLD,
            years=YEARS,
            **ON,
        )
        covered.append(arms[0])
        uncovered.append(arms[1])
    mean, low, high = paired_ci(indicator(covered, "redirected_per_1000"), indicator(uncovered, "redirected_per_1000"))
    assert high < 0, f"covered - not covered: {mean:+.3f} [{low:+.3f}, {high:+.3f}]"


class _BudgetIgnoringOutsideCare(GlobalBudget):
    """A global budget whose purchaser pays redirected care on top (a novel scheme, not registered)."""

    @override
    def outside_cost(self, obs: Observation) -> np.ndarray:
        return np.zeros(obs.n_payees)


def test_global_budget_charging_outside_care_redirects_less() -> None:
    """The same global budget with and without the charge-back: only the money flow differs.

    Measured (seeds 0-7): redirected per 1,000 person-years charged - not charged
    -3.87 [-5.24, -2.50] (charged 0.00 in every seed, not charged 3.87); redirect share in the
    last year 0.00 vs 0.26.
    """
    charged, free = [], []
    for seed in SELECTION_SEEDS:
        arms = run_arms([GlobalBudget(), _BudgetIgnoringOutsideCare()], seed, WORLD, years=YEARS, **ON)
        charged.append(arms[0])
        free.append(arms[1])
    mean, low, high = paired_ci(indicator(charged, "redirected_per_1000"), indicator(free, "redirected_per_1000"))
    assert high < 0, f"charged - not charged: {mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def test_outside_cost_is_observed_at_the_redirecting_hospital() -> None:
    """The observation reports each redirected episode's normative cost at its hospital, and spending counts it."""
    scheme = vbpsim.make_scheme("capitation", {"covers_outside_care": False})
    (result,) = run_arms([scheme], 1, WORLD, years=2, **ON)
    ts = result.timeseries
    assert ts.redirected_planned.sum() > 0
    assert ts.redirected_cost.sum() > 0


def test_cost_accounts_add_up_with_admissions() -> None:
    """Admissions enter the cost accounts: need + overtreatment - withheld + ... = provider cost."""
    (result,) = run_arms(["per_case"], 0, WORLD, years=1, **ON)
    ts = result.timeseries
    assert ts.planned_admissions.sum() > 0
    np.testing.assert_allclose(account_total(ts), ts.provider_cost, rtol=1e-9)


# -- the switch, the core and bad input ----------------------------------------------------------------
def test_switch_off_draws_nothing_and_records_zeros() -> None:
    """Off (the default), no admission is drawn and the indicators are 0."""
    off = {"simulation.history_years": 0, "mechanisms.discretionary_admissions": False}
    result = vbpsim.run(scheme="per_case", scenario=WORLD, years=1, seed=0, **off)
    ts = result.timeseries
    for column in ("planned_admissions", "acs_admissions", "redirected_planned", "declined_emergencies"):
        assert ts[column].sum() == 0.0
    assert result.indicators["decision_redirect"] == 0.0


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("clinical.admission_appropriate_share", 0.0),
        ("clinical.admission_units", -1.0),
        ("clinical.planned_admission_rate", 3.0),
        ("clinical.acs_admission_rate", -0.1),
        ("clinical.admission_qaly_gain", "0.05"),
        ("selection.redirect_harm", 1.5),
        ("mechanisms.discretionary_admissions", "yes"),
    ],
)
def test_bad_admission_parameters_are_refused(key: str, value: object) -> None:
    with pytest.raises(ParameterError, match=key.split(".")[-1]):
        vbpsim.run(scheme="ffs", scenario="small", years=1, seed=0, **{key: value})
