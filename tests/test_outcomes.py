"""Outcomes a contract can pay for (issue 12): the observation's outcome fields.

Outcomes are counted once per event at the responsible provider and reported with the next
period's claims; the patient-reported outcome is noisy like measured quality; year-to-date
totals and the month of the contract year let a scheme settle monthly against a yearly cap.
"""

from __future__ import annotations

import numpy as np
import pytest
from strategies import obs

from vbpsim.agents import DecisionRule, aggregate
from vbpsim.experiments import build_model
from vbpsim.scenarios import load_scenario
from vbpsim.schemes import Blend, FeeForService, Observation, PayForPerformance, PaymentScheme, make_scheme

# The observation's mechanics, not behaviour: start under the contract, without a status-quo history.
NO_HISTORY = {"simulation.history_years": 0}


@pytest.fixture(scope="module")
def stepped():
    """A small FFS world stepped for 14 months, with every observation kept."""
    model = build_model("ffs", "small", years=2, seed=3, **NO_HISTORY)
    observations = []
    for _ in range(14):
        model.step()
        observations.append(model.history[-1])
    return model, observations


def test_outcomes_are_the_model_events_reported_a_month_later(stepped) -> None:
    model, observations = stepped
    records = model.records
    assert observations[0].acute_events.sum() == 0  # nothing happened before the first month
    for t in range(1, len(observations)):
        o, r = observations[t], records[t - 1]
        assert o.acute_events.sum() == r["strokes"]
        assert o.deaths.sum() == r["deaths"]
        assert o.readmissions.sum() == r["readmissions"]
    total = sum(float(r["strokes"]) for r in records[:-1])
    assert total > 0, "the test needs some strokes"


def test_strokes_are_counted_at_gps_and_readmissions_at_discharging_providers(stepped) -> None:
    model, observations = stepped
    gp = model.providers.discipline == 0
    for o in observations:
        assert not o.acute_events[~gp].any() and not o.expected_acute_events[~gp].any()
        assert not o.expected_readmissions[gp].any()


def test_expected_values_are_close_to_the_events_over_a_year(stepped) -> None:
    """Risk-adjusted expectations are of the right size (guideline-care rates)."""
    _, observations = stepped
    strokes = sum(o.acute_events.sum() for o in observations)
    expected = sum(o.expected_acute_events.sum() for o in observations)
    assert 0.5 * expected < strokes < 2.0 * expected
    deaths = sum(o.deaths.sum() for o in observations)
    expected_deaths = sum(o.expected_deaths.sum() for o in observations)
    assert 0.5 * expected_deaths < deaths < 2.0 * expected_deaths
    score = sum(o.prom.sum() for o in observations) / sum(o.expected_prom.sum() for o in observations)
    assert 0.8 < score <= 1.0 + 0.01  # quality of life at most that of guideline care, up to noise


def test_month_and_year_to_date_totals(stepped) -> None:
    _, observations = stepped
    assert [o.month_of_year for o in observations] == [float(m % 12) for m in range(14)]
    running = {name: np.zeros_like(getattr(observations[0], name)) for name in Observation.YEAR_TO_DATE}
    for o in observations:
        if o.month_of_year == 0:
            running = {name: np.zeros_like(v) for name, v in running.items()}
        for name in Observation.YEAR_TO_DATE:
            np.testing.assert_allclose(getattr(o, name), running[name])
            flow = o.services if name == "ytd_services" else getattr(o, name.removeprefix("ytd_"))
            running[name] = running[name] + flow


def test_prom_noise_is_that_of_measured_quality() -> None:
    """Without measurement noise the PROM is the patients' true quality of life; with it, noisy."""
    scores = {}
    for noise in (0.0, 0.05):
        model = build_model(
            "ffs", "small", years=1, seed=4, **NO_HISTORY, **{"purchaser.quality_measurement_noise": noise}
        )
        for _ in range(4):
            model.step()
        o = model.history[-1]
        scores[noise] = np.divide(o.prom, o.expected_prom, out=np.ones_like(o.prom), where=o.expected_prom > 0)
    assert np.all(scores[0.0] <= 1.0 + 1e-12)
    assert np.abs(scores[0.05] - scores[0.0]).max() > 0.005


def test_whole_year_projection_starts_the_year_and_accumulation_keeps_the_start() -> None:
    month = obs(member_months=[1.0, 2.0], ytd_cost=[5.0, 6.0], acute_events=[1.0, 0.0]).replace(month_of_year=4.0)
    year = month.rescaled(12.0)
    assert year.month_of_year == 0.0 and not year.ytd_cost.any()
    np.testing.assert_allclose(year.acute_events, [12.0, 0.0])
    pending = Observation.zeros(2, month.unit_cost)
    pending.accumulate(month)
    pending.accumulate(month.replace(month_of_year=5.0, ytd_cost=np.array([9.0, 9.0])))
    assert pending.month_of_year == 4.0
    np.testing.assert_allclose(pending.ytd_cost, [5.0, 6.0])
    np.testing.assert_allclose(pending.acute_events, [2.0, 0.0])


def test_aggregate_adds_outcomes_and_year_to_date() -> None:
    rows = obs(acute_events=[1.0, 2.0, 4.0], ytd_readmissions=[1.0, 1.0, 3.0], prom=[0.5, 0.25, 1.0])
    payees = aggregate(rows.replace(month_of_year=3.0), np.array([0, 0, 1]), 2)
    np.testing.assert_allclose(payees.acute_events, [3.0, 4.0])
    np.testing.assert_allclose(payees.ytd_readmissions, [2.0, 3.0])
    np.testing.assert_allclose(payees.prom, [0.75, 1.0])
    assert payees.month_of_year == 3.0


# -- contingent money (item 3) --------------------------------------------------------------
class YearlyFee(FeeForService):
    """A fee-for-service settled once a year: money for services, not contingent on results."""

    name = "test_yearly_fee"
    settlement_months = 12


def discount_of(contract: PaymentScheme, trust: float) -> np.ndarray:
    scenario = load_scenario("small").with_overrides(trust=trust)
    rule = DecisionRule(scenario, 12)
    observation = obs(services=[[10, 0, 0, 0]], average_cost=[1000.0], measured_quality=[1.0])
    return rule.contingent_discount(contract, observation)


def test_trust_discounts_only_the_contingent_part() -> None:
    fees = YearlyFee()
    bonus = PayForPerformance(bonus_share=0.1)  # pays 100 EUR on this observation
    assert discount_of(fees, 0.3)[0] == 0.0  # a yearly fee is not doubted like a bonus
    assert discount_of(make_scheme("ffs+p4p", {"p4p_bonus_share": 0.1}), 1.0)[0] == 0.0
    np.testing.assert_allclose(discount_of(bonus, 0.6), [40.0])  # doubted: counted at 60%
    np.testing.assert_allclose(discount_of(Blend(parts=[(1.0, fees), (2.0, bonus)]), 0.5), [100.0])


def test_a_penalty_is_not_doubted() -> None:
    class Penalty(PaymentScheme):
        name = "test_penalty"
        settlement_months = 12
        contingent_share = 1.0

        def pay(self, observation: Observation) -> np.ndarray:
            return -10.0 * observation.measured_quality

    np.testing.assert_allclose(discount_of(Penalty(), 0.2), [0.0])


def test_a_yearly_settled_fee_steers_like_a_monthly_fee_under_low_trust() -> None:
    """Before contingent money was stated, low trust discounted a yearly fee like a bonus."""
    runs = {}
    for scheme in (FeeForService(), YearlyFee()):
        model = build_model(scheme, "small", years=1, seed=5, trust=0.3, **NO_HISTORY)
        model.run()
        runs[scheme.name] = np.array([r["chosen_intensity_gp"] for r in model.records])
    np.testing.assert_allclose(runs["test_yearly_fee"], runs["ffs"])


class CappedFees(FeeForService):
    """FFS with a hard annual cap per payee, settled monthly from the year-to-date bill."""

    name = "test_capped_fees"

    def __init__(self, *, fee_to_cost: float = 1.25, cap: float = 30_000.0):
        super().__init__(fee_to_cost=fee_to_cost)
        self.cap = cap

    def pay(self, observation: Observation) -> np.ndarray:
        fees = self.fee_schedule(observation.unit_cost)
        billed_before = observation.ytd_services @ fees
        return np.clip(self.cap - billed_before, 0.0, observation.services @ fees)


def test_a_hard_annual_cap_can_settle_monthly_from_year_to_date_totals() -> None:
    """Item 1: with the month and year-to-date totals a monthly fee schedule can stop at a cap."""
    model = build_model(CappedFees(cap=30_000.0), "small", years=2, seed=2, **NO_HISTORY)
    paid = np.zeros((2, model.providers.n))
    for step in range(model.n_steps):
        before = model.income_total.copy()
        model.step()
        paid[step // 12] += model.income_total - before
    assert paid.max() <= 30_000.0 + 1e-6  # solo payees: income is the payment
    assert (paid > 30_000.0 - 1e-6).any(), "the cap should bind for some provider"
    uncapped = build_model(CappedFees(cap=1e12), "small", years=1, seed=2, **NO_HISTORY)
    uncapped.run()
    assert uncapped.income_total.max() > 30_000.0


# -- who gains and who loses (item 6) -------------------------------------------------------
@pytest.fixture(scope="module")
def chain_result():
    """Unadjusted capitation of whole chains after one status-quo year: selection can happen."""
    import vbpsim

    return vbpsim.run(
        "capitation",
        "small",
        years=2,
        seed=1,
        composition="chain",
        risk_adjusted=False,
        **{"simulation.history_years": 1},
    )


def test_equity_breakdown_sums_back_to_the_population_totals(chain_result) -> None:
    ts, equity = chain_result.timeseries, chain_result.equity
    totals = {
        "qalys": ts.qalys.sum(),
        "strokes": ts.strokes.sum(),
        "deaths": ts.deaths.sum(),
        "steered": ts.steered.sum(),
        "guideline_cost": ts.guideline_cost.sum(),
    }
    assert totals["strokes"] > 0 and totals["deaths"] > 0, "the check needs events to add up"
    for dimension in ("need_class", "risk_quartile", "age_band", "need_level"):
        rows = equity[equity.dimension == dimension]
        for name, total in totals.items():
            assert rows[name].sum() == pytest.approx(total, rel=1e-9, abs=1e-9), (dimension, name)
        assert rows.patients.sum() == ts.alive.iloc[0] + ts.deaths.iloc[0]  # everyone alive at the switch
    gaps = equity[equity.dimension == "gap"].set_index("group")
    q = equity[equity.dimension == "risk_quartile"].set_index("group")
    assert gaps.loc["risk_quartile: Q4 - Q1", "qalys_per_capita"] == pytest.approx(
        q.loc["Q4", "qalys_per_capita"] - q.loc["Q1", "qalys_per_capita"]
    )


def test_resource_cost_by_discipline_adds_up_to_provider_cost(chain_result) -> None:
    """Payments say who is paid; resource cost says whose care was given (they differ under a group contract)."""
    ts = chain_result.timeseries
    resource = ts[[f"resource_cost_{d}" for d in ("gp", "hospital", "rehab", "nursing")]].sum(axis=1)
    np.testing.assert_allclose(resource, ts.provider_cost, rtol=1e-9)
    paid = ts[[f"spending_{d}" for d in ("gp", "hospital", "rehab", "nursing")]].sum(axis=1)
    np.testing.assert_allclose(paid, ts.spending, rtol=1e-9)
    assert not np.allclose(ts.spending_gp, ts.resource_cost_gp)
