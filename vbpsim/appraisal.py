"""The providers' view of their patients: what they expect and whom they would rather lose.

``outlook`` assembles what each provider expects from its lagged data for the decision
rule (:class:`~vbpsim.agents.Outlook`); ``appraise_patients`` and ``appraise_admissions``
are the GPs' and hospitals' private view of which patients (planned episodes) cost their
payee more than the contract brings, read off the contract by probing it (Cattel et al.
2018, Section 4.2.4). They read the model's state and write only the providers' beliefs
about their patients (steering weights, unpriced-risk bands); the patient sums run as
compiled passes (:mod:`vbpsim.kernels.accounts`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .agents import Observation, Outlook, aggregate
from .care import ACUTE, GP, HOSPITAL, NEED_PER_MONTH
from .kernels.accounts import appraise_admissions_pass, appraise_pass, outlook_pass, steering_pass
from .parameters import DISCIPLINES

if TYPE_CHECKING:
    from .model import VBPModel


def outlook(model: VBPModel, care: dict[str, np.ndarray]) -> Outlook:
    """What providers expect from their lagged data, for the decision rule."""
    table = model.providers
    m = model.mechanisms
    n = table.n
    spy = model.steps_per_year
    lagged = model.history[0]
    preventable = np.zeros(n)
    at_risk = np.zeros(n)
    if m.need_classes or m.prevention:
        # stroke hazard computed this step in update_health (lagged view)
        pop = model.population
        need, high_need, hazard, at_risk_gp = outlook_pass(
            pop.provider, care["diagnosis_row"], care["by_diagnosis"], pop.frailty, model.high_need,
            care["stroke_hazard"], n,
        )  # fmt: skip
        if m.need_classes:  # each provider knows how much of its patients' need is high need
            table.high_need_share = np.divide(high_need, need, out=np.zeros(n), where=need > 0)
        if m.prevention:
            preventable = hazard * (model.config.effort.prevention_efficacy * model.dt_years)
            at_risk = at_risk_gp
    gain, harm, unprofitable_count = np.zeros(n), np.zeros(n), np.zeros(n)
    if m.risk_selection:
        if model.appraisal_due():
            model._appraisal = model.appraise_patients(lagged, care)
        gain, harm, unprofitable_count = model._appraisal
    eff = model.config.effort
    care_value = table.unit_cost * table.need_belief * spy
    budgets = np.column_stack(
        [
            eff.effort_cost * care_value,
            eff.effort_cost * care_value,
            model.handoff_belief * spy * eff.coordination_cost,
            at_risk * eff.prevention_cost,
            unprofitable_count * model.config.selection.steering_cost,
        ]
    )
    budgets[:, :4] *= model.active[:, 1:5]
    budgets[:, 4] *= model.active[:, 5]
    switch_rate = None
    if m.patient_choice and model.config.population.switch_rate > 0:
        switch_rate = np.where(table.discipline == GP, model.config.population.switch_rate * 12, 0.0)
    horizon = np.full(n, model.planning_horizon())
    admissions: dict[str, np.ndarray] = {}
    if m.discretionary_admissions:
        belief = model.admission_belief
        candidates = np.maximum(belief[:, 0], 1e-12)
        sel = model.config.selection
        admissions = {
            "admission_candidates": belief[:, 0].copy(),
            "admission_units": belief[:, 1] / candidates,
            "admission_value": belief[:, 2] / candidates,
            "selection_rate": np.where(table.discipline == GP, sel.steer_rate * sel.steer_success, 1.0),
            "acs_candidates": model.acs_belief.copy(),
        }
    return Outlook(
        lagged=lagged,
        active=model.active,
        handoffs=model.handoff_belief,
        handoff_receiver=model.handoff_receiver,
        failure_units=model.failure_units_belief,
        readmission_target=model.readmission_target,
        readmission_units=np.full(n, NEED_PER_MONTH[ACUTE, HOSPITAL] * model.months_per_step),
        shift_receiver=model.shift_receiver,
        shift_units=np.full(n, model._shift_units()),
        preventable_strokes=preventable,
        prevention_targets=model.prevention_targets,
        episode_units=model.episode_units,
        money_horizon=np.full(n, model.money_horizon()),
        health_horizon=horizon,
        selection_gain=gain,
        selection_harm=harm,
        budgets=budgets,
        switch_rate=switch_rate,
        rebase_weight=np.full(n, model.rebase_weight()),
        outcome_belief=model.outcome_belief,
        readmission_home=np.full(n, 1.0 - model.config.effort.readmission_elsewhere * m.coordination),
        **admissions,
    )


def appraise_patients(
    model: VBPModel, lagged: Observation, need: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GPs' private view of which patients cost their payee more than they bring.

    The payee's marginal payment for each observed quantity is read off the contract by
    probing it (payment with one more unit of that quantity); a patient's contribution
    uses the GP's own, better view of the patient's risk (Section 4.2.4). Returns each
    GP's yearly profit from losing its unprofitable patients, their yearly care value
    (for the altruistic cost of steering them) and their number.
    """
    pop, table = model.population, model.providers
    spy = model.steps_per_year
    rows_yearly = lagged.rescaled(lagged.months * spy)
    yearly = aggregate(rows_yearly, table.payee, model.n_payees, table.discipline)
    base = model.contract.pay(yearly)
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
        grad[name] = (model.contract.pay(probe) - base) / bump
    services_grad = np.zeros((model.n_payees, len(DISCIPLINES)))
    for d in range(len(DISCIPLINES)):
        bump_services = yearly.services.copy()
        bump_services[:, d] += 1.0
        services_grad[:, d] = model.contract.pay(yearly.replace(services=bump_services)) - base

    pass_through = model.risk_model.pass_through * model.score_level
    net, true_net, cost = appraise_pass(
        pop.provider,
        table.payee,
        table.decision.intensity,
        table.need_multiplier,
        pop.perceived_risk,
        pop.frailty,
        need["stroke_hazard"],  # yearly, from age and conditions (zero if not at risk)
        need["scored"],
        need["risk_cells"],
        model.risk_model.cell_means,
        model.risk_model.blend,
        model.risk_model.blended,
        need["score_calibration"],
        need["diagnosis_row"],
        need["by_diagnosis"],
        model._case_scale(need),
        need["mean_cost"],
        model.outlier_threshold(need),
        model.unit_cost,
        model.episode_units,
        model.episode_steps,
        pass_through,
        np.column_stack([grad[name] for name in fields]),
        services_grad,
        model.months_per_step,
        float(spy),
        model.config.purchaser.stop_loss_attachment,
    )
    own = model.contract.pay(rows_yearly) if model.distribution.rule == "contribution" else None
    share = model.distribution.weights(base, rows_yearly, table.payee, own)
    alive = pop.alive
    bounds = np.quantile(-true_net[alive], [0.25, 0.75]) if alive.any() else np.zeros(2)
    gain, care_value, count = steering_pass(
        pop.provider[:, GP],
        pop.state,
        net,
        cost,
        share,
        need["diagnosis_row"],
        np.ascontiguousarray(need["by_diagnosis"][:, GP]),
        float(model.unit_cost[GP]),
        pop.perceived_risk,
        model.config.providers.benefit_to_cost,
        float(spy),
        table.n,
        true_net,
        bounds,
        bool(alive.any()),
        model.unprofitable,
        model.steer_weight,
        model.unpriced_band,  # quartile of unpriced risk among the living
    )
    harm = model.config.selection.steering_harm * care_value
    if model.mechanisms.discretionary_admissions:  # hospitals appraise planned episodes the same way
        extra = model.appraise_admissions(yearly, base, share)
        gain, harm, count = gain + extra[0], harm + extra[1], count + extra[2]
    return gain, harm, count


def appraise_admissions(
    model: VBPModel, yearly: Observation, base: np.ndarray, share: np.ndarray
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
    pop, table, c = model.population, model.providers, model.config.clinical
    column = np.zeros((1, len(DISCIPLINES)))
    column[0, HOSPITAL] = 1.0
    step = c.admission_units * model.unit_cost[HOSPITAL]
    probes = {
        "case": {"cases": yearly.cases + 1.0},
        "value": {"case_value": yearly.case_value + step, "case_mix": yearly.case_mix + step * column},
        "units": {"services": yearly.services + c.admission_units * column},
        "cost": {"cost": yearly.cost + step, "cost_mix": yearly.cost_mix + step * column},
        "outside": {"outside_cost": yearly.outside_cost + step},
    }
    grad = {name: (model.contract.pay(yearly.replace(**bump)) - base) for name, bump in probes.items()}
    grad_matrix = np.column_stack([grad[name] for name in ("case", "value", "units", "cost", "outside")])
    alive = pop.alive
    mean_risk = float(pop.frailty[alive].mean()) if alive.any() else 1.0
    gain, redirected_cost, episodes = appraise_admissions_pass(
        pop.provider[:, HOSPITAL],
        table.payee,
        pop.state,
        pop.perceived_risk,
        share,
        table.decision.admission,
        grad_matrix,
        c.planned_admission_rate,
        c.admission_units,
        float(model.unit_cost[HOSPITAL]),
        mean_risk,
        model.risk_model.pass_through,
        table.n,
        model.admission_steer_weight,
    )
    kappa = model.config.providers.benefit_to_cost
    return gain, model.config.selection.redirect_harm * kappa * redirected_cost, episodes
