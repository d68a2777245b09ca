"""Payment schemes: a contract every scheme obeys, plus each scheme's closed-form table.

Like Axelrod's ``TestPlayer``: :class:`SchemeContract` holds the properties every payment
scheme must have (finite, non-negative, one payment per payee, payees separable, clones
and reprs faithful, linear in the period length); each scheme's ``Test*`` class inherits
them and adds a table of payments worked out by hand. Then the registry, the purchaser's
settlement calendar, aggregation into payees and the distribution of group payments.
"""

from __future__ import annotations

from typing import Any, ClassVar

import mesa
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import UNIT_COST, obs, observations, params_strategy, take_payees

import vbpsim
from vbpsim import contracts
from vbpsim import schemes as schemes_module
from vbpsim.agents import DistributionRule, Purchaser, aggregate
from vbpsim.parameters import DISCIPLINES
from vbpsim.schemes import (
    Blend,
    Capitation,
    FeeForService,
    Mixed,
    Observation,
    PayForPerformance,
    PaymentScheme,
    PerCase,
    PerPeriod,
    filtered_schemes,
    list_schemes,
    make_scheme,
    with_p4p,
)

BUILTIN = {"ffs", "per_case", "capitation", "per_period", "mixed", "p4p"}

# Two payees, numbers chosen to be checked by hand (unit costs 50, 1000, 200, 50 EUR).
SERVICES = [[10, 0, 0, 0], [2, 1, 3, 4]]  # at cost: 500 and 100+1000+600+200=1900 EUR
TWO = obs(
    services=SERVICES,
    cases=[4, 1],
    case_value=[1000, 250],
    member_months=[100, 50],
    expected_cost=[2000, 500],
    average_cost=[1500, 1500],
    baseline_cost=[3000, 100],
    cost=[700, 2500],
    measured_quality=[1.0, 0.75],
    case_mix=[[0, 2000, 500, 0], [100, 1000, 0, 300]],  # case value by discipline
    outlier_cost=[1000, 0],
)


def assert_pays(scheme: PaymentScheme, observation: Observation, expected: list[float]) -> None:
    np.testing.assert_allclose(scheme.pay(observation), expected, rtol=1e-12, atol=1e-9)


class SchemeContract:
    """Properties every payment scheme has; subclasses set ``scheme`` and a ``table``."""

    scheme: ClassVar[str]
    linear: ClassVar[bool] = True
    nonnegative: ClassVar[bool] = True  # False for reconciliations, which may charge the payee
    # population contracts charge back the payee's care bought outside (``outside_cost``): only
    # the payment before that charge is non-negative
    charges_outside_care: ClassVar[bool] = False
    # (params, observation, expected payments per payee), each worked out by hand
    table: ClassVar[list[tuple[dict[str, Any], Observation, list[float]]]] = []

    def make(self, params: dict[str, Any] | None = None) -> PaymentScheme:
        return make_scheme(self.scheme, dict(params or {}))

    # -- the contract ---------------------------------------------------------------------
    @given(data=st.data())
    def test_payments_finite_nonnegative_one_per_payee(self, data: st.DataObject) -> None:
        scheme = self.make(data.draw(params_strategy(self.scheme), label="params"))
        observation = data.draw(observations(), label="obs")
        pay = np.asarray(scheme.pay(observation))
        assert pay.shape == (observation.n_payees,)
        assert np.issubdtype(pay.dtype, np.floating)
        assert np.isfinite(pay).all()
        if self.nonnegative:
            assert (pay + (observation.outside_cost if self.charges_outside_care else 0.0) >= 0).all()

    @given(data=st.data())
    def test_permuting_payees_permutes_payments(self, data: st.DataObject) -> None:
        scheme = self.make(data.draw(params_strategy(self.scheme), label="params"))
        observation = data.draw(observations(min_payees=2), label="obs")
        perm = np.array(data.draw(st.permutations(range(observation.n_payees)), label="perm"))
        np.testing.assert_allclose(
            scheme.pay(take_payees(observation, perm)), scheme.pay(observation)[perm], rtol=1e-12
        )

    @given(data=st.data())
    def test_payment_depends_only_on_own_row(self, data: st.DataObject) -> None:
        scheme = self.make(data.draw(params_strategy(self.scheme), label="params"))
        observation = data.draw(observations(), label="obs")
        full = scheme.pay(observation)
        g = data.draw(st.integers(0, observation.n_payees - 1), label="payee")
        alone = scheme.pay(take_payees(observation, slice(g, g + 1)))
        assert alone.shape == (1,)
        np.testing.assert_allclose(alone[0], full[g], rtol=1e-12)

    @given(data=st.data())
    def test_clone_pays_the_same(self, data: st.DataObject) -> None:
        scheme = self.make(data.draw(params_strategy(self.scheme), label="params"))
        observation = data.draw(observations(), label="obs")
        clone = scheme.clone()
        assert clone is not scheme
        assert type(clone) is type(scheme)
        assert repr(clone) == repr(scheme)
        np.testing.assert_array_equal(clone.pay(observation), scheme.pay(observation))

    @given(data=st.data())
    def test_repr_round_trips(self, data: st.DataObject) -> None:
        scheme = self.make(data.draw(params_strategy(self.scheme), label="params"))
        namespace = {name: getattr(module, name) for module in (schemes_module, contracts) for name in dir(module)}
        rebuilt = eval(repr(scheme), namespace)  # noqa: S307 - our own repr
        assert type(rebuilt) is type(scheme)
        assert repr(rebuilt) == repr(scheme)
        observation = data.draw(observations(), label="obs")
        np.testing.assert_array_equal(rebuilt.pay(observation), scheme.pay(observation))

    @given(data=st.data())
    def test_payment_scales_with_period_length(self, data: st.DataObject) -> None:
        if not self.linear:
            pytest.skip("not a linear scheme")
        scheme = self.make(data.draw(params_strategy(self.scheme), label="params"))
        observation = data.draw(observations(), label="obs")
        factor = data.draw(st.sampled_from([12.0, 1 / 12, 3.0, 0.5]), label="factor")
        longer = observation.rescaled(observation.months * factor)
        assert longer.months == pytest.approx(observation.months * factor)
        np.testing.assert_allclose(scheme.pay(longer), factor * scheme.pay(observation), rtol=1e-9, atol=1e-6)

    def test_does_not_mutate_observation(self) -> None:
        before = {f: np.copy(getattr(TWO, f)) for f in ("services", "unit_cost", "measured_quality")}
        for params, observation, _ in self.table or [({}, TWO, None)]:
            self.make(params).pay(observation)
        for name, value in before.items():
            np.testing.assert_array_equal(getattr(TWO, name), value)

    def test_metadata(self) -> None:
        scheme = self.make()
        assert scheme.settlement_months in (1, 12)
        for _, leaf in scheme.components():
            assert leaf.name in vbpsim.SCHEMES
            assert leaf.description
            assert isinstance(leaf.prospective, bool)
            assert isinstance(leaf.risk_bearing, bool)
            assert leaf.settlement_months in (1, 12)

    def test_components_weights_reproduce_payment(self) -> None:
        scheme = self.make()
        by_parts = sum(w * leaf.pay(TWO) for w, leaf in scheme.components())
        np.testing.assert_allclose(by_parts, scheme.pay(TWO), rtol=1e-12)

    def test_closed_form_table(self) -> None:
        assert self.table, "every scheme needs a hand-worked payment table"
        for params, observation, expected in self.table:
            np.testing.assert_allclose(
                self.make(params).pay(observation),
                expected,
                rtol=1e-12,
                atol=1e-9,
                err_msg=f"{self.scheme} {params}",
            )


# -- the schemes ------------------------------------------------------------------------------
class TestFeeForService(SchemeContract):
    scheme = "ffs"
    # fee = fee_to_cost x unit cost (or the `fees` override, EUR per unit); revenue = fee x volume
    table = [
        ({"fee_to_cost": 1.2}, TWO, [600.0, 2280.0]),  # fees 60, 1200, 240, 60
        ({"fee_to_cost": 1.0}, TWO, [500.0, 1900.0]),
        ({"fee_to_cost": 0.0}, TWO, [0.0, 0.0]),
        ({"fee_to_cost": 1.0, "fees": {"gp": 70}}, TWO, [700.0, 1940.0]),
        ({"fee_to_cost": 2.0, "fees": {"hospital": 0, "nursing": 10}}, TWO, [1000.0, 200 + 0 + 1200 + 40]),
    ]

    def test_fee_schedule(self) -> None:
        fees = FeeForService(fee_to_cost=1.5, fees={"rehab": 7}).fee_schedule(UNIT_COST)
        np.testing.assert_allclose(fees, [75, 1500, 7, 75])
        np.testing.assert_array_equal(UNIT_COST, [50, 1000, 200, 50])  # not modified in place

    @given(fee=st.floats(0, 10), volume=hnp.arrays(np.float64, (3, 4), elements=st.floats(0, 1e4)))
    def test_revenue_is_fee_times_volume(self, fee: float, volume: np.ndarray) -> None:
        observation = obs(services=volume)
        expected = [sum(fee * UNIT_COST[d] * volume[g, d] for d in range(4)) for g in range(3)]
        np.testing.assert_allclose(FeeForService(fee_to_cost=fee).pay(observation), expected, rtol=1e-9)

    def test_metadata_values(self) -> None:
        assert not FeeForService.prospective and not FeeForService.risk_bearing


class TestPerCase(SchemeContract):
    scheme = "per_case"
    table = [
        ({"price_to_cost": 1.05}, TWO, [1050.0, 262.5]),
        ({"price_to_cost": 0.8}, TWO, [800.0, 200.0]),
        ({"price_to_cost": 1.05}, obs(case_value=[0, 40]), [0.0, 42.0]),
    ]

    def test_services_do_not_pay(self) -> None:
        scheme = PerCase()
        assert_pays(scheme, TWO.replace(services=np.zeros((2, 4))), scheme.pay(TWO))
        assert PerCase.risk_bearing and not PerCase.prospective


class TestCapitation(SchemeContract):
    scheme = "capitation"
    charges_outside_care = True
    table = [
        ({"rate_to_cost": 1.1}, TWO, [2200.0, 550.0]),  # x risk-adjusted expected cost
        ({"rate_to_cost": 1.1, "risk_adjusted": False}, TWO, [1650.0, 1650.0]),  # x average cost
        ({"rate_to_cost": 0}, TWO, [0.0, 0.0]),
        ({"rate_to_cost": 1.05}, TWO, [2100.0, 525.0]),  # risk adjusted unless told otherwise
    ]

    def test_care_given_does_not_pay(self) -> None:
        scheme = Capitation()
        busier = TWO.replace(services=np.asarray(SERVICES, float) * 3, cost=TWO.cost * 3, cases=TWO.cases * 3)
        assert_pays(scheme, busier, scheme.pay(TWO))
        assert Capitation.prospective and Capitation.risk_bearing


class TestPerPeriod(SchemeContract):
    scheme = "per_period"
    table = [
        ({"budget_to_cost": 0.9}, TWO, [2700.0, 90.0]),
        ({"budget_to_cost": 1.05}, TWO, [3150.0, 105.0]),
    ]

    def test_only_baseline_matters(self) -> None:
        scheme = PerPeriod(budget_to_cost=1.0)
        other = obs(baseline_cost=[3000, 100]).replace(measured_quality=np.array([0.1, 0.2]))
        assert_pays(scheme, other, scheme.pay(TWO))


QUALITY_GRID = obs(average_cost=[1000, 2000, 3000, 4000, 1000], measured_quality=[0.4, 0.5, 0.75, 1.0, 0.6])


class TestCostReimbursement(SchemeContract):
    scheme = "cost_reimbursement"
    # the scorecard's neutral reference: actual cost plus up-front investment, nothing else
    table = [
        ({}, TWO, [700.0, 2500.0]),
        ({}, TWO.replace(investment=np.array([50.0, 0.0])), [750.0, 2500.0]),
    ]

    def test_only_cost_and_investment_matter(self) -> None:
        scheme = make_scheme("cost_reimbursement")
        busier = TWO.replace(services=np.asarray(SERVICES, float) * 3, cases=TWO.cases * 3)
        assert_pays(scheme, busier, scheme.pay(TWO))


class TestPayForPerformance(SchemeContract):
    scheme = "p4p"
    # bonus = bonus_share x average_cost x clip((q - threshold) / (1 - threshold), 0, 1)
    table = [
        ({"bonus_share": 0.1, "threshold": 0.5}, QUALITY_GRID, [0.0, 0.0, 150.0, 400.0, 20.0]),
        ({"bonus_share": 0.1, "threshold": 0.0}, QUALITY_GRID, [40.0, 100.0, 225.0, 400.0, 60.0]),
        ({"bonus_share": 0.2, "threshold": 0.8}, QUALITY_GRID, [0.0, 0.0, 0.0, 800.0, 0.0]),
        ({"bonus_share": 0.05, "threshold": 0.5}, TWO, [75.0, 37.5]),  # 0.05 x 1500 x {1, 0.5}
    ]

    def test_settles_yearly(self) -> None:
        assert PayForPerformance.settlement_months == 12
        assert not PayForPerformance.prospective

    def test_pays_on_measured_not_true_cost(self) -> None:
        scheme = PayForPerformance(bonus_share=0.1, threshold=0.5)
        assert_pays(scheme, TWO.replace(expected_cost=np.zeros(2), cost=np.zeros(2)), scheme.pay(TWO))

    @given(q=st.floats(0, 1), t=st.floats(0, 0.99), share=st.floats(0, 1))
    def test_bonus_monotone_in_quality(self, q: float, t: float, share: float) -> None:
        scheme = PayForPerformance(bonus_share=share, threshold=t)
        lower = scheme.pay(obs(average_cost=[1000.0], measured_quality=[q * 0.9]))
        higher = scheme.pay(obs(average_cost=[1000.0], measured_quality=[q]))
        assert 0 <= lower[0] <= higher[0] + 1e-9 <= share * 1000 + 1e-6


class TestMixed(SchemeContract):
    scheme = "mixed"
    charges_outside_care = True
    table = [
        # 0.5 x FFS(1.2) + 0.5 x capitation(1.1, risk adjusted)
        ({"fee_to_cost": 1.2, "rate_to_cost": 1.1}, TWO, [0.5 * 600 + 0.5 * 2200, 0.5 * 2280 + 0.5 * 550]),
        ({"fee_to_cost": 1.2, "rate_to_cost": 1.1}, TWO, [1400.0, 1415.0]),
        ({"ffs_share": 1.0, "fee_to_cost": 1.2}, TWO, [600.0, 2280.0]),
        ({"ffs_share": 0.0, "rate_to_cost": 1.1}, TWO, [2200.0, 550.0]),
        (
            {"ffs_share": 0.25, "fee_to_cost": 1.0, "rate_to_cost": 1.0, "risk_adjusted": False},
            TWO,
            [0.25 * 500 + 0.75 * 1500, 0.25 * 1900 + 0.75 * 1500],
        ),
    ]

    @given(data=st.data())
    def test_mixed_is_the_blend_of_its_parts(self, data: st.DataObject) -> None:
        params = data.draw(params_strategy("mixed"))
        share = params.get("ffs_share", 0.5)
        ffs = FeeForService(fee_to_cost=params.get("fee_to_cost", 1.25))
        cap = Capitation(rate_to_cost=params.get("rate_to_cost", 1.05), risk_adjusted=params.get("risk_adjusted", True))
        observation = data.draw(observations())
        np.testing.assert_allclose(
            Mixed(**params).pay(observation),
            share * ffs.pay(observation) + (1 - share) * cap.pay(observation),
            rtol=1e-12,
        )

    def test_components(self) -> None:
        parts = [(w, type(leaf)) for w, leaf in Mixed(ffs_share=0.3).components()]
        assert parts == [(0.3, FeeForService), (pytest.approx(0.7), Capitation)]


class TestFFSPlusP4P(SchemeContract):
    scheme = "ffs+p4p"
    table = [
        # FFS at fee 1.3 (fees 65, 1300, 260, 65): 650 and 2470; P4P 10% x 1500 x {1, 0.5}
        (
            {"fee_to_cost": 1.3, "p4p_bonus_share": 0.1, "p4p_threshold": 0.5},
            TWO,
            [650.0 + 150.0, 2470.0 + 75.0],
        ),
        (
            {"fee_to_cost": 1.3, "p4p_bonus_share": 0.1, "p4p_threshold": 0.0},
            TWO,
            [650.0 + 150.0, 2470.0 + 112.5],
        ),
        ({"fee_to_cost": 1.3, "p4p_bonus_share": 0.1, "p4p_threshold": 0.9}, TWO, [800.0, 2470.0]),
    ]

    def test_is_ffs_plus_p4p(self) -> None:
        combined = make_scheme("ffs+p4p", {"fee_to_cost": 1.3, "p4p_bonus_share": 0.1})
        assert isinstance(combined, Blend)
        expected = FeeForService(fee_to_cost=1.3).pay(TWO) + PayForPerformance(bonus_share=0.1).pay(TWO)
        np.testing.assert_array_less(0, PayForPerformance(bonus_share=0.1).pay(TWO))
        assert_pays(combined, TWO, expected)
        assert_pays(with_p4p(FeeForService(fee_to_cost=1.3), bonus_share=0.1), TWO, expected)
        leaves = [(w, type(leaf), leaf.settlement_months) for w, leaf in combined.components()]
        assert leaves == [(1.0, FeeForService, 1), (1.0, PayForPerformance, 12)]

    @pytest.mark.parametrize("base", sorted(BUILTIN - {"p4p"}))
    def test_every_base_takes_the_addon(self, base: str) -> None:
        combined = make_scheme(f"{base}+p4p", {"p4p_bonus_share": 0.1})
        assert_pays(combined, TWO, make_scheme(base).pay(TWO) + PayForPerformance(bonus_share=0.1).pay(TWO))


class TestBundle(SchemeContract):
    scheme = "bundle"
    # price x case value of the covered disciplines + fee x services of the others
    table = [
        # covered hospital+rehab: 2000 + 500 | 1000 + 0; FFS 1.2 on gp and nursing: 600 | 120 + 240
        ({"covered": ("hospital", "rehab"), "price_to_cost": 1.0, "fee_to_cost": 1.2}, TWO, [3100.0, 1360.0]),
        # covered gp at half price: 0 | 50; FFS at cost on the rest: 0 | 1000 + 600 + 200
        ({"covered": ["gp"], "price_to_cost": 0.5, "fee_to_cost": 1.0}, TWO, [0.0, 1850.0]),
        ({"covered": DISCIPLINES, "price_to_cost": 1.1, "fee_to_cost": 9.0}, TWO, [2750.0, 1540.0]),
    ]

    def test_covered_services_do_not_pay(self) -> None:
        scheme = make_scheme("bundle", {"covered": ["hospital"]})
        more_hospital = TWO.replace(services=TWO.services + np.array([0, 5, 0, 0]))
        assert_pays(scheme, more_hospital, scheme.pay(TWO))


class TestOutlierSharing(SchemeContract):
    scheme = "outlier"
    table = [
        ({"share": 0.8}, TWO, [800.0, 0.0]),
        ({"share": 0.0}, TWO, [0.0, 0.0]),
        ({"share": 1.0}, obs(outlier_cost=[5.0, 0.5, 0.0]), [5.0, 0.5, 0.0]),
    ]


class TestCapitationPlusOutlierPlusP4P(SchemeContract):
    scheme = "capitation+outlier+p4p"
    charges_outside_care = True
    table = [
        # 1.1 x expected cost + 0.5 x outlier cost + 0.1 x 1500 x score (threshold 0.5)
        (
            {"rate_to_cost": 1.1, "outlier_share": 0.5, "p4p_bonus_share": 0.1, "p4p_threshold": 0.5},
            TWO,
            [2200 + 500 + 150, 550 + 0 + 75],
        ),
    ]


# -- value-based contracts (vbpsim.contracts; hand-worked cases in tests/test_contracts.py) ------
class TestGlobalBudget(SchemeContract):
    scheme = "global_budget"
    charges_outside_care = True
    # level x benchmark (normative = expected cost; regional = average cost) x (1 + trend) ** year
    table = [
        ({"level": 1.1}, TWO, [2200.0, 550.0]),
        ({"benchmark": "regional"}, TWO, [1500.0, 1500.0]),
        ({"trend": 0.1}, TWO.replace(year=2), [2420.0, 605.0]),
        # no expected or cost mix observed: nothing to carve from the benchmark; gp paid FFS at 1.25
        ({"carve_out": ["gp"]}, TWO, [2000.0 + 625.0, 500.0 + 125.0]),
    ]


class TestSharedSavings(SchemeContract):
    scheme = "shared_savings"
    nonnegative = False
    # benchmark 2000 | 500, cost 700 | 2500: savings 1300 (65%) | loss 2000 (400%)
    table = [
        ({}, TWO, [200.0, 0.0]),  # 50% of 1300 capped at 10% of 2000; one-sided: no loss
        ({"savings_cap": 1.0, "loss_rate": 0.3, "loss_cap": 1.0}, TWO, [650.0, -500.0]),  # 30% of 2000, cap 500
        ({"savings_cap": 1.0, "loss_rate": 0.3, "loss_cap": 0.5}, TWO, [650.0, -250.0]),
        # the base already paid the benchmark: pay phi(R) - R
        ({"savings_cap": 1.0, "loss_rate": 0.3, "loss_cap": 1.0, "basis": "budget"}, TWO, [-650.0, 1500.0]),
    ]


class TestStopLoss(SchemeContract):
    scheme = "stop_loss"
    table = [
        ({"share": 0.9}, obs(stoploss_excess=[1000, 0, 250]), [900.0, 0.0, 225.0]),
        ({"share": 0.0}, obs(stoploss_excess=[1000, 0, 250]), [0.0, 0.0, 0.0]),
    ]


class TestQualityGate(SchemeContract):
    scheme = "quality_gate"
    table = [
        ({"share": 0.05, "threshold": 0.8}, TWO, [100.0, 0.0]),  # quality 1.0 | 0.75
        ({"share": 0.1, "threshold": 0.75, "benchmark": "regional"}, TWO, [150.0, 150.0]),
    ]


class TestGlobalBudgetPlusSharedSavingsPlusStopLoss(SchemeContract):
    scheme = "global_budget+shared_savings+stop_loss"
    nonnegative = False
    # budget 2000 | 500 + phi(R) - R with a 50% risk rate = cost + 50% x (benchmark - cost)
    table = [
        (
            {
                "shared_savings_basis": "budget",
                "shared_savings_loss_rate": 0.5,
                "shared_savings_min_savings_rate": 0.0,
                "shared_savings_min_loss_rate": 0.0,
                "shared_savings_savings_cap": 1.0,
                "shared_savings_loss_cap": 1.0,
            },
            TWO,
            [700.0 + 650.0, 2500.0 - 500.0],  # half the loss, 1000, is capped at 100% of the 500 benchmark
        ),
    ]


# Outcome add-ons (issue 12). OUTCOMES: two payees; unit costs as above.
OUTCOMES = obs(
    case_value=[10_000, 4_000],
    average_cost=[2_000, 1_000],
    readmissions=[3, 1],
    expected_readmissions=[2, 2],  # ERR 1.5 | 0.5
    acute_events=[1, 4],
    expected_acute_events=[3, 2.5],  # 2 avoided | 1.5 too many
    deaths=[2, 0],
    expected_deaths=[1, 0.5],
    prom=[95, 0],
    expected_prom=[100, 0],  # score 0.95 | no respondents
)


class TestReadmissionPenalty(SchemeContract):
    scheme = "readmission_penalty"
    nonnegative = False
    table = [
        ({}, OUTCOMES, [-0.03 * 10_000, 0.0]),  # ERR - 1 = 0.5 capped at 3%
        ({"cap": 1.0, "multiplier": 0.1}, OUTCOMES, [-0.05 * 10_000, 0.0]),
        ({}, TWO, [0.0, 0.0]),  # nothing expected: no information, no penalty
    ]


class TestOutcomeBonus(SchemeContract):
    scheme = "outcome_bonus"
    nonnegative = False
    table = [
        ({}, OUTCOMES, [20_000.0, 0.0]),
        ({"bonus_per_event": 100.0, "two_sided": True}, OUTCOMES, [200.0, -150.0]),
        ({"bonus_per_event": 100.0, "outcome": "readmissions", "two_sided": True}, OUTCOMES, [-100.0, 100.0]),
        ({"bonus_per_event": 100.0, "outcome": "deaths"}, OUTCOMES, [0.0, 50.0]),
    ]


class TestPromBonus(SchemeContract):
    scheme = "prom_bonus"
    table = [
        ({}, OUTCOMES, [0.05 * 2_000 * 0.5, 0.0]),  # (0.95 - 0.9) / 0.1 = half the bonus
        ({"bonus_share": 0.1, "threshold": 0.0}, OUTCOMES, [0.1 * 2_000 * 0.95, 0.0]),
    ]


class TestCapitationPlusOutcomeAddOns(SchemeContract):
    scheme = "capitation+readmission_penalty+outcome_bonus+prom_bonus"
    nonnegative = False
    table = [({"rate_to_cost": 1.0}, OUTCOMES, [0.0 - 300.0 + 20_000.0 + 50.0, 0.0])]


def test_add_ons_are_flagged() -> None:
    add_ons = filtered_schemes(lambda s: s.add_on)
    assert {"p4p", "outlier"} <= set(add_ons)
    with pytest.raises(vbpsim.ParameterError):
        make_scheme("p4p+outlier")  # an add-on is not a base


def test_every_registered_scheme_has_a_contract_test() -> None:
    tested = {cls.scheme for cls in SchemeContract.__subclasses__()}
    assert set(list_schemes()) <= tested, f"untested schemes: {set(list_schemes()) - tested}"


# -- registry ---------------------------------------------------------------------------------
def test_list_schemes() -> None:
    names = list_schemes()
    assert BUILTIN <= set(names)
    assert names == sorted(names)
    assert vbpsim.list_schemes() == names


def test_filtered_schemes_by_metadata() -> None:
    prospective = filtered_schemes(lambda s: s.prospective)
    assert set(prospective) & BUILTIN == {"capitation", "per_period"}
    assert all(vbpsim.SCHEMES[n].prospective for n in prospective)
    assert set(filtered_schemes(lambda s: s.settlement_months == 12)) & BUILTIN == {"p4p"}
    assert filtered_schemes(lambda s: False) == []


def test_registry_maps_names_to_classes() -> None:
    expected = {
        "ffs": FeeForService,
        "per_case": PerCase,
        "capitation": Capitation,
        "per_period": PerPeriod,
        "p4p": PayForPerformance,
        "mixed": Mixed,
    }
    for name, cls in expected.items():
        assert vbpsim.SCHEMES[name] is cls
        assert type(make_scheme(name)) is cls


def test_make_scheme_passes_objects_through() -> None:
    scheme = PerCase(price_to_cost=0.9)
    assert make_scheme(scheme) is scheme
    with pytest.raises(vbpsim.ParameterError, match="params"):
        make_scheme(scheme, {"price_to_cost": 1.0})


def test_register_a_new_scheme_by_interface_only() -> None:
    """A scheme the project has never seen runs through the model by its money flows alone."""

    class FlatFee(PaymentScheme):
        name = "test_flat_fee_per_member"
        description = "A test-only flat fee per member month."

        def __init__(self, *, fee: float = 10.0):
            self.fee = fee

        def pay(self, observation: Observation) -> np.ndarray:
            return self.fee * observation.member_months

    vbpsim.register(FlatFee)
    try:
        assert "test_flat_fee_per_member" in list_schemes()
        result = vbpsim.run("test_flat_fee_per_member", scenario="small", years=1, fee=2.0)
        assert result.scheme == "test_flat_fee_per_member"
        assert np.isfinite(result.timeseries.spending).all()
    finally:
        vbpsim.SCHEMES.pop("test_flat_fee_per_member", None)


# -- purchaser settlement ---------------------------------------------------------------------
def month_obs(month: int) -> Observation:
    """Three providers; members 1 for the first half-year, then 3; quality 0.6, then 1.0."""
    members, quality = (1.0, 0.6) if month % 12 < 6 else (3.0, 1.0)
    return obs(
        services=[[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 4]],
        member_months=[members] * 3,
        average_cost=[100, 100, 100],
        measured_quality=[quality] * 3,
    )


def make_purchaser(contract: PaymentScheme, rule: str = "contribution", payee=None, steps_per_year=12):
    model = mesa.Model(rng=0)
    n_payees = 3 if payee is None else int(np.max(payee)) + 1
    return Purchaser(model, contract, DistributionRule(rule), n_payees, UNIT_COST, steps_per_year)


def test_purchaser_settles_ffs_monthly_and_p4p_yearly() -> None:
    contract = make_scheme("ffs+p4p", {"fee_to_cost": 1.3, "p4p_bonus_share": 0.1, "p4p_threshold": 0.5})
    purchaser = make_purchaser(contract)
    payee = np.arange(3)
    ffs_monthly = np.array([130.0, 1300.0, 260.0])  # 2 x 65, 1 x 1300, 4 x 65
    # year: members 6 x 1 + 6 x 3 = 24, quality (6 x 0.6 + 18 x 1.0) / 24 = 0.9, score 0.8;
    # average cost 12 x 100 = 1200, so the bonus is 0.1 x 1200 x 0.8 = 96 per provider.
    paid = []
    for step in range(24):
        income = purchaser.pay(month_obs(step), payee, step)
        expected = ffs_monthly + (96.0 if step in (11, 23) else 0.0)
        np.testing.assert_allclose(income, expected, rtol=1e-12, err_msg=f"step {step}")
        paid.append(income.sum())
    assert purchaser.total_paid == pytest.approx(sum(paid))
    assert purchaser.total_paid == pytest.approx(24 * ffs_monthly.sum() + 2 * 3 * 96.0)
    assert purchaser.pending == {}  # nothing left unsettled at a year end


def test_purchaser_p4p_only_pays_nothing_between_settlements() -> None:
    purchaser = make_purchaser(PayForPerformance(bonus_share=0.1, threshold=0.5))
    incomes = [purchaser.pay(month_obs(step), np.arange(3), step).sum() for step in range(12)]
    assert incomes[:11] == [0.0] * 11
    assert incomes[11] == pytest.approx(3 * 96.0)


def test_purchaser_quarterly_steps_settle_p4p_every_four_steps() -> None:
    one = np.array([0])
    purchaser = make_purchaser(PayForPerformance(bonus_share=0.1, threshold=0.5), payee=one, steps_per_year=4)
    assert purchaser.settlement_steps(FeeForService()) == 1
    assert purchaser.settlement_steps(PayForPerformance()) == 4
    incomes = [
        purchaser.pay(obs(member_months=[1], average_cost=[300], measured_quality=[1.0]), one, step).sum()
        for step in range(8)
    ]
    assert incomes == [0, 0, 0, pytest.approx(120.0), 0, 0, 0, pytest.approx(120.0)]


def test_purchaser_shares_a_group_payment_among_members() -> None:
    payee = np.array([0, 0, 1])
    purchaser = make_purchaser(FeeForService(fee_to_cost=1.0), rule="equal", payee=payee)
    income = purchaser.pay(month_obs(0), payee, 0)
    # group 0 bills 2 x 50 + 1 x 1000 = 1100, split equally; provider 2 alone bills 200
    np.testing.assert_allclose(income, [550.0, 550.0, 200.0])


def test_p4p_in_a_built_model_pays_only_at_year_ends() -> None:
    # threshold 0: any measured quality earns a bonus (with no base payment quality collapses)
    model = vbpsim.build_model("p4p", scenario="small", years=2, seed=3, threshold=0.0)
    model.run()
    # what the contract pays (spending also counts redirected episodes, paid to hospitals outside)
    spending = [r["provider_income"] for r in model.records]
    assert [i for i, s in enumerate(spending) if s != 0] == [11, 23]
    assert all(s > 0 for s in (spending[11], spending[23]))


# -- aggregation and distribution -------------------------------------------------------------
def test_aggregate_sums_extensive_and_member_weights_quality() -> None:
    providers = obs(
        services=[[1, 0, 0, 0], [2, 0, 0, 0], [0, 0, 5, 0]],
        cases=[1, 2, 3],
        case_value=[10, 20, 30],
        member_months=[1, 3, 2],
        expected_cost=[100, 200, 300],
        average_cost=[5, 6, 7],
        baseline_cost=[1, 1, 1],
        cost=[9, 8, 7],
        measured_quality=[0.2, 0.6, 0.9],
    )
    payees = aggregate(providers, np.array([0, 0, 1]), 2)
    np.testing.assert_allclose(payees.services, [[3, 0, 0, 0], [0, 0, 5, 0]])
    np.testing.assert_allclose(payees.cases, [3, 3])
    np.testing.assert_allclose(payees.case_value, [30, 30])
    np.testing.assert_allclose(payees.member_months, [4, 2])
    np.testing.assert_allclose(payees.expected_cost, [300, 300])
    np.testing.assert_allclose(payees.average_cost, [11, 7])
    np.testing.assert_allclose(payees.baseline_cost, [2, 1])
    np.testing.assert_allclose(payees.cost, [17, 7])
    np.testing.assert_allclose(payees.measured_quality, [(0.2 * 1 + 0.6 * 3) / 4, 0.9])
    assert payees.months == providers.months
    assert payees.n_payees == 2


@st.composite
def grouping(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    """A payee per provider where every payee has at least one member."""
    n_payees = draw(st.integers(1, 6))
    extra = draw(st.lists(st.integers(0, n_payees - 1), max_size=10))
    payee = np.array(list(range(n_payees)) + extra)
    perm = np.array(draw(st.permutations(range(len(payee)))))
    return payee[perm], n_payees


@given(data=st.data())
def test_aggregate_preserves_totals(data: st.DataObject) -> None:
    payee, n_payees = data.draw(grouping())
    providers = data.draw(observations(min_payees=len(payee), max_payees=len(payee)))
    payees = aggregate(providers, payee, n_payees)
    for name in Observation.EXTENSIVE:
        np.testing.assert_allclose(
            getattr(payees, name).sum(axis=0), getattr(providers, name).sum(axis=0), rtol=1e-9, atol=1e-6
        )
    for g in range(n_payees):
        q = providers.measured_quality[payee == g]
        assert q.min() - 1e-9 <= payees.measured_quality[g] <= q.max() + 1e-9


@pytest.mark.parametrize("rule", DistributionRule.RULES)
@given(data=st.data())
def test_distribution_shares_sum_to_the_payee_payment(rule: str, data: st.DataObject) -> None:
    payee, n_payees = data.draw(grouping())
    providers = data.draw(observations(min_payees=len(payee), max_payees=len(payee)))
    payments = data.draw(hnp.arrays(np.float64, n_payees, elements=st.floats(0, 1e7)))
    income = DistributionRule(rule)(payments, providers, payee)
    assert income.shape == (len(payee),)
    assert np.isfinite(income).all()
    scale = 1e-9 * (1 + payments.max() + providers.cost.sum())
    np.testing.assert_allclose(np.bincount(payee, weights=income, minlength=n_payees), payments, rtol=1e-9, atol=scale)
    # a solo payee keeps its whole payment under any rule
    for g in np.flatnonzero(np.bincount(payee) == 1):
        np.testing.assert_allclose(income[payee == g], payments[g], rtol=1e-9, atol=scale)
    # members share gain and pain: nobody gains from a group loss or loses from a group gain
    surplus = payments - np.bincount(payee, weights=providers.cost, minlength=n_payees)
    margin = income - providers.cost
    assert (margin * np.sign(surplus[payee]) >= -scale).all()


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        # group 0 is paid 100 for costs 10 and 30 (surplus 60, expected costs equal);
        # provider 2 is alone, paid 30 whatever its cost
        ("equal", [10 + 30, 30 + 30, 30.0]),
        ("panel", [10 + 30, 30 + 30, 30.0]),
        # savings against half the payment: 50 - 10 = 40 and 50 - 30 = 20, so 2/3 and 1/3
        ("contribution", [10 + 40, 30 + 20, 30.0]),
    ],
)
def test_distribution_rules_by_hand(rule: str, expected: list[float]) -> None:
    providers = obs(cost=[10, 30, 5], expected_cost=[200, 200, 50], member_months=[1, 3, 2])
    income = DistributionRule(rule)(np.array([100.0, 30.0]), providers, np.array([0, 0, 1]))
    np.testing.assert_allclose(income, expected, rtol=1e-9)


def test_panel_rule_shares_by_expected_cost() -> None:
    providers = obs(cost=[0, 0], expected_cost=[100, 300])
    income = DistributionRule("panel")(np.array([80.0]), providers, np.array([0, 0]))
    np.testing.assert_allclose(income, [20.0, 60.0], rtol=1e-9)


def test_distribution_rule_rejects_unknown_rule() -> None:
    with pytest.raises(vbpsim.ParameterError, match="distribution='fair'"):
        DistributionRule("fair")


# -- params() completeness (issue 12, item 7) ----------------------------------------------
def test_registering_a_scheme_whose_parameter_hides_under_another_name_raises() -> None:
    """A parameter stored under another attribute would vanish from params(), reports and repr."""

    class Hidden(PaymentScheme):
        name = "test_hidden_parameter"

        def __init__(self, *, rate: float = 1.0):
            self._rate = rate

        def pay(self, observation: Observation) -> np.ndarray:
            return self._rate * observation.member_months

    with pytest.raises(vbpsim.ParameterError, match="rate"):
        vbpsim.register(Hidden)
    assert "test_hidden_parameter" not in list_schemes()
    with pytest.raises(vbpsim.ParameterError, match="params"):
        Hidden().params()


def test_registering_a_scheme_without_defaults_raises() -> None:
    class NoDefault(PaymentScheme):
        name = "test_no_default"

        def __init__(self, *, rate: float):
            self.rate = rate

    with pytest.raises(vbpsim.ParameterError, match="rate"):
        vbpsim.register(NoDefault)
    assert "test_no_default" not in list_schemes()


def test_a_scheme_overriding_params_registers_when_complete() -> None:
    class Renamed(PaymentScheme):
        name = "test_renamed_parameter"

        def __init__(self, *, rate: float = 1.0):
            self._rate = rate

        def params(self) -> dict[str, Any]:
            return {"rate": self._rate}

        def pay(self, observation: Observation) -> np.ndarray:
            return self._rate * observation.member_months

    try:
        vbpsim.register(Renamed)
        assert repr(make_scheme("test_renamed_parameter", {"rate": 2.0})) == "Renamed(rate=2.0)"
    finally:
        vbpsim.SCHEMES.pop("test_renamed_parameter", None)


@pytest.mark.parametrize("name", sorted(schemes_module.SCHEMES))
def test_every_registered_scheme_reports_every_constructor_parameter(name: str) -> None:
    cls = schemes_module.SCHEMES[name]
    assert set(cls().params()) == set(schemes_module.constructor_parameters(cls))
