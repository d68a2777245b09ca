"""The purchaser's side of the model's step: what it observes of each provider, and its books.

:class:`PurchaserBooks` is a mixin of :class:`vbpsim.model.VBPModel`. Each step the
purchaser observes every provider's claims from one compiled pass over the patients
(services, cases, risk scores from its risk model, outliers, stop-loss excess, measured
quality and outcomes) and keeps the books a contract settles on: year-to-date totals,
the historical benchmark rebased at each contract period's end (the ratchet, Cattel et
al. 2018, Section 4.2.3.1) and the year's spending for the switch to a new contract.
``VBPModel`` keeps the order of a step and calls these through ``self``.
"""

from __future__ import annotations

import numpy as np

from .care import HOSPITAL, MEASURED, QUALITY_STANDARD, care_cost, task_value
from .kernels import delivery as kernels
from .kernels import health as health_kernels
from .parameters import DISCIPLINES
from .population import _NO_ROWS, ModelParts
from .risk import r_squared
from .schemes import Observation


class PurchaserBooks(ModelParts):
    """What the purchaser observes of each provider every step, and the books it keeps (a model mixin)."""

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
