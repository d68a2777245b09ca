"""The vbpsim model: patients, providers and a purchaser under one payment contract.

Each step (a month by default) reads in this order: patients need care and their
providers deliver it at their chosen intensity; the purchaser observes what happened and
pays according to the contract; patients' health evolves with the care they got; patients
may switch GP; providers revise their intensity from lagged data with the one decision
rule; the step is recorded. Nothing here depends on which scheme is in force.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import mesa
import numpy as np

from .agents import (
    QUALITY_STANDARD,
    DecisionRule,
    DistributionRule,
    Provider,
    ProviderTable,
    Purchaser,
    care_cost,
)
from .errors import ParameterError
from .parameters import DISCIPLINES, Scenario
from .population import (
    ACUTE,
    CHRONIC,
    DEAD,
    DISABLED,
    GP,
    HEALTHY,
    LEAD_DISCIPLINE,
    NEED_PER_MONTH,
    POST_ACUTE,
    Population,
    care_benefit,
)
from .schemes import Observation, PaymentScheme, make_scheme

STREAMS = ("population", "providers", "health", "choice", "decisions", "measurement")
HANDOFF_FAILURE = 0.2  # share of hand-offs that fail without coordination effort
DUPLICATE_SHARE = 0.25  # duplicated work after a failed hand-off, share of a month's need
READMISSION_AFTER_FAILURE = 0.1


def care_chains(discipline: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Regions and the care chain (GP, hospital, rehab, nursing) of every GP.

    There is one region per hospital; GP ``g`` (the g-th GP) belongs to region
    ``g mod n_hospital``; region ``r`` is served by rehab ``r mod n_rehab`` and nursing
    ``r mod n_nursing``. A patient's providers are always their GP's chain, so a region's
    providers share patients (the basis of multidisciplinary groups and bundles).
    """
    ids = [np.flatnonzero(discipline == d) for d in range(len(DISCIPLINES))]
    n_regions = len(ids[1])
    region = np.empty(len(discipline), dtype=np.int64)
    for d, members in enumerate(ids):
        region[members] = np.arange(len(members)) % n_regions if d != 1 else np.arange(n_regions)
    gp_region = np.arange(len(ids[0])) % n_regions
    chains = np.column_stack(
        [
            ids[0],
            ids[1][gp_region],
            ids[2][gp_region % len(ids[2])],
            ids[3][gp_region % len(ids[3])],
        ]
    ).astype(np.int32)
    return region, chains


def check_seed(seed: Any) -> int:
    """Seeds must be non-negative integers so runs are reproducible and comparable."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ParameterError("seed", seed, "a non-negative integer")
    return int(seed)


class VBPModel(mesa.Model):
    """Agent-based model of provider behaviour under a payment contract.

    Parameters
    ----------
    scenario : a validated :class:`~vbpsim.parameters.Scenario`.
    scheme : a registered scheme name or a :class:`~vbpsim.schemes.PaymentScheme`; by
        default the scenario's contract.
    seed : non-negative integer; the same seed gives the same population and random
        streams under every scheme (common random numbers).
    """

    def __init__(
        self, scenario: Scenario | None = None, scheme: str | PaymentScheme | None = None, seed: int = 0
    ) -> None:
        self.seed_value = check_seed(seed)
        super().__init__(rng=self.seed_value)
        self.config = scenario if scenario is not None else Scenario()
        contract = self.config.contract
        self.contract = make_scheme(
            scheme if scheme is not None else contract.scheme,
            contract.params if scheme is None or isinstance(scheme, str) else None,
        )
        streams = np.random.SeedSequence(self.seed_value).spawn(len(STREAMS))
        self.streams = {name: np.random.default_rng(s) for name, s in zip(STREAMS, streams, strict=True)}
        sim = self.config.simulation
        self.steps_per_year = sim.steps_per_year
        self.n_steps = sim.years * sim.steps_per_year
        self.months_per_step = 12.0 / sim.steps_per_year
        self.dt_years = 1.0 / sim.steps_per_year
        self.unit_cost = np.array([self.config.clinical.unit_cost[d] for d in DISCIPLINES])

        self._build_providers()
        self.population = Population.generate(
            self.config.population,
            self.config.clinical,
            self.gp_chains,
            self.streams["population"],
        )
        self.initial_patients = self.population.size
        self.pending_duplicates = np.zeros((self.population.size, len(DISCIPLINES)))
        self._calibrate_providers()
        self.purchaser = Purchaser(
            self, self.contract, self.distribution, self.n_payees, self.unit_cost, self.steps_per_year
        )
        self.baseline_cost = self._observe_normative(self.care_need())["expected_cost"]
        lag_steps = round(self.config.providers.data_lag_months / self.months_per_step)
        self.history: deque[Observation] = deque(maxlen=lag_steps + 1)
        self.need_history: deque[np.ndarray] = deque(maxlen=lag_steps + 1)
        self.records: list[dict[str, float]] = []
        self.income_total = np.zeros(self.providers.n)
        self.cost_total = np.zeros(self.providers.n)
        self.step_index = 0

    # -- set-up -----------------------------------------------------------------------
    def _build_providers(self) -> None:
        p = self.config.providers
        counts = [p.n_gp, p.n_hospital, p.n_rehab, p.n_nursing]
        discipline = np.repeat(np.arange(len(DISCIPLINES)), counts)
        n = len(discipline)
        rng = self.streams["providers"]
        mean, sd = p.altruism_mean, p.altruism_sd
        altruism = np.clip(rng.normal(mean, sd, n), 0.0, 1.0) if sd > 0 else np.full(n, mean)
        self.providers = ProviderTable(
            discipline=discipline,
            unit_cost=self.unit_cost[discipline],
            altruism=altruism,
            loss_aversion=np.full(n, p.loss_aversion),
            capacity=np.zeros(n),
            reserves=np.zeros(n),
            intensity=np.full(n, p.initial_intensity),
            need_belief=np.zeros(n),
            payee=np.arange(n),
        )
        self.n_payees = n
        self.region, self.gp_chains = care_chains(discipline)
        self.distribution = DistributionRule("contribution")
        self.agents_by_index = [Provider(self, i) for i in range(n)]
        clinical = self.config.clinical
        self.rule = DecisionRule(
            p,
            p.benefit_to_cost,
            clinical.overtreatment_harm,
            p.overtime_premium,
            clinical.delivery_noise,
            self.steps_per_year,
        )

    def _calibrate_providers(self) -> None:
        """Capacity and reserves from each provider's initial panel at guideline care."""
        units = self._per_provider(self.care_need()["need"])
        p = self.config.providers
        table = self.providers
        table.need_belief = units.copy()
        table.capacity = p.capacity_slack * units
        table.reserves = p.reserve_months / self.months_per_step * units * table.unit_cost

    # -- helpers ---------------------------------------------------------------------
    def care_need(self) -> dict[str, np.ndarray]:
        """This step's guideline need per patient and discipline: by diagnosis and in person.

        ``diagnosis_cost`` prices the need of an average-risk patient with the same state and
        diagnoses (what a DRG or the purchaser's diagnosis groups see); ``need`` is the
        patient's own optimal care in service units, including the unobserved risk.
        """
        diagnosis = self.population.diagnosis_need() * self.months_per_step
        need = diagnosis * self.population.frailty[:, None]
        return {"need": need, "diagnosis_cost": diagnosis * self.unit_cost, "cost": need * self.unit_cost}

    def _per_provider(self, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Sum a (patients, disciplines) array into each patient's provider per discipline."""
        if mask is not None:
            values = np.where(mask, values, 0.0)
        return np.bincount(
            self.population.provider.ravel(), weights=values.ravel(), minlength=self.providers.n
        )

    def _risk_scores(self, need: dict[str, np.ndarray]) -> np.ndarray:
        """Purchaser's predicted guideline cost per patient and discipline this step.

        Uses only what the purchaser observes (health state, diagnoses, observable risk
        markers), shrunk toward the population mean by ``risk_adjustment_power`` and
        calibrated so that predictions add up to the population's guideline cost.
        """
        alive = self.population.alive
        n_alive = max(int(alive.sum()), 1)
        raw = need["diagnosis_cost"] * self.population.observable_risk[:, None]
        true_total = need["cost"].sum(axis=0)
        power = self.config.purchaser.risk_adjustment_power
        if power != 1.0:
            mean_raw = np.maximum(raw.sum(axis=0) / n_alive, 1e-12)
            raw = np.where(alive[:, None], (np.maximum(raw, 1e-12) / mean_raw) ** power, 0.0)
        return raw * (true_total / np.maximum(raw.sum(axis=0), 1e-12))

    def _case_weights(self, need: dict[str, np.ndarray]) -> np.ndarray:
        """DRG-like normative price of each patient's case: by diagnosis group, not person."""
        by_diagnosis = need["diagnosis_cost"]
        scale = need["cost"].sum(axis=0) / np.maximum(by_diagnosis.sum(axis=0), 1e-12)
        return by_diagnosis * scale

    def _observe_normative(self, need: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Enrolment and the purchaser's normative (guideline) costs per provider."""
        alive = self.population.alive
        members = np.bincount(
            self.population.provider.ravel(),
            weights=np.repeat(alive, len(DISCIPLINES)).astype(float),
            minlength=self.providers.n,
        )
        mean_cost = need["cost"].sum(axis=0) / max(int(alive.sum()), 1)
        return {
            "expected_cost": self._per_provider(self._risk_scores(need)),
            "average_cost": members * mean_cost[self.providers.discipline],
            "member_months": members * self.months_per_step,
        }

    # -- the step ------------------------------------------------------------------------
    def step(self) -> None:
        """Advance one time step."""
        care = self.deliver_care()
        obs = self.observe(care)
        income = self.purchaser.pay(obs, self.providers.payee, self.step_index)
        self.providers.reserves += income - obs.cost
        self.income_total += income
        self.cost_total += obs.cost
        self.providers.insolvent_steps += self.providers.reserves < 0
        health = self.update_health(care)
        self.patients_choose(care)
        self.history.append(obs)
        if (self.step_index + 1) % self.steps_per_year == 0:
            self.adjust_capacity()
        self.providers_decide()
        self.record(care, obs, income, health)
        self.step_index += 1

    def deliver_care(self) -> dict[str, np.ndarray]:
        """Each patient in need gets care at their provider's intensity (with noise)."""
        pop = self.population
        care = self.care_need()
        ratio = self.providers.intensity[pop.provider] * pop.delivery_noise
        care["ratio"] = ratio
        care["delivered"] = ratio * care["need"] + self.pending_duplicates
        self.pending_duplicates[:] = 0.0
        return care

    def observe(self, care: dict[str, np.ndarray]) -> Observation:
        """What the purchaser sees of each provider this step."""
        need, ratio, delivered = care["need"], care["ratio"], care["delivered"]
        normative = self._observe_normative(care)
        in_care = need > 0
        table = self.providers
        units = self._per_provider(delivered)
        services = np.zeros((table.n, len(DISCIPLINES)))
        services[np.arange(table.n), table.discipline] = units
        cases = self._per_provider(in_care.astype(float))
        met = self._per_provider((in_care & (ratio >= QUALITY_STANDARD)).astype(float))
        noise = self.streams["measurement"].normal(
            0.0, self.config.purchaser.quality_measurement_noise, table.n
        )
        quality = np.clip(np.divide(met, cases, out=np.ones_like(met), where=cases > 0) + noise, 0, 1)
        self.need_history.append(self._per_provider(need))
        return Observation(
            months=self.months_per_step,
            services=services,
            unit_cost=self.unit_cost,
            cases=cases,
            case_value=self._per_provider(self._case_weights(care), in_care),
            member_months=normative["member_months"],
            expected_cost=normative["expected_cost"],
            average_cost=normative["average_cost"],
            baseline_cost=self.baseline_cost.copy(),
            cost=care_cost(units, table.capacity, table.unit_cost, self.config.providers.overtime_premium),
            measured_quality=quality,
        )

    def update_health(self, care: dict[str, np.ndarray]) -> dict[str, float]:
        """Health transitions, with care quality changing the hazards (vectorised)."""
        pop, clinical = self.population, self.config.clinical
        dt, months = self.dt_years, self.months_per_step
        rng = self.streams["health"]
        benefit = care_benefit(care["ratio"], clinical.overtreatment_harm)
        lead = LEAD_DISCIPLINE[pop.state]
        lead_benefit = benefit[np.arange(pop.size), lead]
        state = pop.state
        alive = pop.alive
        shortfall = 1.0 - lead_benefit
        harm = clinical.undertreatment_harm

        qol_table = np.array(
            [clinical.qol[s] for s in ("healthy", "chronic", "acute", "post_acute", "disabled")] + [0.0]
        )
        qol = qol_table[state] * (1 - clinical.qol_care_weight * np.clip(shortfall, 0, 1))
        qalys = float(qol[alive].sum() * dt)

        base_stroke = pop.stroke_hazard(clinical)
        gp_shortfall = 1.0 - benefit[:, GP]
        stroke_h = base_stroke * (1 + harm * gp_shortfall)
        p_stroke = 1 - np.exp(-stroke_h * dt)
        p_background = 1 - np.exp(-pop.background_mortality(clinical) * dt)
        monthly = (
            1
            - (
                1
                - np.array(
                    [
                        clinical.case_fatality,
                        clinical.post_acute_mortality,
                        clinical.disabled_mortality,
                        clinical.recovery_rate,
                        clinical.disability_rate,
                    ]
                )
            )
            ** months
        )
        fatality = np.minimum(monthly[0] * (1 + harm * shortfall), 1.0)
        p_death = np.select(
            [state == ACUTE, state == POST_ACUTE, state == DISABLED],
            [fatality, monthly[1] * (1 + harm * shortfall), monthly[2] * (1 + harm * shortfall)],
            0.0,
        )
        p_death = 1 - (1 - np.minimum(p_death, 1.0)) * (1 - p_background)
        p_recover = np.where(state == POST_ACUTE, monthly[3] * lead_benefit, 0.0)
        p_disabled = np.where(state == POST_ACUTE, monthly[4] * (1 + harm * shortfall), 0.0)

        u = rng.random(pop.size)
        dies = alive & (u < p_death)
        u2 = (u - p_death) / np.maximum(1 - p_death, 1e-12)
        survivor = alive & ~dies
        strokes = survivor & ((state == HEALTHY) | (state == CHRONIC)) & (u2 < p_stroke)
        discharged = survivor & (state == ACUTE)
        recovers = survivor & (state == POST_ACUTE) & (u2 < p_recover)
        disabled = survivor & (state == POST_ACUTE) & ~recovers & (u2 < p_recover + p_disabled)

        new_state = state.copy()
        new_state[strokes] = ACUTE
        new_state[discharged] = POST_ACUTE
        new_state[recovers] = CHRONIC
        new_state[disabled] = DISABLED
        new_state[dies] = DEAD

        handoff = discharged | disabled
        u_handoff = self.streams["health"].random(pop.size)
        failed = handoff & (u_handoff < HANDOFF_FAILURE)
        readmitted = failed & (u_handoff < HANDOFF_FAILURE * READMISSION_AFTER_FAILURE)
        new_state[readmitted] = ACUTE
        receiving_need = NEED_PER_MONTH[new_state] * pop.frailty[:, None] * months
        self.pending_duplicates[failed] = DUPLICATE_SHARE * receiving_need[failed]

        self._onset_conditions(new_state, rng)
        pop.months_in_state = np.where(new_state == state, pop.months_in_state + 1, 0).astype(np.int16)
        pop.state = new_state
        pop.age = np.where(new_state != DEAD, pop.age + dt, pop.age)
        untreated = base_stroke * (1 + harm)
        at_risk = survivor & ((state == HEALTHY) | (state == CHRONIC))
        return {
            "qalys": qalys,
            "strokes": float(strokes.sum()),
            "deaths": float(dies.sum()),
            "stroke_hazard": float(stroke_h[at_risk].sum()),
            "stroke_hazard_untreated": float(untreated[at_risk].sum()),
            "stroke_hazard_guideline": float(base_stroke[at_risk].sum()),
            "handoffs": float(handoff.sum()),
            "handoff_failures": float(failed.sum()),
            "readmissions": float(readmitted.sum()),
            "true_quality": float(lead_benefit[alive].mean()) if alive.any() else 0.0,
        }

    def _onset_conditions(self, new_state: np.ndarray, rng: np.random.Generator) -> None:
        """New chronic conditions arise with age; a healthy patient becomes chronic."""
        pop = self.population
        rate = self.config.population.condition_incidence
        factor = self.config.population.condition_odds_per_decade ** ((pop.age - 60) / 10)
        p_onset = 1 - np.exp(-rate * factor * self.dt_years)
        draws = rng.random(pop.conditions.shape)
        onset = (draws < p_onset[:, None]) & (new_state != DEAD)[:, None]
        pop.conditions |= onset
        new_state[(new_state == HEALTHY) & pop.conditions.any(axis=1)] = CHRONIC

    def patients_choose(self, care: dict[str, np.ndarray]) -> None:
        """Patients update their experience of GP care and may switch GP (vectorised)."""
        pop = self.population
        rng = self.streams["choice"]
        benefit = care_benefit(care["ratio"][:, GP], self.config.clinical.overtreatment_harm)
        seen = care["need"][:, GP] > 0
        pop.experience = np.where(seen, 0.9 * pop.experience + 0.1 * benefit, pop.experience)
        p_switch = self.config.population.switch_rate * (1 - pop.experience) * (12 / self.steps_per_year)
        switching = pop.alive & (rng.random(pop.size) < p_switch)
        gps = np.flatnonzero(self.providers.discipline == GP)
        if switching.any() and len(gps) > 1:
            reputation = np.bincount(pop.provider[:, GP], weights=pop.experience, minlength=self.providers.n)[
                gps
            ]
            panel = np.bincount(pop.provider[:, GP], minlength=self.providers.n)[gps]
            score = np.divide(reputation, panel, out=np.full(len(gps), 0.8), where=panel > 0)
            weights = np.exp(20 * (score - score.max()))
            cumulative = np.cumsum(weights / weights.sum())
            choice = np.minimum(np.searchsorted(cumulative, rng.random(int(switching.sum()))), len(gps) - 1)
            pop.provider[switching] = self.gp_chains[choice]

    def adjust_capacity(self) -> None:
        """Once a year providers size capacity to the guideline need they expect."""
        table = self.providers
        table.capacity = self.config.providers.capacity_slack * table.need_belief

    def providers_decide(self) -> None:
        """Every provider revises its intensity with the same rule, from lagged data."""
        lagged = self.history[0]
        table = self.providers
        table.need_belief += self.config.providers.learning_rate * (self.need_history[0] - table.need_belief)
        self.providers.intensity = self.rule.choose(
            self.providers,
            lagged,
            self.contract,
            self.distribution,
            self.n_payees,
            self.streams["decisions"],
        )

    def record(
        self, care: dict[str, np.ndarray], obs: Observation, income: np.ndarray, health: dict[str, float]
    ) -> None:
        """Store this step's aggregates (one row of the time series)."""
        need, delivered = care["need"], care["delivered"]
        cost_of = need * self.unit_cost
        delivered_cost = delivered * self.unit_cost
        table = self.providers
        row: dict[str, float] = {
            "step": self.step_index,
            "year": self.step_index // self.steps_per_year,
            "alive": float(self.population.alive.sum()),
            "spending": float(income.sum()),
            "provider_cost": float(obs.cost.sum()),
            "provider_income": float(income.sum()),
            "guideline_cost": float(cost_of.sum()),
            "low_value_cost": float(np.maximum(delivered_cost - cost_of, 0).sum()),
            "shortfall_cost": float(np.maximum(cost_of - delivered_cost, 0).sum()),
            "measured_quality": float(np.average(obs.measured_quality, weights=np.maximum(obs.cases, 1e-9))),
            "insolvent_providers": float((table.reserves < 0).sum()),
        }
        for d, name in enumerate(DISCIPLINES):
            total_need = need[:, d].sum()
            row[f"intensity_{name}"] = float(delivered[:, d].sum() / total_need) if total_need > 0 else 1.0
            row[f"chosen_intensity_{name}"] = float(table.intensity[table.discipline == d].mean())
        row.update(health)
        self.records.append(row)

    def run(self) -> None:
        """Run the scenario's whole horizon."""
        for _ in range(self.n_steps - self.step_index):
            self.step()
