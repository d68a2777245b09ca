"""Oracle mixin: the numpy accounts methods of VBPModel before compilation (commit 1bcaa63).

Providers' outlook and appraisal sums, the step's record, its cost accounts, admission
record and the patients' equity tallies, verbatim from the numpy formulation.
"""

from __future__ import annotations

import numpy as np

from vbpsim.agents import Observation, Outlook, aggregate
from vbpsim.care import ACUTE, CHRONIC, DEAD, GP, HEALTHY, HOSPITAL, NEED_PER_MONTH, REHAB, UNMEASURED, task_value
from vbpsim.parameters import DISCIPLINES


class AccountsOracle:
    """Numpy accounts methods (verbatim from commit 1bcaa63) that override the compiled ones."""

    def appraise_admissions(
        self, yearly: Observation, base: np.ndarray, share: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hospitals' private view of which planned episodes cost their payee more than they bring.

        As in the GPs' appraisal, the payee's marginal payment is read off the contract by
        probing it with its yearly observation plus one more admission, split into its parts:
        one more case; more case value (in ``case_value`` and the hospital's ``case_mix``);
        more hospital units billed; more cost (in ``cost`` and ``cost_mix``); and, for the
        episode redirected instead, more ``outside_cost`` (what the contract charges back for
        care bought outside, if it does). An episode of a patient of perceived risk r costs
        ``admission_units`` x r units and is priced by :meth:`_admission_price`; redirecting
        it is worth the payment for it here minus its cost minus the payment change from its
        outside cost. Returns each hospital's yearly profit from redirecting all
        its unprofitable planned episodes, their care value (for the altruistic and moral
        cost of redirecting them) and their number a year.
        """
        pop, table, c = self.population, self.providers, self.config.clinical
        column = np.zeros((1, len(DISCIPLINES)))
        column[0, HOSPITAL] = 1.0
        step = c.admission_units * self.unit_cost[HOSPITAL]
        probes = {
            "case": {"cases": yearly.cases + 1.0},
            "value": {"case_value": yearly.case_value + step, "case_mix": yearly.case_mix + step * column},
            "units": {"services": yearly.services + c.admission_units * column},
            "cost": {"cost": yearly.cost + step, "cost_mix": yearly.cost_mix + step * column},
            "outside": {"outside_cost": yearly.outside_cost + step},
        }
        grad = {name: (self.contract.pay(yearly.replace(**bump)) - base) for name, bump in probes.items()}
        hospital = pop.provider[:, HOSPITAL]
        payee = table.payee[hospital]
        perceived = np.exp(pop.log_risk_observable + pop.provider_view_private)
        units = c.admission_units * perceived
        cost = units * self.unit_cost[HOSPITAL]
        pay = (
            grad["case"][payee]
            + grad["value"][payee] * self._admission_price(perceived) / step
            + grad["units"][payee] * perceived
            + grad["cost"][payee] * cost / step
        )
        # what the contract charges the payee if the episode is treated outside instead (<= 0 when charged back)
        outside = grad["outside"][payee] * cost / step
        net = share[hospital] * (pay - cost - outside)
        planned_rate, _ = self._admission_rates(np.ones(pop.size))
        eligible = planned_rate > 0
        loss = np.where(eligible & (net < 0), -net, 0.0)
        n = table.n
        typical = np.bincount(hospital, weights=cost * eligible, minlength=n) / np.maximum(
            np.bincount(hospital, weights=eligible.astype(float), minlength=n), 1.0
        )
        self.admission_steer_weight = np.clip(loss / np.maximum(typical[hospital], 1e-9), 0.0, 1.0)
        episodes = planned_rate * table.decision.admission[hospital] * self.admission_steer_weight
        kappa = self.config.providers.benefit_to_cost
        gain = np.bincount(hospital, weights=episodes * loss, minlength=n)
        harm = self.config.selection.redirect_harm * kappa * np.bincount(hospital, weights=episodes * cost, minlength=n)
        return gain, harm, np.bincount(hospital, weights=episodes, minlength=n)

    def _tally_patients(self, care: dict[str, np.ndarray], optimal_cost: np.ndarray) -> None:
        """Add this step to each patient's tallies since the contract under study began (equity, 7.16).

        Groups are fixed when the contract begins: need class by health state (low: healthy,
        chronic: chronic conditions, high: after a stroke), quartile of the patient's
        guideline cost of care (its risk) and age band; the dead then are left out.
        """
        pop = self.population
        if self.step_index == self.contract_start or not self.patient_tally:
            state = care["state_before"]  # at the start of the step
            alive = state != DEAD
            risk = np.where(alive, care["cost"].sum(axis=1), np.nan)
            bounds = np.nanquantile(risk, [0.25, 0.5, 0.75]) if alive.any() else np.zeros(3)
            need_class = np.select([state == HEALTHY, state == CHRONIC], [0, 1], 2)
            self.patient_groups = {
                "need_class": np.where(alive, need_class, -1),
                "risk_quartile": np.where(alive, np.digitize(np.nan_to_num(risk), bounds), -1),
                "age_band": np.where(alive, np.digitize(pop.age, self.AGE_BANDS), -1),
                "need_level": np.where(alive, self.high_need.astype(int), -1),
            }
            self.patient_tally = {name: np.zeros(pop.size) for name in self.EQUITY_TALLIES}
        tally = self.patient_tally
        tally["qalys"] += care["qol"] * self.dt_years
        if "admission_qalys" in care:
            tally["qalys"] += care["admission_qalys"]
        tally["guideline_cost"] += optimal_cost.sum(axis=1)
        tally["delivered_cost"] += (care["delivered"] * self.unit_cost).sum(axis=1)
        tally["steered"] += self.steered
        tally["strokes"] += care["strokes"]
        tally["deaths"] += care["dies"]

    def outlook(self, care: dict[str, np.ndarray]) -> Outlook:
        """What providers expect from their lagged data, for the decision rule."""
        table = self.providers
        m = self.mechanisms
        n = table.n
        spy = self.steps_per_year
        lagged = self.history[0]
        if m.need_classes:  # each provider knows how much of its patients' need is high need
            need = care["need"]
            table.high_need_share = np.divide(
                self._per_provider(need * self.high_need[:, None]),
                self._per_provider(need),
                out=np.zeros(n),
                where=self._per_provider(need) > 0,
            )
        preventable = np.zeros(n)
        at_risk = np.zeros(n)
        if m.prevention:
            hazard = care["stroke_hazard"]  # computed this step in update_health (lagged view)
            preventable = np.bincount(self.population.provider[:, GP], weights=hazard, minlength=n)
            preventable *= self.config.effort.prevention_efficacy * self.dt_years
            at_risk = np.bincount(self.population.provider[:, GP], weights=(hazard > 0).astype(float), minlength=n)
        gain, harm, unprofitable_count = np.zeros(n), np.zeros(n), np.zeros(n)
        if m.risk_selection:
            review_every = max(1, self.steps_per_year // 4)
            if self.step_index % review_every == 0 or self._appraisal is None:
                self._appraisal = self.appraise_patients(lagged, care)
            gain, harm, unprofitable_count = self._appraisal
        eff = self.config.effort
        care_value = table.unit_cost * table.need_belief * spy
        budgets = np.column_stack(
            [
                eff.effort_cost * care_value,
                eff.effort_cost * care_value,
                self.handoff_belief * spy * eff.coordination_cost,
                at_risk * eff.prevention_cost,
                unprofitable_count * self.config.selection.steering_cost,
            ]
        )
        budgets[:, :4] *= self.active[:, 1:5]
        budgets[:, 4] *= self.active[:, 5]
        switch_rate = None
        if m.patient_choice and self.config.population.switch_rate > 0:
            switch_rate = np.where(table.discipline == GP, self.config.population.switch_rate * 12, 0.0)
        horizon = np.full(n, self.planning_horizon())
        admissions: dict[str, np.ndarray] = {}
        if m.discretionary_admissions:
            belief = self.admission_belief
            candidates = np.maximum(belief[:, 0], 1e-12)
            sel = self.config.selection
            admissions = {
                "admission_candidates": belief[:, 0].copy(),
                "admission_units": belief[:, 1] / candidates,
                "admission_value": belief[:, 2] / candidates,
                "selection_rate": np.where(table.discipline == GP, sel.steer_rate * sel.steer_success, 1.0),
                "acs_candidates": self.acs_belief.copy(),
            }
        return Outlook(
            lagged=lagged,
            active=self.active,
            handoffs=self.handoff_belief,
            handoff_receiver=self.handoff_receiver,
            failure_units=self.failure_units_belief,
            readmission_target=self.readmission_target,
            readmission_units=np.full(n, NEED_PER_MONTH[ACUTE, HOSPITAL] * self.months_per_step),
            shift_receiver=self.shift_receiver,
            shift_units=np.full(n, self._shift_units()),
            preventable_strokes=preventable,
            prevention_targets=self.prevention_targets,
            episode_units=self.episode_units,
            money_horizon=np.full(n, self.money_horizon()),
            health_horizon=horizon,
            selection_gain=gain,
            selection_harm=harm,
            budgets=budgets,
            switch_rate=switch_rate,
            rebase_weight=np.full(n, self.rebase_weight()),
            outcome_belief=self.outcome_belief,
            readmission_home=np.full(n, 1.0 - self.config.effort.readmission_elsewhere * m.coordination),
            **admissions,
        )

    def appraise_patients(
        self, lagged: Observation, need: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """GPs' private view of which patients cost their payee more than they bring.

        The payee's marginal payment for each observed quantity is read off the contract by
        probing it (payment with one more unit of that quantity); a patient's contribution
        uses the GP's own, better view of the patient's risk (Section 4.2.4). Returns each
        GP's yearly profit from losing its unprofitable patients, their yearly care value
        (for the altruistic cost of steering them) and their number.
        """
        pop, table = self.population, self.providers
        spy = self.steps_per_year
        rows_yearly = lagged.rescaled(lagged.months * spy)
        yearly = aggregate(rows_yearly, table.payee, self.n_payees, table.discipline)
        base = self.contract.pay(yearly)
        fields = (
            "member_months",
            "expected_cost",
            "average_cost",
            "cases",
            "case_value",
            "cost",
            "outlier_cost",
            "stoploss_excess",
        )
        grad = {}
        for name in fields:
            bump = max(float(np.abs(getattr(yearly, name)).mean()) * 1e-3, 1e-3)
            probe = yearly.replace(**{name: getattr(yearly, name) + bump})
            grad[name] = (self.contract.pay(probe) - base) / bump
        services_grad = np.zeros((self.n_payees, len(DISCIPLINES)))
        for d in range(len(DISCIPLINES)):
            bump_services = yearly.services.copy()
            bump_services[:, d] += 1.0
            services_grad[:, d] = self.contract.pay(yearly.replace(services=bump_services)) - base

        gp = pop.provider[:, GP]
        payee_of_gp = table.payee[gp]
        perceived_risk = np.exp(pop.log_risk_observable + pop.provider_view_private)
        threshold = self.outlier_threshold(need)
        hazard = need["stroke_hazard"]  # yearly, from age and conditions (zero if not at risk)
        attachment = self.config.purchaser.stop_loss_attachment
        case_weights = self._case_weights(need)
        net = grad["member_months"][payee_of_gp] * self.months_per_step * spy
        true_net = net.copy()
        cost = np.zeros(pop.size)
        for d in range(len(DISCIPLINES)):  # only the disciplines inside the GP's payee count
            rows = pop.provider[:, d]
            inside = table.payee[rows] == payee_of_gp
            if not inside.any():
                continue
            g = {name: grad[name][payee_of_gp] for name in grad}
            priced = (
                need["scores"][:, d] * g["expected_cost"]
                + need["mean_cost"][d] * g["average_cost"]
                + (need["need"][:, d] > 0) * (g["cases"] + case_weights[:, d] * g["case_value"])
            )
            per_unit = table.decision.intensity[rows] * table.need_multiplier[rows]
            # A patient's expected acute episodes (stroke risk from age and conditions) and what
            # the contract would pay for them: the risk that state-based prices leave unpriced.
            steps = self.episode_steps[d]
            episode_value = self.episode_units[d] * self.unit_cost[d]
            episode_price = episode_value * g["case_value"] + steps * g["cases"]
            # the risk score passes on a share R^2 of a patient's extra cost (its slope on the truth)
            pass_through = self.risk_model.pass_through * self.score_level[d]
            episode_score_price = episode_value * pass_through * g["expected_cost"]
            for need_units, total, risk in (
                (need["diagnosis_cost"][:, d] / self.unit_cost[d] * perceived_risk, net, perceived_risk),
                (need["need"][:, d], true_net, pop.frailty),
            ):
                episode_units = hazard * self.episode_units[d] * risk * per_unit
                episode_cost = episode_units * self.unit_cost[d]
                per_step_cost = self.episode_units[d] * risk * per_unit * self.unit_cost[d] / max(steps, 1e-9)
                episode_pay = (
                    hazard * (episode_price + risk * episode_score_price)
                    + episode_units * services_grad[payee_of_gp, d]
                    + episode_cost * g["cost"]
                    + hazard * steps * np.maximum(per_step_cost - threshold[d], 0.0) * g["outlier_cost"]
                )
                total += np.where(inside, episode_pay - episode_cost, 0.0)
                if total is net:
                    cost += np.where(inside, episode_cost, 0.0)
                units = per_unit * need_units
                unit_cost = units * self.unit_cost[d]
                pay = (
                    priced
                    + units * services_grad[payee_of_gp, d]
                    + unit_cost * g["cost"]
                    + np.maximum(unit_cost - threshold[d], 0.0) * g["outlier_cost"]
                )
                yearly_cost = unit_cost * spy + episode_cost
                reinsured = np.maximum(yearly_cost - attachment, 0.0) * g["stoploss_excess"]
                total += np.where(inside, (pay - unit_cost) * spy + reinsured, 0.0)
                if total is net:
                    cost += np.where(inside, unit_cost * spy, 0.0)

        own = self.contract.pay(rows_yearly) if self.distribution.rule == "contribution" else None
        share = self.distribution.weights(base, rows_yearly, table.payee, own)
        net = share[gp] * net
        alive = pop.alive
        self.unprofitable = alive & (net < 0)
        n = table.n
        living = alive.astype(float)
        typical_cost = np.bincount(gp, weights=cost * living, minlength=n) / np.maximum(
            np.bincount(gp, weights=living, minlength=n), 1.0
        )
        loss = np.where(self.unprofitable, -net, 0.0)
        self.steer_weight = np.clip(loss / np.maximum(typical_cost[gp], 1e-9), 0.0, 1.0)
        if alive.any():
            bounds = np.quantile(-true_net[alive], [0.25, 0.75])
            self.unpriced_band = np.where(alive, np.digitize(-true_net, bounds), 1)
        kappa = self.config.providers.benefit_to_cost
        care_value = kappa * need["diagnosis_cost"][:, GP] * perceived_risk * spy
        gain = np.bincount(gp, weights=loss * self.steer_weight, minlength=n)
        harm = self.config.selection.steering_harm * np.bincount(
            gp, weights=care_value * self.steer_weight, minlength=n
        )
        count = np.bincount(gp, weights=self.steer_weight, minlength=n)
        if self.mechanisms.discretionary_admissions:  # hospitals appraise planned episodes the same way
            extra = self.appraise_admissions(yearly, base, share)
            gain, harm, count = gain + extra[0], harm + extra[1], count + extra[2]
        return gain, harm, count

    def record(
        self,
        care: dict[str, np.ndarray],
        obs: Observation,
        income: np.ndarray,
        health: dict[str, float],
        innovation: dict[str, float],
    ) -> None:
        """Store this step's aggregates (one row of the time series)."""
        need, delivered = care["need"], care["delivered"]
        valuable = self.providers.need_multiplier / self.low_value_multiplier
        optimal = need * valuable[self.population.provider]
        admitting = "admission_cases" in care
        if admitting:  # appropriate admission candidates are guideline care; redirected care is delivered elsewhere
            optimal[:, HOSPITAL] += care["admission_guideline"]
            delivered = delivered.copy()
            delivered[:, HOSPITAL] += care["redirected_units"]
        cost_of = optimal * self.unit_cost
        delivered_cost = delivered * self.unit_cost
        table = self.providers
        decision = table.decision
        pop = self.population
        weights = np.maximum(table.need_belief * table.unit_cost, 1e-9)
        excess = delivered_cost - cost_of
        low_value = float(np.maximum(excess, 0).sum())  # sum(max(0, -e)) = sum(max(0, e)) - sum(e)
        redirected_cost = float(care["redirected_units"].sum() * self.unit_cost[HOSPITAL]) if admitting else 0.0
        row: dict[str, float] = {
            "step": self.step_index,
            "year": (self.step_index - self.history_steps) // self.steps_per_year,
            "alive": float(pop.alive.sum()),
            "spending": float(income.sum()) + redirected_cost,  # the purchaser pays redirected episodes too
            "provider_cost": float(obs.cost.sum()),
            "provider_income": float(income.sum()),
            "guideline_cost": float(cost_of.sum()),
            "low_value_cost": low_value,
            "shortfall_cost": low_value - float(excess.sum()),
            "duplicate_cost": float((care["duplicates"] * self.unit_cost).sum()),
            "shifted_cost": float(care["shifted_cost"].sum()),
            "rehab_guideline_cost": float(cost_of[:, REHAB].sum()),
            "measured_quality": float(np.average(obs.measured_quality, weights=np.maximum(obs.cases, 1e-9))),
            "unmeasured_quality": float(np.average(task_value(decision.effort[:, UNMEASURED]), weights=weights)),
            "insolvent_providers": float((table.reserves < 0).sum()),
            "steered": float(self.steered.sum()),
            "steered_high_risk": float((self.steered & (self.unpriced_band == 2)).sum()),
            "steered_low_risk": float((self.steered & (self.unpriced_band == 0)).sum()),
            "alive_high_risk": float((pop.alive & (self.unpriced_band == 2)).sum()),
            "alive_low_risk": float((pop.alive & (self.unpriced_band == 0)).sum()),
            "steered_frailty": float(pop.frailty[self.steered].sum()),
            "mean_frailty": float(pop.frailty[pop.alive].mean()) if pop.alive.any() else 1.0,
            "prevention_stock": float(self.prevention_stock[pop.alive].mean()) if pop.alive.any() else 0.0,
        }
        for task, name in enumerate(("measured", "unmeasured", "coordination", "prevention")):
            mask = self.active[:, 1 + task]
            row[f"effort_{name}"] = float(decision.effort[mask, task].mean()) if mask.any() else 0.0
        for cls, name in ((self.high_need, "high"), (~self.high_need, "low")):  # care ratio by need level
            guideline = cost_of[cls].sum()
            row[f"intensity_{name}_need"] = float(delivered_cost[cls].sum() / guideline) if guideline > 0 else 1.0
        row.update(self._admission_record(care, redirected_cost))
        gp = table.discipline == GP  # hospitals' selection (redirecting planned episodes) is decision_redirect
        dims = ((5, "selection", gp), (6, "shift", True), (7, "need_tilt", True), (8, "admission", True))
        for dim, name, who in dims:
            mask = self.active[:, dim] & who
            row[f"decision_{name}"] = float(decision.get(dim)[mask].mean()) if mask.any() else 0.0
        mask = self.active[:, 5] & (table.discipline == HOSPITAL)
        row["decision_redirect"] = float(decision.selection[mask].mean()) if mask.any() else 0.0
        for d, name in enumerate(DISCIPLINES):
            total_need = cost_of[:, d].sum()
            row[f"intensity_{name}"] = float(delivered_cost[:, d].sum() / total_need) if total_need > 0 else 1.0
            row[f"chosen_intensity_{name}"] = float(decision.intensity[table.discipline == d].mean())
            row[f"spending_{name}"] = float(income[table.discipline == d].sum())
            row[f"guideline_{name}"] = float(total_need)
            # payments say who is paid; resource cost what care was given
            row[f"resource_cost_{name}"] = float(obs.cost[table.discipline == d].sum())
        row.update(self._cost_accounts(care, obs))
        row.update(health)
        row.update(innovation)
        self.records.append(row)
        self._tally_patients(care, cost_of)

    def _cost_accounts(self, care: dict[str, np.ndarray], obs: Observation) -> dict[str, float]:
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
        need_cost = care["need"] * self.unit_cost
        ratio = care["ratio"]
        table = self.providers
        kappa = self.config.providers.benefit_to_cost
        innovation_health = kappa * float((table.unit_cost * table.need_belief * table.benefit_gain).sum())
        delivered_cost = float((care["delivered"] * self.unit_cost).sum())
        need, over, withheld = (
            float(need_cost.sum()),
            float((np.maximum(ratio - 1.0, 0.0) * need_cost).sum()),
            float((np.maximum(1.0 - ratio, 0.0) * need_cost).sum()),
        )
        if "admission_here_units" in care:  # discretionary admissions, at hospital unit cost
            c_h = float(self.unit_cost[HOSPITAL])
            guideline = float(care["admission_guideline"].sum()) * c_h  # appropriate candidates
            low_value = float(care["admission_low_value_units"].sum()) * c_h  # admitted beyond the appropriate share
            appropriate_here = float(care["admission_here_units"].sum()) * c_h - low_value
            need, over = need + guideline, over + low_value
            withheld += guideline - appropriate_here  # not admitted, or redirected (delivered elsewhere)
        return {
            "acc_need_cost": need,
            "acc_overtreatment": over,
            "acc_withheld": withheld,
            "acc_innovation_cost": float((ratio * need_cost * (care["multiplier"] - 1.0)).sum()),
            "acc_innovation_health": innovation_health,
            "acc_duplicates": float((care["duplicates"] * self.unit_cost).sum()),
            "acc_shift_extra": float(care["shifted_cost"].sum() * self.config.shifting.shift_inefficiency),
            "acc_overtime": float(obs.cost.sum()) - delivered_cost,
        }

    def _admission_record(self, care: dict[str, np.ndarray], redirected_cost: float) -> dict[str, float]:
        """Admissions of this step: discretionary (planned, ACS), redirected, declined emergencies.

        A declined emergency is a patient in the acute (stroke) state with hospital need who
        got no hospital care; strokes are never declinable, so it must stay 0. Redirected
        episodes are also counted for the top quartile of patients' risk (frailty).
        """
        pop = self.population
        acute = care["state_before"] == ACUTE
        declined = acute & (care["need"][:, HOSPITAL] > 0) & (care["delivered"][:, HOSPITAL] <= 0)
        out = {"declined_emergencies": float(declined.sum())}
        names = (
            "planned_admissions",
            "acs_admissions",
            "admission_candidates",
            "acs_hazard",
            "redirected_planned",
            "redirected_high_risk",
            "planned_high_risk",
        )
        if "admission_cases" not in care:
            return {**out, **dict.fromkeys(names, 0.0), "redirected_cost": 0.0}
        alive = pop.alive | care["dies"]
        high = pop.frailty >= np.quantile(pop.frailty[alive], 0.75) if alive.any() else np.zeros(pop.size, bool)
        values = (
            care["planned_admitted"].sum(),
            care["acs_admitted"].sum(),
            care["admission_candidates"].sum(),
            care["acs_expected"].sum(),
            care["redirected"].sum(),
            (care["redirected"] & high).sum(),
            (care["planned_admitted"] & high).sum(),
        )
        return {**out, **{k: float(v) for k, v in zip(names, values, strict=True)}, "redirected_cost": redirected_cost}
