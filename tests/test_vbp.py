"""Value-based payment: what its design features must show (issue 4), as statistics.

Each test runs its arms on the same seeds (common random numbers: the same patients and
the same random streams in every arm), takes the paired difference treatment - control
per seed and asserts a *direction* with the 95% confidence interval of the mean
difference (Student t over seeds): the whole interval must lie on the predicted side of
zero (or of a stated tolerance), so every test could fail. A phenomenon the model does
not produce is marked ``xfail(strict=True)`` with the measured numbers, never loosened.

Sources: Cattel, Eijkenaar & Schut (2018), Section 4 (seed 004) and the Rotterdam
stroke-care case (seed 000). Worlds: scenario ``small`` (2,000 adults, 6 GPs and 2 of each
other discipline) or a preset shrunk to that world (``SMALL_WORLD``); runs are cached per
process so the tests of one phenomenon share them.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

import vbpsim
from vbpsim.cli import app
from vbpsim.metrics import DIMENSIONS
from vbpsim.parameters import INNOVATION_TYPES

SEEDS = tuple(range(1, 9))  # 8 replications shared by every arm
PRESETS = ("aqc", "mssp", "kinzigtal", "diabetes_bundle", "stroke_vbp", "cattel_vbp")
# The presets are built on the default world (10,000 adults, 42 providers); this shrinks
# them to the small world (equal hospital/rehab/nursing counts, as chains need).
# Practice inertia is off in these tests (change_cost 0): they compare designs' equilibrium
# incentives; how fast practice responds after a switch is tested in test_history.py.
SMALL_WORLD: dict[str, Any] = {
    "n_patients": 2000,
    "n_gp": 6,
    "n_hospital": 2,
    "n_rehab": 2,
    "n_nursing": 2,
    "providers.change_cost": 0.0,
    "simulation.history_years": 3,
}
SMALL = str(Path(__file__).parent / "data" / "small_equilibrium.toml")


# -- running and statistics --------------------------------------------------------------------
def _hashable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    return value


@functools.cache
def _run(scheme: str | None, scenario: str, years: int, seed: int, overrides: tuple) -> vbpsim.Result:
    return vbpsim.run(scheme, scenario=scenario, years=years, seed=seed, **dict(overrides))


def arm(
    scheme: str | None, scenario: str = SMALL, years: int = 3, seeds: tuple[int, ...] = SEEDS, **overrides: Any
) -> list[vbpsim.Result]:
    """One arm: a scheme (``None``: the scenario's contract) with overrides on every seed."""
    key = tuple(sorted((k, _hashable(v)) for k, v in overrides.items()))
    return [_run(scheme, scenario, years, seed, key) for seed in seeds]


@functools.cache
def _innovation_run(scheme: str | None, scenario: str, years: int, seed: int, overrides: tuple) -> dict[str, float]:
    model = vbpsim.build_model(scheme, scenario, years, seed, **dict(overrides))
    model.run()
    result = vbpsim.experiments.result_of(model)
    out = {"effort_prevention": result.indicators["effort_prevention"]}
    for i, kind in enumerate(INNOVATION_TYPES):
        out[f"adopted_{kind}"] = float(model.innovation_adoptions[i])
        out[f"offered_{kind}"] = float(model.innovation_offers[i])
    return out


def innovation_arm(scheme: str | None, scenario: str, years: int, **overrides: Any) -> list[dict[str, float]]:
    key = tuple(sorted((k, _hashable(v)) for k, v in overrides.items()))
    return [_innovation_run(scheme, scenario, years, seed, key) for seed in SEEDS]


def values(results: list, metric: str) -> np.ndarray:
    """A metric per seed: an indicator, a value dimension, or a key of a dict."""
    out = []
    for r in results:
        if isinstance(r, dict):
            out.append(r[metric])
        elif metric in r.value_dimensions:
            out.append(r.value_dimensions[metric])
        else:
            out.append(r.indicators[metric])
    return np.asarray(out, dtype=float)


def paired_ci(treatment: np.ndarray, control: np.ndarray) -> tuple[float, float, float]:
    """Mean paired (same-seed) difference treatment - control with a 95% Student-t CI."""
    d = np.asarray(treatment, dtype=float) - np.asarray(control, dtype=float)
    assert d.ndim == 1 and len(d) >= 2
    mean = float(d.mean())
    half = float(stats.t.ppf(0.975, len(d) - 1)) * float(d.std(ddof=1)) / math.sqrt(len(d))
    return mean, mean - half, mean + half


def fmt(ci: tuple[float, float, float], treatment: np.ndarray, control: np.ndarray) -> str:
    return (
        f"treatment {np.mean(treatment):.4g}, control {np.mean(control):.4g}; "
        f"difference {ci[0]:+.4g}, 95% CI [{ci[1]:+.4g}, {ci[2]:+.4g}]"
    )


def assert_direction(treatment: np.ndarray, control: np.ndarray, sign: int, label: str, margin: float = 0.0) -> None:
    """The CI of treatment - control lies above ``-margin`` (sign +1) or below ``margin`` (sign -1)."""
    ci = paired_ci(treatment, control)
    message = f"{label}: {fmt(ci, treatment, control)}"
    if sign > 0:
        assert ci[1] > -margin, message
    else:
        assert ci[2] < margin, message


# -- 1. one-sided -> two-sided risk (Section 4.2.5.1) -------------------------------------------
# A risk-adjusted global budget to each regional chain, reconciled yearly at a 50% savings
# rate; the two-sided arm also bears 50% of losses. Imperfect risk adjustment (the
# purchaser's score is demographic, R^2 0.015) leaves risk unpriced to select on.
SHARING = {
    "composition": "chain",
    "risk_adjustment": "demographic",
    "shared_savings_savings_rate": 0.5,
    "shared_savings_min_savings_rate": 0.0,
    "shared_savings_min_loss_rate": 0.0,
}


XFAIL_TWO_SIDED_SELECTION = (
    "risk_selection, loss_rate 0.5 - 0: +0.544, 95% CI [-0.299, +1.387] (chains, seeds 1-8; one-sided 0.27, "
    "two-sided 0.82): right direction, not significant since discretionary admissions are on. Off, the same "
    "arms gave +0.99 [+0.44, +1.55] (0.36 vs 1.35): the effect halves and its spread across seeds grows "
    "(sd of the paired difference 1.01 vs 0.66). Mechanism not isolated; a candidate: the chain's cost "
    "now also moves with its hospital's admissions (about 50 per 1,000 a year, EUR 5,000 each), so the "
    "loss share the two-sided contract adds depends on admissions as much as on the GP panels' risk"
)
XFAIL_TWO_SIDED_STEERED = (
    "steered_per_1000, loss_rate 0.5 - 0: +0.181, 95% CI [-0.033, +0.395] (chains, seeds 1-8; 0.07 vs "
    "0.25): right direction, not significant since discretionary admissions are on (off: +0.29 "
    "[+0.10, +0.49]); see the risk_selection reason"
)


def sided(loss_rate: float) -> list[vbpsim.Result]:
    return arm("global_budget+shared_savings", shared_savings_loss_rate=loss_rate, **SHARING)


@pytest.mark.parametrize(
    ("metric", "sign"),
    [
        ("spending_per_capita", -1),  # stronger cost-conscious behaviour ...
        ("intensity_ratio", -1),
        ("cost_consciousness", +1),
        # ... and, with imperfect risk adjustment, more selection
        pytest.param("risk_selection", +1, marks=pytest.mark.xfail(reason=XFAIL_TWO_SIDED_SELECTION, strict=True)),
        pytest.param("steered_per_1000", +1, marks=pytest.mark.xfail(reason=XFAIL_TWO_SIDED_STEERED, strict=True)),
    ],
)
def test_two_sided_risk_strengthens_incentives_and_selection(metric: str, sign: int) -> None:
    two, one = values(sided(0.5), metric), values(sided(0.0), metric)
    assert_direction(two, one, sign, f"{metric}, loss_rate 0.5 - 0")


# -- 2. risk corridors, reinsurance and outlier sharing (Section 4.2.5.1) ----------------------
# Solo contracts (each provider bears its own panel's risk, so the spread of margins across
# providers is the spread of their results): a risk-adjusted global budget with two-sided
# sharing at 50% (no minimum rates, no caps), demographic risk adjustment (R^2 0.015). Each device is
# added to that same contract; the reconciliation excludes the reinsured cost.
MITIGATION_BASE = {
    "composition": "solo",
    "risk_adjustment": "demographic",
    "shared_savings_savings_rate": 0.5,
    "shared_savings_loss_rate": 0.5,
    "shared_savings_min_savings_rate": 0.0,
    "shared_savings_min_loss_rate": 0.0,
    "shared_savings_savings_cap": 1.0,
    "shared_savings_loss_cap": 1.0,
}
MITIGATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    # the cattel_vbp preset's corridors: the payee keeps/bears the first 5% of benchmark at
    # the risk rate, half of it on the next 5%, nothing beyond 10%
    "corridors": ("", {"shared_savings_corridors": ((0.05, 1.0), (0.10, 0.5), (1e9, 0.0))}),
    # tighter corridors: all of the first 2%, half of the next 3%, a tenth beyond 5%
    "tight_corridors": ("", {"shared_savings_corridors": ((0.02, 1.0), (0.05, 0.5), (1e9, 0.1))}),
    "stop_loss": ("+stop_loss", {"stop_loss_share": 0.9, "shared_savings_reinsured_share": 0.9}),
    "outlier": ("+outlier", {"outlier_share": 0.8, "shared_savings_reinsured_outlier_share": 0.8}),
}


SELECTION_SEEDS = tuple(range(1, 17))  # steering events are rare: 16 replications for selection


def mitigation_arm(device: str | None, seeds: tuple[int, ...] = SEEDS) -> list[vbpsim.Result]:
    suffix, extra = MITIGATIONS[device] if device else ("", {})
    return arm("global_budget+shared_savings" + suffix, seeds=seeds, **MITIGATION_BASE, **extra)


XFAIL_OUTLIER_MARGIN = (
    "outlier 0.8: margin_sd 0.1531 vs 0.1438, difference +0.0094, 95% CI [-0.0133, +0.0320] (solo, seeds "
    "1-8): no longer narrower since discretionary admissions are on (off: -0.0055 [-0.0080, -0.0030]). "
    "An admission costs far more than the per-patient-step outlier threshold, so outlier sharing pays 0.8 "
    "of every admission above it: under the budget admitting now pays, hospitals admit more (47.9 vs "
    "42.5 per 1,000 person-years; spending 882 vs 753 EUR per capita) and their margins follow their "
    "admissions, which spreads them (sd of the paired difference 0.027 vs 0.003 off)"
)
XFAIL_OUTLIER_VOLATILITY = (
    "outlier 0.8: margin_volatility 0.1200 vs 0.1227, difference -0.0027, 95% CI [-0.0066, +0.0012] (solo, "
    "seeds 1-8): right direction, not significant since discretionary admissions are on (off: -0.0054 "
    "[-0.0069, -0.0039]); outlier sharing also reimburses admissions (see the margin_sd reason)"
)
XFAIL_STOP_LOSS_MARGIN = (
    "stop_loss 0.9 (attachment 20,000 EUR): margin_sd 0.0721 vs 0.0748, difference -0.0027, "
    "95% CI [-0.0077, +0.0024]: few patient-years exceed the attachment"
)
XFAIL_STOP_LOSS_SELECTION = (
    "stop_loss: risk_selection unchanged (difference 0) in solo contracts: the GPs' appraisal does "
    "probe the stop-loss gradient, but a solo GP's yearly cost for one patient never reaches the "
    "20,000 EUR attachment point"
)
XFAIL_OUTLIER_SELECTION = (
    "outlier 0.8: risk_selection 0.428 vs 0.428, difference +1e-05, 95% CI [-1.3e-05, +3.3e-05]: "
    "no effect on steering in solo contracts"
)


@pytest.mark.parametrize(
    ("device", "metric"),
    [
        ("corridors", "margin_sd"),
        # emerge since discretionary admissions are on (solo, seeds 1-16): risk_selection 0 with either
        # corridor vs 0.27 without, -0.270 [-0.508, -0.033] (off: preset corridors -0.17 [-0.44, +0.09],
        # tight -0.13 [-0.33, +0.07], then strict xfails)
        ("corridors", "risk_selection"),
        ("tight_corridors", "margin_sd"),
        ("tight_corridors", "risk_selection"),
        pytest.param("stop_loss", "margin_sd", marks=pytest.mark.xfail(reason=XFAIL_STOP_LOSS_MARGIN, strict=True)),
        pytest.param(
            "stop_loss", "risk_selection", marks=pytest.mark.xfail(reason=XFAIL_STOP_LOSS_SELECTION, strict=True)
        ),
        pytest.param("outlier", "margin_sd", marks=pytest.mark.xfail(reason=XFAIL_OUTLIER_MARGIN, strict=True)),
        pytest.param("outlier", "risk_selection", marks=pytest.mark.xfail(reason=XFAIL_OUTLIER_SELECTION, strict=True)),
        # Financial risk proper: the spread over years of each contracting group's margin.
        ("corridors", "margin_volatility"),
        ("stop_loss", "margin_volatility"),  # emerges since providers' probes count their own readmissions
        pytest.param(
            "outlier", "margin_volatility", marks=pytest.mark.xfail(reason=XFAIL_OUTLIER_VOLATILITY, strict=True)
        ),
    ],
)
def test_risk_mitigation_shrinks_margin_variance_and_selection(device: str, metric: str) -> None:
    seeds = SELECTION_SEEDS if metric == "risk_selection" else SEEDS
    with_device, without = values(mitigation_arm(device, seeds), metric), values(mitigation_arm(None, seeds), metric)
    assert_direction(with_device, without, -1, f"{metric}, with {device} - without")


XFAIL_CHAIN_STOP_LOSS = (
    "stop_loss on chains: margin_volatility 0.0412 vs 0.0448, difference -0.0036, 95% CI [-0.0072, +0.0001] "
    "(seeds 1-8): right direction, not significant since the calibration (higher altruism and fees near "
    "cost leave the groups' margins less volatile to begin with)"
)
XFAIL_CHAIN_OUTLIER = (
    "outlier on chains: margin_volatility 0.0361 vs 0.0448, difference -0.0087, 95% CI [-0.0177, +0.0003] "
    "(seeds 1-8): right direction, not significant since the calibration"
)


@pytest.mark.parametrize(
    "device",
    [
        "tight_corridors",
        pytest.param("stop_loss", marks=pytest.mark.xfail(reason=XFAIL_CHAIN_STOP_LOSS, strict=True)),
        pytest.param("outlier", marks=pytest.mark.xfail(reason=XFAIL_CHAIN_OUTLIER, strict=True)),
    ],
)
def test_risk_mitigation_shrinks_group_margin_volatility_on_chains(device: str) -> None:
    # On whole-chain contracts a group bears its patients' whole cost, expensive episodes included.
    suffix, extra = MITIGATIONS[device]
    base = {**MITIGATION_BASE, "composition": "chain"}
    with_device = values(arm("global_budget+shared_savings" + suffix, **base, **extra), "margin_volatility")
    without = values(arm("global_budget+shared_savings", **base), "margin_volatility")
    assert_direction(with_device, without, -1, f"margin_volatility on chains, with {device} - without")


# -- 3. historical benchmark and the ratchet (Section 4.2.3.1) ---------------------------------
# Budget + two-sided shared savings (50/50) on chains, two-year contracts: the first
# contract's two years are the base years whose spending sets the next benchmark under
# "historical". Providers anticipate the rebase (rebase_weight); under "normative" their
# spending does not move their future payment.
RATCHET = {
    "composition": "chain",
    "shared_savings_savings_rate": 0.5,
    "shared_savings_loss_rate": 0.5,
    "shared_savings_min_savings_rate": 0.0,
    "shared_savings_min_loss_rate": 0.0,
    "shared_savings_savings_cap": 1.0,
    "shared_savings_loss_cap": 1.0,
}
BASE_YEARS = 2


def ratchet_arm(benchmark: str, length_years: int) -> list[vbpsim.Result]:
    return arm(
        "global_budget+shared_savings", years=BASE_YEARS, benchmark=benchmark, length_years=length_years, **RATCHET
    )


def base_year_cost(results: list[vbpsim.Result]) -> np.ndarray:
    """Providers' cost of care per initial capita per year over the base years."""
    patients = results[0].parameters["scenario"]["population"]["n_patients"]
    return np.array([r.timeseries.provider_cost.sum() / patients / BASE_YEARS for r in results])


@pytest.mark.parametrize("metric", ["base_year_cost", "intensity_ratio"])
def test_historical_benchmark_ratchet_raises_base_year_spending(metric: str) -> None:
    get = base_year_cost if metric == "base_year_cost" else functools.partial(values, metric=metric)
    historical, normative = get(ratchet_arm("historical", 2)), get(ratchet_arm("normative", 2))
    assert_direction(historical, normative, +1, f"{metric}, historical - normative benchmark, 2-year contracts")


def test_ratchet_is_the_rebase_not_the_benchmark_level() -> None:
    """Control: the same historical benchmark never rebased (length 0) spends less than when rebased."""
    rebased, never = base_year_cost(ratchet_arm("historical", 2)), base_year_cost(ratchet_arm("historical", 0))
    assert_direction(rebased, never, +1, "base-year cost, historical rebased every 2 years - never rebased")


# -- 4. longer contracts raise prevention and innovation (Section 4.2.3.2) ---------------------
# Innovations arrive 4 a year (enough to count adoptions); 3 years; 5-year vs 1-year contracts.
LENGTH_YEARS = 3


def length_arm(label: str, length_years: int) -> list[dict[str, float]]:
    if label == "global_budget_chain":
        return innovation_arm(
            "global_budget", SMALL, LENGTH_YEARS, composition="chain", arrival_rate=4, length_years=length_years
        )
    return innovation_arm(None, "cattel_vbp", LENGTH_YEARS, arrival_rate=4, length_years=length_years, **SMALL_WORLD)


XFAIL_CATTEL_PREVENTION = (
    "cattel_vbp (two-sided 50% sharing within corridors, normative benchmark): effort_prevention "
    "0.5207 vs 0.5193, difference +0.0014, 95% CI [-0.0064, +0.0092]: likely because the payee keeps "
    "at most half of the first 5% of savings and a quarter of the next 5%"
)


XFAIL_CATTEL_COST_SAVING = (
    "cattel_vbp adopted_cost_saving, 5-year - 1-year contract: 0.5 vs 0.125 adoptions, +0.375, 95% CI "
    "[-0.25, +1.00] (seeds 1-8): right direction, too few cost-saving offers per run to be significant since "
    "issue 8 split the innovation stream into four types (30% cost-saving)"
)


@pytest.mark.parametrize(
    ("contract", "metric"),
    [
        ("global_budget_chain", "effort_prevention"),
        ("global_budget_chain", "adopted_cost_saving"),
        pytest.param(
            "cattel_vbp",
            "effort_prevention",
            marks=pytest.mark.xfail(reason=XFAIL_CATTEL_PREVENTION, strict=True),
        ),
        pytest.param(
            "cattel_vbp",
            "adopted_cost_saving",
            marks=pytest.mark.xfail(reason=XFAIL_CATTEL_COST_SAVING, strict=True),
        ),
    ],
)
def test_longer_contract_raises_prevention_and_cost_saving_innovation(contract: str, metric: str) -> None:
    long, short = values(length_arm(contract, 5), metric), values(length_arm(contract, 1), metric)
    assert_direction(long, short, +1, f"{contract} {metric}, 5-year - 1-year contract")


# -- 5. the stroke-care case (seed 000) ---------------------------------------------------------
# "Improvement" = how far the quality of care delivered (true_quality: measured and
# unmeasured quality, 0-1) rises above its first-month level, averaged over the first three
# years: the area under the improvement curve. Both arms start from the same state
# (common seed, same initial decisions), so a lower value means slower improvement. Quality
# rather than spending: under this preset intensity starts at the patient optimum and the
# budget pushes it below (spending falls *away* from the optimum), so a faster fall in
# spending is not an improvement here; what the case is about is better outcomes in the
# chain through coordination, prevention and quality effort.
STROKE_YEARS = 3
STROKE_LEVERS: dict[str, dict[str, Any]] = {
    "preset": {},
    "data_lag": {"trusted_data_party": False, "data_lag_months": 12},
    "low_trust": {"trust": 0.3},
}


def stroke_arm(lever: str, **extra: Any) -> list[vbpsim.Result]:
    return arm(None, "stroke_vbp", STROKE_YEARS, **SMALL_WORLD, **STROKE_LEVERS[lever], **extra)


def quality_improvement(results: list[vbpsim.Result]) -> np.ndarray:
    return np.array([r.timeseries.true_quality.mean() - r.timeseries.true_quality.iloc[0] for r in results])


# Late data slows improvement because quality and coordination efforts need feedback on one's own
# performance (effort.data_half_life_months): without it the lag changed nothing (+0.0013, 95% CI
# [-0.0015, +0.0041]).


XFAIL_STROKE_DATA_LAG = (
    "data lag 12 months without the trusted party: quality improvement -0.0013, 95% CI [-0.0030, +0.0003] "
    "against the preset (seeds 1-8, 3 years): right direction, not significant since the calibration"
)


@pytest.mark.parametrize(
    "lever",
    [pytest.param("data_lag", marks=pytest.mark.xfail(reason=XFAIL_STROKE_DATA_LAG, strict=True)), "low_trust"],
)
def test_stroke_data_lag_and_low_trust_slow_improvement(lever: str) -> None:
    slowed, preset = quality_improvement(stroke_arm(lever)), quality_improvement(stroke_arm("preset"))
    assert_direction(slowed, preset, -1, f"quality improvement, {lever} - preset")


# Financial pressure so that insolvency can happen at all: the budget at 95% of the
# normative benchmark and one month of reserves. Immediate downside risk: a constant 50%
# loss rate from year one instead of the preset's glide path [0, 0.25, 0.5].
PRESSURE = {"level": 0.95, "reserve_months": 1.0}
IMMEDIATE = {"shared_savings_glide_path": (), "shared_savings_loss_rate": 0.5}
XFAIL_GLIDE_PROVIDERS = (
    "right direction, not significant: providers insolvent at a year end (after settlement), immediate 50% "
    "loss rate vs glide path: level 0.95, 1 month of reserves 1.5 vs 1.0 (seeds 1-8), +0.125 [-0.65, +0.90] "
    "over seeds 1-16; level 0.85: 2.5 vs 1.875, +0.63 [-1.37, +2.62]; level 0.8, 2 months: 1.875 vs 1.375, "
    "+0.5 [-0.39, +1.39]; on the full default world (42 providers, level 0.95, 1 month) the sign reverses: "
    "3.75 vs 5.125, -1.4 [-4.3, +1.6]. Insolvency counts are rare and noisy, and immediate downside risk "
    "makes providers cut cost at once, which offsets their share of the losses"
)
XFAIL_GLIDE_GROUPS = (
    "groups' pooled reserves rarely go negative: insolvent groups 0 vs 0 at level 0.95; 0.125 vs 0 at "
    "level 0.85 and 0.8, 95% CI [-0.17, +0.42] (seeds 1-8)"
)


@pytest.mark.parametrize(
    "metric",
    [
        pytest.param("insolvent_providers", marks=pytest.mark.xfail(reason=XFAIL_GLIDE_PROVIDERS, strict=True)),
        pytest.param("insolvent_groups", marks=pytest.mark.xfail(reason=XFAIL_GLIDE_GROUPS, strict=True)),
    ],
)
def test_stroke_glide_path_keeps_more_providers_solvent(metric: str) -> None:
    immediate = values(stroke_arm("preset", **PRESSURE, **IMMEDIATE), metric)
    gradual = values(stroke_arm("preset", **PRESSURE), metric)
    assert_direction(immediate, gradual, +1, f"{metric}, immediate downside risk - glide path")


# -- 6. every preset through the CLI, and in a plausible direction against FFS -----------------
runner = CliRunner()


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_runs_through_cli_and_writes_summary(preset: str, tmp_path) -> None:
    out = tmp_path / preset
    result = runner.invoke(app, ["run", "--scenario", preset, "--years", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["years"] == 2
    assert summary["scenario"] == preset
    assert set(summary["value_dimensions"]) == set(DIMENSIONS)
    numbers = [*summary["value_dimensions"].values(), *summary["indicators"].values()]
    assert all(isinstance(x, int | float) and math.isfinite(x) for x in numbers)
    assert summary["indicators"]["spending_per_capita"] > 0
    assert len((out / "timeseries.csv").read_text().splitlines()) == 1 + 2 * 12


# Against fee-for-service on the same population (the default world shrunk to the small
# one: same patients and providers per seed), 3 years, 6 seeds. Every preset must spend
# less, deliver intensity closer to the patient optimum (smaller |intensity_ratio - 1|) and
# be more cost-conscious; quality (QALYs per capita-year) and coordination may be at most
# QUALITY_TOLERANCE / COORDINATION_TOLERANCE worse (about 2.5% of their levels, 0.81 and 0.84).
PRESET_SEEDS = tuple(range(1, 7))
PRESET_YEARS = 3
QUALITY_TOLERANCE = 0.02
COORDINATION_TOLERANCE = 0.02


def preset_arm(preset: str | None) -> list[vbpsim.Result]:
    if preset is None:
        return arm("ffs", "default", PRESET_YEARS, PRESET_SEEDS, **SMALL_WORLD)
    return arm(None, preset, PRESET_YEARS, PRESET_SEEDS, **SMALL_WORLD)


PRESET_CHECKS = {  # metric: (direction against FFS, tolerance)
    "spending_per_capita": (-1, 0.0),
    "intensity_gap": (-1, 0.0),
    "cost_consciousness": (+1, 0.0),
    "quality": (+1, QUALITY_TOLERANCE),
    "coordination": (+1, COORDINATION_TOLERANCE),
}
XFAIL_AQC_SPENDING = (
    "aqc - ffs, spending_per_capita: +1.6, 95% CI [-19.4, +22.5] EUR (seeds 1-6, 3 years, no inertia): the "
    "budget starts at the groups' status-quo spending and the quality bonus (up to 10%) and shared savings "
    "are paid on top, so the purchaser does not save within three years; the groups' resource cost falls. "
    "Song et al. 2012 likewise found no net savings early once bonus payments were counted."
)
XFAIL_PRESET_SPENDING = {
    "aqc": XFAIL_AQC_SPENDING,
    "mssp": "mssp - ffs, spending_per_capita: -26.3 EUR (-4.3%), 95% CI [-54.8, +2.2] (seeds 1-6, 3 years): right "
    "direction, not significant; MSSP's observed savings are 1-2% (McWilliams et al. 2016)",
    "kinzigtal": "kinzigtal - ffs, spending_per_capita: -32.8 EUR (-5.4%), 95% CI [-65.9, +0.3] (seeds 1-6, 3 "
    "years): right direction, just not significant",
}


@pytest.mark.parametrize(
    ("preset", "metric"),
    [
        pytest.param(p, m, marks=pytest.mark.xfail(reason=XFAIL_PRESET_SPENDING[p], strict=True))
        if m == "spending_per_capita" and p in XFAIL_PRESET_SPENDING
        else (p, m)
        for p in PRESETS
        for m in PRESET_CHECKS
    ],
)
def test_preset_beats_ffs_in_a_plausible_direction(preset: str, metric: str) -> None:
    vbp, ffs = preset_arm(preset), preset_arm(None)
    sign, margin = PRESET_CHECKS[metric]
    if metric == "intensity_gap":
        a, b = np.abs(values(vbp, "intensity_ratio") - 1), np.abs(values(ffs, "intensity_ratio") - 1)
    else:
        a, b = values(vbp, metric), values(ffs, metric)
    assert_direction(a, b, sign, f"{preset} - ffs, {metric} (tolerance {margin})", margin)
