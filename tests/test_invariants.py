"""Invariants of whole runs: money and patients are conserved, numbers stay finite, seeds reproduce.

All on the ``small`` scenario over one or two years, for every registered scheme and for
``ffs+p4p`` (the scheme list is read from the registry, so a new scheme is checked too).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import vbpsim
from vbpsim import build_model, replicate
from vbpsim.schemes import FeeForService

SCHEMES = [*vbpsim.list_schemes(), "ffs+p4p"]
# group contracts, where the distribution rule moves money between members
GROUPS = {
    "chain-contribution": {"groups.composition": "chain", "groups.distribution": "contribution"},
    "gp_groups-equal": {"groups.composition": "gp_groups", "groups.group_size": 3},
    "gp_groups-panel": {
        "groups.composition": "gp_groups",
        "groups.group_size": 2,
        "groups.distribution": "panel",
    },
}
CASES = [(s, {}) for s in SCHEMES] + [
    ("ffs+p4p", GROUPS["chain-contribution"]),
    ("capitation", GROUPS["gp_groups-equal"]),
    ("mixed", GROUPS["gp_groups-panel"]),
    # hospitals admit and redirect planned episodes: the purchaser also pays care outside
    ("bundle", {"groups.composition": "hospital_rehab", "mechanisms.discretionary_admissions": True}),
]
CASE_IDS = SCHEMES + [
    "ffs+p4p-chain-contribution",
    "capitation-gp_groups-equal",
    "mixed-gp_groups-panel",
    "bundle-hospital_rehab-admissions",
]


def stepped(scheme: str, years: int = 2, seed: int = 0, **overrides):
    """A built model and, per step, what the books said before and after."""
    model = build_model(scheme, scenario="small", years=years, seed=seed, **overrides)
    model.initial_reserves = model.providers.reserves.copy()
    rows = []
    for _ in range(model.n_steps):
        if model.step_index == model.history_steps:  # totals restart at the switch: keep the history's
            model.history_income = model.income_total.copy()
            model.history_cost = model.cost_total.copy()
            model.step()
            rows.append(
                {
                    "paid": model.purchaser.total_paid,
                    "income": float(model.income_total.sum()),
                    "alive_now": int(model.population.alive.sum()),
                }
            )
            continue
        paid_before = model.purchaser.total_paid
        income_before = model.income_total.copy()
        model.step()
        rows.append(
            {
                "paid": model.purchaser.total_paid - paid_before,
                "income": float((model.income_total - income_before).sum()),
                "alive_now": int(model.population.alive.sum()),
            }
        )
    return model, pd.DataFrame(model.history_records + model.records), pd.DataFrame(rows)


@pytest.mark.parametrize(("scheme", "overrides"), CASES, ids=CASE_IDS)
def test_run_invariants(scheme: str, overrides: dict) -> None:
    """One two-year run per case, every invariant checked on it (one run per case, even under xdist)."""
    case = (scheme, *stepped(scheme, years=2, seed=7, **overrides), overrides)
    check_money_is_conserved_every_step(case)
    check_provider_books_balance(case)
    check_patients_are_conserved_every_step(case)
    check_nothing_is_nan_or_infinite(case)
    check_time_series_shape(case)


def check_money_is_conserved_every_step(case) -> None:
    scheme, model, ts, books, _ = case
    np.testing.assert_allclose(books.paid, books.income, rtol=1e-12, atol=1e-6)
    outside = ts.redirected_cost  # redirected planned episodes, paid to hospitals outside the model
    np.testing.assert_allclose(ts.spending, ts.provider_income + outside, rtol=1e-12, atol=1e-6)
    np.testing.assert_allclose(ts.spending, books.paid + outside, rtol=1e-12, atol=1e-6)
    total = ts[ts.year >= 0].eval("spending - redirected_cost").sum()  # the run's totals count from the switch
    assert total == pytest.approx(model.income_total.sum(), rel=1e-12)
    assert total == pytest.approx(model.purchaser.total_paid, rel=1e-12)
    assert (ts.spending >= 0).all()


def check_provider_books_balance(case) -> None:
    scheme, model, ts, _, overrides = case
    after = ts[ts.year >= 0]  # cost totals also count the up-front cost of adopted innovations
    recorded = after.provider_cost.sum() + after.innovation_upfront.sum()
    assert recorded == pytest.approx(model.cost_total.sum(), rel=1e-12)
    initial = model.initial_reserves
    income = model.history_income + model.income_total
    cost = model.history_cost + model.cost_total
    np.testing.assert_allclose(model.providers.reserves, initial + income - cost, rtol=1e-9, atol=1e-3)


def check_patients_are_conserved_every_step(case) -> None:
    scheme, model, ts, books, _ = case
    initial = model.initial_patients
    assert initial == 2_000
    np.testing.assert_array_equal(ts.alive + ts.deaths.cumsum(), initial)
    np.testing.assert_array_equal(ts.alive, books.alive_now)
    assert (ts.deaths >= 0).all()
    assert model.population.size == initial


def check_nothing_is_nan_or_infinite(case) -> None:
    scheme, model, ts, _, _ = case
    values = ts.to_numpy(dtype=float)
    bad = ts.columns[~np.isfinite(values).all(axis=0)].tolist()
    assert not bad, f"{scheme}: non-finite columns {bad}"
    result = vbpsim.experiments.result_of(model)
    for group in (result.value_dimensions, result.indicators):
        bad = {k: v for k, v in group.items() if not np.isfinite(v)}
        assert not bad, f"{scheme}: {bad}"
    assert set(result.value_dimensions) == set(vbpsim.DIMENSIONS)
    assert np.isfinite(model.providers.intensity).all()
    assert np.isfinite(model.providers.reserves).all()


def check_time_series_shape(case) -> None:
    scheme, model, ts, _, _ = case
    history = model.history_steps
    assert history == 36 and len(ts) == history + 24
    assert ts.step.tolist() == list(range(history + 24))
    assert ts.year.tolist() == [y for y in range(-3, 2) for _ in range(12)]
    assert ((ts.measured_quality >= 0) & (ts.measured_quality <= 1)).all()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_summary_is_json_serialisable(scheme: str, run_cache) -> None:
    result = run_cache(scheme)
    text = json.dumps(result.summary())
    back = json.loads(text)
    assert back["seed"] == 0 and back["years"] == 1
    assert back["value_dimensions"] == pytest.approx(result.value_dimensions)
    assert result.scheme == scheme


def test_summary_of_a_run_with_scheme_params_is_json_serialisable() -> None:
    result = vbpsim.run("ffs", scenario="small", years=1, fees={"gp": 60.0}, fee_to_cost=np.float64(1.1))
    json.dumps(result.summary())


def test_saved_results(tmp_path, run_cache) -> None:
    result = run_cache("capitation")
    out = result.save(tmp_path / "run")
    assert json.loads((out / "summary.json").read_text())["scheme"] == "capitation"
    saved = pd.read_csv(out / "timeseries.csv")
    pd.testing.assert_frame_equal(saved, result.timeseries, check_dtype=False)


def test_result_names_a_scheme_object_correctly() -> None:
    result = vbpsim.run(vbpsim.make_scheme("capitation+p4p"), scenario="small", years=1)
    assert "p4p" in result.scheme and "capitation" in result.scheme


# -- reproducibility --------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["ffs", "ffs+p4p", "capitation"])
def test_same_seed_same_time_series(scheme: str, run_cache) -> None:
    again = vbpsim.run(scheme, scenario="small", years=1, seed=0)
    pd.testing.assert_frame_equal(again.timeseries, run_cache(scheme).timeseries)
    assert again.value_dimensions == run_cache(scheme).value_dimensions
    assert again.indicators == run_cache(scheme).indicators


@pytest.mark.parametrize("scheme", ["ffs", "capitation"])
def test_different_seeds_differ(scheme: str, run_cache) -> None:
    a, b = run_cache(scheme, seed=0).timeseries, run_cache(scheme, seed=1).timeseries
    assert not a.equals(b)
    assert not np.allclose(a.qalys, b.qalys)


def test_common_random_numbers_across_schemes() -> None:
    """The same seed draws the same patients and providers under every scheme."""
    first = build_model("ffs", scenario="small", years=1, seed=4)
    for scheme in SCHEMES[1:]:
        other = build_model(scheme, scenario="small", years=1, seed=4)
        np.testing.assert_array_equal(other.population.age, first.population.age)
        np.testing.assert_array_equal(other.population.provider, first.population.provider)
        np.testing.assert_array_equal(other.providers.altruism, first.providers.altruism)


def test_a_scheme_object_runs_like_its_name(run_cache) -> None:
    # a name takes the world's status-quo fee levels; an object is taken as given, so give it those
    world_fees = vbpsim.Scenario().contract.status_quo_params
    by_object = vbpsim.run(FeeForService(**world_fees), scenario="small", years=1, seed=0)
    pd.testing.assert_frame_equal(by_object.timeseries, run_cache("ffs").timeseries)


def test_replicate_is_the_same_in_parallel() -> None:
    kwargs = {"schemes": ["ffs", "capitation", "ffs+p4p"], "seeds": [0, 1], "scenario": "small", "years": 1}
    serial = replicate(workers=1, **kwargs)
    parallel = replicate(workers=2, **kwargs)
    assert len(serial) == 6
    assert sorted(serial.columns) == sorted(parallel.columns)
    pd.testing.assert_frame_equal(serial, parallel[serial.columns])
    single = vbpsim.run("capitation", scenario="small", years=1, seed=1)
    row = serial[(serial.scheme == "capitation") & (serial.seed == 1)].iloc[0]
    assert row["quality"] == single.value_dimensions["quality"]
    assert row["spending_per_capita"] == single.indicators["spending_per_capita"]


@pytest.mark.parametrize("steps_per_year", [4, 12, 26, 45])  # 45: a month is not a whole number of steps
def test_ffs_pays_every_service(steps_per_year: int) -> None:
    model = build_model(
        "ffs", scenario="small", years=1, seed=0, steps_per_year=steps_per_year, fee_to_cost=1.0, history_years=0
    )
    billed = 0.0
    observe = model.observe

    def observe_and_bill(care):
        nonlocal billed
        observation = observe(care)
        billed += float(observation.services.sum(axis=0) @ observation.unit_cost)
        return observation

    model.observe = observe_and_bill
    model.run()
    assert model.purchaser.total_paid == pytest.approx(billed, rel=1e-9)
