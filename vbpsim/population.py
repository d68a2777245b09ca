"""Patients: individuals with their own state and rules, stored as numpy arrays, and their dynamics.

Each patient has an age, chronic conditions (stroke risk factors), a lognormal cost risk
split into a part the purchaser can observe and a private part that providers partly
see (their information advantage, Cattel et al. 2018 Section 4.2.4), a health state
(healthy, chronic, acute stroke, post-acute, disabled, dead), a provider in each
discipline of the care chain, and an experience of care that drives switching. Every rule
runs over all patients in a compiled pass (:mod:`vbpsim.kernels`), each patient by its own
state, so 10^6 patients stay practical. :class:`Population` holds the patients;
:class:`PatientDynamics` is the patients' side of the model's step.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .care import (  # noqa: F401  (re-exported: the population's states and need table)
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
    NEED_PER_MONTH,
    NURSING,
    POST_ACUTE,
    PREVENTION,
    READMISSION_AFTER_FAILURE,
    REHAB,
    care_benefit,
    qol_by_state,
    task_value,
)
from .kernels import delivery as kernels
from .kernels import health as health_kernels
from .parameters import CONDITIONS, DISCIPLINES, ClinicalParams, PopulationParams

if TYPE_CHECKING:
    from .agents import ProviderTable
    from .parameters import MechanismParams, Scenario
    from .risk import RiskModel


@dataclass
class Population:
    """All patients as parallel arrays; index i is one individual throughout the run."""

    age: np.ndarray
    conditions: np.ndarray  # (n, 3) bool
    state: np.ndarray  # int8, HEALTH_STATES index
    log_risk_observable: np.ndarray
    log_risk_private: np.ndarray
    provider_view_private: np.ndarray  # providers' noisy reading of the private part
    # (n, 4) uint32: the patient's provider in each discipline (GP's chain); unsigned, so the
    # compiled passes index arrays with it without a negative-index check (3-9% faster passes)
    provider: np.ndarray
    delivery_noise: np.ndarray  # (n, 4) persistent patient-level response to practice style
    experience: np.ndarray  # moving average of care benefit received, 0..1

    @classmethod
    def generate(
        cls,
        params: PopulationParams,
        clinical: ClinicalParams,
        gp_chains: np.ndarray,
        rng: np.random.Generator,
    ) -> Population:
        """Draw a population from the scenario's distributions."""
        n = params.n_patients
        age = np.clip(rng.normal(params.age_mean, params.age_sd, n), params.age_min, params.age_max)
        prevalence = np.array(
            [
                params.hypertension_prevalence_60,
                params.diabetes_prevalence_60,
                params.atrial_fibrillation_prevalence_60,
            ]
        )
        odds60 = prevalence / np.maximum(1 - prevalence, 1e-12)
        odds = odds60[None, :] * params.condition_odds_per_decade ** ((age[:, None] - 60) / 10)
        conditions = rng.random((n, len(CONDITIONS))) < odds / (1 + odds)
        var_obs = params.risk_sd**2 * (1 - params.private_risk_share)
        var_priv = params.risk_sd**2 * params.private_risk_share
        log_obs = rng.normal(-var_obs / 2, np.sqrt(var_obs), n)
        log_priv = rng.normal(-var_priv / 2, np.sqrt(var_priv), n)
        noise_sd = params.provider_signal_noise
        view = log_priv + rng.normal(-(noise_sd**2) / 2, noise_sd, n)  # unbiased in exp: E[e^view] = e^priv
        provider = gp_chains[rng.integers(0, len(gp_chains), n)]
        sigma = clinical.delivery_noise
        noise = np.exp(rng.normal(-(sigma**2) / 2, sigma, (n, len(DISCIPLINES))))
        state = np.where(conditions.any(axis=1), CHRONIC, HEALTHY).astype(np.int8)
        by_age = clinical.stroke_hr_per_decade ** ((age - 60) / 10)
        history = rng.random(n)
        p_post_acute = np.minimum(params.post_acute_prevalence_60 * by_age, 1.0)
        p_disabled = np.minimum(params.disabled_prevalence_60 * by_age, 1.0 - p_post_acute)
        state[history < p_post_acute] = POST_ACUTE
        state[(history >= p_post_acute) & (history < p_post_acute + p_disabled)] = DISABLED
        return cls(
            age=age,
            conditions=conditions,
            state=state,
            log_risk_observable=log_obs,
            log_risk_private=log_priv,
            provider_view_private=view,
            provider=provider.astype(np.uint32),
            delivery_noise=noise,
            experience=np.full(n, 0.8),
        )

    @property
    def size(self) -> int:
        """Number of individuals ever in the population (alive or dead)."""
        return int(self.age.shape[0])

    @property
    def alive(self) -> np.ndarray:
        """Mask of living patients."""
        return self.state != DEAD

    def __post_init__(self) -> None:
        self.frailty = np.exp(self.log_risk_observable + self.log_risk_private)
        self.perceived_risk = np.exp(self.log_risk_observable + self.provider_view_private)  # providers' view

    def diagnosis_need(self) -> np.ndarray:
        """Guideline need per month of an average-risk patient in the same state and diagnoses."""
        shape, k = (self.size, len(DISCIPLINES)), len(DISCIPLINES)
        need, out, cost, totals = np.empty(shape), np.empty(shape), np.empty(shape), np.empty((3, k))
        # the need pass for a month at unit prices and average risk: its diagnosis price is this need
        frailty, unit_cost = np.ones(self.size), np.ones(k)
        no_rows = np.empty(0, dtype=np.uint8)
        kernels.care_need(
            self.state, self.conditions, frailty, NEED_PER_MONTH, 1.0, unit_cost, need, out, cost, no_rows, totals
        )
        return out

    def stroke_hazard(self, clinical: ClinicalParams) -> np.ndarray:
        """Yearly stroke hazard before care effects, for those who can have one."""
        hr = np.array([clinical.stroke_hr[c] for c in CONDITIONS])
        by_conditions = np.prod(np.where(self.conditions, hr[None, :], 1.0), axis=1)
        at_risk = (self.state == HEALTHY) | (self.state == CHRONIC)
        return np.where(at_risk, clinical.stroke_rate_60 * self.stroke_age_factor(clinical) * by_conditions, 0.0)

    def stroke_age_factor(
        self, clinical: ClinicalParams, out: np.ndarray | None = None, rows: slice = slice(None)
    ) -> np.ndarray:
        """Stroke hazard ratio of each patient's age (of ``rows``) against age 60 (into ``out`` if given)."""
        years = np.subtract(self.age[rows], 60, out=out)
        return np.power(clinical.stroke_hr_per_decade, np.divide(years, 10, out=years), out=years)

    def background_mortality(
        self, clinical: ClinicalParams, out: np.ndarray | None = None, rows: slice = slice(None)
    ) -> np.ndarray:
        """Yearly other-cause mortality hazard (Gompertz) of each patient (of ``rows``; into ``out`` if given)."""
        hazard = np.subtract(self.age[rows], 60, out=out)
        np.multiply(clinical.mortality_gompertz_slope, hazard, out=hazard)
        return np.multiply(clinical.background_mortality_60, np.exp(hazard, out=hazard), out=hazard)


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


class ModelParts:
    """Base of the model's parts (mixins): what they read from the model through ``self``, declared once."""

    if TYPE_CHECKING:
        population: Population
        providers: ProviderTable
        config: Scenario
        mechanisms: MechanismParams
        streams: dict[str, np.random.Generator]
        risk_model: RiskModel
        unit_cost: np.ndarray
        prevention_stock: np.ndarray
        high_need: np.ndarray
        step_index: int
        dt_years: float
        months_per_step: float
        steps_per_year: int
        _buffers: kernels.Buffers


class PatientDynamics(ModelParts):
    """The patients' side of a step, as methods of the model (a mixin of :class:`vbpsim.model.VBPModel`).

    Need, delivery and discretionary admissions, health transitions with their outcomes and
    health accounts, and the patients' choice of GP: each drives a compiled pass over the
    :class:`Population` (:mod:`vbpsim.kernels`) chunk by chunk, with the pass's random
    draws from copies of the model's streams and its work arrays reused step to step.
    ``VBPModel`` keeps the order of a step and calls these; they read the model's providers,
    decisions, mechanisms and streams through ``self`` (the model), so this module imports
    nothing above it (care <- population <- agents <- model).
    """

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
