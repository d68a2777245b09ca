"""The vbpsim model: patients, providers and a purchaser under one payment contract.

Each step (a month by default) reads in this order: patients need care and their
providers deliver it as they decided; the purchaser observes what happened and pays
according to the contract; patients' health evolves with the care they got; patients may
switch GP or be steered away; innovations may arrive and be adopted; providers revise
their decisions from lagged data with the one decision rule; the step is recorded.
Nothing here depends on which scheme is in force.

``VBPModel`` keeps that order, the set-up, the providers' learning and decisions and the
record; the patients' side of the step is its part :class:`~vbpsim.population.PatientDynamics`,
and what the purchaser observes and the books it keeps are :class:`~vbpsim.books.PurchaserBooks`.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import mesa
import numpy as np

from . import appraisal
from .agents import (
    Decision,
    DecisionRule,
    DistributionRule,
    Outlook,
    Provider,
    ProviderTable,
    Purchaser,
)
from .books import PurchaserBooks
from .care import (
    ACUTE,
    CHRONIC,
    COORDINATION,
    DEAD,
    DISABLED,
    DUPLICATE_SHARE,
    GP,
    HANDOFF_FAILURE,
    HEALTHY,
    HOSPITAL,
    MEASURED,
    NEED_PER_MONTH,
    NURSING,
    POST_ACUTE,
    PREVENTION,
    READMISSION_AFTER_FAILURE,
    REHAB,
    UNMEASURED,
    task_value,
)
from .errors import ParameterError
from .kernels import delivery as kernels
from .kernels.accounts import (
    ADMISSION_RECORDS,
    RECORD_SLOTS,
    masked_quantile,
    record_pass,
)
from .limits import check_memory
from .parameters import DISCIPLINES, INNOVATION_TYPES, Scenario, risk_adjustment_r2
from .population import _NO_FLAGS, _NO_FLOATS, _NO_INDEX, PatientDynamics, Population
from .risk import RiskModel
from .schemes import Observation, PaymentScheme, make_scheme, with_world_defaults

# Random streams; new ones are appended so earlier streams stay the same (common random numbers).
STREAMS = (
    "population",
    "providers",
    "health",
    "choice",
    "decisions",
    "measurement",
    "selection",
    "innovation",
    "risk",
    "outcomes",
    "admissions",
)
INNOVATION_RECORDS = ("innovation_nmb", "innovation_upfront", "innovation_realised", "innovation_ideal")


def care_chains(discipline: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Regions and the care chain (GP, hospital, rehab, nursing) of every GP.

    There is one region per hospital; GP ``g`` (the g-th GP) belongs to region
    ``g mod n_hospital``; region ``r`` is served by rehab ``r mod n_rehab`` and nursing
    ``r mod n_nursing``. A patient's providers are always their GP's chain, so a region's
    providers share patients (the basis of multidisciplinary groups and bundles).
    """
    ids = [np.flatnonzero(discipline == d) for d in range(len(DISCIPLINES))]
    n_regions = len(ids[HOSPITAL])
    region = np.empty(len(discipline), dtype=np.int64)
    for members in ids:
        region[members] = np.arange(len(members)) % n_regions
    gp_region = np.arange(len(ids[GP])) % n_regions
    chains = np.column_stack(
        [
            ids[GP],
            ids[HOSPITAL][gp_region],
            ids[REHAB][gp_region % len(ids[REHAB])],
            ids[NURSING][gp_region % len(ids[NURSING])],
        ]
    ).astype(np.int32)
    return region, chains


def contracting_groups(discipline: np.ndarray, region: np.ndarray, composition: str, group_size: int) -> np.ndarray:
    """Payee index of every provider: solo, GP groups, hospital+rehab per region, or whole chains."""
    n = len(discipline)
    if composition == "solo":
        return np.arange(n)
    if composition == "gp_groups":
        gps = np.flatnonzero(discipline == GP)
        payee = np.empty(n, dtype=np.int64)
        payee[gps] = np.arange(len(gps)) // group_size
        others = np.flatnonzero(discipline != GP)
        payee[others] = payee[gps].max() + 1 + np.arange(len(others))
        return payee
    counts = np.bincount(discipline, minlength=len(DISCIPLINES))
    if not counts[HOSPITAL] == counts[REHAB] == counts[NURSING]:
        raise ParameterError(
            "groups.composition",
            composition,
            f"'{composition}' needs as many rehab and nursing providers as hospitals (got {counts[1:].tolist()})",
        )
    if composition == "chain":
        return region.copy()
    together = np.isin(discipline, [HOSPITAL, REHAB])
    payee = region.copy()
    payee[~together] = region.max() + 1 + np.arange(int((~together).sum()))
    return payee


def check_seed(seed: Any) -> int:
    """Seeds must be non-negative integers so runs are reproducible and comparable."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ParameterError("seed", seed, "a non-negative integer")
    return int(seed)


class VBPModel(PatientDynamics, PurchaserBooks, mesa.Model):
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
        check_memory(self.config)  # refuse a run the machine cannot hold before allocating it
        contract = self.config.contract
        name = scheme if scheme is not None else contract.scheme
        params = contract.params if scheme is None or isinstance(scheme, str) else None
        if isinstance(name, str):
            params = with_world_defaults(name, params or {}, contract.status_quo_params)
        self.contract_under_study = make_scheme(name, params)
        streams = np.random.SeedSequence(self.seed_value).spawn(len(STREAMS))
        self.streams = {name: np.random.default_rng(s) for name, s in zip(STREAMS, streams, strict=True)}
        sim = self.config.simulation
        self.mechanisms = self.config.mechanisms
        self.steps_per_year = sim.steps_per_year
        self.history_steps = sim.history_years * sim.steps_per_year
        self.warmup_steps = min(sim.warmup_years, sim.history_years) * sim.steps_per_year
        self.n_steps = self.history_steps + sim.years * sim.steps_per_year
        self.contract = (
            make_scheme(contract.status_quo, contract.status_quo_params)
            if self.history_steps > 0
            else self.contract_under_study
        )
        self.contract_start = 0  # step at which the contract in force began
        self.study_length_years = contract.length_years
        self.months_per_step = 12.0 / sim.steps_per_year
        self.dt_years = 1.0 / sim.steps_per_year
        self.unit_cost = np.array([self.config.clinical.unit_cost[d] for d in DISCIPLINES])
        self._buffers = kernels.Buffers()  # the patient passes' output and work arrays, reused step to step

        self._build_providers()
        self.population = Population.generate(
            self.config.population,
            self.config.clinical,
            self.gp_chains,
            self.streams["population"],
        )
        pop = self.population
        self.initial_patients = pop.size
        # need level: individual need above the median (treatment by need class, equity)
        self.high_need = pop.frailty > np.median(pop.frailty)
        self.pending_duplicates = np.zeros((pop.size, len(DISCIPLINES)))
        self.prevention_stock = np.zeros(pop.size)
        self.unprofitable = np.zeros(pop.size, dtype=bool)
        self.unpriced_band = np.ones(pop.size, dtype=np.int8)  # quartile of unpriced risk: 0 low, 2 high
        self.steer_weight = np.zeros(pop.size)
        # [discretionary_admissions] how unprofitable a hospital thinks a patient's planned episode
        # is (0-1), and each hospital's belief per step of its candidates, their units and case value
        self.admission_steer_weight = np.zeros(pop.size)
        self.admission_belief = np.zeros((self.providers.n, 3))
        self.acs_belief = np.zeros(self.providers.n)  # GPs: ACS candidates per step among their patients
        self._appraisal: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # GPs review panels quarterly
        self._calibrate_providers()
        self.purchaser = Purchaser(
            self, self.contract, self.distribution, self.n_payees, self.unit_cost, self.steps_per_year
        )
        self.step_index = 0
        self.steered = np.zeros(pop.size, dtype=bool)
        self._attributed: dict[str, np.ndarray] | None = None  # prospective attribution: panel at year start
        self.risk_model = RiskModel(risk_adjustment_r2(self.config), pop.size, self.streams["risk"])
        self._risk_estimated_at = -1
        self.score_level = np.ones(len(DISCIPLINES))  # risk scores' level: guideline cost, then status-quo spending
        self.spending_markup = np.ones(self.providers.n)  # status-quo spending per unit of cost, by provider
        self.baseline_cost = self._observe_normative(self.care_need())["expected_cost"]
        self.historical_cost = self.baseline_cost.copy()  # per step; rebased at each contract renewal
        self.history_records: list[dict[str, float]] = []
        self._year_paid = np.zeros(self.providers.n)  # this year's payments and cost by provider
        self._year_spent = np.zeros(self.providers.n)
        self._year_guideline = np.zeros(len(DISCIPLINES))  # this year's guideline cost by discipline
        self._year_score = np.zeros(pop.size)  # each patient's risk score and delivered cost this year
        self._year_patient_cost = np.zeros(pop.size)
        self.realised_r2: list[float] = []
        self.period_cost = np.zeros(self.providers.n)
        self.period_steps = 0
        self.year_to_date_cost = np.zeros((pop.size, len(DISCIPLINES)))
        self.reported_outcomes = self._no_outcomes()  # counted in update_health, reported next step
        self.provider_ytd = self._no_year_to_date()
        self.outcome_belief: np.ndarray | None = None  # providers' smoothed outcomes per step
        # readmission risk per discharge the purchaser expects: last year's average across the
        # region (as the HRRP uses the national average); in the first year that at usual care
        self.reference_readmission_rate = HANDOFF_FAILURE * READMISSION_AFTER_FAILURE
        self.year_readmission_risk = np.zeros(2)  # (sum of readmission risk, discharges) this year
        self.patient_tally: dict[str, np.ndarray] = {}  # per patient since the contract began (equity)
        self.patient_groups: dict[str, np.ndarray] = {}
        self._frailty_order: np.ndarray | None = None  # argsort of frailty, for its quantiles among the living
        context = self.config.context
        lag_months = (
            context.trusted_party_lag_months if context.trusted_data_party else self.config.providers.data_lag_months
        )
        lag_steps = round(lag_months / self.months_per_step)
        self.history: deque[Observation] = deque(maxlen=lag_steps + 1)
        self.need_history: deque[np.ndarray] = deque(maxlen=lag_steps + 1)
        self.episode_units = self._expected_episode_units()
        n = self.providers.n
        self.handoff_belief = np.zeros(n)
        self.failure_units_belief = np.full(n, DUPLICATE_SHARE * 8.0 * self.months_per_step)
        self.innovation_offers = np.zeros(len(INNOVATION_TYPES))
        self.innovation_adoptions = np.zeros(len(INNOVATION_TYPES))
        self.low_value_multiplier = np.ones(n)  # extra units from adopted low-value innovations
        self.pending_investment = np.zeros(n)  # up-front costs to show the purchaser next step
        self.step_upfront = 0.0  # up-front costs spent this step
        self.innovation_value = np.zeros(2)  # ex-ante social value: adopted, ideal (positive offers)
        self.records: list[dict[str, float]] = []
        self.income_total = np.zeros(n)
        self.insolvent_group_steps = np.zeros(self.n_payees, dtype=np.int64)
        self.yearly_margins: list[np.ndarray] = []  # each contracting group's margin, year by year
        self.cost_total = np.zeros(n)
        if self.mechanisms.discretionary_admissions:
            self._expect_admissions()  # and capacity for the admissions expected at the health-optimal share
            self.providers.capacity += self.config.providers.capacity_slack * self._planned_admission_units()

    # -- set-up -----------------------------------------------------------------------
    def _build_providers(self) -> None:
        p = self.config.providers
        counts = [p.n_gp, p.n_hospital, p.n_rehab, p.n_nursing]
        discipline = np.repeat(np.arange(len(DISCIPLINES)), counts)
        n = len(discipline)
        rng = self.streams["providers"]
        mean, sd = p.altruism_mean, p.altruism_sd
        altruism = np.clip(rng.normal(mean, sd, n), 0.0, 1.0) if sd > 0 else np.full(n, mean)
        sel = self.config.selection
        ethics_rng = self.streams["selection"]
        ethics = (
            np.clip(ethics_rng.normal(sel.ethics_mean, sel.ethics_sd, n), 0.0, 1.0)
            if sel.ethics_sd > 0
            else np.full(n, sel.ethics_mean)
        )
        effort0 = self.config.effort.initial_effort
        effort = np.full((n, 4), effort0)
        self.region, self.gp_chains = care_chains(discipline)
        groups = self.config.groups
        payee = contracting_groups(discipline, self.region, groups.composition, groups.group_size)
        self.providers = ProviderTable(
            discipline=discipline,
            unit_cost=self.unit_cost[discipline],
            altruism=altruism,
            loss_aversion=np.full(n, p.loss_aversion),
            capacity=np.zeros(n),
            reserves=np.zeros(n),
            decision=Decision(
                np.full(n, p.initial_intensity),
                effort,
                np.zeros(n),
                np.zeros(n),
                admission=np.full(n, self.config.clinical.admission_appropriate_share),
            ),
            need_belief=np.zeros(n),
            payee=payee,
            ethics=ethics,
        )
        self.n_payees = int(payee.max()) + 1
        self.group_size = np.bincount(payee, minlength=self.n_payees)
        self.distribution = DistributionRule(groups.distribution)
        self.agents_by_index = [Provider(self, i) for i in range(n)]
        self.rule = DecisionRule(self.config, self.steps_per_year)
        self.timeliness = self.rule.timeliness
        self.active = self._active_dimensions(discipline)
        self._chain_rows(discipline)

    def _active_dimensions(self, discipline: np.ndarray) -> np.ndarray:
        """Which decision dimensions each provider controls, given the mechanisms switched on."""
        m = self.mechanisms
        active = np.zeros((len(discipline), len(Decision.DIMENSIONS)), dtype=bool)
        active[:, 0] = True
        active[:, 1 + MEASURED] = m.multitasking
        active[:, 1 + UNMEASURED] = m.multitasking
        active[:, 1 + COORDINATION] = m.coordination & np.isin(discipline, [HOSPITAL, REHAB])
        active[:, 1 + PREVENTION] = m.prevention & (discipline == GP)
        hospitals_select = m.discretionary_admissions & (discipline == HOSPITAL)  # redirect planned episodes
        active[:, 5] = m.risk_selection & ((discipline == GP) | hospitals_select)
        active[:, 6] = m.care_shifting & (discipline == REHAB)
        active[:, 7] = m.need_classes
        active[:, 8] = m.discretionary_admissions & (discipline == HOSPITAL)
        return active

    def _chain_rows(self, discipline: np.ndarray) -> None:
        """Who receives each provider's hand-offs, shifted care and prevented episodes."""
        n = len(discipline)
        ids = [np.flatnonzero(discipline == d) for d in range(len(DISCIPLINES))]
        by_region = {d: ids[d][np.arange(len(ids[HOSPITAL])) % len(ids[d])] for d in (HOSPITAL, REHAB, NURSING)}
        region = self.region % len(ids[HOSPITAL])
        self.handoff_receiver = np.full(n, -1)
        self.handoff_receiver[ids[HOSPITAL]] = by_region[REHAB][region[ids[HOSPITAL]]]
        self.handoff_receiver[ids[REHAB]] = by_region[NURSING][np.arange(len(ids[REHAB])) % len(ids[HOSPITAL])]
        self.readmission_target = np.full(n, -1)
        senders = np.concatenate([ids[HOSPITAL], ids[REHAB]])
        self.readmission_target[senders] = by_region[HOSPITAL][region[senders]]
        self.shift_receiver = np.full(n, -1)
        self.shift_receiver[ids[REHAB]] = self.handoff_receiver[ids[REHAB]]
        self.prevention_targets = np.full((n, len(DISCIPLINES)), -1)
        self.prevention_targets[ids[GP]] = self.gp_chains

    def _calibrate_providers(self) -> None:
        """Capacity and reserves from each provider's initial panel at guideline care."""
        units = self._per_provider(self.care_need()["need"])
        p = self.config.providers
        table = self.providers
        table.need_belief = units.copy()
        table.capacity = p.capacity_slack * units
        table.reserves = p.reserve_months / self.months_per_step * units * table.unit_cost

    def _expected_episode_units(self) -> np.ndarray:
        """Expected service units per stroke by discipline (acute, post-acute, disability)."""
        c = self.config.clinical
        months = self.months_per_step
        per_step = 1 - (1 - np.array([c.recovery_rate, c.disability_rate, c.post_acute_mortality])) ** months
        post_acute_steps = 1.0 / max(per_step.sum(), 1e-9)
        p_disabled = per_step[1] / max(per_step.sum(), 1e-9)
        horizon_steps = self.config.providers.horizon_years * self.steps_per_year
        disabled_steps = min(1.0 / max(1 - (1 - c.disabled_mortality) ** months, 1e-9), horizon_steps)
        survive = 1 - c.case_fatality
        units = NEED_PER_MONTH[ACUTE] * months
        units = units + survive * NEED_PER_MONTH[POST_ACUTE] * months * post_acute_steps
        after_acute = survive * (post_acute_steps + p_disabled * disabled_steps)
        self.episode_steps = np.array([after_acute, 1.0, survive * post_acute_steps, after_acute])
        return units + survive * p_disabled * NEED_PER_MONTH[DISABLED] * months * disabled_steps

    # -- the providers' view of their patients (vbpsim.appraisal) ------------------------
    def appraise_admissions(
        self, yearly: Observation, base: np.ndarray, share: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hospitals' private view of their unprofitable episodes (:func:`vbpsim.appraisal.appraise_admissions`)."""
        return appraisal.appraise_admissions(self, yearly, base, share)

    def appraisal_due(self) -> bool:
        """Whether this step's outlook has the GPs review their panels (quarterly, and at the first outlook)."""
        review_every = max(1, self.steps_per_year // 4)
        return self.mechanisms.risk_selection and (self.step_index % review_every == 0 or self._appraisal is None)

    # -- the step ------------------------------------------------------------------------
    def step(self) -> None:
        """Advance one time step (switching from the status quo to the contract under study when due)."""
        if self.step_index == self.history_steps and self.history_steps > 0 and self.contract_start == 0:
            self.switch_contract()
        self.rule.change_cost = 0.0 if self.step_index < self.warmup_steps else self.config.providers.change_cost
        care = self.deliver_care()
        obs = self.observe(care)
        income = self.purchaser.pay(obs, self.providers.payee, self.step_index, self.providers.discipline)
        self._year_paid += income
        self._year_spent += obs.cost
        self._year_guideline += self._guideline_cost(care)
        self.providers.reserves += income - obs.cost
        self.income_total += income
        self.cost_total += obs.cost
        self.close_periods(obs)
        year_end = (self.step_index + 1) % self.steps_per_year == 0  # solvency is judged after settlement
        self.providers.insolvent_steps += year_end & (self.providers.reserves < 0)
        group_reserves = np.bincount(self.providers.payee, weights=self.providers.reserves, minlength=self.n_payees)
        if year_end:  # each contracting group's margin this year, from the providers' books of the year
            payee = self.providers.payee
            year_income = np.bincount(payee, weights=self._year_paid, minlength=self.n_payees)
            year_cost = np.bincount(payee, weights=self._year_spent, minlength=self.n_payees)
            self.yearly_margins.append((year_income - year_cost) / np.maximum(year_cost, 1e-9))
        self.insolvent_group_steps += year_end & (group_reserves < 0)
        health = self.update_health(care)
        self.patients_choose(care)
        self.history.append(obs)
        if year_end:
            self.adjust_capacity()
        self.providers_learn()
        outlook = self.outlook(care)
        innovation = self.innovations_arrive(outlook)
        self.providers_decide(outlook)
        self.providers.form_habits(self.config.providers.habit_rate * self.dt_years)
        self.record(care, obs, income, health, innovation)
        if year_end:
            self._close_books_year()
        self.step_index += 1

    def set_contract_under_study(
        self, scheme: str | PaymentScheme, params: dict[str, Any] | None = None, length_years: int | None = None
    ) -> None:
        """Choose the contract the model switches to after its history (only before the switch).

        Forking one history into several arms (common random numbers) copies a model
        during its history and gives each copy its own contract here.
        """
        if self.contract_start > 0 or (self.history_steps == 0 and self.step_index > 0):
            raise ParameterError("scheme", scheme, "a contract can only be chosen before the switch")
        if isinstance(scheme, str):
            params = with_world_defaults(scheme, params or {}, self.config.contract.status_quo_params)
        self.contract_under_study = make_scheme(scheme, params)
        if length_years is not None:
            self.study_length_years = length_years
        if self.history_steps == 0:
            self.contract = self.contract_under_study
            self.purchaser.contract = self.contract

    def switch_contract(self) -> None:
        """End the status-quo history: the contract under study starts, set up from the history.

        The purchaser's risk model is recalibrated to the status quo's spending (risk
        models are estimated on claims), so normative and regional benchmarks and
        capitation rates start from what care cost the purchaser before the switch; each
        provider's historical benchmark is what the purchaser paid it in the last history
        year; per-period budgets are fixed on the panel at the switch. Reserves, panels,
        beliefs and habits carry over. Records so far become the history.
        """
        paid, spent, guideline = self._last_year
        spending_by_discipline = np.bincount(self.providers.discipline, weights=paid, minlength=len(DISCIPLINES))
        self.score_level = np.where(guideline > 0, spending_by_discipline / np.maximum(guideline, 1e-12), 1.0)
        self.spending_markup = np.where(spent > 0, paid / np.maximum(spent, 1e-12), 1.0)
        self.historical_cost = paid / self.steps_per_year
        self.contract = self.contract_under_study
        self.purchaser = Purchaser(
            self, self.contract, self.distribution, self.n_payees, self.unit_cost, self.steps_per_year
        )
        self.contract_start = self.step_index
        self._attributed = None
        self.baseline_cost = self._observe_normative(self.care_need())["expected_cost"]
        self.period_cost = np.zeros(self.providers.n)
        self.period_steps = 0
        self.history_records, self.records = self.records, []
        self.income_total = np.zeros(self.providers.n)
        self.cost_total = np.zeros(self.providers.n)
        self.providers.insolvent_steps = np.zeros(self.providers.n, dtype=np.int64)
        self.insolvent_group_steps = np.zeros(self.n_payees, dtype=np.int64)
        self.yearly_margins = []
        self.innovation_offers = np.zeros(len(INNOVATION_TYPES))
        self.innovation_adoptions = np.zeros(len(INNOVATION_TYPES))
        self.innovation_value = np.zeros(2)
        self.realised_r2 = []
        self.risk_model.achieved = self.risk_model.achieved[-1:]

    # -- the providers ----------------------------------------------------------------------
    def _learn_handoffs(self, counts: np.ndarray, failure_units: np.ndarray, failures: np.ndarray) -> None:
        """Senders' beliefs about their hand-off volume and the work a failure duplicates.

        ``counts``, ``failure_units`` and ``failures``: this step's hand-offs, the units their
        failures duplicated at the receiver, and the failures, by sender.
        """
        rate = self.config.providers.learning_rate
        self.handoff_belief += rate * (counts - self.handoff_belief)
        if failures.any():
            per_failure = np.divide(failure_units, failures, out=self.failure_units_belief.copy(), where=failures > 0)
            self.failure_units_belief += rate * (per_failure - self.failure_units_belief)

    def innovations_arrive(self, outlook: Outlook) -> dict[str, float]:
        """Innovations arrive at random; providers of their discipline decide to adopt each.

        The type is drawn by ``innovation.shares``. Adoption is a logit choice on the
        provider's utility gain (probed from the contract) with a temperature proportional
        to what is at stake, so the adoption rate is smooth in the gain. Each offer's
        ex-ante social value (health at ``benefit_to_cost`` minus the change in care cost
        over the run's remaining years, minus the up-front cost) is recorded, so adoption
        decisions can be scored against the ideal set (adopt exactly the positive ones).
        """
        self.step_upfront = 0.0
        if not self.mechanisms.innovation:
            return dict.fromkeys(INNOVATION_RECORDS, 0.0)
        inno = self.config.innovation
        rng = self.streams["innovation"]
        table = self.providers
        shares = np.array([inno.shares[name] for name in INNOVATION_TYPES], dtype=float)
        cumulative = np.cumsum(shares / shares.sum())
        arrivals = rng.poisson(inno.arrival_rate * self.dt_years)
        kappa = self.config.providers.benefit_to_cost
        remaining_years = (self.n_steps - self.step_index - 1) * self.dt_years
        realised = ideal = 0.0
        for _ in range(arrivals):
            kind = int(min(np.searchsorted(cumulative, rng.random(), side="right"), len(shares) - 1))
            discipline = int(rng.integers(len(DISCIPLINES)))
            name = INNOVATION_TYPES[kind]
            eligible = table.discipline == discipline
            upfront = inno.upfront_months / self.months_per_step * table.unit_cost * table.need_belief
            gain, stakes = self.rule.adoption_gain(
                table,
                outlook,
                self.contract,
                self.distribution,
                self.n_payees,
                inno.need_change[name],
                inno.health_gain[name],
                upfront,
            )
            scale = inno.adoption_noise * np.maximum(stakes, 1e-9)
            p_adopt = 1.0 / (1.0 + np.exp(-np.clip(gain / scale, -50, 50)))
            adopt = eligible & (rng.random(table.n) < p_adopt)
            social = (
                self.steps_per_year
                * table.unit_cost
                * table.need_belief
                * (kappa * inno.health_gain[name] - table.need_multiplier * inno.need_change[name])
                * remaining_years
                - upfront
            )
            realised += float(social[adopt].sum())
            ideal += float(np.maximum(social[eligible], 0.0).sum())
            table.need_multiplier[adopt] *= 1 + inno.need_change[name]
            if kappa * inno.health_gain[name] < inno.need_change[name]:  # not worth its cost: low value
                self.low_value_multiplier[adopt] *= 1 + inno.need_change[name]
            table.benefit_gain[adopt] += inno.health_gain[name]
            table.reserves[adopt] -= upfront[adopt]
            self.cost_total[adopt] += upfront[adopt]
            self.pending_investment[adopt] += upfront[adopt]
            self.step_upfront += float(upfront[adopt].sum())
            self.innovation_offers[kind] += eligible.sum()
            self.innovation_adoptions[kind] += adopt.sum()
        self.innovation_value += (realised, ideal)
        care_cost_per_step = table.unit_cost * table.need_belief
        nmb = care_cost_per_step * (kappa * table.benefit_gain - (table.need_multiplier - 1.0))
        return {
            "innovation_nmb": float(nmb.sum()),
            "innovation_upfront": self.step_upfront,
            "innovation_realised": realised,
            "innovation_ideal": ideal,
        }

    def adjust_capacity(self) -> None:
        """Once a year providers size capacity to the output they plan (long-run capacity choice)."""
        table = self.providers
        planned = table.decision.intensity * table.need_belief * table.need_multiplier
        if self.mechanisms.discretionary_admissions:
            planned = planned + self._planned_admission_units()
        table.capacity = self.config.providers.capacity_slack * planned

    def planning_horizon(self) -> float:
        """Years ahead providers weigh, shortened by the weight on short-term goals."""
        horizon = self.config.providers.horizon_years * (1 - self.config.context.short_term_weight)
        return max(horizon, self.dt_years)

    def money_horizon(self) -> float:
        """Years of future gains a provider can keep: its horizon, cut at the contract's end."""
        horizon = self.planning_horizon()
        length = self.contract_length()
        if length <= 0:
            return horizon
        elapsed = self._contract_elapsed_years()
        return min(horizon, length - elapsed)

    def outlook(self, care: dict[str, np.ndarray]) -> Outlook:
        """What providers expect from their lagged data, for the decision rule (:func:`vbpsim.appraisal.outlook`)."""
        return appraisal.outlook(self, care)

    def appraise_patients(
        self, lagged: Observation, need: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """GPs' private view of their unprofitable patients (:func:`vbpsim.appraisal.appraise_patients`)."""
        return appraisal.appraise_patients(self, lagged, need)

    def providers_learn(self) -> None:
        """Providers update their belief about their panel's need from lagged data."""
        table = self.providers
        table.need_belief += self.config.providers.learning_rate * (self.need_history[0] - table.need_belief)
        self._learn_outcomes(self.history[0])

    def _learn_outcomes(self, lagged: Observation) -> None:
        """Providers' belief of their outcomes per step, smoothed from lagged data.

        Outcomes are reported a step late, so nothing is known before the second
        observation; the belief then starts at the risk-adjusted expectations (each count
        as expected) and learns at ``providers.learning_rate``.
        """
        seen = np.column_stack([getattr(lagged, name) for name in Observation.OUTCOMES])
        if self.outcome_belief is None:
            if not lagged.expected_prom.any():
                return
            expected = {name: getattr(lagged, name) for name in Observation.OUTCOMES if name.startswith("expected_")}
            prior = {**expected, **{name.removeprefix("expected_"): v for name, v in expected.items()}}
            self.outcome_belief = np.column_stack([prior[name] for name in Observation.OUTCOMES])
            return
        self.outcome_belief += self.config.providers.learning_rate * (seen - self.outcome_belief)

    def providers_decide(self, outlook: Outlook) -> None:
        """Every provider revises its decision with the same rule, from lagged data."""
        table = self.providers
        table.decision = self.rule.choose(
            table,
            outlook,
            self.contract,
            self.distribution,
            self.n_payees,
            self.streams["decisions"],
        )

    # -- the record -----------------------------------------------------------------------
    EQUITY_TALLIES: tuple[str, ...] = ("qalys", "guideline_cost", "delivered_cost", "steered", "strokes", "deaths")
    COUNTED_TALLIES: tuple[str, ...] = ("steered", "strokes", "deaths")
    AGE_BANDS: tuple[float, ...] = (50.0, 65.0, 80.0)  # bands < 50, 50-64, 65-79, >= 80

    def _start_tallies(self, care: dict[str, np.ndarray]) -> None:
        """Fix the patients' equity groups when the contract under study begins (7.16).

        Groups: need class by health state (low: healthy, chronic: chronic conditions, high:
        after a stroke), quartile of the patient's guideline cost of care (its risk) and age
        band; the dead then are left out. Each step then adds to every patient's tallies
        (:func:`~vbpsim.kernels.accounts.record_pass`).
        """
        pop = self.population
        state = care["state_before"]  # at the start of the step
        alive = state != DEAD
        risk = np.where(alive, (self.need_units(care) * self.unit_cost).sum(axis=1), np.nan)
        bounds = np.nanquantile(risk, [0.25, 0.5, 0.75]) if alive.any() else np.zeros(3)
        need_class = np.select([state == HEALTHY, state == CHRONIC], [0, 1], 2)
        groups = {
            "need_class": np.where(alive, need_class, -1),
            "risk_quartile": np.where(alive, np.digitize(np.nan_to_num(risk), bounds), -1),
            "age_band": np.where(alive, np.digitize(pop.age, self.AGE_BANDS), -1),
            "need_level": np.where(alive, self.high_need.astype(int), -1),
        }
        self.patient_groups = {name: group.astype(np.int8) for name, group in groups.items()}  # -1 to 3: a byte each
        # counts (steered, strokes, deaths) as small integers: at most one a step, and exact either way
        count_type = np.uint16 if self.n_steps < np.iinfo(np.uint16).max else np.uint32
        self.patient_tally = {
            name: np.zeros(pop.size, dtype=count_type if name in self.COUNTED_TALLIES else np.float64)
            for name in self.EQUITY_TALLIES
        }

    def record(
        self,
        care: dict[str, np.ndarray],
        obs: Observation,
        income: np.ndarray,
        health: dict[str, float],
        innovation: dict[str, float],
    ) -> None:
        """Store this step's aggregates (one row of the time series); add it to the patients' tallies."""
        if self.step_index == self.contract_start or not self.patient_tally:
            self._start_tallies(care)
        sums = self._record_sums(care)
        table = self.providers
        decision = table.decision
        weights = np.maximum(table.need_belief * table.unit_cost, 1e-9)
        admitting = self.mechanisms.discretionary_admissions
        redirected_cost = sums["redirected_units"] * float(self.unit_cost[HOSPITAL]) if admitting else 0.0
        alive = sums["alive"]
        row: dict[str, float] = {
            "step": self.step_index,
            "year": (self.step_index - self.history_steps) // self.steps_per_year,
            "alive": alive,
            "spending": float(income.sum()) + redirected_cost,  # the purchaser pays redirected episodes too
            "provider_cost": float(obs.cost.sum()),
            "provider_income": float(income.sum()),
            "guideline_cost": sums["guideline_cost"],
            "low_value_cost": sums["low_value_cost"],
            "shortfall_cost": sums["shortfall_cost"],
            "duplicate_cost": sums["duplicate_cost"],
            "shifted_cost": sums["shifted_cost"],
            "rehab_guideline_cost": sums["guideline_rehab"],
            "measured_quality": float(np.average(obs.measured_quality, weights=np.maximum(obs.cases, 1e-9))),
            "unmeasured_quality": float(np.average(task_value(decision.effort[:, UNMEASURED]), weights=weights)),
            "insolvent_providers": float((table.reserves < 0).sum()),
            "steered": sums["steered"],
            "steered_high_risk": sums["steered_high_risk"],
            "steered_low_risk": sums["steered_low_risk"],
            "alive_high_risk": sums["alive_high_risk"],
            "alive_low_risk": sums["alive_low_risk"],
            "steered_frailty": sums["steered_frailty"],
            "mean_frailty": sums["alive_frailty"] / alive if alive > 0 else 1.0,
            "prevention_stock": sums["alive_prevention_stock"] / alive if alive > 0 else 0.0,
        }
        for task, name in enumerate(("measured", "unmeasured", "coordination", "prevention")):
            mask = self.active[:, 1 + task]
            row[f"effort_{name}"] = float(decision.effort[mask, task].mean()) if mask.any() else 0.0
        for name in ("high", "low"):  # care ratio by need level
            guideline = sums[f"guideline_{name}_need"]
            row[f"intensity_{name}_need"] = sums[f"delivered_{name}_need"] / guideline if guideline > 0 else 1.0
        row.update(self._admission_record(sums, admitting, redirected_cost))
        gp = table.discipline == GP  # hospitals' selection (redirecting planned episodes) is decision_redirect
        dims = ((5, "selection", gp), (6, "shift", True), (7, "need_tilt", True), (8, "admission", True))
        for dim, name, who in dims:
            mask = self.active[:, dim] & who
            row[f"decision_{name}"] = float(decision.get(dim)[mask].mean()) if mask.any() else 0.0
        mask = self.active[:, 5] & (table.discipline == HOSPITAL)
        row["decision_redirect"] = float(decision.selection[mask].mean()) if mask.any() else 0.0
        for d, name in enumerate(DISCIPLINES):
            total_need = sums[f"guideline_{name}"]
            row[f"intensity_{name}"] = sums[f"delivered_{name}"] / total_need if total_need > 0 else 1.0
            row[f"chosen_intensity_{name}"] = float(decision.intensity[table.discipline == d].mean())
            row[f"spending_{name}"] = float(income[table.discipline == d].sum())
            row[f"guideline_{name}"] = total_need
            # payments say who is paid; resource cost what care was given
            row[f"resource_cost_{name}"] = float(obs.cost[table.discipline == d].sum())
        row.update(self._cost_accounts(sums, admitting, obs))
        row.update(health)
        row.update(innovation)
        self.records.append(row)

    def _record_sums(self, care: dict[str, np.ndarray]) -> dict[str, float]:
        """The step's sums over patients in one compiled pass, which also adds the step to the tallies.

        Guideline care is each patient's need at its providers' valuable intensity (innovations'
        units count, low-value ones do not) plus appropriate admission candidates; delivered
        care includes the episodes redirected elsewhere (the purchaser pays them).
        """
        pop = self.population
        valuable = self.providers.need_multiplier / self.low_value_multiplier
        admitting = self.mechanisms.discretionary_admissions
        high_risk = np.nan
        if admitting:  # top quartile of risk among those alive at the start of the step
            if self._frailty_order is None:
                self._frailty_order = np.argsort(pop.frailty, kind="stable").astype(np.int32)
            high_risk = masked_quantile(pop.frailty, self._frailty_order, pop.alive | care["dies"], 0.75)
        flags, floats = _NO_FLAGS, _NO_FLOATS
        tally = self.patient_tally
        values = record_pass(
            care["diagnosis_row"],
            care["by_diagnosis"],
            care["delivered"],
            care["shifted_cost"],
            pop.provider,
            valuable,
            self.unit_cost,
            self.high_need,
            pop.state,
            care["state_before"],
            self.steered,
            self.unpriced_band,
            pop.frailty,
            self.prevention_stock,
            admitting,
            care["admission_index"] if admitting else _NO_INDEX,
            care["admission_guideline"] if admitting else floats,
            care["redirected_units"] if admitting else floats,
            care["admission_here_units"] if admitting else floats,
            care["admission_low_value_units"] if admitting else floats,
            care["planned_admitted"] if admitting else flags,
            care["acs_admitted"] if admitting else flags,
            care["admission_candidates"] if admitting else flags,
            care["acs_expected_total"] if admitting else 0.0,
            care["overtreatment_total"],
            care["withheld_total"],
            care["redirected"] if admitting else flags,
            high_risk,
            care["qol"],
            care["admission_qalys"] if admitting else floats,
            care["strokes"],
            care["dies"],
            self.dt_years,
            tally["qalys"],
            tally["guideline_cost"],
            tally["delivered_cost"],
            tally["steered"],
            tally["strokes"],
            tally["deaths"],
        )
        sums = dict(zip(RECORD_SLOTS, values.tolist(), strict=True))
        sums["duplicate_cost"] = care["duplicate_cost"]  # these two the delivery pass sums
        sums["innovation_cost"] = care["innovation_cost"]
        return sums

    def _cost_accounts(self, sums: dict[str, float], admitting: bool, obs: Observation) -> dict[str, float]:
        """Provider cost of the step split into exact parts (EUR); they add up to cost plus up-front.

        Guideline need at unit cost; care beyond it (overtreatment) and below it (withheld)
        at the chosen intensities, before innovations; the units innovations add or save;
        duplicated work after failed hand-offs; the extra cost of rehab shifted to home care
        (shifted care counts at its own cost, not as low value); the overtime premium; and
        the up-front cost of adoptions. ``acc_innovation_health`` values adopted innovations'
        benefit gain as the model values health of care (``benefit_to_cost`` x care cost),
        the valuation of the ideal adoption set. [discretionary_admissions] Appropriate admission
        candidates' units are need, admissions beyond the appropriate share overtreatment, and
        appropriate candidates not admitted here (declined or redirected) withheld.
        """
        table = self.providers
        kappa = self.config.providers.benefit_to_cost
        innovation_health = kappa * float((table.unit_cost * table.need_belief * table.benefit_gain).sum())
        need, over, withheld = sums["need_cost"], sums["overtreatment"], sums["withheld"]
        if admitting:  # discretionary admissions, at hospital unit cost
            c_h = float(self.unit_cost[HOSPITAL])
            guideline = sums["admission_guideline"] * c_h  # appropriate candidates
            low_value = sums["admission_low_value_units"] * c_h  # admitted beyond the appropriate share
            appropriate_here = sums["admission_here_units"] * c_h - low_value
            need, over = need + guideline, over + low_value
            withheld += guideline - appropriate_here  # not admitted, or redirected (delivered elsewhere)
        return {
            "acc_need_cost": need,
            "acc_overtreatment": over,
            "acc_withheld": withheld,
            "acc_innovation_cost": sums["innovation_cost"],
            "acc_innovation_health": innovation_health,
            "acc_duplicates": sums["duplicate_cost"],
            "acc_shift_extra": sums["shifted_cost"] * self.config.shifting.shift_inefficiency,
            "acc_overtime": float(obs.cost.sum()) - sums["delivered_here"],
        }

    def _admission_record(self, sums: dict[str, float], admitting: bool, redirected_cost: float) -> dict[str, float]:
        """Admissions of this step: discretionary (planned, ACS), redirected, declined emergencies.

        A declined emergency is a patient in the acute (stroke) state with hospital need who
        got no hospital care; strokes are never declinable, so it must stay 0. Redirected
        episodes are also counted for the top quartile of patients' risk (frailty).
        """
        out = {"declined_emergencies": sums["declined_emergencies"]}
        if not admitting:
            return {**out, **dict.fromkeys(ADMISSION_RECORDS, 0.0), "redirected_cost": 0.0}
        return {**out, **{k: sums[k] for k in ADMISSION_RECORDS}, "redirected_cost": redirected_cost}

    def run(self) -> None:
        """Run the scenario's whole horizon."""
        for _ in range(self.n_steps - self.step_index):
            self.step()
