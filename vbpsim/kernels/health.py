"""The health pass compiled: transitions, outcome counts, health accounts and patient choice.

``update_health`` walks the patients twice, split where the numpy formulation draws random
numbers that depend on the first half: :func:`transitions` (care benefit, quality of life,
deaths, strokes, discharges, hand-offs and their failures, counted per provider) runs on
the step's two bulk draws; the model then routes the readmissions (drawing as many numbers
as there are readmissions) and draws the condition onsets; :func:`after_routing` applies
the onsets, ages the living, updates the prevention stock and sums what needs the routed
providers and the new states (outcomes at the lead provider, the NMB health accounts).
:func:`choose` is ``patients_choose``'s pass: experience, switching, steering, the GPs'
reputations. Each function computes the numpy formulation's formulas in the same order
(``tests/oracle_health.py``) and adds per-provider sums in patient order, as ``np.bincount``.
Two shortcuts keep the decisions exact: powers and exponentials of age come in bulk from
numpy (its vectorised versions are the oracle's own), and a stroke or condition onset whose
draw lies safely above a bound of its probability is decided without the exponential.
"""

from __future__ import annotations

import numba
import numpy as np

from ..care import (
    ACUTE,
    CHRONIC,
    DEAD,
    DISABLED,
    GP,
    HEALTHY,
    LEAD_DISCIPLINE,
    POST_ACUTE,
)
from . import JIT_OPTIONS, SUM_BLOCK

# ``transitions`` keeps a patient's benefit of care in the lead discipline of the state it
# leaves the patient in; the condition onsets drawn after it only make the healthy chronic,
# so ``after_routing`` reads the right one as long as those two states share their lead.
if LEAD_DISCIPLINE[HEALTHY] != LEAD_DISCIPLINE[CHRONIC]:
    raise ImportError("vbpsim.kernels.health: the healthy and the chronic state must share their lead discipline")

# Bits of the per-patient event flags written by ``transitions``.
HANDOFF, FAILED, READMITTED = 1, 2, 4

# Rows of the per-provider sums of ``transitions`` (at the sender or the GP) ...
ACUTE_EVENTS, EXPECTED_ACUTE_EVENTS, HANDOFFS, FAILURE_UNITS, FAILURES = range(5)
# ... and of ``after_routing`` (at the provider of the lead discipline, after routing).
READMISSIONS, EXPECTED_READMISSIONS, DEATHS, EXPECTED_DEATHS, PROM, EXPECTED_PROM = range(6)

#: Names of the totals ``transitions`` returns, in order.
TRANSITION_TOTALS = (
    "qol",  # quality of life of the living (x dt: QALYs)
    "stroke_hazard",
    "stroke_hazard_untreated",
    "stroke_hazard_guideline",
    "handoffs",
    "handoff_failures",
    "readmissions",
    "readmission_risk",  # sum of p_fail x readmission_after_failure over hand-offs
    "handoff_failure_risk",  # sum of p_fail over hand-offs
    "guideline_qol",  # quality of life of the living at guideline care
    "lead_benefit",
    "alive",
    "strokes",
    "deaths",
)
#: Names of the totals ``after_routing`` returns, in order.
ROUTED_TOTALS = (
    "direct",  # QoL lost to care off the optimum (before x dt), innovations' benefit included
    "deaths",  # deaths caused by care off the optimum
    "strokes",  # strokes caused by GP care off the optimum (x dt)
    "direct_without",  # the same three with innovations' benefit excluded
    "deaths_without",
    "strokes_without",
    "prevented",  # strokes the prevention stock averts (before x dt)
    "guideline_qol",  # quality of life at guideline care of the living after the step
    "alive",
)


@numba.njit(**JIT_OPTIONS)
def _clip01(x: float) -> float:
    """``np.clip(x, 0, 1)`` (NaN stays NaN)."""
    if x < 0.0:
        return 0.0
    if x > 1.0:
        return 1.0
    return x


@numba.njit(**JIT_OPTIONS)
def _max0(x: float) -> float:
    """``np.maximum(x, 0.0)`` (NaN stays NaN)."""
    return 0.0 if x < 0.0 else x


@numba.njit(**JIT_OPTIONS)
def _add(totals: np.ndarray, block: tuple) -> None:
    """Add a block's sums to the totals."""
    for k in range(len(block)):
        totals[k] += block[k]


@numba.njit(**JIT_OPTIONS)
def _state_death(state: int, monthly: np.ndarray) -> float:
    """Probability of dying this step at guideline care by state, before background mortality."""
    if state == ACUTE:
        return monthly[0]
    if state == POST_ACUTE:
        return monthly[1]
    if state == DISABLED:
        return monthly[2]
    return 0.0


@numba.njit(**JIT_OPTIONS)
def _below_event_probability(draw: float, hazard: float) -> bool:
    """``draw < 1 - exp(-hazard)``, without the exponential when the draw is clearly above it.

    For a hazard >= 0 the probability is at most the hazard (and its computed value at
    most a few units of 1e-16 above it), so a draw above the hazard by a safe margin
    decides the comparison exactly as computing the exponential would.
    """
    if hazard >= 0.0 and draw >= hazard * (1.0 + 1e-9) + 1e-15:
        return False
    return draw < 1.0 - np.exp(-hazard)


@numba.njit(**JIT_OPTIONS)
def transitions(
    state: np.ndarray,
    age: np.ndarray,
    conditions: np.ndarray,
    provider: np.ndarray,
    frailty: np.ndarray,
    intensity: np.ndarray,
    need_tilt: np.ndarray,
    need_classes: bool,
    high_need: np.ndarray,
    delivery_noise: np.ndarray,
    by_age: np.ndarray,
    p_background: np.ndarray,
    prevention_stock: np.ndarray,
    u: np.ndarray,
    u_handoff: np.ndarray,
    benefit_factor: np.ndarray,
    p_fail_of: np.ndarray,
    handoff_receiver: np.ndarray,
    discipline: np.ndarray,
    lead_discipline: np.ndarray,
    need_per_month: np.ndarray,
    duplicate_share: float,
    readmission_after_failure: float,
    overtreatment_harm: float,
    harm: float,
    qol_table: np.ndarray,
    qol_care_weight: float,
    stroke_rate_60: float,
    condition_hr: np.ndarray,
    monthly: np.ndarray,
    dt: float,
    months: float,
    prevention: bool,
    prevention_efficacy: float,
    gp_benefit: np.ndarray,
    after_benefit: np.ndarray,
    qol_out: np.ndarray,
    base_stroke: np.ndarray,
    strokes: np.ndarray,
    dies: np.ndarray,
    new_state: np.ndarray,
    events: np.ndarray,
    pending_rows: np.ndarray,
    pending_units: np.ndarray,
    readmitted: np.ndarray,
    per_provider: np.ndarray,
    start: int,
    stop: int,
    totals: np.ndarray,
    counters: np.ndarray,
    age_range: np.ndarray,
) -> None:
    """One step's health transitions of the patients ``start:stop`` (a chunk), on its draws ``u`` and ``u_handoff``.

    Writes the care benefit (after providers' factors) in the GP discipline and in the lead
    discipline of the patient's new state (``gp_benefit``, ``after_benefit``), quality of life (0 for the dead),
    yearly stroke hazard before care, strokes, deaths, the new state (readmissions acute),
    hand-off event bits, the failed hand-offs' duplicated work (``pending_units`` of the
    patients ``pending_rows``, in patient order), and the readmitted patients' indices. Adds
    per provider (rows of ``per_provider``): strokes and expected strokes at the GP,
    hand-offs, failures and their duplicated units at the sender. Carried across the chunks
    (chunks start at multiples of ``SUM_BLOCK``): ``totals`` (named in :data:`TRANSITION_TOTALS`,
    added to), ``counters`` (the readmitted and the pending patients so far, the next free
    entries of ``readmitted`` and ``pending_rows``) and ``age_range`` (the youngest and the
    oldest age so far: bounds of the onset probabilities). ``u``, ``u_handoff`` and ``by_age``
    (the stroke hazard ratio of age) hold the chunk's patients; ``p_background`` (the step's
    probability of other-cause death) every patient's. The age terms come computed in bulk:
    numpy's vectorised powers and exponentials cost a fraction of a loop's scalar calls.
    """
    n_disciplines = provider.shape[1]
    n_readmitted, n_pending = counters[0], counters[1]
    benefit = np.empty(n_disciplines)  # this patient's, by discipline
    qalys = stroke_h_sum = untreated_sum = guideline_sum = 0.0
    handoffs = failures = readmissions = risk_sum = p_fail_sum = 0.0
    guideline_qol = lead_sum = n_alive = n_strokes = n_deaths = 0.0
    youngest, oldest = age_range[0], age_range[1]
    # The chunk's rows, indexed from 0: the compiler then knows no index is negative (no wraparound code).
    state, age, conditions, provider = state[start:stop], age[start:stop], conditions[start:stop], provider[start:stop]
    frailty, high_need, delivery_noise = frailty[start:stop], high_need[start:stop], delivery_noise[start:stop]
    p_background, prevention_stock = p_background[start:stop], prevention_stock[start:stop]
    gp_benefit, after_benefit, base_stroke = gp_benefit[start:stop], after_benefit[start:stop], base_stroke[start:stop]
    qol_out, strokes, dies = qol_out[start:stop], strokes[start:stop], dies[start:stop]
    new_state, events = new_state[start:stop], events[start:stop]
    for i in range(stop - start):  # (start is a multiple of SUM_BLOCK)
        if (i & (SUM_BLOCK - 1)) == 0:  # a new block: its predecessor's sums go to the totals (see SUM_BLOCK)
            _add(totals, (qalys, stroke_h_sum, untreated_sum, guideline_sum, handoffs, failures, readmissions,
                          risk_sum, p_fail_sum, guideline_qol, lead_sum, n_alive, n_strokes, n_deaths))  # fmt: skip
            qalys = stroke_h_sum = untreated_sum = guideline_sum = 0.0
            handoffs = failures = readmissions = risk_sum = p_fail_sum = 0.0
            guideline_qol = lead_sum = n_alive = n_strokes = n_deaths = 0.0
        s = state[i]
        youngest = min(youngest, age[i])
        oldest = max(oldest, age[i])
        sign = 1.0 if high_need[i] else -1.0
        for d in range(n_disciplines):
            # the ratio of care to need, as delivered (``kernels.delivery._care_ratio``)
            r = intensity[provider[i, d]] * delivery_noise[i, d]
            if need_classes:
                r = r * (1 + sign * need_tilt[provider[i, d]])
            # both branches computed: a select, not a jump the CPU mispredicts
            below = _max0(r * (2.0 - r))
            x = r - 1.0
            above = 1.0 - overtreatment_harm * (x * x)
            benefit[d] = (below if r <= 1.0 else above) * benefit_factor[provider[i, d]]
        lead = lead_discipline[s]
        lead_benefit = benefit[lead]
        shortfall = 1.0 - lead_benefit
        qol = qol_table[s] * (1.0 - qol_care_weight * _clip01(shortfall))
        at_risk = s == HEALTHY or s == CHRONIC
        bs = 0.0
        if at_risk:
            by_conditions = 1.0
            for c in range(conditions.shape[1]):  # x 1.0 is exact: the product of the patient's ratios
                by_conditions = by_conditions * (condition_hr[c] if conditions[i, c] else 1.0)
            bs = stroke_rate_60 * by_age[i] * by_conditions
        base_stroke[i] = bs
        gp = provider[i, GP]
        ns = s
        flags = 0
        stroke = False
        died = False
        if s == DEAD:
            qol_out[i] = 0.0
        else:
            n_alive += 1.0
            qalys += qol
            guideline_qol += qol_table[s]
            lead_sum += lead_benefit
            qol_out[i] = qol
            stroke_h = bs * (1.0 + harm * (1.0 - benefit[GP]))
            if prevention:
                stroke_h = stroke_h * (1.0 - prevention_efficacy * prevention_stock[i])
            worse = 1.0 + harm * shortfall
            if s == ACUTE:
                p_death = monthly[0] * worse
                if p_death > 1.0:
                    p_death = 1.0
            elif s == POST_ACUTE:
                p_death = monthly[1] * worse
            elif s == DISABLED:
                p_death = monthly[2] * worse
            else:
                p_death = 0.0
            p_death = 1.0 - (1.0 - _clip01(p_death)) * (1.0 - p_background[i])
            if bs != 0.0:
                per_provider[EXPECTED_ACUTE_EVENTS, gp] += 1.0 - np.exp(-bs * dt)
            ui = u[i]
            if ui < p_death:
                died = True
                ns = DEAD
                n_deaths += 1.0
            else:
                u2 = (ui - p_death) / max(1.0 - p_death, 1e-12)
                handoff = False
                if at_risk:
                    stroke_h_sum += stroke_h
                    untreated_sum += bs * (1.0 + harm)
                    guideline_sum += bs
                    if _below_event_probability(u2, stroke_h * dt):
                        stroke = True
                        ns = ACUTE
                        n_strokes += 1.0
                        per_provider[ACUTE_EVENTS, gp] += 1.0
                elif s == ACUTE:
                    handoff = True
                    ns = POST_ACUTE
                elif s == POST_ACUTE:
                    p_recover = monthly[3] * _max0(lead_benefit)
                    p_disabled = _max0(monthly[4] * worse)
                    if u2 < p_recover:
                        ns = CHRONIC
                    elif u2 < p_recover + p_disabled:
                        handoff = True
                        ns = DISABLED
                if handoff:
                    sender = provider[i, lead]
                    p_fail = p_fail_of[sender]
                    flags = HANDOFF
                    handoffs += 1.0
                    risk_sum += p_fail * readmission_after_failure
                    p_fail_sum += p_fail
                    per_provider[HANDOFFS, sender] += 1.0
                    uh = u_handoff[i]
                    if uh < p_fail:
                        flags |= FAILED
                        failures += 1.0
                        if uh < p_fail * readmission_after_failure:
                            flags |= READMITTED
                            readmissions += 1.0
                            ns = ACUTE
                            readmitted[n_readmitted] = start + i
                            n_readmitted += 1
                        pending_rows[n_pending] = start + i
                        for d in range(n_disciplines):
                            duplicate = duplicate_share * (need_per_month[ns, d] * frailty[i] * months)
                            pending_units[n_pending, d] = duplicate
                        n_pending += 1
                        receiver = handoff_receiver[sender]
                        duplicated = 0.0
                        if receiver >= 0:
                            at = discipline[receiver]
                            duplicated = duplicate_share * (need_per_month[ns, at] * frailty[i] * months)
                        per_provider[FAILURE_UNITS, sender] += duplicated
                        per_provider[FAILURES, sender] += 1.0
        gp_benefit[i] = benefit[GP]
        after_benefit[i] = benefit[lead_discipline[ns]]  # (onsets keep the lead: see the module's check)
        strokes[i] = stroke
        dies[i] = died
        new_state[i] = ns
        events[i] = flags
    _add(totals, (qalys, stroke_h_sum, untreated_sum, guideline_sum, handoffs, failures, readmissions,
                  risk_sum, p_fail_sum, guideline_qol, lead_sum, n_alive, n_strokes, n_deaths))  # fmt: skip
    counters[0], counters[1] = n_readmitted, n_pending
    age_range[0], age_range[1] = youngest, oldest


@numba.njit(**JIT_OPTIONS)
def after_routing(
    state_before: np.ndarray,
    new_state: np.ndarray,
    age: np.ndarray,
    conditions: np.ndarray,
    onset_draws: np.ndarray,
    provider: np.ndarray,
    gp_benefit: np.ndarray,
    after_benefit: np.ndarray,
    base_stroke: np.ndarray,
    qol_out: np.ndarray,
    p_background: np.ndarray,
    dies: np.ndarray,
    events: np.ndarray,
    prevention_stock: np.ndarray,
    lead_discipline: np.ndarray,
    condition_incidence: float,
    condition_odds_per_decade: float,
    youngest: float,
    oldest: float,
    dt: float,
    months: float,
    prevention: bool,
    buildup: float,
    prevention_target: np.ndarray,
    prevention_efficacy: float,
    innovation: bool,
    benefit_gain: np.ndarray,
    qol_table: np.ndarray,
    qol_care_weight: float,
    harm: float,
    monthly: np.ndarray,
    reference_readmission_rate: float,
    per_provider: np.ndarray,
    start: int,
    stop: int,
    totals: np.ndarray,
) -> None:
    """The rest of the step's health pass, once readmissions are routed and onsets drawn.

    New chronic conditions (``onset_draws``) for the living, who age by ``dt``; the
    prevention stock moves toward the GP's target; outcomes are added (rows of
    ``per_provider``) at the patient's provider of the lead discipline before the step,
    as routed; and the NMB health accounts are summed over the states after the step.
    ``youngest`` and ``oldest``: bounds of the ages, which bound the onset probability:
    a patient whose draws all lie above that bound gets no new condition, known without
    computing the probability. ``p_background``: the step's probability of other-cause death
    (at the ages before the step), for the expected deaths. Runs on the patients
    ``start:stop`` (a chunk starting at a multiple of ``SUM_BLOCK``; ``onset_draws`` holds
    its rows) and adds to ``totals`` (named in :data:`ROUTED_TOTALS`; without innovations
    the caller copies the outcomes to the outcomes without them).
    """
    highest = max(
        condition_odds_per_decade ** ((youngest - 60.0) / 10.0), condition_odds_per_decade ** ((oldest - 60.0) / 10.0)
    )
    onset_bound = min(condition_incidence * highest * dt * (1.0 + 1e-9) + 1e-15, 1.0)
    direct = deaths = strokes = direct_without = deaths_without = strokes_without = 0.0
    prevented = guideline_qol = n_alive = 0.0
    # The chunk's rows, indexed from 0: the compiler then knows no index is negative (no wraparound code).
    state_before, new_state, age = state_before[start:stop], new_state[start:stop], age[start:stop]
    conditions, provider, p_background = conditions[start:stop], provider[start:stop], p_background[start:stop]
    gp_benefit, after_benefit, base_stroke = gp_benefit[start:stop], after_benefit[start:stop], base_stroke[start:stop]
    qol_out, dies, events = qol_out[start:stop], dies[start:stop], events[start:stop]
    prevention_stock = prevention_stock[start:stop]
    for i in range(stop - start):  # (start is a multiple of SUM_BLOCK)
        if (i & (SUM_BLOCK - 1)) == 0:  # a new block: its predecessor's sums go to the totals (see SUM_BLOCK)
            _add(totals, (direct, deaths, strokes, direct_without, deaths_without, strokes_without, prevented,
                          guideline_qol, n_alive))  # fmt: skip
            direct = deaths = strokes = direct_without = deaths_without = strokes_without = 0.0
            prevented = guideline_qol = n_alive = 0.0
        ns = new_state[i]
        if ns != DEAD:
            lowest_draw = onset_draws[i, 0]
            for c in range(1, conditions.shape[1]):
                lowest_draw = min(lowest_draw, onset_draws[i, c])
            if lowest_draw < onset_bound:
                factor = condition_odds_per_decade ** ((age[i] - 60.0) / 10.0)
                p_onset = 1.0 - np.exp(-condition_incidence * factor * dt)
                for c in range(conditions.shape[1]):
                    if onset_draws[i, c] < p_onset:
                        conditions[i, c] = True
            any_condition = False
            for c in range(conditions.shape[1]):
                any_condition = any_condition or conditions[i, c]
            if ns == HEALTHY and any_condition:
                ns = CHRONIC
                new_state[i] = ns
            age[i] = age[i] + dt
        gp = provider[i, GP]
        if prevention:
            prevention_stock[i] += buildup * (prevention_target[gp] - prevention_stock[i])
        s = state_before[i]
        row = provider[i, lead_discipline[s]]
        flags = events[i]
        per_provider[READMISSIONS, row] += 1.0 if flags & READMITTED else 0.0
        per_provider[EXPECTED_READMISSIONS, row] += reference_readmission_rate if flags & HANDOFF else 0.0
        per_provider[DEATHS, row] += 1.0 if dies[i] else 0.0
        expected_death = 0.0
        if s != DEAD:  # at guideline care, with the probability of other-cause death of the step
            expected_death = 1.0 - (1.0 - _state_death(s, monthly)) * (1.0 - p_background[i])
        per_provider[EXPECTED_DEATHS, row] += expected_death
        per_provider[PROM, row] += qol_out[i] * months
        per_provider[EXPECTED_PROM, row] += (qol_table[s] if s != DEAD else 0.0) * months
        if ns == DEAD:
            continue
        n_alive += 1.0
        guideline_qol += qol_table[ns]
        lead = lead_discipline[ns]
        b = after_benefit[i]
        state_death = _state_death(ns, monthly)
        direct += qol_table[ns] * qol_care_weight * _clip01(1.0 - b)
        deaths += state_death * harm * (1.0 - b)
        if innovation:
            w = b / (1.0 + benefit_gain[provider[i, lead]])
            direct_without += qol_table[ns] * qol_care_weight * _clip01(1.0 - w)
            deaths_without += state_death * harm * (1.0 - w)
        if ns == HEALTHY or ns == CHRONIC:
            bs = base_stroke[i]
            kept = 1.0
            if prevention:
                kept = 1.0 - prevention_efficacy * prevention_stock[i]
                prevented += bs * (1.0 - kept)
            strokes += bs * harm * (1.0 - gp_benefit[i]) * kept * dt
            if innovation:
                w = gp_benefit[i] / (1.0 + benefit_gain[gp])
                strokes_without += bs * harm * (1.0 - w) * kept * dt
    _add(totals, (direct, deaths, strokes, direct_without, deaths_without, strokes_without, prevented,
                  guideline_qol, n_alive))  # fmt: skip


@numba.njit(**JIT_OPTIONS)
def choose(
    state: np.ndarray,
    provider: np.ndarray,
    experience: np.ndarray,
    gp_benefit: np.ndarray,
    diagnosis_row: np.ndarray,
    gp_by_diagnosis: np.ndarray,
    frailty: np.ndarray,
    u_switch: np.ndarray,
    switch_scale: float,
    per_year: float,
    steering: bool,
    p_steer_of: np.ndarray,
    steer_weight: np.ndarray,
    unprofitable: np.ndarray,
    u_steer: np.ndarray,
    steered: np.ndarray,
    moving: np.ndarray,
    reputation: np.ndarray,
    panel: np.ndarray,
    start: int,
    stop: int,
    counters: np.ndarray,
) -> None:
    """Patients' experience of GP care, switching and steering, for the patients ``start:stop`` (a chunk).

    Updates ``experience`` in place (patients seen by their GP), writes who is steered and
    the indices of the patients who move (switching or steered), and adds each GP's panel
    and summed experience of its living patients. ``u_switch`` and ``u_steer`` hold the
    chunk's draws; ``counters`` carries the movers and the steered so far across the chunks
    (the next free entry of ``moving`` first).
    """
    n_moving, n_steered = counters[0], counters[1]
    # The chunk's rows, indexed from 0: the compiler then knows no index is negative (no wraparound code).
    state, provider, experience = state[start:stop], provider[start:stop], experience[start:stop]
    gp_benefit, diagnosis_row, frailty = gp_benefit[start:stop], diagnosis_row[start:stop], frailty[start:stop]
    steered, steer_weight, unprofitable = steered[start:stop], steer_weight[start:stop], unprofitable[start:stop]
    for i in range(stop - start):
        if gp_by_diagnosis[diagnosis_row[i]] * frailty[i] > 0:  # (seen by the GP: a GP need)
            experience[i] = 0.9 * experience[i] + 0.1 * gp_benefit[i]
        e = experience[i]
        alive = state[i] != DEAD
        gp = provider[i, GP]
        switching = alive and u_switch[i] < switch_scale * (1.0 - e) * per_year
        steer = False
        if steering:
            steer = alive and unprofitable[i] and u_steer[i] < p_steer_of[gp] * steer_weight[i] and not switching
        steered[i] = steer
        if steer:
            n_steered += 1
        if switching or steer:
            moving[n_moving] = start + i
            n_moving += 1
        living = 1.0 if alive else 0.0
        reputation[gp] += e * living
        panel[gp] += living
    counters[0], counters[1] = n_moving, n_steered
