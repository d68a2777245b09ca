"""Oracle mixin: the numpy health methods of VBPModel before compilation (commit 1bcaa63)."""

from __future__ import annotations

import numpy as np

from vbpsim.care import (
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
    POST_ACUTE,
    PREVENTION,
    READMISSION_AFTER_FAILURE,
    care_benefit,
    qol_by_state,
    task_value,
)


class HealthOracle:
    """Numpy health methods (verbatim from commit 1bcaa63) that override the compiled ones."""

    def _provider_benefit(self, benefit: np.ndarray) -> np.ndarray:
        """Patients' benefit of care (n, 4) after their providers' quality, innovation and shifting."""
        table = self.providers
        factor = np.ones(table.n)
        if self.mechanisms.multitasking:
            quality = table.quality(table.decision.effort, self.config.effort.measured_share)
            factor = factor * (1.0 - self.config.effort.quality_weight * (1.0 - self.timeliness * quality))
        if self.mechanisms.innovation:
            factor = factor * (1.0 + table.benefit_gain)
        if self.mechanisms.care_shifting:
            factor = factor * (1.0 - self.config.shifting.shift_health_penalty * table.decision.shift)
        if np.all(factor == 1.0):
            return benefit
        return benefit * factor[self.population.provider]

    def _count_outcomes(
        self,
        lead: np.ndarray,
        strokes: np.ndarray,
        expected_strokes: np.ndarray,
        dies: np.ndarray,
        expected_deaths: np.ndarray,
        qol: np.ndarray,
        expected_qol: np.ndarray,
        handoff: np.ndarray,
        readmitted: np.ndarray,
        readmission_risk: np.ndarray,
    ) -> None:
        """Outcomes of this step per responsible provider, reported with next step's claims.

        Strokes count at the patient's GP, deaths and patient-reported quality of life at
        the provider of the patient's lead discipline, readmissions at the discharging
        provider (see :class:`~vbpsim.schemes.Observation`).
        """
        pop, n = self.population, self.providers.n
        self.year_readmission_risk += (float(readmission_risk[handoff].sum()), float(handoff.sum()))
        lead_row = pop.provider[np.arange(pop.size), lead]
        gp_row = pop.provider[:, GP]
        months = self.months_per_step

        def at(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
            return np.bincount(rows, weights=np.asarray(values, dtype=float), minlength=n)

        self.reported_outcomes = {
            "acute_events": at(gp_row, strokes),
            "expected_acute_events": at(gp_row, expected_strokes),
            "readmissions": at(lead_row, readmitted),
            "expected_readmissions": at(lead_row, handoff * self.reference_readmission_rate),
            "deaths": at(lead_row, dies),
            "expected_deaths": at(lead_row, expected_deaths),
            "prom": at(lead_row, qol * months),
            "expected_prom": at(lead_row, expected_qol * months),
        }

    def update_health(self, care: dict[str, np.ndarray]) -> dict[str, float]:
        """Health transitions, with the care received changing the hazards (vectorised)."""
        pop, clinical = self.population, self.config.clinical
        dt, months = self.dt_years, self.months_per_step
        rng = self.streams["health"]
        table = self.providers
        benefit = self._provider_benefit(care_benefit(care["ratio"], clinical.overtreatment_harm))
        care["benefit"] = benefit
        lead = LEAD_DISCIPLINE[pop.state]
        lead_benefit = benefit[np.arange(pop.size), lead]
        state = pop.state
        alive = pop.alive
        shortfall = 1.0 - lead_benefit
        harm = clinical.undertreatment_harm

        qol_table = qol_by_state(clinical)
        qol = qol_table[state] * (1 - clinical.qol_care_weight * np.clip(shortfall, 0, 1))
        qalys = float(qol[alive].sum() * dt)
        if "admission_qalys" in care:
            qalys += float(care["admission_qalys"].sum())

        base_stroke = pop.stroke_hazard(clinical)
        care["stroke_hazard"] = base_stroke
        gp_shortfall = 1.0 - benefit[:, GP]
        stroke_h = base_stroke * (1 + harm * gp_shortfall)
        if self.mechanisms.prevention:
            stroke_h = stroke_h * (1 - self.config.effort.prevention_efficacy * self.prevention_stock)
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
        p_death = 1 - (1 - np.clip(p_death, 0.0, 1.0)) * (1 - p_background)
        p_recover = np.where(state == POST_ACUTE, monthly[3] * np.maximum(lead_benefit, 0), 0.0)
        p_disabled = np.where(state == POST_ACUTE, np.maximum(monthly[4] * (1 + harm * shortfall), 0), 0.0)

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
        sender = pop.provider[np.arange(pop.size), lead]
        p_fail = np.full(pop.size, HANDOFF_FAILURE)
        if self.mechanisms.coordination:
            effect = (
                self.timeliness
                * self.config.effort.coordination_effect
                * task_value(table.decision.effort[:, COORDINATION])
            )
            p_fail = HANDOFF_FAILURE * (1 - effect[sender])
        u_handoff = rng.random(pop.size)
        failed = handoff & (u_handoff < p_fail)
        readmitted = failed & (u_handoff < p_fail * READMISSION_AFTER_FAILURE)
        new_state[readmitted] = ACUTE
        self._route_readmissions(readmitted, rng)
        receiving_need = NEED_PER_MONTH[new_state] * pop.frailty[:, None] * months
        self.pending_duplicates[failed] = DUPLICATE_SHARE * receiving_need[failed]
        self._learn_handoffs(handoff, failed, sender, receiving_need)

        self._onset_conditions(new_state, rng)
        pop.state = new_state
        pop.age = np.where(new_state != DEAD, pop.age + dt, pop.age)
        if self.mechanisms.prevention:
            target = task_value(table.decision.effort[pop.provider[:, GP], PREVENTION])
            buildup = 1 - np.exp(-self.config.effort.prevention_buildup * dt)
            self.prevention_stock += buildup * (target - self.prevention_stock)
        untreated = base_stroke * (1 + harm)
        at_risk = survivor & ((state == HEALTHY) | (state == CHRONIC))
        guideline_death = np.select(
            [state == ACUTE, state == POST_ACUTE, state == DISABLED], [monthly[0], monthly[1], monthly[2]], 0.0
        )
        care["qol"], care["strokes"], care["dies"] = np.where(alive, qol, 0.0), strokes, dies
        care["state_before"] = state
        self._count_outcomes(
            lead,
            strokes,
            np.where(alive, 1 - np.exp(-base_stroke * dt), 0.0),
            dies,
            np.where(alive, 1 - (1 - guideline_death) * (1 - p_background), 0.0),
            np.where(alive, qol, 0.0),
            np.where(alive, qol_table[state], 0.0),
            handoff,
            readmitted,
            p_fail * READMISSION_AFTER_FAILURE,
        )
        accounts = self._health_accounts(benefit, base_stroke, monthly, handoff & alive, p_fail)
        return {
            **accounts,
            "qalys": qalys,
            "strokes": float(strokes.sum()),
            "deaths": float(dies.sum()),
            "stroke_hazard": float(stroke_h[at_risk].sum()),
            "stroke_hazard_untreated": float(untreated[at_risk].sum()),
            "stroke_hazard_guideline": float(base_stroke[at_risk].sum()),
            "handoffs": float(handoff.sum()),
            "handoff_failures": float(failed.sum()),
            "readmissions": float(readmitted.sum()),
            "readmission_risk": float((p_fail * READMISSION_AFTER_FAILURE)[handoff].sum()),
            "prom_score": float(qol[alive].sum() / max(qol_table[state][alive].sum(), 1e-12)),
            "true_quality": float(lead_benefit[alive].mean()) if alive.any() else 0.0,
        }

    def _route_readmissions(self, readmitted: np.ndarray, rng: np.random.Generator) -> None:
        """A share of readmissions is admitted by another region's hospital, which keeps the follow-up.

        Part of the coordination mechanism: with it off, readmissions return to the patient's
        own hospital (the core model).
        """
        share = self.config.effort.readmission_elsewhere
        hospitals = np.flatnonzero(self.providers.discipline == HOSPITAL)
        if not self.mechanisms.coordination or share <= 0 or len(hospitals) < 2 or not readmitted.any():
            return
        who = np.flatnonzero(readmitted)
        elsewhere = who[rng.random(len(who)) < share]
        if len(elsewhere) == 0:
            return
        current = np.searchsorted(hospitals, self.population.provider[elsewhere, HOSPITAL])
        offset = rng.integers(1, len(hospitals), len(elsewhere))
        self.population.provider[elsewhere, HOSPITAL] = hospitals[(current + offset) % len(hospitals)]

    def event_values(self) -> dict[str, float]:
        """Health (QALYs within the run's remaining horizon) and care cost (EUR) of one event.

        Used to value expected events in the NMB accounts: a death loses the mean quality
        of life over the remaining years; a stroke loses the acute month, the post-acute
        phase and, for the share disabled, the disabled years, plus the case fatality's
        deaths; a readmission loses an acute month against the post-acute one plus the
        case fatality's deaths. Costs are the expected episode units at unit cost.
        These are approximations: what they miss stays in the accounts' remainder.
        """
        c = self.config.clinical
        remaining = max((self.n_steps - self.step_index) * self.dt_years, 0.0)
        alive = self.population.alive
        qol = c.qol
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

    def _health_accounts(
        self,
        benefit: np.ndarray,
        base_stroke: np.ndarray,
        monthly: np.ndarray,
        handoff: np.ndarray,
        p_fail: np.ndarray,
    ) -> dict[str, float]:
        """Expected health and cost consequences of the step by value dimension (NMB accounts, EUR).

        ``acc_care_harm``: health lost to care below (or beyond) the optimum, innovations'
        benefit excluded; ``acc_care_harm_innovated``: the same with it (their QALY effect);
        ``acc_prevented``: strokes the prevention stock averts at guideline GP care (its
        interaction with inadequate GP care is left to the remainder); ``acc_readmission``:
        expected readmissions after failed hand-offs. Each values QALYs at the willingness
        to pay and adds the care cost of the events it causes or averts.
        """
        pop, clinical = self.population, self.config.clinical
        wtp, dt = clinical.willingness_to_pay, self.dt_years
        values = self.event_values()
        stroke_value = wtp * values["stroke"] + values["stroke_cost"]
        alive = pop.alive
        state = pop.state
        at_risk = alive & ((state == HEALTHY) | (state == CHRONIC))
        qol_table = qol_by_state(clinical)
        harm = clinical.undertreatment_harm
        prevention = np.ones(pop.size)
        if self.mechanisms.prevention:
            prevention = 1 - self.config.effort.prevention_efficacy * self.prevention_stock
        base_death = np.select(
            [state == ACUTE, state == POST_ACUTE, state == DISABLED], [monthly[0], monthly[1], monthly[2]], 0.0
        )
        lead = LEAD_DISCIPLINE[state]

        def care_harm(b: np.ndarray) -> float:
            shortfall = 1.0 - b[np.arange(pop.size), lead]
            gp_shortfall = 1.0 - b[:, GP]
            direct = float((qol_table[state] * clinical.qol_care_weight * np.clip(shortfall, 0, 1))[alive].sum() * dt)
            deaths = float((base_death * harm * shortfall)[alive].sum())
            strokes = float((base_stroke * harm * gp_shortfall * prevention * dt)[at_risk].sum())
            return wtp * (direct + deaths * values["death"]) + strokes * stroke_value

        without = benefit
        if self.mechanisms.innovation:
            without = benefit / (1.0 + self.providers.benefit_gain)[pop.provider]
        prevented = 0.0
        if self.mechanisms.prevention:  # at guideline GP care: what care adequacy adds belongs to quality
            prevented = float((base_stroke * (1.0 - prevention))[at_risk].sum() * dt)
        readmissions = float(p_fail[handoff].sum()) * READMISSION_AFTER_FAILURE
        return {
            "acc_care_harm": care_harm(without),
            "acc_care_harm_innovated": care_harm(benefit),
            "acc_prevented": prevented * stroke_value,
            "strokes_prevented": prevented,
            "acc_readmission": readmissions * (wtp * values["readmission"] + values["readmission_cost"]),
            "expected_readmissions": readmissions,
        }

    def _learn_handoffs(
        self, handoff: np.ndarray, failed: np.ndarray, sender: np.ndarray, receiving_need: np.ndarray
    ) -> None:
        """Senders' beliefs about their hand-off volume and the work a failure duplicates."""
        n = self.providers.n
        rate = self.config.providers.learning_rate
        counts = np.bincount(sender[handoff], minlength=n).astype(float)
        self.handoff_belief += rate * (counts - self.handoff_belief)
        if failed.any():
            receiver = self.handoff_receiver[sender[failed]]
            receiver_discipline = np.where(receiver >= 0, self.providers.discipline[np.maximum(receiver, 0)], 0)
            dup = DUPLICATE_SHARE * receiving_need[failed, receiver_discipline] * (receiver >= 0)
            n_failed = np.bincount(sender[failed], minlength=n)
            per_failure = np.divide(
                np.bincount(sender[failed], weights=dup, minlength=n),
                n_failed,
                out=self.failure_units_belief.copy(),
                where=n_failed > 0,
            )
            self.failure_units_belief += rate * (per_failure - self.failure_units_belief)

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
        """Patients update their experience of GP care, may switch GP, or are steered away."""
        pop = self.population
        rng = self.streams["choice"]
        benefit = care["benefit"][:, GP]
        seen = care["need"][:, GP] > 0
        pop.experience = np.where(seen, 0.9 * pop.experience + 0.1 * benefit, pop.experience)
        p_switch = self.config.population.switch_rate * (1 - pop.experience) * (12 / self.steps_per_year)
        switching = pop.alive & (rng.random(pop.size) < p_switch)
        self.steered = np.zeros(pop.size, dtype=bool)
        if self.mechanisms.risk_selection:
            sel = self.config.selection
            effort = self.providers.decision.selection[pop.provider[:, GP]]
            p_steer = effort * sel.steer_rate * sel.steer_success * self.dt_years
            draws = self.streams["selection"].random(pop.size)
            self.steered = pop.alive & self.unprofitable & (draws < p_steer * self.steer_weight) & ~switching
        moving = switching | self.steered
        gps = np.flatnonzero(self.providers.discipline == GP)
        if moving.any() and len(gps) > 1:
            living = pop.alive.astype(float)
            reputation = np.bincount(pop.provider[:, GP], weights=pop.experience * living, minlength=self.providers.n)
            panel = np.bincount(pop.provider[:, GP], weights=living, minlength=self.providers.n)[gps]
            score = np.divide(reputation[gps], panel, out=np.full(len(gps), 0.8), where=panel > 0)
            weights = np.exp(20 * (score - score.max()))
            cumulative = np.cumsum(weights / weights.sum())
            choice = np.minimum(np.searchsorted(cumulative, rng.random(int(moving.sum()))), len(gps) - 1)
            if self.steered.any():  # a steered patient goes elsewhere: never back to the GP who steered
                stay = self.steered[moving] & (gps[choice] == pop.provider[moving, GP])
                choice = np.where(stay, (choice + 1) % len(gps), choice)
            pop.provider[moving] = self.gp_chains[choice]
