"""Value-based contracts (vbpsim.contracts): reconciliation arithmetic worked out by hand.

Conventions under test (see the module docstring of ``vbpsim.contracts``):
* MSR/MLR: a result below ``min_savings_rate x benchmark`` is not shared; at or above it,
  it is shared from the first euro (MSSP), or only above the threshold with
  ``first_dollar=False``.
* ``basis="fees"`` pays the payee's share ``phi(R)`` of ``R = benchmark - cost``;
  ``basis="budget"`` (the base already paid the benchmark) pays ``phi(R) - R``.
The scheme contract (separability, clones, reprs, linearity) is inherited from
``tests/test_schemes.py``, where each registered contract piece has its class.
"""

from __future__ import annotations

from typing import Any

import mesa
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import UNIT_COST, obs, observations, valid_scheme_params
from test_schemes import TWO, SchemeContract

import vbpsim
from vbpsim.agents import DistributionRule, Purchaser
from vbpsim.contracts import GlobalBudget, QualityGate, SharedSavings, StopLoss, vbp_contract
from vbpsim.errors import ParameterError
from vbpsim.schemes import Observation, make_scheme

# One payee, normative (risk-adjusted) benchmark 1000 EUR over the year, quality 0.9.
NO_THRESHOLDS = {"min_savings_rate": 0.0, "min_loss_rate": 0.0, "savings_cap": 1.0, "loss_cap": 1.0}


def year(cost: float | list[float], expected: float | list[float] = 1000.0, **fields: Any) -> Observation:
    """A yearly observation of one payee (or several, given lists)."""
    costs = np.atleast_1d(np.asarray(cost, dtype=float))
    n = len(costs)
    fields.setdefault("measured_quality", [0.9] * n)
    fields.setdefault("member_months", [120.0] * n)
    return obs(months=12.0, cost=costs, expected_cost=np.broadcast_to(expected, n), **fields)


def pays(scheme: Any, observation: Observation) -> float:
    return float(np.asarray(scheme.pay(observation))[0])


# -- minimum savings rate ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cost", "first_dollar", "expected"),
    [
        (990.0, True, 0.0),  # savings 10 = 1% < MSR 2%: nothing shared
        (990.0, False, 0.0),
        (980.0, True, 10.0),  # exactly at the MSR: shared, 50% of 20
        (980.0, False, 0.0),  # nothing above the threshold
        (970.0, True, 15.0),  # 3%: 50% of all 30 savings (MSSP: from the first euro)
        (970.0, False, 5.0),  # 50% of the 10 above the 20 threshold
    ],
)
def test_minimum_savings_rate(cost: float, first_dollar: bool, expected: float) -> None:
    scheme = SharedSavings(savings_rate=0.5, min_savings_rate=0.02, savings_cap=1.0, first_dollar=first_dollar)
    assert pays(scheme, year(cost)) == pytest.approx(expected)


# -- one-sided vs two-sided -------------------------------------------------------------------
def test_one_sided_pays_nothing_on_losses() -> None:
    scheme = SharedSavings(savings_rate=0.5, loss_rate=0.0)
    assert not scheme.two_sided
    for cost in (1010.0, 1100.0, 5000.0):
        assert pays(scheme, year(cost)) == 0.0


@pytest.mark.parametrize(
    ("cost", "expected"),
    [
        (1010.0, 0.0),  # loss 1% < MLR 2%
        (1020.0, -8.0),  # at the MLR: 40% of 20 from the first euro
        (1100.0, -40.0),  # 40% of 100
        (1500.0, -150.0),  # 40% of 500 = 200, capped at 15% of 1000
    ],
)
def test_two_sided_charges_loss_rate_times_loss(cost: float, expected: float) -> None:
    scheme = SharedSavings(savings_rate=0.5, loss_rate=0.4, min_loss_rate=0.02, loss_cap=0.15)
    assert scheme.two_sided
    assert pays(scheme, year(cost)) == pytest.approx(expected)


def test_caps_bind_where_they_should() -> None:
    scheme = SharedSavings(savings_rate=0.5, loss_rate=0.4, min_savings_rate=0, min_loss_rate=0, savings_cap=0.05)
    assert pays(scheme, year(960.0)) == pytest.approx(20.0)  # 50% of 40 < cap 50
    assert pays(scheme, year(700.0)) == pytest.approx(50.0)  # 50% of 300 = 150, capped at 5% of 1000
    assert pays(scheme, year(1300.0)) == pytest.approx(-120.0)  # 40% of 300 < loss cap 150
    assert pays(scheme, year(1500.0)) == pytest.approx(-150.0)  # 40% of 500 = 200, capped at 15%


# -- corridors --------------------------------------------------------------------------------
CORRIDORS = [(0.02, 1.0), (0.05, 0.5), (1e9, 0.1)]


@pytest.mark.parametrize(
    ("cost", "expected"),
    [
        (990.0, 10.0),  # inside the first band: all 10
        (960.0, 20.0 + 10.0),  # 20 at 100% + 20 (of the 30-wide second band) at 50%
        (900.0, 20.0 + 15.0 + 5.0),  # 20 x 1 + 30 x 0.5 + 50 x 0.1
        (1100.0, -(20.0 + 15.0 + 5.0)),  # symmetric for losses
        (1040.0, -(20.0 + 10.0)),
    ],
)
def test_corridors_across_bands(cost: float, expected: float) -> None:
    scheme = SharedSavings(savings_rate=1.0, loss_rate=1.0, corridors=CORRIDORS, **NO_THRESHOLDS)
    assert pays(scheme, year(cost)) == pytest.approx(expected)


def test_corridor_rates_scale_with_the_risk_rate_and_the_last_rate_holds() -> None:
    half = SharedSavings(savings_rate=0.5, loss_rate=0.25, corridors=CORRIDORS, **NO_THRESHOLDS)
    assert pays(half, year(900.0)) == pytest.approx(0.5 * 40.0)
    assert pays(half, year(1100.0)) == pytest.approx(-0.25 * 40.0)
    open_ended = SharedSavings(savings_rate=1.0, corridors=[(0.02, 1.0), (0.05, 0.5)], **NO_THRESHOLDS)
    assert pays(open_ended, year(900.0)) == pytest.approx(20.0 + 15.0 + 50.0 * 0.5)
    assert open_ended.corridors == ((0.02, 1.0), (0.05, 0.5))  # lists are stored as tuples


# -- quality ----------------------------------------------------------------------------------
def test_quality_gate_blocks_savings_below_threshold_but_not_losses() -> None:
    scheme = SharedSavings(savings_rate=0.5, loss_rate=0.5, quality_gate=0.8, **NO_THRESHOLDS)
    assert pays(scheme, year(900.0, measured_quality=[0.79])) == 0.0
    assert pays(scheme, year(900.0, measured_quality=[0.8])) == pytest.approx(50.0)
    assert pays(scheme, year(1100.0, measured_quality=[0.5])) == pytest.approx(-50.0)


def test_quality_scaled_savings() -> None:
    scheme = SharedSavings(savings_rate=0.5, quality_scaled=True, **NO_THRESHOLDS)
    assert pays(scheme, year(900.0, measured_quality=[0.6])) == pytest.approx(0.5 * 100 * 0.6)


# -- glide path -------------------------------------------------------------------------------
@pytest.mark.parametrize(("contract_year", "rate"), [(0, 0.0), (1, 0.25), (2, 0.5), (5, 0.5)])
def test_glide_path_loss_rate_by_year(contract_year: int, rate: float) -> None:
    scheme = SharedSavings(glide_path=[0, 0.25, 0.5], **NO_THRESHOLDS)
    assert scheme.loss_rate_in(contract_year) == rate
    loss = year(1100.0).replace(year=contract_year)
    assert pays(scheme, loss) == pytest.approx(-100.0 * rate)
    assert pays(scheme, year(900.0).replace(year=contract_year)) == pytest.approx(50.0)  # savings unchanged


# -- stop-loss --------------------------------------------------------------------------------
def test_stop_loss_limits_the_loss_from_one_expensive_patient() -> None:
    # budget 100 000; usual care costs 100 000 plus one patient costing 30 000 in the year,
    # 10 000 above the 20 000 attachment point
    expensive = year(130_000.0, expected=100_000.0, stoploss_excess=[10_000.0])
    risk = {"basis": "budget", "loss_rate": 0.5, **NO_THRESHOLDS}
    without = GlobalBudget().pay(expensive) + SharedSavings(**risk).pay(expensive)
    # R = -30 000, the payee bears half: paid 100 000 + (-15 000 + 30 000)
    assert without[0] == pytest.approx(115_000.0)
    contract = make_scheme(
        "global_budget+shared_savings+stop_loss",
        {**{f"shared_savings_{k}": v for k, v in risk.items()}, "shared_savings_reinsured_share": 0.9},
    )
    # 9 000 reinsured; reconciled cost 121 000, R = -21 000, the payee bears 10 500
    with_stop_loss = contract.pay(expensive)
    assert with_stop_loss[0] == pytest.approx(100_000.0 + (-10_500.0 + 21_000.0) + 9_000.0)
    margin_without, margin_with = without[0] - 130_000.0, with_stop_loss[0] - 130_000.0
    assert margin_without == pytest.approx(-15_000.0)
    assert margin_with == pytest.approx(-10_500.0)
    assert StopLoss(share=0.9).pay(expensive)[0] == pytest.approx(9_000.0)


# -- carve-outs -------------------------------------------------------------------------------
# expected cost by discipline 200 | 600 | 100 | 100; actual 150 | 700 | 50 | 300 (nursing overruns)
CARVE = year(
    1200.0,
    expected=1000.0,
    expected_mix=[[200.0, 600.0, 100.0, 100.0]],
    cost_mix=[[150.0, 700.0, 50.0, 300.0]],
    services=[[3.0, 0.7, 0.25, 6.0]],
    historical_cost=[2000.0],
)


def test_carve_out_removes_the_discipline_from_benchmark_and_cost_and_pays_it_ffs() -> None:
    budget = GlobalBudget(carve_out=["nursing"], carve_out_fee_to_cost=1.25)
    assert pays(budget, CARVE) == pytest.approx(900.0 + 6 * 50 * 1.25)  # in-scope budget + nursing FFS
    whole = SharedSavings(loss_rate=0.5, **NO_THRESHOLDS)
    carved = SharedSavings(loss_rate=0.5, carve_out=["nursing"], **NO_THRESHOLDS)
    assert pays(whole, CARVE) == pytest.approx(-100.0)  # 1000 - 1200, half borne
    assert pays(carved, CARVE) == pytest.approx(0.0)  # 900 - 900: nursing's overrun is outside
    np.testing.assert_allclose(carved.benchmark_of(CARVE), [900.0])
    np.testing.assert_allclose(carved.actual_cost(CARVE), [900.0])


def test_carve_out_of_a_historical_benchmark_by_expected_share() -> None:
    # historical cost 2000, nursing 10% of expected cost -> in-scope benchmark 1800
    carved = GlobalBudget(benchmark="historical", carve_out="nursing", carve_out_fee_to_cost=0.0)
    assert pays(carved, CARVE) == pytest.approx(1800.0)
    # without an expected mix, the carved share of actual cost (300 / 1200) is used
    no_mix = CARVE.replace(expected_mix=np.zeros((1, 4)))
    assert pays(carved, no_mix) == pytest.approx(2000.0 * 0.75)


# -- benchmarks -------------------------------------------------------------------------------
def test_historical_benchmark_uses_historical_cost() -> None:
    observation = year(1100.0, expected=1000.0, average_cost=[1300.0], historical_cost=[1200.0])
    kw = {"savings_rate": 0.5, "loss_rate": 0.5, **NO_THRESHOLDS}
    assert pays(SharedSavings(benchmark="normative", **kw), observation) == pytest.approx(-50.0)
    assert pays(SharedSavings(benchmark="historical", **kw), observation) == pytest.approx(50.0)
    assert pays(SharedSavings(benchmark="regional", **kw), observation) == pytest.approx(100.0)
    assert pays(GlobalBudget(benchmark="historical", level=0.9), observation) == pytest.approx(1080.0)


def test_trend_and_level() -> None:
    observation = year(1000.0).replace(year=2)
    assert pays(GlobalBudget(level=0.95, trend=0.1), observation) == pytest.approx(0.95 * 1.21 * 1000.0)
    # benchmark 1210, cost 1000: savings 210, half shared
    assert pays(SharedSavings(trend=0.1, **NO_THRESHOLDS), observation) == pytest.approx(105.0)


# -- reconciliation against the base ----------------------------------------------------------
@pytest.mark.parametrize("cost", [700.0, 990.0, 1000.0, 1080.0, 1400.0])
def test_global_budget_with_risk_sharing_is_cost_plus_share_of_result(cost: float) -> None:
    """Budget B plus a 'budget' reconciliation = cost-based reimbursement + r x (B - C)."""
    r = 0.3
    contract = make_scheme(
        "global_budget+shared_savings",
        {
            "shared_savings_basis": "budget",
            "shared_savings_savings_rate": r,
            "shared_savings_loss_rate": r,
            **{f"shared_savings_{k}": v for k, v in NO_THRESHOLDS.items()},
        },
    )
    assert pays(contract, year(cost)) == pytest.approx(cost + r * (1000.0 - cost))


def test_ffs_plus_shared_savings_is_the_mssp() -> None:
    # fees 1.25 x cost of 10 GP units (500) and 1 hospital unit (1000); benchmark 2000, cost 1500
    observation = year(1500.0, expected=2000.0, services=[[10.0, 1.0, 0.0, 0.0]])
    contract = make_scheme("ffs+shared_savings", {"shared_savings_min_savings_rate": 0.02})
    # savings 500 = 25% >= MSR: 50% of 500 = 250, capped at 10% of 2000 = 200
    assert pays(contract, observation) == pytest.approx(1.25 * 1500.0 + 200.0)


@given(data=st.data())
def test_ffs_at_cost_plus_shared_savings_equals_budget_plus_reconciliation(data: st.DataObject) -> None:
    """The two readings of one contract pay the same when fees equal cost (no reinsurance)."""
    params = data.draw(valid_scheme_params("shared_savings"), label="params")
    params.update(reinsured_share=0.0, reinsured_outlier_share=0.0)
    observation = data.draw(observations(), label="obs")
    cost_mix = observation.services * observation.unit_cost
    observation = observation.replace(cost_mix=cost_mix, cost=cost_mix.sum(axis=1))
    on_fees = make_scheme("ffs", {"fee_to_cost": 1.0}).pay(observation) + SharedSavings(
        **{**params, "basis": "fees"}
    ).pay(observation)
    bench = {k: params[k] for k in ("level", "benchmark", "trend", "carve_out") if k in params}
    on_budget = GlobalBudget(carve_out_fee_to_cost=1.0, **bench).pay(observation) + SharedSavings(
        **{**params, "basis": "budget"}
    ).pay(observation)
    np.testing.assert_allclose(on_budget, on_fees, rtol=1e-9, atol=1e-6 * (1 + np.abs(on_fees).max()))


def test_purchaser_pays_the_budget_monthly_and_reconciles_at_year_end() -> None:
    contract = make_scheme(
        "global_budget+shared_savings",
        {"shared_savings_basis": "budget", **{f"shared_savings_{k}": v for k, v in NO_THRESHOLDS.items()}},
    )
    purchaser = Purchaser(mesa.Model(rng=0), contract, DistributionRule("equal"), 1, UNIT_COST, 12)
    month = obs(months=1.0, expected_cost=[100.0], cost=[90.0], member_months=[10.0], measured_quality=[0.9])
    income = [purchaser.pay(month, np.array([0]), step)[0] for step in range(12)]
    # year: benchmark 1200, cost 1080, savings 120; the payee keeps half, the purchaser takes back 60
    np.testing.assert_allclose(income, [100.0] * 11 + [40.0])
    assert sum(income) == pytest.approx(1080.0 + 60.0)


# -- quality gate on part of the base ---------------------------------------------------------
def test_quality_gate_pays_the_gated_part_only_at_or_above_threshold() -> None:
    gate = QualityGate(share=0.05, threshold=0.8)
    assert pays(gate, year(0.0, measured_quality=[0.79])) == 0.0
    assert pays(gate, year(0.0, measured_quality=[0.8])) == pytest.approx(50.0)
    contract = vbp_contract(gated_share=0.05, gate_threshold=0.8, p4p_bonus_share=0.0, loss_rate=0.0)
    budget = [leaf for _, leaf in contract.components() if isinstance(leaf, GlobalBudget)][0]
    assert pays(budget, year(1000.0)) == pytest.approx(950.0)  # the rest of the base, monthly


# -- vbp_contract -----------------------------------------------------------------------------
def test_vbp_contract_by_hand() -> None:
    contract = vbp_contract()
    kinds = [type(leaf).__name__ for _, leaf in contract.components()]
    assert kinds == ["GlobalBudget", "SharedSavings", "StopLoss", "PayForPerformance"]
    # TWO: benchmark 2000 | 500, cost 700 | 2500; corridors: half of the first 5%, a quarter
    # of the next 5%, nothing beyond; P4P 2% x average cost 1500 x quality (1.0 | 0.75)
    phi = [0.5 * (100 + 0.5 * 100), -0.5 * (25 + 0.5 * 25)]
    np.testing.assert_allclose(contract.pay(TWO), [700 + phi[0] + 30.0, 2500 + phi[1] + 22.5])


def test_vbp_contract_glide_path_and_errors() -> None:
    contract = vbp_contract(glide_path=[0, 0.25, 0.5])
    ss = [leaf for _, leaf in contract.components() if isinstance(leaf, SharedSavings)][0]
    assert [ss.loss_rate_in(y) for y in range(4)] == [0.0, 0.25, 0.5, 0.5]
    with pytest.raises(ParameterError) as info:
        vbp_contract(loss_ratio=0.5)
    assert info.value.name == "loss_ratio"


class TestVBPContract(SchemeContract):
    """The contract properties for :func:`vbp_contract` (parameters drawn as for a global budget)."""

    scheme = "global_budget"
    nonnegative = False
    table = [({}, TWO, [700 + 75.0 + 30.0, 2500 - 18.75 + 22.5])]

    def make(self, params: dict[str, Any] | None = None) -> Any:
        return vbp_contract(**(params or {}))


# -- validation -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "params", "bad"),
    [
        (SharedSavings, {"loss_rate": 0.5, "loss_cap": 0.0}, "loss_cap"),
        (SharedSavings, {"glide_path": [0, 0.5], "loss_cap": 0.0}, "loss_cap"),
        (SharedSavings, {"glide_path": [0, 0.5], "loss_rate": 0.3}, "glide_path"),
        (SharedSavings, {"savings_rate": 1.5}, "savings_rate"),
        (SharedSavings, {"min_savings_rate": -0.1}, "min_savings_rate"),
        (SharedSavings, {"corridors": [(0.05, 0.5), (0.02, 1.0)]}, "corridors"),
        (SharedSavings, {"corridors": [(0.05, 1.2)]}, "corridors"),
        (SharedSavings, {"basis": "capitation"}, "basis"),
        (SharedSavings, {"carve_out": ["dentistry"]}, "carve_out"),
        (GlobalBudget, {"carve_out": ["dentistry"]}, "carve_out"),
        (GlobalBudget, {"carve_out": ["gp", "hospital", "rehab", "nursing"]}, "carve_out"),
        (GlobalBudget, {"benchmark": "national"}, "benchmark"),
        (GlobalBudget, {"trend": -1.0}, "trend"),
        (GlobalBudget, {"level": -0.1}, "level"),
        (StopLoss, {"share": 1.1}, "share"),
        (QualityGate, {"threshold": 2.0}, "threshold"),
    ],
)
def test_inconsistent_parameters_name_the_culprit(cls: type, params: dict[str, Any], bad: str) -> None:
    with pytest.raises(ParameterError) as info:
        cls(**params)
    assert info.value.name == bad
    assert str(info.value).startswith(f"{bad}=")


def test_description_is_one_line() -> None:
    for cls in (GlobalBudget, SharedSavings, StopLoss, QualityGate):
        assert cls.description and "\n" not in cls.description
        assert cls.__doc__ and "Section 4" in cls.__doc__


# -- end to end -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scheme", "overrides"),
    [
        ("global_budget+shared_savings+stop_loss", {"composition": "chain"}),
        (
            "global_budget+shared_savings+stop_loss",
            {
                "composition": "chain",
                "shared_savings_basis": "budget",
                "shared_savings_loss_rate": 0.5,
                "shared_savings_reinsured_share": 0.9,
            },
        ),
        ("ffs+shared_savings", {}),
    ],
    ids=["budget-defaults", "budget-two-sided", "mssp"],
)
def test_end_to_end_runs_are_finite(scheme: str, overrides: dict[str, Any]) -> None:
    result = vbpsim.run(scheme=scheme, scenario="small", years=2, **overrides)
    assert len(result.timeseries) == 24
    assert np.isfinite(result.timeseries.select_dtypes("number").to_numpy()).all()
    assert all(np.isfinite(v) for v in result.value_dimensions.values())
    assert all(np.isfinite(v) for v in result.indicators.values())


def test_end_to_end_vbp_contract() -> None:
    result = vbpsim.run(vbp_contract(glide_path=[0, 0.5]), scenario="small", years=2, composition="chain")
    assert all(np.isfinite(v) for v in result.value_dimensions.values())
