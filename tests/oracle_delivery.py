"""Oracle mixin: the numpy delivery methods of VBPModel before compilation (commit 1bcaa63).

The methods below are copied verbatim. Two numpy functions the model reached through other
objects are kept here as well, because those objects now call the compiled passes:
``Population.diagnosis_need`` (read by ``care_need``) and ``RiskModel.scores`` (read by
``_risk_scores``); the two call sites name the copies instead (marked ``# oracle:``).
"""

from __future__ import annotations

import numpy as np

from vbpsim.care import (
    CHRONIC,
    GP,
    HEALTHY,
    HOSPITAL,
    MEASURED,
    NEED_PER_MONTH,
    NURSING,
    QUALITY_STANDARD,
    REHAB,
    care_benefit,
    care_cost,
    task_value,
)
from vbpsim.parameters import DISCIPLINES
from vbpsim.population import Population
from vbpsim.risk import RiskModel
from vbpsim.schemes import Observation


def diagnosis_need(pop: Population) -> np.ndarray:
    """Guideline need of an average-risk patient in the same state and diagnoses."""
    chronic = pop.state == CHRONIC
    extra_conditions = np.where(chronic, pop.conditions.sum(axis=1) - 1, 0)
    base = NEED_PER_MONTH[pop.state]
    base[:, :2] += extra_conditions[:, None] * NEED_PER_MONTH[CHRONIC, :2]
    base[:, 0] += np.where(chronic, NEED_PER_MONTH[HEALTHY, 0], 0.0)
    return base


def risk_scores(model: RiskModel, cost: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """Predicted cost per patient and discipline (0 for the dead), before calibration to totals."""
    if len(model.edges) == 0:
        predicted = np.broadcast_to(model.cell_means[0], cost.shape)
    else:
        total = cost.sum(axis=1)
        signal = model._signal(total, np.arange(len(total)), model.sigma)
        predicted = model._predict(signal, model.edges, model.cell_means)
        if model.blend > 0:
            predicted = model.blend * cost + (1 - model.blend) * predicted
    return np.where(alive[:, None], predicted, 0.0)


class DeliveryOracle:
    """Numpy delivery methods (verbatim from commit 1bcaa63) that override the compiled ones."""

    # The numpy formulation keeps the pending duplicates as one dense array (a plain attribute
    # shadowing VBPModel's property, which keeps them as a list of the patients concerned).
    pending_duplicates: np.ndarray | None = None

    def _admit(self, care: dict[str, np.ndarray]) -> None:
        """Discretionary admissions of this step: candidates arise, hospitals admit and redirect.

        Each candidate has an appropriateness rank u ~ U(0, 1); its hospital admits it when
        u is below the hospital's chosen admission share. Admission gains it
        ``admission_qaly_gain`` x 2 (1 - u / appropriate_share) QALYs (a loss beyond the
        appropriate share). A hospital with selection effort redirects an admitted planned
        episode of a patient it expects to lose money on with probability selection x how
        unprofitable it looks; the episode is treated outside the region (the purchaser pays
        its cost, the hospital's books do not carry it, the observation reports it as the
        hospital's ``outside_cost`` for contracts that charge it back) and the patient loses
        ``selection.redirect_harm`` of its gain (delay, travel). ACS admissions are unplanned
        and strokes are emergencies: neither can be redirected.
        """
        pop, table, c = self.population, self.providers, self.config.clinical
        benefit = self._provider_benefit(care_benefit(care["ratio"], c.overtreatment_harm))[:, GP]
        planned_rate, acs_rate = self._admission_rates(benefit)
        p_acs = 1 - np.exp(-acs_rate * self.dt_years)
        draws = self.streams["admissions"].random((4, pop.size))
        acs = draws[1] < p_acs
        planned = (draws[0] < 1 - np.exp(-planned_rate * self.dt_years)) & ~acs
        candidate = planned | acs
        hospital = pop.provider[:, HOSPITAL]
        rank = draws[2]
        admitted = candidate & (rank < table.decision.admission[hospital])
        redirected = np.zeros(pop.size, dtype=bool)
        if self.mechanisms.risk_selection:
            redirect_p = table.decision.selection[hospital] * self.admission_steer_weight
            redirected = planned & admitted & (draws[3] < redirect_p)
        here = admitted & ~redirected
        units = c.admission_units * pop.frailty
        care["delivered"][:, HOSPITAL] += np.where(here, units, 0.0)
        gain = c.admission_qaly_gain * 2 * (1 - rank / c.admission_appropriate_share)
        harm = self.config.selection.redirect_harm
        care["admission_cases"] = here.astype(float)
        care["admission_value"] = np.where(here, self._admission_price(pop.frailty), 0.0)
        care["admission_guideline"] = np.where(candidate & (rank < c.admission_appropriate_share), units, 0.0)
        care["admission_here_units"] = np.where(here, units, 0.0)
        care["admission_low_value_units"] = np.where(here & (rank >= c.admission_appropriate_share), units, 0.0)
        care["admission_qalys"] = np.where(admitted, gain * (1 - harm * redirected), 0.0)
        care["redirected"] = redirected
        care["redirected_units"] = np.where(redirected, units, 0.0)
        care["planned_admitted"] = planned & admitted
        care["acs_admitted"] = acs & admitted
        care["acs_expected"] = p_acs
        care["admission_candidates"] = candidate
        rate = self.config.providers.learning_rate
        self.admission_belief += rate * (self._admission_sums(candidate.astype(float)) - self.admission_belief)
        acs_at_gp = np.bincount(pop.provider[:, GP], weights=p_acs, minlength=table.n)
        self.acs_belief += rate * (acs_at_gp - self.acs_belief)

    def care_need(self) -> dict[str, np.ndarray]:
        """Guideline need per patient and discipline: by diagnosis and in person.

        ``diagnosis_cost`` prices the need of an average-risk patient with the same state and
        diagnoses (what a DRG or the purchaser's diagnosis groups see); ``need`` is the
        patient's own optimal care in service units, including the unobserved risk.
        """
        diagnosis = diagnosis_need(self.population) * self.months_per_step  # oracle: numpy copy
        need = diagnosis * self.population.frailty[:, None]
        return {"need": need, "diagnosis_cost": diagnosis * self.unit_cost, "cost": need * self.unit_cost}

    def _risk_scores(self, need: dict[str, np.ndarray]) -> np.ndarray:
        """Purchaser's predicted cost per patient and discipline this step.

        The score is the purchaser's risk model (:mod:`vbpsim.risk`), re-estimated at the
        start of each year with the R^2 the scenario asks for, and calibrated so that the
        predictions add up to the population's guideline cost times ``score_level``: 1
        before any claims exist, the status quo's spending per unit of guideline cost once
        the history has produced claims (risk models are estimated on claims).
        """
        alive = self.population.alive
        if self._risk_estimated_at < 0 or (
            self.step_index % self.steps_per_year == 0 and self._risk_estimated_at != self.step_index
        ):
            self.risk_model.estimate(need["cost"], alive)
            self._risk_estimated_at = self.step_index
        raw = risk_scores(self.risk_model, need["cost"], alive)  # oracle: numpy copy
        true_total = need["cost"].sum(axis=0) * self.score_level
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
        mean_cost = need["cost"].sum(axis=0) * self.score_level / max(int(alive.sum()), 1)
        scores = self._risk_scores(need)
        need["scores"] = scores
        need["mean_cost"] = mean_cost
        normative = {
            "expected_cost": self._per_provider(scores),
            "average_cost": members * mean_cost[self.providers.discipline],
            "member_months": members * self.months_per_step,
        }
        if self.config.contract.attribution == "prospective":
            if self.step_index % self.steps_per_year == 0 or self._attributed is None:
                self._attributed = {k: v.copy() for k, v in normative.items()}
            return {k: v.copy() for k, v in self._attributed.items()}
        return normative

    def deliver_care(self) -> dict[str, np.ndarray]:
        """Each patient in need gets care as their providers decided (with noise).

        A rehabilitation provider that shifts care lets the region's home-care provider
        deliver that share instead, at home-care prices (outside a rehab bundle's border).
        """
        pop = self.population
        table = self.providers
        care = self.care_need()
        ratio = table.decision.intensity[pop.provider] * pop.delivery_noise
        if self.mechanisms.need_classes:  # high-need patients get x (1 + tilt), low-need ones x (1 - tilt)
            sign = np.where(self.high_need, 1.0, -1.0)[:, None]
            ratio = ratio * (1 + sign * table.decision.need_tilt[pop.provider])
        care["ratio"] = ratio
        care["multiplier"] = table.need_multiplier[pop.provider]
        delivered = ratio * care["need"] * care["multiplier"]
        shifted = np.zeros(pop.size)
        if self.mechanisms.care_shifting:
            share = table.decision.shift[pop.provider[:, REHAB]]
            shifted = delivered[:, REHAB] * share
            delivered[:, REHAB] -= shifted
            delivered[:, NURSING] += shifted * self._shift_units()
        care["shifted_cost"] = shifted * self.unit_cost[REHAB]
        care["delivered"] = delivered + self.pending_duplicates
        care["duplicates"] = self.pending_duplicates.copy()
        self.pending_duplicates[:] = 0.0
        if self.mechanisms.discretionary_admissions:
            self._admit(care)
        return care

    def _guideline_cost(self, care: dict[str, np.ndarray]) -> np.ndarray:
        """The step's guideline cost per discipline (as ``VBPModel.step`` summed it)."""
        return care["cost"].sum(axis=0)

    def outlier_threshold(self, care: dict[str, np.ndarray]) -> np.ndarray:
        """Per-discipline monthly cost above which a patient's care counts as outlier cost."""
        if "outlier_threshold" not in care:
            in_care = care["need"] > 0
            mean_case = care["cost"].sum(axis=0) / np.maximum(in_care.sum(axis=0), 1)
            care["outlier_threshold"] = self.config.purchaser.outlier_threshold * mean_case
        return care["outlier_threshold"]

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
        noise_sd = self.config.purchaser.quality_measurement_noise
        if self.config.context.trusted_data_party:
            noise_sd = noise_sd / 2
        noise = self.streams["measurement"].normal(0.0, noise_sd, table.n)
        adherence = np.divide(met, cases, out=np.ones_like(met), where=cases > 0)
        if self.mechanisms.multitasking:
            adherence = 0.5 * adherence + 0.5 * task_value(table.decision.effort[:, MEASURED])
        self.need_history.append(self._per_provider(need))
        case_value = self._per_provider(self._case_weights(care), in_care)
        if "admission_cases" in care:  # each discretionary admission is a case of its own
            hospital = self.population.provider[:, HOSPITAL]
            cases = cases + np.bincount(hospital, weights=care["admission_cases"], minlength=table.n)
            case_value = case_value + np.bincount(hospital, weights=care["admission_value"], minlength=table.n)
        outside_cost = np.zeros(table.n)
        if "redirected_units" in care:  # redirected episodes, at the redirecting hospital
            hospital = self.population.provider[:, HOSPITAL]
            units_out = np.bincount(hospital, weights=care["redirected_units"], minlength=table.n)
            outside_cost = units_out * self.unit_cost[HOSPITAL]
        case_mix = np.zeros((table.n, len(DISCIPLINES)))
        case_mix[np.arange(table.n), table.discipline] = case_value
        delivered_cost = delivered * self.unit_cost
        self._year_score += care["scores"].sum(axis=1)
        self._year_patient_cost += delivered_cost.sum(axis=1)
        excess = np.maximum(delivered_cost - self.outlier_threshold(care), 0.0)
        attachment = self.config.purchaser.stop_loss_attachment
        before = self.year_to_date_cost
        self.year_to_date_cost = before + delivered_cost
        stoploss = np.maximum(self.year_to_date_cost - attachment, 0.0) - np.maximum(before - attachment, 0.0)
        cost = care_cost(units, table.capacity, table.unit_cost, self.config.providers.overtime_premium)
        rows = np.arange(table.n)
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
            outlier_cost=self._per_provider(excess),
            member_months=normative["member_months"],
            expected_cost=normative["expected_cost"],
            average_cost=normative["average_cost"],
            baseline_cost=self.baseline_cost.copy(),
            cost=cost,
            measured_quality=np.clip(adherence + noise, 0, 1),
            cost_mix=cost_mix,
            expected_mix=expected_mix,
            historical_cost=self.historical_cost.copy(),
            stoploss_excess=self._per_provider(stoploss),
            investment=self._take_investment(),
            outside_cost=outside_cost,
            year=self.contract_year(),
            month_of_year=((self.step_index - self.contract_start) % self.steps_per_year) * self.months_per_step,
            **self._measured_outcomes(),
            **{name: value.copy() for name, value in self.provider_ytd.items()},
        )
