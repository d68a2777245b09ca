"""The vbpsim model: patients, providers and a purchaser under one payment contract.

Each step (a month by default) reads in this order: patients need care and their
providers deliver it as they decided; the purchaser observes what happened and pays
according to the contract; patients' health evolves with the care they got; patients may
switch GP or be steered away; innovations may arrive and be adopted; providers revise
their decisions from lagged data with the one decision rule; the step is recorded.
Nothing here depends on which scheme is in force.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
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
    LEAD_DISCIPLINE,
    MEASURED,
    NEED_PER_MONTH,
    NURSING,
    POST_ACUTE,
    PREVENTION,
    QUALITY_STANDARD,
    READMISSION_AFTER_FAILURE,
    REHAB,
    UNMEASURED,
    care_cost,
    qol_by_state,
    task_value,
)
from .errors import ParameterError
from .kernels import delivery as kernels
from .kernels import health as health_kernels
from .kernels.accounts import (
    ADMISSION_RECORDS,
    RECORD_SLOTS,
    masked_quantile,
    record_pass,
)
from .limits import check_memory
from .parameters import CONDITIONS, DISCIPLINES, INNOVATION_TYPES, Scenario, risk_adjustment_r2
from .population import Population
from .risk import RiskModel, r_squared
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
_NO_FLOATS = np.zeros(0)  # stand-ins for per-patient arrays a pass does not read (mechanism off) ...
_NO_FLAGS = np.zeros(0, dtype=bool)
_NO_INDEX = np.zeros(0, dtype=np.int64)
_NO_ROWS = np.zeros((0, len(DISCIPLINES)))  # ... and per patient and discipline (or one a pass does not write)
# Patients a chunked pass takes at a time: their random draws are drawn (and their counted outputs
# given room) chunk by chunk, not for the whole population. A multiple of kernels.SUM_BLOCK.
PATIENT_CHUNK = 65_536


def patient_chunks(n: int) -> Iterator[tuple[int, int]]:
    """The ``(start, stop)`` of each chunk of ``n`` patients, ``PATIENT_CHUNK`` at a time, in order."""
    for start in range(0, n, PATIENT_CHUNK):
        yield start, min(start + PATIENT_CHUNK, n)


# Patient-by-discipline arrays of the need (``care_need``) and of the care delivered (``deliver_care``).
NEED = ("need", "diagnosis_cost", "cost")
DELIVERED = ("delivered",)
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

    # -- discretionary admissions ------------------------------------------------------
    def _admission_rates(self, gp_benefit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Yearly hazards of becoming a planned and an ambulatory-care-sensitive admission candidate.

        Planned candidates arise among the living outside an acute or post-acute episode; ACS
        candidates among chronic patients, per condition, more often when their GP's care falls
        short of the optimum (the stroke hazard's ``undertreatment_harm``) and less often with
        their prevention stock (``prevention_efficacy``), so GP care substitutes for hospital care.
        """
        pop, c = self.population, self.config.clinical
        planned = np.where(np.isin(pop.state, (HEALTHY, CHRONIC, DISABLED)), c.planned_admission_rate, 0.0)
        acs = np.where(pop.state == CHRONIC, c.acs_admission_rate * pop.conditions.sum(axis=1), 0.0)
        acs = acs * np.maximum(1 + c.undertreatment_harm * (1 - gp_benefit), 0.0)
        if self.mechanisms.prevention:
            acs = acs * (1 - self.config.effort.prevention_efficacy * self.prevention_stock)
        return planned, acs

    def _admission_price(self, risk: np.ndarray) -> np.ndarray:
        """The purchaser's case value of a discretionary admission of a patient of ``risk``.

        A DRG-like price around the mean cost that passes on the share of a patient's extra
        risk its risk model passes on (its R^2, ``purchaser.risk_adjustment``): a flat price
        without risk adjustment, the patient's own cost with full risk adjustment.
        """
        pop = self.population
        alive = pop.alive
        mean = float(pop.frailty[alive].mean()) if alive.any() else 1.0
        passed = self.risk_model.pass_through
        unit = self.config.clinical.admission_units * self.unit_cost[HOSPITAL]
        return unit * ((1 - passed) * mean + passed * risk)

    def _expect_admissions(self) -> None:
        """Hospitals' first belief of their candidates per step, at guideline GP care."""
        pop = self.population
        planned, acs = self._admission_rates(np.ones(pop.size))
        p = 1 - np.exp(-(planned + acs) * self.dt_years)
        self.admission_belief = self._admission_sums(p)
        p_acs = 1 - np.exp(-acs * self.dt_years)
        self.acs_belief = np.bincount(pop.provider[:, GP], weights=p_acs, minlength=self.providers.n)

    def _planned_admission_units(self) -> np.ndarray:
        """Hospital units per step each provider plans for discretionary admissions at its threshold."""
        return self.providers.decision.admission * self.admission_belief[:, 1]

    def _admission_sums(self, weight: np.ndarray) -> np.ndarray:
        """Per hospital: weighted candidates, their hospital units and their case value."""
        pop = self.population
        hospital = pop.provider[:, HOSPITAL]
        units = self.config.clinical.admission_units * pop.frailty
        n = self.providers.n
        return np.column_stack(
            [
                np.bincount(hospital, weights=weight, minlength=n),
                np.bincount(hospital, weights=weight * units, minlength=n),
                np.bincount(hospital, weights=weight * self._admission_price(pop.frailty), minlength=n),
            ]
        )

    def _admission_parameters(self) -> np.ndarray:
        """Admission parameters of this step, in the order the delivery kernel reads them.

        The case price is :meth:`_admission_price` split into its parts: the price of an
        admission's units, the risk-free share times the living's mean risk, and the share of
        a patient's own risk passed through (the risk model's R^2).
        """
        pop, c = self.population, self.config.clinical
        mean = kernels.alive_mean(pop.state, pop.frailty)
        passed = self.risk_model.pass_through
        unit = c.admission_units * self.unit_cost[HOSPITAL]
        return np.array(
            [
                c.overtreatment_harm,
                c.planned_admission_rate,
                c.acs_admission_rate,
                c.undertreatment_harm,
                self.config.effort.prevention_efficacy,
                self.dt_years,
                c.admission_units,
                c.admission_qaly_gain * 2,
                c.admission_appropriate_share,
                self.config.selection.redirect_harm,
                unit,
                (1 - passed) * mean,
                passed,
            ]
        )

    def _admit(
        self,
        care: dict[str, np.ndarray],
        candidates: np.ndarray,
        values: np.ndarray,
        flags: np.ndarray,
        sums: np.ndarray,
    ) -> None:
        """Discretionary admissions of this step (drawn in :meth:`deliver_care`'s pass): care keys and beliefs.

        Each candidate has an appropriateness rank u ~ U(0, 1); its hospital admits it when
        u is below the hospital's chosen admission share. Admission gains it
        ``admission_qaly_gain`` x 2 (1 - u / appropriate_share) QALYs (a loss beyond the
        appropriate share). A hospital with selection effort redirects an admitted planned
        episode of a patient it expects to lose money on with probability selection x how
        unprofitable it looks; the episode is treated outside the region (the purchaser pays
        its cost, the hospital's books do not carry it, the observation reports it as the
        hospital's ``outside_cost`` for contracts that charge it back) and the patient loses
        ``selection.redirect_harm`` of its gain (delay, travel). ACS admissions are unplanned
        and strokes are emergencies: neither can be redirected. Candidates arise from
        :meth:`_admission_rates` (computed per patient in the pass); hospitals learn how many
        candidates, units and case value to expect, GPs how many ACS candidates. The care
        keys of the admissions hold one entry per candidate, of the patients ``admission_index``.
        """
        care["admission_index"] = candidates
        care.update(zip(kernels.ADMISSION_VALUES, values, strict=True))
        care.update(zip(kernels.ADMISSION_FLAGS, flags, strict=True))
        care["admission_by_hospital"] = sums[3:6]  # admission cases, their case value, redirected units
        rate = self.config.providers.learning_rate
        self.admission_belief += rate * (sums[:3].T - self.admission_belief)
        self.acs_belief += rate * (sums[6] - self.acs_belief)

    def appraise_admissions(
        self, yearly: Observation, base: np.ndarray, share: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hospitals' private view of their unprofitable episodes (:func:`vbpsim.appraisal.appraise_admissions`)."""
        return appraisal.appraise_admissions(self, yearly, base, share)

    # -- helpers ---------------------------------------------------------------------
    def care_need(self) -> dict[str, np.ndarray]:
        """Guideline need per patient and discipline: by diagnosis and in person.

        ``diagnosis_cost`` prices the need of an average-risk patient with the same state and
        diagnoses (what a DRG or the purchaser's diagnosis groups see); ``need`` is the
        patient's own optimal care in service units, including the unobserved risk. The
        column totals (``cost_total``, ``diagnosis_cost_total``, ``in_care_count``) come with it.
        """
        n = self.population.size
        care = {name: np.empty((n, len(DISCIPLINES))) for name in NEED}
        return self._care_need({**care, "diagnosis_row": np.empty(n, dtype=np.uint8)})

    def _care_need(self, care: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """:meth:`care_need` into the arrays of ``care`` (and the totals added to it).

        ``diagnosis_cost``, ``cost`` and ``diagnosis_row`` (each patient's row of
        :func:`vbpsim.kernels.delivery.diagnosis_table`) are written only if ``care`` has arrays for them.
        """
        pop = self.population
        totals = np.empty((3, len(DISCIPLINES)))
        kernels.care_need(
            pop.state, pop.conditions, pop.frailty, NEED_PER_MONTH, self.months_per_step, self.unit_cost,
            care.get("need", _NO_ROWS), care.get("diagnosis_cost", _NO_ROWS), care.get("cost", _NO_ROWS),
            care["diagnosis_row"], totals,
        )  # fmt: skip
        care["by_diagnosis"] = kernels.diagnosis_table(NEED_PER_MONTH, self.months_per_step, pop.conditions.shape[1])
        care.update(zip(kernels.TOTALS, totals, strict=True))
        return care

    def _per_provider(self, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Sum a (patients, disciplines) array into each patient's provider per discipline."""
        if mask is not None:
            values = np.where(mask, values, 0.0)
        return np.bincount(self.population.provider.ravel(), weights=values.ravel(), minlength=self.providers.n)

    def _risk_cells(
        self, need: dict[str, np.ndarray], alive: np.ndarray, scores: np.ndarray = _NO_ROWS
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Each patient's cell of the purchaser's risk model, the scores' calibration and the living.

        The risk model (:mod:`vbpsim.risk`) is re-estimated at the start of each year with
        the R^2 the scenario asks for; the calibration per discipline makes the predictions
        add up to the population's guideline cost times ``score_level``: 1 before any
        claims exist, the status quo's spending per unit of guideline cost once the history
        has produced claims (risk models are estimated on claims). Unless ``scores`` is
        empty, the raw (uncalibrated) scores are written to it.
        """
        if self._risk_estimated_at < 0 or (
            self.step_index % self.steps_per_year == 0 and self._risk_estimated_at != self.step_index
        ):
            rows, frailty = need["diagnosis_row"], self.population.frailty
            self.risk_model.estimate(need["by_diagnosis"], alive, self.unit_cost, rows=rows, weight=frailty)
            self._risk_estimated_at = self.step_index
        model, buffers = self.risk_model, self._buffers
        cells = buffers.array("risk_cells", alive.shape, np.int32)
        last_total = buffers.array("risk_cell_totals", alive.shape)
        reuse = buffers.get("risk_fit") == model.fits  # the cells left by the last call are of this fit
        buffers["risk_fit"] = model.fits
        raw_total = np.empty(len(DISCIPLINES))
        living = kernels.risk_cells(
            need["by_diagnosis"], need["diagnosis_row"], self.population.frailty, self.unit_cost, alive,
            model.eta, model.sigma, model.edges, model.cell_means, model.blend,
            cells, raw_total, last_total, reuse, np.ones(len(DISCIPLINES)), scores,
        )  # fmt: skip
        true_total = need["cost_total"] * self.score_level
        return cells, true_total / np.maximum(raw_total, 1e-12), living

    def _risk_scores(self, need: dict[str, np.ndarray]) -> np.ndarray:
        """Purchaser's predicted cost per patient and discipline this step (see :meth:`_risk_cells`)."""
        scores = np.empty((self.population.size, len(DISCIPLINES)))
        _, calibration, _ = self._risk_cells(need, self.population.alive, scores)
        return scores * calibration

    def _case_scale(self, need: dict[str, np.ndarray]) -> np.ndarray:
        """Per discipline: what the population's own need costs per unit of its diagnosis price."""
        return need["cost_total"] / np.maximum(need["diagnosis_cost_total"], 1e-12)

    def _patient_sums(self, need: dict[str, np.ndarray], full: bool) -> np.ndarray:
        """The patient pass of the observation: per-provider sums (rows ``kernels.MEMBERS..STOPLOSS``).

        Sets ``need["mean_cost"]`` and what gives each patient's calibrated risk score
        (:meth:`observed_risk_scores`): ``risk_cells``, ``score_calibration`` and ``scored`` (the
        living, who are scored). With
        ``full`` (an observed step: ``need`` is :meth:`deliver_care`'s care) the delivered
        care is summed too, and each patient's cost adds to their year-to-date cost and to
        this year's cost and score (for the risk model's realised R^2).
        """
        pop, model = self.population, self.risk_model
        alive = pop.alive
        cells, calibration, living = self._risk_cells(need, alive)
        n_disciplines = len(DISCIPLINES)
        sums = np.empty((kernels.N_SUMS, self.providers.n))
        kernels.observe(
            pop.provider, alive, pop.frailty, cells, model.cell_means, model.blend, model.blended, calibration, full,
            need["diagnosis_row"], need["by_diagnosis"],
            *self._style(),
            need["delivered"] if full else _NO_ROWS,
            self._case_scale(need),
            self.outlier_threshold(need) if full else np.zeros(n_disciplines),
            self.unit_cost,
            self.config.purchaser.stop_loss_attachment,
            QUALITY_STANDARD,
            self.year_to_date_cost if full else _NO_ROWS,
            self._year_score if full else np.empty(0),
            self._year_patient_cost if full else np.empty(0),
            _NO_ROWS, sums,  # (scores not kept: the appraisal scores patients from their cells)
        )  # fmt: skip
        need.update(risk_cells=cells, score_calibration=calibration, scored=alive)
        need["mean_cost"] = need["cost_total"] * self.score_level / max(living, 1)
        return sums

    @property
    def pending_duplicates(self) -> np.ndarray:
        """Duplicated work per patient and discipline (units) after last step's failed hand-offs, due this step.

        Kept as a list of the few patients concerned (``_pending_rows``, ascending, and their
        units); this dense copy is for inspection and tests, and assigning one sets the list.
        """
        dense = np.zeros((self.population.size, len(DISCIPLINES)))
        dense[self._pending_rows] = self._pending_units
        return dense

    @pending_duplicates.setter
    def pending_duplicates(self, dense: np.ndarray) -> None:
        rows = np.flatnonzero(np.any(dense != 0, axis=1))
        self._pending_rows, self._pending_units = rows, np.array(dense[rows], dtype=float)

    def observed_risk_scores(self, care: dict[str, np.ndarray]) -> np.ndarray:
        """Each patient's calibrated risk score per discipline as the purchaser observed it this step.

        Not stored by the step (the appraisal computes it where it reads it): the mean cost of
        the patient's risk cell, blended with its own cost when the fit blends, times the
        calibration, 0 for those dead when observed.
        """
        model = self.risk_model
        raw = model.cell_means[care["risk_cells"]]
        if model.blended:
            raw = model.blend * (self.need_units(care) * self.unit_cost) + (1 - model.blend) * raw
        return np.where(care["scored"][:, None], raw, 0.0) * care["score_calibration"]

    def appraisal_due(self) -> bool:
        """Whether this step's outlook has the GPs review their panels (quarterly, and at the first outlook)."""
        review_every = max(1, self.steps_per_year // 4)
        return self.mechanisms.risk_selection and (self.step_index % review_every == 0 or self._appraisal is None)

    def _observe_normative(self, need: dict[str, np.ndarray], sums: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Enrolment and the purchaser's normative (guideline) costs per provider.

        ``sums`` are this step's :meth:`_patient_sums` when :meth:`observe` has them already.
        """
        if sums is None:
            sums = self._patient_sums(need, full=False)
        members = sums[kernels.MEMBERS]
        normative = {
            "expected_cost": sums[kernels.EXPECTED],
            "average_cost": members * need["mean_cost"][self.providers.discipline],
            "member_months": members * self.months_per_step,
        }
        if self.config.contract.attribution == "prospective":
            if self.step_index % self.steps_per_year == 0 or self._attributed is None:
                self._attributed = {k: v.copy() for k, v in normative.items()}
            return {k: v.copy() for k, v in self._attributed.items()}
        return normative

    def _benefit_factor(self) -> np.ndarray:
        """Each provider's factor on its patients' benefit of care: quality, innovation and shifting."""
        table = self.providers
        factor = np.ones(table.n)
        if self.mechanisms.multitasking:
            quality = table.quality(table.decision.effort, self.config.effort.measured_share)
            factor = factor * (1.0 - self.config.effort.quality_weight * (1.0 - self.timeliness * quality))
        if self.mechanisms.innovation:
            factor = factor * (1.0 + table.benefit_gain)
        if self.mechanisms.care_shifting:
            factor = factor * (1.0 - self.config.shifting.shift_health_penalty * table.decision.shift)
        return factor

    def _no_outcomes(self) -> dict[str, np.ndarray]:
        return {name: np.zeros(self.providers.n) for name in Observation.OUTCOMES}

    def _no_year_to_date(self) -> dict[str, np.ndarray]:
        ytd = {name: np.zeros(self.providers.n) for name in Observation.YEAR_TO_DATE}
        ytd["ytd_services"] = np.zeros((self.providers.n, len(DISCIPLINES)))
        return ytd

    def _count_outcomes(
        self, per_sender: np.ndarray, per_lead: np.ndarray, readmission_risk: float, handoffs: float
    ) -> None:
        """Outcomes of this step per responsible provider, reported with next step's claims.

        Strokes count at the patient's GP, deaths and patient-reported quality of life at
        the provider of the patient's lead discipline, readmissions at the discharging
        provider (see :class:`~vbpsim.schemes.Observation`). ``per_sender`` and ``per_lead``:
        the per-provider sums of the health pass (:mod:`vbpsim.kernels.health`).
        """
        k = health_kernels
        self.year_readmission_risk += (readmission_risk, handoffs)
        self.reported_outcomes = {
            "acute_events": per_sender[k.ACUTE_EVENTS],
            "expected_acute_events": per_sender[k.EXPECTED_ACUTE_EVENTS],
            "readmissions": per_lead[k.READMISSIONS],
            "expected_readmissions": per_lead[k.EXPECTED_READMISSIONS],
            "deaths": per_lead[k.DEATHS],
            "expected_deaths": per_lead[k.EXPECTED_DEATHS],
            "prom": per_lead[k.PROM],
            "expected_prom": per_lead[k.EXPECTED_PROM],
        }

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

    def _measured_outcomes(self) -> dict[str, np.ndarray]:
        """Last step's outcomes as the purchaser sees them: the PROM with measurement noise."""
        out = self.reported_outcomes
        noise_sd = self.config.purchaser.quality_measurement_noise
        if self.config.context.trusted_data_party:
            noise_sd = noise_sd / 2
        noise = self.streams["outcomes"].normal(0.0, noise_sd, self.providers.n)
        return {**out, "prom": np.maximum(out["prom"] + noise * out["expected_prom"], 0.0)}

    def _year_to_date(self, obs: Observation) -> None:
        """Add this period to the providers' year-to-date totals (reset at each year end)."""
        ytd = self.provider_ytd
        ytd["ytd_services"] = ytd["ytd_services"] + obs.services
        for name in Observation.YEAR_TO_DATE[1:]:
            ytd[name] = ytd[name] + getattr(obs, name.removeprefix("ytd_"))

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

    def _style(self) -> tuple[np.ndarray, np.ndarray, bool, np.ndarray, np.ndarray]:
        """What the passes recompute each patient's care ratio from (see :meth:`care_ratios`)."""
        decision = self.providers.decision
        return (
            decision.intensity,
            decision.need_tilt,
            self.mechanisms.need_classes,
            self.high_need,
            self.population.delivery_noise,
        )

    def care_ratios(self) -> np.ndarray:
        """Each patient's ratio of care delivered to need per discipline under the current decisions.

        ``intensity x delivery noise``, x (1 +/- need tilt) with need classes (high need +).
        The step does not store it: its passes recompute it where they read it.
        """
        decision, pop = self.providers.decision, self.population
        ratio = decision.intensity[pop.provider] * pop.delivery_noise
        if self.mechanisms.need_classes:
            sign = np.where(self.high_need, 1.0, -1.0)[:, None]
            ratio = ratio * (1 + sign * decision.need_tilt[pop.provider])
        return ratio

    def need_units(self, care: dict[str, np.ndarray]) -> np.ndarray:
        """Guideline need per patient and discipline in units this step (units by diagnosis x frailty).

        The step does not store it: its passes read each patient's row of units by diagnosis.
        """
        return care["by_diagnosis"][care["diagnosis_row"]] * self.population.frailty[:, None]

    def _guideline_cost(self, care: dict[str, np.ndarray]) -> np.ndarray:
        """The step's guideline cost per discipline (the need pass's column totals)."""
        return care["cost_total"]

    def _close_books_year(self) -> None:
        """Year end: the risk score's realised R^2, and this year's spending kept for a switch next step."""
        alive = self.population.alive
        if alive.sum() > 1:
            self.realised_r2.append(r_squared(self._year_score[alive], self._year_patient_cost[alive]))
        self._last_year = (self._year_paid.copy(), self._year_spent.copy(), self._year_guideline.copy())
        for acc in (self._year_paid, self._year_spent, self._year_guideline, self._year_score, self._year_patient_cost):
            acc[:] = 0.0

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

    def deliver_care(self) -> dict[str, np.ndarray]:
        """Each patient in need gets care as their providers decided (with noise).

        A rehabilitation provider that shifts care lets the region's home-care provider
        deliver that share instead, at home-care prices (outside a rehab bundle's border).
        With discretionary admissions, this step's candidates are admitted or redirected
        in the same pass (:meth:`_admit`). One compiled pass over the patients
        (:func:`vbpsim.kernels.delivery.deliver`), chunk by chunk with the chunk's admission
        draws, which first takes each patient's need as :meth:`care_need` would (its row of
        the table of units by diagnosis, and the column totals); the patient arrays of the
        returned care are reused by the next step's call.
        """
        pop, table, m = self.population, self.providers, self.mechanisms
        n, buffers = pop.size, self._buffers
        shape = (n, len(DISCIPLINES))
        # The step keeps each patient's row of units by diagnosis: its passes read the need as that x frailty.
        care = {name: buffers.array(name, shape) for name in DELIVERED}
        care["diagnosis_row"] = buffers.array("diagnosis_row", (n,), np.uint8)
        care["by_diagnosis"] = kernels.diagnosis_table(NEED_PER_MONTH, self.months_per_step, pop.conditions.shape[1])
        need_totals = np.zeros((len(kernels.TOTALS), len(DISCIPLINES)))  # the need pass's totals, summed as it delivers
        care["shifted_cost"] = buffers.array("shifted_cost", (n,))
        admitting = m.discretionary_admissions
        sums = np.zeros((7, table.n))  # per hospital: 3 belief sums, 3 observed; per GP: ACS expected
        carry, counters = np.zeros(10), np.zeros(2, dtype=np.int64)  # running totals across the chunks
        decision = table.decision
        factor = self._benefit_factor() if admitting else np.ones(table.n)
        parameters = self._admission_parameters() if admitting else np.zeros(13)
        shift_units = self._shift_units()
        # The admission draws are the admissions stream's random((4, n)), drawn chunk by chunk from
        # copies of the stream advanced to each row (the same numbers, without a 4 x n array).
        row_streams = [self._stream_at("admissions", r * n, slot=r) for r in range(4)] if admitting else []
        for start, stop in patient_chunks(n):
            draws = self._work_array("admission_draws", (4, stop - start if admitting else 0))
            for row, stream in enumerate(row_streams):
                stream.random(out=draws[row])
            # one column per candidate (a few percent of the patients), room for this chunk's
            room = (int(counters[0]), stop - start if admitting else 0)
            values = self._room("admission_values", *room, before=(len(kernels.ADMISSION_VALUES),))
            flags = self._room("admission_flags", *room, np.bool_, before=(len(kernels.ADMISSION_FLAGS),))
            candidates = self._room("admission_index", *room, np.int64)
            kernels.deliver(
                pop.state, pop.conditions, pop.frailty, pop.provider, pop.delivery_noise, self.high_need,
                self._pending_rows, self._pending_units, self.unit_cost,
                decision.intensity, decision.need_tilt, table.need_multiplier, decision.shift, shift_units,
                m.need_classes, m.care_shifting,
                care["diagnosis_row"], care["by_diagnosis"], *(care[name] for name in DELIVERED),
                care["shifted_cost"], admitting, draws, parameters, factor,
                decision.admission, decision.selection, m.prevention, self.prevention_stock,
                m.risk_selection, self.admission_steer_weight,
                values, flags, candidates, sums[:6], sums[6], start, stop, carry, counters, need_totals,
            )  # fmt: skip
        if admitting:
            self._skip(self.streams["admissions"], 4 * n)
        care.update(zip(kernels.TOTALS, need_totals, strict=True))
        totals = carry[0::2] + carry[1::2]  # each running total plus its last block
        care["duplicate_cost"], care["innovation_cost"], acs_expected = float(totals[0]), float(totals[1]), totals[2]
        care["overtreatment_total"], care["withheld_total"] = float(totals[3]), float(totals[4])
        n_candidates = int(counters[0])
        self._pending_rows, self._pending_units = _NO_INDEX, _NO_ROWS  # delivered now
        if admitting:
            self._admit(care, candidates[:n_candidates], values[:, :n_candidates], flags[:, :n_candidates], sums)
            care["acs_expected_total"] = acs_expected
        return care

    def _work_array(self, name: str, shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
        """A C-contiguous work array of ``shape`` on a reused buffer (a last, shorter chunk reuses the others')."""
        size = math.prod(shape)
        return self._buffers.at_least(name, (size,), size, dtype)[:size].reshape(shape)

    def _room(
        self, name: str, count: int, chunk: int, dtype: type = np.float64, before: tuple = (), after: tuple = ()
    ) -> np.ndarray:
        """A buffer of listed patients, shape ``before + (listed,) + after``, with room for ``chunk`` after ``count``.

        For what a chunked pass lists (admission candidates, failed hand-offs, readmissions:
        a few percent of the patients): grown as the chunks need it, with a chunk's room to
        spare, up to one entry per patient; the first ``count`` kept; reused next step.
        """
        capacity = min(self.population.size, count + 2 * chunk)
        shape = (*before, capacity, *after)
        return self._buffers.at_least(name, shape, count + chunk, dtype, axis=len(before), keep=count)

    def contract_year(self) -> int:
        """Years since the contract relationship began (0 = first), across renewals, so glide paths run on."""
        return (self.step_index - self.contract_start) // self.steps_per_year

    def contract_length(self) -> int:
        """Length in years of the contract in force (0 = open-ended; the status quo always is)."""
        in_history = self.history_steps > 0 and self.contract_start == 0
        return 0 if in_history else self.study_length_years

    def _contract_elapsed_years(self) -> float:
        """Years into the current contract period after this step."""
        length = self.contract_length()
        return (self.step_index + 1 - self.contract_start) / self.steps_per_year % length

    def close_periods(self, obs: Observation) -> None:
        """Year end: reset patients' stop-loss accumulators; contract end: rebase historical cost.

        Rebasing the historical benchmark on the spending of the contract just ended is the
        ratchet of Cattel et al. 2018, Section 4.2.3.1.
        """
        self.period_cost += obs.cost
        self.period_steps += 1
        year_end = (self.step_index + 1) % self.steps_per_year == 0
        self._year_to_date(obs)
        if year_end:
            self.year_to_date_cost[:] = 0.0
            self.provider_ytd = self._no_year_to_date()
            risk, discharges = self.year_readmission_risk
            if discharges > 0:
                self.reference_readmission_rate = risk / discharges
            self.year_readmission_risk = np.zeros(2)
        length = self.contract_length()
        years_in = (self.step_index + 1 - self.contract_start) // self.steps_per_year
        if year_end and length > 0 and years_in % length == 0:
            self.historical_cost = self.spending_markup * self.period_cost / self.period_steps
            self.period_cost = np.zeros(self.providers.n)
            self.period_steps = 0

    def rebase_weight(self) -> float:
        """Share of a provider's planning horizon after the next benchmark rebase (0 if never)."""
        length = self.contract_length()
        horizon = self.planning_horizon()
        if length <= 0:
            return 0.0
        elapsed = self._contract_elapsed_years()
        return float(np.clip((horizon - (length - elapsed)) / horizon, 0.0, 1.0))

    def outlier_threshold(self, care: dict[str, np.ndarray]) -> np.ndarray:
        """Per-discipline monthly cost above which a patient's care counts as outlier cost."""
        if "outlier_threshold" not in care:
            mean_case = care["cost_total"] / np.maximum(care["in_care_count"], 1)
            care["outlier_threshold"] = self.config.purchaser.outlier_threshold * mean_case
        return care["outlier_threshold"]

    def _stream_at(self, name: str, draws: int, slot: int = 0) -> np.random.Generator:
        """A copy of the stream ``name`` that has drawn ``draws`` more numbers (the stream is untouched).

        Chunked passes draw each chunk's numbers from such copies; a copy's generator is
        reused (one per stream and ``slot``), and dropped with the work arrays on copy and pickle.
        """
        stream = self.streams[name]
        copy = self._buffers.generator(f"{name} stream, copy {slot}", stream)
        copy.bit_generator.state = stream.bit_generator.state
        copy.bit_generator.advance(draws)
        return copy

    @staticmethod
    def _skip(stream: np.random.Generator, draws: int) -> None:
        """Move ``stream`` on as if it had drawn ``draws`` floats (what its advanced copies drew).

        ``advance`` alone would also drop the half of a 64-bit draw that ``integers`` keeps
        for its next 32-bit number, which drawing floats leaves alone.
        """
        bit_generator = stream.bit_generator
        state = bit_generator.state
        bit_generator.advance(draws)
        if state["has_uint32"]:
            bit_generator.state = {**bit_generator.state, "has_uint32": 1, "uinteger": state["uinteger"]}

    def _shift_units(self) -> float:
        """Home-care units that replace one shifted rehabilitation unit."""
        return float(self.unit_cost[REHAB] / self.unit_cost[NURSING] * (1 + self.config.shifting.shift_inefficiency))

    def observe(self, care: dict[str, np.ndarray]) -> Observation:
        """What the purchaser sees of each provider this step (one compiled pass over the patients)."""
        sums = self._patient_sums(care, full=True)
        normative = self._observe_normative(care, sums)
        table = self.providers
        rows = np.arange(table.n)
        units = sums[kernels.UNITS]
        services = np.zeros((table.n, len(DISCIPLINES)))
        services[rows, table.discipline] = units
        cases = sums[kernels.IN_CARE]
        met = sums[kernels.MET]
        noise_sd = self.config.purchaser.quality_measurement_noise
        if self.config.context.trusted_data_party:
            noise_sd = noise_sd / 2
        noise = self.streams["measurement"].normal(0.0, noise_sd, table.n)
        adherence = np.divide(met, cases, out=np.ones_like(met), where=cases > 0)
        if self.mechanisms.multitasking:
            adherence = 0.5 * adherence + 0.5 * task_value(table.decision.effort[:, MEASURED])
        self.need_history.append(sums[kernels.NEED].copy())
        case_value = sums[kernels.CASE_VALUE]
        outside_cost = np.zeros(table.n)
        if "admission_by_hospital" in care:  # each discretionary admission is a case of its own
            admitted_cases, admitted_value, units_out = care["admission_by_hospital"]
            cases = cases + admitted_cases
            case_value = case_value + admitted_value
            outside_cost = units_out * self.unit_cost[HOSPITAL]  # redirected episodes, at the redirecting hospital
        case_mix = np.zeros((table.n, len(DISCIPLINES)))
        case_mix[rows, table.discipline] = case_value
        cost = care_cost(units, table.capacity, table.unit_cost, self.config.providers.overtime_premium)
        cost_mix = np.zeros((table.n, len(DISCIPLINES)))
        cost_mix[rows, table.discipline] = cost
        expected_mix = np.zeros((table.n, len(DISCIPLINES)))
        expected_mix[rows, table.discipline] = normative["expected_cost"]
        return Observation(
            months=self.months_per_step,
            services=services,
            unit_cost=self.unit_cost,
            cases=cases,
            case_value=case_value,
            case_mix=case_mix,
            outlier_cost=sums[kernels.OUTLIER],
            member_months=normative["member_months"],
            expected_cost=normative["expected_cost"],
            average_cost=normative["average_cost"],
            baseline_cost=self.baseline_cost.copy(),
            cost=cost,
            measured_quality=np.clip(adherence + noise, 0, 1),
            cost_mix=cost_mix,
            expected_mix=expected_mix,
            historical_cost=self.historical_cost.copy(),
            stoploss_excess=sums[kernels.STOPLOSS],
            investment=self._take_investment(),
            outside_cost=outside_cost,
            year=self.contract_year(),
            month_of_year=((self.step_index - self.contract_start) % self.steps_per_year) * self.months_per_step,
            **self._measured_outcomes(),
            **{name: value.copy() for name, value in self.provider_ytd.items()},
        )

    def _take_investment(self) -> np.ndarray:
        """Up-front costs incurred since the last observation (shown once, then cleared)."""
        investment, self.pending_investment = self.pending_investment, np.zeros(self.providers.n)
        return investment

    def update_health(self, care: dict[str, np.ndarray]) -> dict[str, float]:
        """Health transitions, with the care received changing the hazards (compiled passes).

        The pass is split where the random draws depend on its first half: the step's two
        draws of one number per patient feed :func:`~vbpsim.kernels.health.transitions`;
        readmissions are then routed, and :func:`~vbpsim.kernels.health.after_routing`
        finishes the step on the condition-onset draws. Both run chunk by chunk
        (``PATIENT_CHUNK`` patients), each chunk's draws from copies of the ``health``
        stream advanced to it: the same numbers as drawing them whole, without the arrays.
        """
        pop, clinical = self.population, self.config.clinical
        dt, months = self.dt_years, self.months_per_step
        rng = self.streams["health"]
        table = self.providers
        n = pop.size
        qol_table = qol_by_state(clinical)
        rates = np.array(
            [
                clinical.case_fatality,
                clinical.post_acute_mortality,
                clinical.disabled_mortality,
                clinical.recovery_rate,
                clinical.disability_rate,
            ]
        )
        monthly = 1 - (1 - rates) ** months  # per step
        p_fail = np.full(table.n, HANDOFF_FAILURE)  # by sender
        if self.mechanisms.coordination:
            effect = (
                self.timeliness
                * self.config.effort.coordination_effect
                * task_value(table.decision.effort[:, COORDINATION])
            )
            p_fail = HANDOFF_FAILURE * (1 - effect)
        state = pop.state
        new_state = np.empty_like(state)
        strokes, dies = np.empty(n, dtype=bool), np.empty(n, dtype=bool)
        # the benefit of care in the GP discipline and in the lead discipline of the new state
        gp_benefit, after_benefit = self._buffers.array("gp_benefit", (n,)), self._buffers.array("after_benefit", (n,))
        qol, base_stroke = self._buffers.array("qol", (n,)), self._buffers.array("stroke_hazard", (n,))
        events = self._buffers.array("events", (n,), np.uint8)
        p_background = self._buffers.array("p_background", (n,))
        per_sender = np.zeros((5, table.n))
        eff = self.config.effort
        intensity, need_tilt, need_classes, high_need, delivery_noise = self._style()
        passed = dict(
            state=state,
            age=pop.age,
            conditions=pop.conditions,
            provider=pop.provider,
            frailty=pop.frailty,
            intensity=intensity,  # the care ratio as delivered (decisions change after the health step)
            need_tilt=need_tilt,
            need_classes=need_classes,
            high_need=high_need,
            delivery_noise=delivery_noise,
            p_background=p_background,
            prevention_stock=self.prevention_stock,
            benefit_factor=self._benefit_factor(),
            p_fail_of=p_fail,
            handoff_receiver=self.handoff_receiver,
            discipline=table.discipline,
            lead_discipline=LEAD_DISCIPLINE,
            need_per_month=NEED_PER_MONTH,
            duplicate_share=DUPLICATE_SHARE,
            readmission_after_failure=READMISSION_AFTER_FAILURE,
            overtreatment_harm=clinical.overtreatment_harm,
            harm=clinical.undertreatment_harm,
            qol_table=qol_table,
            qol_care_weight=clinical.qol_care_weight,
            stroke_rate_60=clinical.stroke_rate_60,
            condition_hr=np.array([clinical.stroke_hr[c] for c in CONDITIONS]),
            monthly=monthly,
            dt=dt,
            months=months,
            prevention=self.mechanisms.prevention,
            prevention_efficacy=eff.prevention_efficacy,
            gp_benefit=gp_benefit,
            after_benefit=after_benefit,
            qol_out=qol,
            base_stroke=base_stroke,
            strokes=strokes,
            dies=dies,
            new_state=new_state,
            events=events,
            per_provider=per_sender,
        )
        sums = np.zeros(len(health_kernels.TRANSITION_TOTALS))
        counters, age_range = np.zeros(2, dtype=np.int64), np.array([np.inf, -np.inf])  # carried across chunks
        # The step's draws u = random(n) and u_handoff = random(n), chunk by chunk from copies of the stream.
        u_stream, handoff_stream = self._stream_at("health", 0), self._stream_at("health", n, slot=1)
        for start, stop in patient_chunks(n):
            u = u_stream.random(out=self._work_array("u", (stop - start,)))
            u_handoff = handoff_stream.random(out=self._work_array("u_handoff", (stop - start,)))
            # The age terms in bulk: numpy's vectorised power and exp cost a fraction of a loop's calls.
            rows = slice(start, stop)
            by_age = pop.stroke_age_factor(clinical, out=self._work_array("by_age", (stop - start,)), rows=rows)
            chunk_background = pop.background_mortality(clinical, out=p_background[rows], rows=rows)
            np.multiply(chunk_background, -dt, out=chunk_background)  # 1 - exp(-hazard * dt), in place
            np.subtract(1, np.exp(chunk_background, out=chunk_background), out=chunk_background)
            # the failed hand-offs and readmissions (a few patients) so far, with room for this chunk's
            room = (int(counters[1]), stop - start)
            readmitted = self._room("readmitted", int(counters[0]), stop - start, np.int64)
            pending_rows = self._room("pending_rows", *room, np.int64)
            pending_units = self._room("pending_units", *room, after=(len(DISCIPLINES),))
            health_kernels.transitions(
                **passed,
                by_age=by_age,
                u=u,
                u_handoff=u_handoff,
                pending_rows=pending_rows,
                pending_units=pending_units,
                readmitted=readmitted,
                start=start,
                stop=stop,
                totals=sums,
                counters=counters,
                age_range=age_range,
            )
        self._skip(rng, 2 * n)
        (n_readmitted, n_pending), (youngest, oldest) = counters.tolist(), age_range.tolist()
        # duplicated work after failed hand-offs, delivered next step (a few patients: kept as a list)
        self._pending_rows, self._pending_units = pending_rows[:n_pending].copy(), pending_units[:n_pending].copy()
        totals = {k: float(v) for k, v in zip(health_kernels.TRANSITION_TOTALS, sums, strict=True)}
        care.update(gp_benefit=gp_benefit, after_benefit=after_benefit, stroke_hazard=base_stroke, qol=qol)
        care.update(strokes=strokes, dies=dies)
        care["state_before"] = state
        self._route_readmissions(readmitted[:n_readmitted], rng)
        self._learn_handoffs(
            per_sender[health_kernels.HANDOFFS],
            per_sender[health_kernels.FAILURE_UNITS],
            per_sender[health_kernels.FAILURES],
        )
        target = np.zeros(table.n)
        buildup = 0.0
        if self.mechanisms.prevention:
            target = task_value(table.decision.effort[:, PREVENTION])
            buildup = 1 - np.exp(-eff.prevention_buildup * dt)
        per_lead = np.zeros((6, table.n))
        second = np.zeros(len(health_kernels.ROUTED_TOTALS))
        # the onset draws random((n, conditions)), chunk by chunk from a copy of the stream
        onset_stream, n_conditions = self._stream_at("health", 0), pop.conditions.shape[1]
        for start, stop in patient_chunks(n):
            health_kernels.after_routing(
                state_before=state,
                new_state=new_state,
                age=pop.age,
                conditions=pop.conditions,
                onset_draws=onset_stream.random(out=self._work_array("onset_draws", (stop - start, n_conditions))),
                provider=pop.provider,
                gp_benefit=gp_benefit,
                after_benefit=after_benefit,
                base_stroke=base_stroke,
                qol_out=qol,
                p_background=p_background,
                dies=dies,
                events=events,
                prevention_stock=self.prevention_stock,
                lead_discipline=LEAD_DISCIPLINE,
                condition_incidence=self.config.population.condition_incidence,
                condition_odds_per_decade=self.config.population.condition_odds_per_decade,
                youngest=youngest,
                oldest=oldest,
                dt=dt,
                months=months,
                prevention=self.mechanisms.prevention,
                buildup=buildup,
                prevention_target=target,
                prevention_efficacy=eff.prevention_efficacy,
                innovation=self.mechanisms.innovation,
                benefit_gain=table.benefit_gain,
                qol_table=qol_table,
                qol_care_weight=clinical.qol_care_weight,
                harm=clinical.undertreatment_harm,
                monthly=monthly,
                reference_readmission_rate=float(self.reference_readmission_rate),
                per_provider=per_lead,
                start=start,
                stop=stop,
                totals=second,
            )
        self._skip(rng, n * n_conditions)
        if not self.mechanisms.innovation:  # without innovations, the outcomes without them are the outcomes
            second[3:6] = second[0:3]
        pop.state = new_state
        self._count_outcomes(per_sender, per_lead, totals["readmission_risk"], totals["handoffs"])
        routed = {k: float(v) for k, v in zip(health_kernels.ROUTED_TOTALS, second, strict=True)}
        accounts = self._health_accounts(routed, totals)
        qalys = totals["qol"] * dt
        if "admission_qalys" in care:
            qalys += float(care["admission_qalys"].sum())
        return {
            **accounts,
            "qalys": qalys,
            "strokes": totals["strokes"],
            "deaths": totals["deaths"],
            "stroke_hazard": totals["stroke_hazard"],
            "stroke_hazard_untreated": totals["stroke_hazard_untreated"],
            "stroke_hazard_guideline": totals["stroke_hazard_guideline"],
            "handoffs": totals["handoffs"],
            "handoff_failures": totals["handoff_failures"],
            "readmissions": totals["readmissions"],
            "readmission_risk": totals["readmission_risk"],
            "prom_score": totals["qol"] / max(totals["guideline_qol"], 1e-12),
            "true_quality": totals["lead_benefit"] / totals["alive"] if totals["alive"] > 0 else 0.0,
        }

    def _route_readmissions(self, who: np.ndarray, rng: np.random.Generator) -> None:
        """A share of readmissions is admitted by another region's hospital, which keeps the follow-up.

        ``who``: the readmitted patients' indices, ascending. Part of the coordination
        mechanism: with it off, readmissions return to the patient's own hospital (the core model).
        """
        share = self.config.effort.readmission_elsewhere
        hospitals = np.flatnonzero(self.providers.discipline == HOSPITAL)
        if not self.mechanisms.coordination or share <= 0 or len(hospitals) < 2 or len(who) == 0:
            return
        elsewhere = who[rng.random(len(who)) < share]
        if len(elsewhere) == 0:
            return
        current = np.searchsorted(hospitals, self.population.provider[elsewhere, HOSPITAL])
        offset = rng.integers(1, len(hospitals), len(elsewhere))
        self.population.provider[elsewhere, HOSPITAL] = hospitals[(current + offset) % len(hospitals)]

    def event_values(self, mean_qol: float | None = None) -> dict[str, float]:
        """Health (QALYs within the run's remaining horizon) and care cost (EUR) of one event.

        Used to value expected events in the NMB accounts: a death loses the mean quality
        of life over the remaining years; a stroke loses the acute month, the post-acute
        phase and, for the share disabled, the disabled years, plus the case fatality's
        deaths; a readmission loses an acute month against the post-acute one plus the
        case fatality's deaths. Costs are the expected episode units at unit cost.
        These are approximations: what they miss stays in the accounts' remainder.
        ``mean_qol``: the living's mean quality of life at guideline care when the caller
        has summed it already (computed from the population otherwise).
        """
        c = self.config.clinical
        remaining = max((self.n_steps - self.step_index) * self.dt_years, 0.0)
        qol = c.qol
        if mean_qol is None:
            alive = self.population.alive
            mean_qol = float(np.mean([qol["healthy"], qol["chronic"]])) if not alive.any() else 0.0
            if alive.any():
                mean_qol = float(qol_by_state(c)[self.population.state[alive]].mean())
        death = mean_qol * remaining
        months = self.months_per_step
        per_step = 1 - (1 - np.array([c.recovery_rate, c.disability_rate, c.post_acute_mortality])) ** months
        post_years = min(1.0 / max(per_step.sum(), 1e-9) * self.dt_years, remaining)
        p_disabled = per_step[1] / max(per_step.sum(), 1e-9)
        survive = 1 - c.case_fatality
        acute = (qol["chronic"] - qol["acute"]) * self.dt_years
        stroke = (
            acute
            + survive * post_years * (qol["chronic"] - qol["post_acute"])
            + survive * p_disabled * max(remaining - post_years, 0.0) * (qol["chronic"] - qol["disabled"])
            + c.case_fatality * death
        )
        readmission = (qol["post_acute"] - qol["acute"]) * self.dt_years + c.case_fatality * death
        return {
            "death": death,
            "stroke": stroke,
            "readmission": readmission,
            "stroke_cost": float((self.episode_units * self.unit_cost).sum()),
            "readmission_cost": float(NEED_PER_MONTH[ACUTE, HOSPITAL] * months * self.unit_cost[HOSPITAL]),
        }

    def _health_accounts(self, routed: dict[str, float], totals: dict[str, float]) -> dict[str, float]:
        """Expected health and cost consequences of the step by value dimension (NMB accounts, EUR).

        ``acc_care_harm``: health lost to care below (or beyond) the optimum, innovations'
        benefit excluded; ``acc_care_harm_innovated``: the same with it (their QALY effect);
        ``acc_prevented``: strokes the prevention stock averts at guideline GP care (its
        interaction with inadequate GP care is left to the remainder); ``acc_readmission``:
        expected readmissions after failed hand-offs. Each values QALYs at the willingness
        to pay and adds the care cost of the events it causes or averts. ``routed``: the
        sums of :func:`~vbpsim.kernels.health.after_routing` (over the states after the
        step); ``totals``: those of :func:`~vbpsim.kernels.health.transitions`.
        """
        clinical = self.config.clinical
        wtp, dt = clinical.willingness_to_pay, self.dt_years
        alive = routed["alive"]
        values = self.event_values(routed["guideline_qol"] / alive if alive > 0 else None)
        stroke_value = wtp * values["stroke"] + values["stroke_cost"]

        def care_harm(direct: float, deaths: float, strokes: float) -> float:
            return wtp * (direct * dt + deaths * values["death"]) + strokes * stroke_value

        prevented = routed["prevented"] * dt if self.mechanisms.prevention else 0.0
        readmissions = totals["handoff_failure_risk"] * READMISSION_AFTER_FAILURE
        return {
            "acc_care_harm": care_harm(routed["direct_without"], routed["deaths_without"], routed["strokes_without"]),
            "acc_care_harm_innovated": care_harm(routed["direct"], routed["deaths"], routed["strokes"]),
            "acc_prevented": prevented * stroke_value,
            "strokes_prevented": prevented,
            "acc_readmission": readmissions * (wtp * values["readmission"] + values["readmission_cost"]),
            "expected_readmissions": readmissions,
        }

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

    def patients_choose(self, care: dict[str, np.ndarray]) -> None:
        """Patients update their experience of GP care, may switch GP, or are steered away."""
        pop = self.population
        rng = self.streams["choice"]
        table = self.providers
        n, steering = pop.size, self.mechanisms.risk_selection
        p_steer = np.zeros(table.n)  # (not read without risk selection)
        if steering:
            sel = self.config.selection
            p_steer = table.decision.selection * sel.steer_rate * sel.steer_success * self.dt_years
        self.steered = np.empty(n, dtype=bool)
        reputation, panel = np.zeros(table.n), np.zeros(table.n)
        passed = dict(
            state=pop.state,
            provider=pop.provider,
            experience=pop.experience,
            gp_benefit=care["gp_benefit"],
            diagnosis_row=care["diagnosis_row"],
            gp_by_diagnosis=np.ascontiguousarray(care["by_diagnosis"][:, GP]),
            frailty=pop.frailty,
            switch_scale=self.config.population.switch_rate,
            per_year=12 / self.steps_per_year,
            steering=steering,
            p_steer_of=p_steer,
            steer_weight=self.steer_weight,
            unprofitable=self.unprofitable,
            steered=self.steered,
            reputation=reputation,
            panel=panel,
        )
        # The draws random(n) of the choice stream (and of the selection stream when steering), chunk by chunk.
        switch_stream = self._stream_at("choice", 0)
        steer_stream = self._stream_at("selection", 0) if steering else switch_stream
        counters = np.zeros(2, dtype=np.int64)  # movers and steered so far
        for start, stop in patient_chunks(n):
            u_switch = switch_stream.random(out=self._work_array("u_switch", (stop - start,)))
            u_steer = steer_stream.random(out=self._work_array("u_steer", (stop - start,))) if steering else u_switch
            moving = self._room("moving", int(counters[0]), stop - start, np.int64)
            health_kernels.choose(
                **passed, u_switch=u_switch, u_steer=u_steer, moving=moving, start=start, stop=stop, counters=counters
            )
        self._skip(rng, n)
        if steering:
            self._skip(self.streams["selection"], n)
        n_moving, n_steered = counters.tolist()
        moving = moving[:n_moving]
        gps = np.flatnonzero(table.discipline == GP)
        if n_moving > 0 and len(gps) > 1:
            panel = panel[gps]
            score = np.divide(reputation[gps], panel, out=np.full(len(gps), 0.8), where=panel > 0)
            weights = np.exp(20 * (score - score.max()))
            cumulative = np.cumsum(weights / weights.sum())
            choice = np.minimum(np.searchsorted(cumulative, rng.random(n_moving)), len(gps) - 1)
            if n_steered > 0:  # a steered patient goes elsewhere: never back to the GP who steered
                stay = self.steered[moving] & (gps[choice] == pop.provider[moving, GP])
                choice = np.where(stay, (choice + 1) % len(gps), choice)
            pop.provider[moving] = self.gp_chains[choice]

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
