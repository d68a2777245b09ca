"""Providers and the purchaser: the agents that decide and pay.

Every provider runs the same decision rule under every payment scheme (SPEC, "the one
design rule"). It weighs, for a few candidate intensities around its current practice,

    U(x) = v(income(x) - cost(x)) + altruism * benefit_to_cost * value_of_guideline_care * b(x)

where ``income(x)`` is what the contract in force *would* pay for the observation the
provider expects at intensity ``x`` (it asks the contract, it never inspects its type),
``v`` is loss-averse around zero profit (Tversky & Kahneman 1992), and ``b`` is the
patient's health benefit, 1 at the patient optimum. Bounded rationality: a noisy (logit)
choice among the current intensity, one step up, one step down and one random trial
(local search with exploration). Learning: the expected observation comes from the
provider's own data seen with a lag, smoothed into a belief.

Providers are few (10 to 1,000), so they are Mesa agents; their numeric state lives in a
:class:`ProviderTable` of arrays so the rule is evaluated for all providers at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mesa
import numpy as np
from scipy.special import ndtr

from .parameters import DISCIPLINES, ProviderParams
from .population import care_benefit
from .schemes import Observation, PaymentScheme

QUALITY_STANDARD = 0.9  # measured indicator: share of patients getting >= 90% of guideline care


@dataclass
class ProviderTable:
    """Numeric state of all providers, one row each (the vectorised side of the agents)."""

    discipline: np.ndarray  # int, index into DISCIPLINES
    unit_cost: np.ndarray  # EUR per service unit
    altruism: np.ndarray
    loss_aversion: np.ndarray
    capacity: np.ndarray  # service units per step before overtime
    reserves: np.ndarray  # EUR
    intensity: np.ndarray  # chosen multiple of patient-optimal care
    need_belief: np.ndarray  # expected guideline need of the panel, units per step
    payee: np.ndarray  # index of the contracting entity the provider belongs to
    insolvent_steps: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.insolvent_steps is None:
            self.insolvent_steps = np.zeros(len(self.discipline), dtype=np.int64)

    @property
    def n(self) -> int:
        """Number of providers."""
        return len(self.discipline)


def care_cost(units: np.ndarray, capacity: np.ndarray, unit_cost: np.ndarray, premium: float) -> np.ndarray:
    """Cost of delivering ``units``: unit cost, plus an overtime premium beyond capacity."""
    return unit_cost * (units + premium * np.maximum(units - capacity, 0.0))


def expected_indicator(intensity: np.ndarray, delivery_noise: float) -> np.ndarray:
    """Share of patients expected to reach the quality standard at a given intensity."""
    x = np.maximum(intensity, 1e-9)
    if delivery_noise <= 0:
        return (x >= QUALITY_STANDARD).astype(float)
    z = (np.log(x) - np.log(QUALITY_STANDARD) - delivery_noise**2 / 2) / delivery_noise
    return ndtr(z)


class DecisionRule:
    """The single provider decision rule, shared by all providers under every contract."""

    def __init__(
        self,
        params: ProviderParams,
        benefit_to_cost: float,
        overtreatment_harm: float,
        overtime_premium: float,
        delivery_noise: float,
        steps_per_year: int,
    ) -> None:
        self.params = params
        self.benefit_to_cost = benefit_to_cost
        self.overtreatment_harm = overtreatment_harm
        self.overtime_premium = overtime_premium
        self.delivery_noise = delivery_noise
        self.steps_per_year = steps_per_year

    def candidates(self, current: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Current intensity, one step down, one up, and one random trial: shape (K, P)."""
        p = self.params
        step = p.search_step
        trial = rng.uniform(p.intensity_min, p.intensity_max, current.shape)
        cands = np.stack([current, current - step, current + step, trial])
        return np.clip(cands, p.intensity_min, p.intensity_max)

    def expected_observation(
        self, table: ProviderTable, lagged: Observation, intensity: np.ndarray
    ) -> Observation:
        """What the purchaser would observe of each provider next step at ``intensity``."""
        units = intensity * table.need_belief
        services = np.zeros_like(lagged.services)
        services[np.arange(table.n), table.discipline] = units
        cost = care_cost(units, table.capacity, table.unit_cost, self.overtime_premium)
        quality = expected_indicator(intensity, self.delivery_noise)
        return lagged.replace(services=services, cost=cost, measured_quality=quality)

    def yearly_income(
        self,
        contract: PaymentScheme,
        obs: Observation,
        table: ProviderTable,
        distribute: DistributionRule,
        n_payees: int,
    ) -> np.ndarray:
        """Income each provider would get over a year if ``obs`` were its typical step."""
        yearly = obs.rescaled(obs.months * self.steps_per_year)
        payee_obs = aggregate(yearly, table.payee, n_payees)
        return distribute(contract.pay(payee_obs), yearly, table.payee)

    def utility(self, table: ProviderTable, intensity: np.ndarray, income: np.ndarray) -> np.ndarray:
        """Loss-averse yearly profit plus altruistic value of the patients' health."""
        units = intensity * table.need_belief
        yearly_cost = care_cost(units, table.capacity, table.unit_cost, self.overtime_premium)
        profit = income - yearly_cost * self.steps_per_year
        felt_profit = np.where(profit >= 0, profit, table.loss_aversion * profit)
        value_of_care = self.benefit_to_cost * table.unit_cost * table.need_belief * self.steps_per_year
        health = care_benefit(intensity, self.overtreatment_harm)
        return felt_profit + table.altruism * value_of_care * health

    def choose(
        self,
        table: ProviderTable,
        lagged: Observation,
        contract: PaymentScheme,
        distribute: DistributionRule,
        n_payees: int,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """New intensities: a logit choice among candidates, probing the contract for each.

        Providers sharing a payee are probed in separate rounds (others held at their
        current intensity), so each weighs only its own effect on the shared payment.
        """
        cands = self.candidates(table.intensity, rng)
        utilities = np.empty_like(cands)
        rounds = member_rank(table.payee)
        for r in range(int(rounds.max()) + 1 if len(rounds) else 0):
            movers = rounds == r
            for k in range(cands.shape[0]):
                trial = np.where(movers, cands[k], table.intensity)
                obs = self.expected_observation(table, lagged, trial)
                income = self.yearly_income(contract, obs, table, distribute, n_payees)
                utilities[k, movers] = self.utility(table, trial, income)[movers]
        scale = self.params.choice_noise * np.maximum(
            table.unit_cost * table.need_belief * self.steps_per_year, 1e-9
        )
        logits = (utilities - utilities.max(axis=0)) / scale
        weights = np.exp(logits)
        cumulative = np.cumsum(weights / weights.sum(axis=0), axis=0)
        pick = (rng.random(table.n)[None, :] > cumulative).sum(axis=0)
        pick = np.minimum(pick, cands.shape[0] - 1)
        return cands[pick, np.arange(table.n)]


def member_rank(payee: np.ndarray) -> np.ndarray:
    """Rank of each provider within its payee (0 for the first member, 1 for the next...)."""
    order = np.argsort(payee, kind="stable")
    ranks = np.empty_like(order)
    sorted_payee = payee[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_payee)) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(payee)]))
    ranks[order] = np.arange(len(payee)) - group_start
    return ranks


def aggregate(obs: Observation, payee: np.ndarray, n_payees: int) -> Observation:
    """Sum provider-level observations into payee-level ones (quality member-weighted)."""

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(payee, weights=values, minlength=n_payees)

    members = total(obs.member_months)
    weighted_quality = total(obs.measured_quality * np.maximum(obs.member_months, 1e-12))
    weights = total(np.maximum(obs.member_months, 1e-12))
    services = np.zeros((n_payees, obs.services.shape[1]))
    np.add.at(services, payee, obs.services)
    return Observation(
        months=obs.months,
        services=services,
        unit_cost=obs.unit_cost,
        cases=total(obs.cases),
        case_value=total(obs.case_value),
        member_months=members,
        expected_cost=total(obs.expected_cost),
        average_cost=total(obs.average_cost),
        baseline_cost=total(obs.baseline_cost),
        cost=total(obs.cost),
        measured_quality=weighted_quality / weights,
    )


class DistributionRule:
    """How a contracting group splits its payment among members (Section 4.2.1).

    ``equal``: the same share each; ``panel``: by enrolled patients; ``contribution``: by
    the member's own billed care at the normative cost (its work for the group). A payee
    with one member keeps everything under any rule.
    """

    RULES = ("equal", "panel", "contribution")

    def __init__(self, rule: str = "contribution") -> None:
        if rule not in self.RULES:
            from .errors import ParameterError

            raise ParameterError("distribution", rule, f"one of {list(self.RULES)}")
        self.rule = rule

    def __call__(self, payments: np.ndarray, obs: Observation, payee: np.ndarray) -> np.ndarray:
        """Each provider's share of its payee's payment."""
        if self.rule == "equal":
            weight = np.ones(len(payee))
        elif self.rule == "panel":
            weight = obs.member_months
        else:
            weight = obs.services @ obs.unit_cost
        weight = np.asarray(weight, dtype=float) + 1e-12
        group_total = np.bincount(payee, weights=weight, minlength=len(payments))
        return payments[payee] * weight / group_total[payee]


class Provider(mesa.Agent):
    """A provider (GP practice, hospital, rehab centre, nursing organisation).

    Its numbers live in the model's :class:`ProviderTable`, row ``index``; the properties
    below make one provider readable as an individual agent.
    """

    def __init__(self, model: mesa.Model, index: int) -> None:
        super().__init__(model)
        self.index = index

    @property
    def _table(self) -> ProviderTable:
        return self.model.providers  # type: ignore[attr-defined]

    @property
    def discipline(self) -> str:
        """Discipline name."""
        return DISCIPLINES[int(self._table.discipline[self.index])]

    @property
    def intensity(self) -> float:
        """Current chosen intensity relative to the patient optimum."""
        return float(self._table.intensity[self.index])

    @property
    def altruism(self) -> float:
        """Weight on patients' health benefit."""
        return float(self._table.altruism[self.index])

    @property
    def reserves(self) -> float:
        """Financial reserves in EUR."""
        return float(self._table.reserves[self.index])

    @property
    def insolvent(self) -> bool:
        """Whether reserves are below zero."""
        return self.reserves < 0

    def __repr__(self) -> str:
        return f"Provider({self.index}, {self.discipline}, intensity={self.intensity:.2f})"


class Purchaser(mesa.Agent):
    """The insurer: holds the contract, pays each settlement period and keeps the books.

    Monthly components are paid every step; yearly components (P4P, reconciliation) on
    observations accumulated over the contract year. Payments to a group are split among
    its members by the group's distribution rule.
    """

    def __init__(
        self,
        model: mesa.Model,
        contract: PaymentScheme,
        distribute: DistributionRule,
        n_payees: int,
        unit_cost: np.ndarray,
        steps_per_year: int,
    ) -> None:
        super().__init__(model)
        self.contract = contract
        self.distribute = distribute
        self.n_payees = n_payees
        self.unit_cost = unit_cost
        self.steps_per_year = steps_per_year
        self.pending: dict[int, Observation] = {}
        self.total_paid = 0.0

    def settlement_steps(self, leaf: PaymentScheme) -> int:
        """Steps between two settlements of a contract component."""
        return max(1, round(leaf.settlement_months * self.steps_per_year / 12))

    def pay(self, provider_obs: Observation, payee: np.ndarray, step: int) -> np.ndarray:
        """Settle every contract component due this step; returns each provider's income."""
        components = list(self.contract.components())
        for period in {self.settlement_steps(leaf) for _, leaf in components}:
            if period not in self.pending:
                self.pending[period] = Observation.zeros(len(payee), self.unit_cost)
            self.pending[period].accumulate(provider_obs)
        income = np.zeros(len(payee))
        for weight, leaf in components:
            period = self.settlement_steps(leaf)
            if (step + 1) % period == 0:
                accumulated = self.pending[period]
                payee_obs = aggregate(accumulated, payee, self.n_payees)
                payments = weight * np.asarray(leaf.pay(payee_obs), dtype=float)
                income += self.distribute(payments, accumulated, payee)
        for period in list(self.pending):
            if (step + 1) % period == 0:
                del self.pending[period]
        self.total_paid += float(income.sum())
        return income
