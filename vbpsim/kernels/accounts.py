"""Compiled passes for what the step records and what providers make of their patients.

``record_pass`` sums the step's cost accounts, admission counts and record totals over the
patients in one loop and adds the step to each patient's equity tallies; ``appraise_pass``
and ``appraise_admissions_pass`` are the providers' private view of each patient's
profitability (GPs' panels, hospitals' planned episodes); ``outlook_pass`` the per-provider
sums of the providers' outlook. Formulas and their order of operations are those of the
numpy formulation (``tests/oracle_accounts.py``), so results agree to rounding.
"""

from __future__ import annotations

import numba
import numpy as np

from ..care import ACUTE, CHRONIC, DEAD, DISABLED, GP, HEALTHY, HOSPITAL
from . import JIT_OPTIONS, SUM_BLOCK

# Admission counts of the step, recorded under these names.
ADMISSION_RECORDS: tuple[str, ...] = (
    "planned_admissions",
    "acs_admissions",
    "admission_candidates",
    "acs_hazard",
    "redirected_planned",
    "redirected_high_risk",
    "planned_high_risk",
)
# Slots of the vector ``record_pass`` fills (one float each).
RECORD_SLOTS: tuple[str, ...] = (
    "alive",
    "guideline_cost",
    "low_value_cost",
    "shortfall_cost",
    "shifted_cost",
    "steered",
    "steered_high_risk",
    "steered_low_risk",
    "alive_high_risk",
    "alive_low_risk",
    "steered_frailty",
    "alive_frailty",
    "alive_prevention_stock",
    "guideline_high_need",
    "delivered_high_need",
    "guideline_low_need",
    "delivered_low_need",
    "guideline_gp",
    "guideline_hospital",
    "guideline_rehab",
    "guideline_nursing",
    "delivered_gp",
    "delivered_hospital",
    "delivered_rehab",
    "delivered_nursing",
    "need_cost",
    "overtreatment",
    "withheld",
    "delivered_here",
    "admission_guideline",
    "admission_low_value_units",
    "admission_here_units",
    "redirected_units",
    "declined_emergencies",
    *ADMISSION_RECORDS,
)
SLOT = {name: i for i, name in enumerate(RECORD_SLOTS)}
# The slots as constants for the kernel (numba reads module-level ints as constants).
ALIVE = SLOT["alive"]
GUIDELINE_COST = SLOT["guideline_cost"]
LOW_VALUE_COST = SLOT["low_value_cost"]
SHORTFALL_COST = SLOT["shortfall_cost"]
SHIFTED_COST = SLOT["shifted_cost"]
STEERED = SLOT["steered"]
STEERED_HIGH_RISK = SLOT["steered_high_risk"]
STEERED_LOW_RISK = SLOT["steered_low_risk"]
ALIVE_HIGH_RISK = SLOT["alive_high_risk"]
ALIVE_LOW_RISK = SLOT["alive_low_risk"]
STEERED_FRAILTY = SLOT["steered_frailty"]
ALIVE_FRAILTY = SLOT["alive_frailty"]
ALIVE_PREVENTION_STOCK = SLOT["alive_prevention_stock"]
GUIDELINE_HIGH_NEED = SLOT["guideline_high_need"]
DELIVERED_HIGH_NEED = SLOT["delivered_high_need"]
GUIDELINE_LOW_NEED = SLOT["guideline_low_need"]
DELIVERED_LOW_NEED = SLOT["delivered_low_need"]
NEED_COST = SLOT["need_cost"]
OVERTREATMENT = SLOT["overtreatment"]
WITHHELD = SLOT["withheld"]
DELIVERED_HERE = SLOT["delivered_here"]
DECLINED_EMERGENCIES = SLOT["declined_emergencies"]
GUIDELINE_BY_DISCIPLINE, DELIVERED_BY_DISCIPLINE = SLOT["guideline_gp"], SLOT["delivered_gp"]  # 4 each
ADMISSION_SUMS = SLOT["admission_guideline"]  # guideline, low-value and here units, redirected units
ADMISSION_COUNTS = SLOT[ADMISSION_RECORDS[0]]  # the ADMISSION_RECORDS, in their order


@numba.njit(**JIT_OPTIONS)
def _add_record_block(
    out: np.ndarray,
    block: np.ndarray,
    guideline_by: np.ndarray,
    delivered_by: np.ndarray,
    low_value: float,
    shortfall: float,
    need_total: float,
    here_total: float,
) -> None:
    """Add a block of patients' record sums to the totals and clear the block's arrays (see SUM_BLOCK)."""
    n_disc = guideline_by.shape[0]
    block[LOW_VALUE_COST], block[SHORTFALL_COST] = low_value, shortfall
    for d in range(n_disc):  # (a loop, not a slice assignment: that costs seconds of compiling)
        block[GUIDELINE_BY_DISCIPLINE + d] = guideline_by[d]
        block[DELIVERED_BY_DISCIPLINE + d] = delivered_by[d]
        guideline_by[d] = delivered_by[d] = 0.0
    block[NEED_COST], block[DELIVERED_HERE] = need_total, here_total
    for k in range(block.shape[0]):
        out[k] += block[k]
        block[k] = 0.0


@numba.njit(**JIT_OPTIONS)
def record_pass(
    diagnosis_row: np.ndarray,
    by_diagnosis: np.ndarray,
    delivered: np.ndarray,
    shifted_cost: np.ndarray,
    provider: np.ndarray,
    valuable: np.ndarray,
    unit_cost: np.ndarray,
    high_need: np.ndarray,
    state: np.ndarray,
    state_before: np.ndarray,
    steered: np.ndarray,
    unpriced_band: np.ndarray,
    frailty: np.ndarray,
    prevention_stock: np.ndarray,
    admitting: bool,
    admission_index: np.ndarray,
    admission_guideline: np.ndarray,
    redirected_units: np.ndarray,
    admission_here_units: np.ndarray,
    admission_low_value_units: np.ndarray,
    planned_admitted: np.ndarray,
    acs_admitted: np.ndarray,
    admission_candidates: np.ndarray,
    acs_expected_total: float,
    overtreatment_total: float,
    withheld_total: float,
    redirected: np.ndarray,
    high_risk_frailty: float,
    qol: np.ndarray,
    admission_qalys: np.ndarray,
    strokes: np.ndarray,
    dies: np.ndarray,
    dt_years: float,
    tally_qalys: np.ndarray,
    tally_guideline: np.ndarray,
    tally_delivered: np.ndarray,
    tally_steered: np.ndarray,
    tally_strokes: np.ndarray,
    tally_deaths: np.ndarray,
) -> np.ndarray:
    """The step's sums over patients (slots ``RECORD_SLOTS``); adds the step to the tallies.

    Guideline care is the need at the providers' valuable intensity plus appropriate
    admission candidates; delivered care in the record includes redirected episodes (care
    bought elsewhere), the cost accounts' ``delivered_here`` does not. Patient i's need in
    discipline d is ``by_diagnosis[diagnosis_row[i], d] x frailty[i]``. The admission arrays
    hold one entry per candidate, of the patients ``admission_index`` (ascending); the ACS
    admission probability, and the guideline cost over- and undertreated weighted by the
    ratio's distance from 1, come summed (the delivery pass sums them by the same blocks).
    """
    n, n_disc = delivered.shape
    out = np.zeros(len(RECORD_SLOTS))
    block = np.zeros(len(RECORD_SLOTS))  # one block's sums: added to ``out`` block by block, as pairwise sums do
    guideline_by = np.zeros(n_disc)
    delivered_by = np.zeros(n_disc)
    n_candidates = admission_index.shape[0] if admitting else 0
    j = 0  # the next candidate
    low_value = shortfall = need_total = here_total = 0.0
    for i in range(n):  # (one loop from 0: indices from a block's start kept numba's negative-index code, 15% slower)
        if (i & (SUM_BLOCK - 1)) == 0 and i > 0:  # a new block: the last block's sums to the totals
            _add_record_block(out, block, guideline_by, delivered_by, low_value, shortfall, need_total, here_total)
            low_value = shortfall = need_total = here_total = 0.0
        guideline_i = 0.0
        delivered_i = 0.0
        here_i = 0.0
        candidate = j < n_candidates and admission_index[j] == i
        appropriate = admission_guideline[j] if candidate else 0.0
        elsewhere = redirected_units[j] if candidate else 0.0
        diagnosis_at = diagnosis_row[i]
        for d in range(n_disc):
            c = unit_cost[d]
            at_hospital = 1.0 if d == HOSPITAL else 0.0
            units = by_diagnosis[diagnosis_at, d] * frailty[i]
            optimal = units * valuable[provider[i, d]] + at_hospital * appropriate
            given = delivered[i, d]
            given_record = given + at_hospital * elsewhere
            cost_of = optimal * c
            delivered_cost = given_record * c
            excess = delivered_cost - cost_of
            low_value += max(excess, 0.0)
            shortfall += max(-excess, 0.0)
            guideline_by[d] += cost_of
            delivered_by[d] += delivered_cost
            guideline_i += cost_of
            delivered_i += delivered_cost
            here_i += given * c
            need_cost = units * c
            need_total += need_cost
        here_total += here_i
        block[GUIDELINE_COST] += guideline_i
        block[SHIFTED_COST] += shifted_cost[i]
        high = 1.0 if high_need[i] else 0.0  # arithmetic, not branches: need classes and bands are random
        block[GUIDELINE_HIGH_NEED] += high * guideline_i
        block[DELIVERED_HIGH_NEED] += high * delivered_i
        block[GUIDELINE_LOW_NEED] += (1.0 - high) * guideline_i
        block[DELIVERED_LOW_NEED] += (1.0 - high) * delivered_i
        band = unpriced_band[i]
        top = 1.0 if band == 2 else 0.0
        bottom = 1.0 if band == 0 else 0.0
        if state[i] != DEAD:
            block[ALIVE] += 1.0
            block[ALIVE_FRAILTY] += frailty[i]
            block[ALIVE_PREVENTION_STOCK] += prevention_stock[i]
            block[ALIVE_HIGH_RISK] += top
            block[ALIVE_LOW_RISK] += bottom
        if steered[i]:
            block[STEERED] += 1.0
            block[STEERED_FRAILTY] += frailty[i]
            if band == 2:
                block[STEERED_HIGH_RISK] += 1.0
            elif band == 0:
                block[STEERED_LOW_RISK] += 1.0
        hospital_need = by_diagnosis[diagnosis_at, HOSPITAL] * frailty[i]
        if state_before[i] == ACUTE and hospital_need > 0 and delivered[i, HOSPITAL] <= 0:
            block[DECLINED_EMERGENCIES] += 1.0
        tally_qalys[i] += qol[i] * dt_years
        if candidate:  # (everyone else's admission entries are zero: adding them changed no sum)
            block[ADMISSION_SUMS] += admission_guideline[j]
            block[ADMISSION_SUMS + 1] += admission_low_value_units[j]
            block[ADMISSION_SUMS + 2] += admission_here_units[j]
            block[ADMISSION_SUMS + 3] += redirected_units[j]
            block[ADMISSION_COUNTS] += planned_admitted[j]
            block[ADMISSION_COUNTS + 1] += acs_admitted[j]
            block[ADMISSION_COUNTS + 2] += admission_candidates[j]
            block[ADMISSION_COUNTS + 4] += redirected[j]
            high_risk = 1.0 if frailty[i] >= high_risk_frailty else 0.0
            block[ADMISSION_COUNTS + 5] += high_risk * redirected[j]
            block[ADMISSION_COUNTS + 6] += high_risk * planned_admitted[j]
            tally_qalys[i] += admission_qalys[j]
            j += 1
        tally_guideline[i] += guideline_i
        tally_delivered[i] += here_i
        tally_steered[i] += steered[i]
        tally_strokes[i] += strokes[i]
        tally_deaths[i] += dies[i]
    _add_record_block(out, block, guideline_by, delivered_by, low_value, shortfall, need_total, here_total)
    if admitting:
        out[ADMISSION_COUNTS + 3] = acs_expected_total
    out[OVERTREATMENT], out[WITHHELD] = overtreatment_total, withheld_total
    return out


@numba.njit(**JIT_OPTIONS)
def masked_quantile(values: np.ndarray, order: np.ndarray, mask: np.ndarray, q: float) -> float:
    """``np.quantile(values[mask], q)`` (linear interpolation) from a precomputed ``argsort(values)``."""
    m = 0
    for i in range(len(mask)):
        if mask[i]:
            m += 1
    if m == 0:
        return np.nan
    position = q * (m - 1)
    lo = int(np.floor(position))
    hi = min(lo + 1, m - 1)
    frac = position - lo
    low_value = np.nan
    high_value = np.nan
    k = 0
    for j in range(len(order)):
        i = order[j]
        if mask[i]:
            if k == lo:
                low_value = values[i]
            if k == hi:
                high_value = values[i]
                break
            k += 1
    diff = high_value - low_value
    if frac >= 0.5:  # numpy's _lerp: exact at both ends
        return high_value - diff * (1.0 - frac)
    return low_value + diff * frac


@numba.njit(**JIT_OPTIONS)
def appraise_pass(
    provider: np.ndarray,
    payee: np.ndarray,
    intensity: np.ndarray,
    need_multiplier: np.ndarray,
    perceived_risk: np.ndarray,
    frailty: np.ndarray,
    hazard: np.ndarray,
    scored: np.ndarray,
    cells: np.ndarray,
    cell_means: np.ndarray,
    blend: float,
    use_blend: bool,
    score_scale: np.ndarray,
    diagnosis_row: np.ndarray,
    by_diagnosis: np.ndarray,
    case_scale: np.ndarray,
    mean_cost: np.ndarray,
    threshold: np.ndarray,
    unit_cost: np.ndarray,
    episode_units: np.ndarray,
    episode_steps: np.ndarray,
    pass_through: np.ndarray,
    grad: np.ndarray,
    services_grad: np.ndarray,
    months_per_step: float,
    steps_per_year: float,
    attachment: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each patient's yearly net payment to its GP's payee (GP's view and true), and its cost.

    ``grad`` holds per payee the marginal payment of member months, expected cost, average
    cost, cases, case value, cost, outlier cost and stop-loss excess (in that order);
    only the disciplines inside the GP's payee count. A patient's need is
    ``by_diagnosis[diagnosis_row] x frailty`` in units, its diagnosis price
    ``by_diagnosis[diagnosis_row] x unit_cost``; its risk score is the observation's
    (``kernels.delivery.observe``): its cell's mean cost, blended with its own cost if
    ``use_blend``, times ``score_scale``, 0 if it was not ``scored`` (dead when observed).
    """
    n, n_disc = provider.shape
    net = np.empty(n)
    true_net = np.empty(n)
    cost = np.zeros(n)
    for i in range(n):
        p = payee[provider[i, GP]]
        g_mm, g_exp, g_avg, g_cases = grad[p, 0], grad[p, 1], grad[p, 2], grad[p, 3]
        g_value, g_cost, g_outlier, g_stoploss = grad[p, 4], grad[p, 5], grad[p, 6], grad[p, 7]
        net_i = g_mm * months_per_step * steps_per_year
        true_i = net_i
        cost_i = 0.0
        diagnosis_at = diagnosis_row[i]
        for d in range(n_disc):
            row = provider[i, d]
            if payee[row] != p:
                continue
            units_d = by_diagnosis[diagnosis_at, d] * frailty[i]
            diagnosis_cost_d = by_diagnosis[diagnosis_at, d] * unit_cost[d]
            raw = 0.0
            if scored[i]:
                raw = cell_means[cells[i], d]
                if use_blend:
                    raw = blend * (units_d * unit_cost[d]) + (1 - blend) * raw
            priced = (
                raw * score_scale[d] * g_exp
                + mean_cost[d] * g_avg
                + (units_d > 0) * (g_cases + diagnosis_cost_d * case_scale[d] * g_value)
            )
            per_unit = intensity[row] * need_multiplier[row]
            steps = episode_steps[d]
            episode_value = episode_units[d] * unit_cost[d]
            episode_price = episode_value * g_value + steps * g_cases
            episode_score_price = episode_value * pass_through[d] * g_exp
            sg = services_grad[p, d]
            for view in range(2):
                if view == 0:
                    risk = perceived_risk[i]
                    need_units = diagnosis_cost_d / unit_cost[d] * risk
                else:
                    risk = frailty[i]
                    need_units = units_d
                e_units = hazard[i] * episode_units[d] * risk * per_unit
                e_cost = e_units * unit_cost[d]
                per_step_cost = episode_units[d] * risk * per_unit * unit_cost[d] / max(steps, 1e-9)
                e_pay = (
                    hazard[i] * (episode_price + risk * episode_score_price)
                    + e_units * sg
                    + e_cost * g_cost
                    + hazard[i] * steps * max(per_step_cost - threshold[d], 0.0) * g_outlier
                )
                units = per_unit * need_units
                u_cost = units * unit_cost[d]
                pay = priced + units * sg + u_cost * g_cost + max(u_cost - threshold[d], 0.0) * g_outlier
                yearly_cost = u_cost * steps_per_year + e_cost
                reinsured = max(yearly_cost - attachment, 0.0) * g_stoploss
                if view == 0:
                    net_i += e_pay - e_cost
                    cost_i += e_cost
                    net_i += (pay - u_cost) * steps_per_year + reinsured
                    cost_i += u_cost * steps_per_year
                else:
                    true_i += e_pay - e_cost
                    true_i += (pay - u_cost) * steps_per_year + reinsured
        net[i] = net_i
        true_net[i] = true_i
        cost[i] = cost_i
    return net, true_net, cost


@numba.njit(**JIT_OPTIONS)
def steer_weight_of(loss: float, typical_cost: float) -> float:
    """How hard a patient is steered: its loss relative to a typical patient's cost, in [0, 1]."""
    return min(max(loss / max(typical_cost, 1e-9), 0.0), 1.0)


@numba.njit(**JIT_OPTIONS)
def steering_pass(
    gp: np.ndarray,
    state: np.ndarray,
    net: np.ndarray,
    cost: np.ndarray,
    share: np.ndarray,
    diagnosis_row: np.ndarray,
    gp_by_diagnosis: np.ndarray,
    gp_unit_cost: float,
    perceived_risk: np.ndarray,
    care_value_per_cost: float,
    steps_per_year: float,
    n_providers: int,
    true_net: np.ndarray,
    band_bounds: np.ndarray,
    rank_bands: bool,
    unprofitable: np.ndarray,
    steer_weight: np.ndarray,
    unpriced_band: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GPs' unprofitable patients and how hard each is steered; per GP the gain, care value and count.

    Writes ``unprofitable``, ``steer_weight`` and, if ``rank_bands``, ``unpriced_band``
    (``np.digitize(-true_net, band_bounds)`` for the living: 0 below the first bound, 2 from
    the second; 1 for the dead);
    returns per provider the yearly profit from losing them, their steered care value (at
    ``care_value_per_cost``) and their steered number.
    """
    n = len(gp)
    typical_sum = np.zeros(n_providers)
    living = np.zeros(n_providers)
    for i in range(n):
        if state[i] != DEAD:
            typical_sum[gp[i]] += cost[i]
            living[gp[i]] += 1.0
    gain = np.zeros(n_providers)
    harm = np.zeros(n_providers)
    count = np.zeros(n_providers)
    for i in range(n):
        g = gp[i]
        if rank_bands:
            unpriced = -true_net[i]
            band = (unpriced >= band_bounds[0]) + (unpriced >= band_bounds[1])
            unpriced_band[i] = band if state[i] != DEAD else 1
        value = share[g] * net[i]
        bad = state[i] != DEAD and value < 0
        unprofitable[i] = bad
        loss = -value if bad else 0.0
        weight = steer_weight_of(loss, typical_sum[g] / max(living[g], 1.0))
        steer_weight[i] = weight
        gain[g] += loss * weight
        gp_diagnosis_cost = gp_by_diagnosis[diagnosis_row[i]] * gp_unit_cost  # (the GP's diagnosis price)
        care_value = care_value_per_cost * gp_diagnosis_cost * perceived_risk[i] * steps_per_year
        harm[g] += care_value * weight
        count[g] += weight
    return gain, harm, count


@numba.njit(**JIT_OPTIONS)
def appraise_admissions_pass(
    hospital: np.ndarray,
    payee: np.ndarray,
    state: np.ndarray,
    perceived: np.ndarray,
    share: np.ndarray,
    admission_share: np.ndarray,
    grad: np.ndarray,
    planned_rate: float,
    admission_units: float,
    unit_cost: float,
    mean_frailty: float,
    pass_through: float,
    n_providers: int,
    steer_weight: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hospitals' view of each planned episode's profit; writes ``steer_weight`` per patient.

    ``grad`` holds per payee the payment change for one more case, case value, hospital
    units, cost and outside cost (in that order), each for an episode at average risk
    (``admission_units`` x ``unit_cost``). Returns per hospital the yearly loss it avoids
    by redirecting, the cost of the episodes it redirects and their number.
    """
    n = len(hospital)
    step = admission_units * unit_cost  # an episode's cost at average risk
    loss = np.empty(n)
    cost = np.empty(n)
    eligible_cost = np.zeros(n_providers)
    eligible = np.zeros(n_providers)
    for i in range(n):
        h = hospital[i]
        p = payee[h]
        units = admission_units * perceived[i]
        c = units * unit_cost
        price = step * ((1 - pass_through) * mean_frailty + pass_through * perceived[i])
        pay = grad[p, 0] + grad[p, 1] * price / step + grad[p, 2] * perceived[i] + grad[p, 3] * c / step
        outside = grad[p, 4] * c / step
        value = share[h] * (pay - c - outside)
        s = state[i]
        is_eligible = (s == HEALTHY or s == CHRONIC or s == DISABLED) and planned_rate > 0
        loss[i] = -value if is_eligible and value < 0 else 0.0
        cost[i] = c
        if is_eligible:
            eligible_cost[h] += c
            eligible[h] += 1.0
    gain = np.zeros(n_providers)
    harm = np.zeros(n_providers)
    count = np.zeros(n_providers)
    for i in range(n):
        h = hospital[i]
        weight = steer_weight_of(loss[i], eligible_cost[h] / max(eligible[h], 1.0))
        steer_weight[i] = weight
        s = state[i]
        rate = planned_rate if (s == HEALTHY or s == CHRONIC or s == DISABLED) else 0.0
        episodes = rate * admission_share[h] * weight
        gain[h] += episodes * loss[i]
        harm[h] += episodes * cost[i]
        count[h] += episodes
    return gain, harm, count


@numba.njit(**JIT_OPTIONS)
def outlook_pass(
    provider: np.ndarray,
    diagnosis_row: np.ndarray,
    by_diagnosis: np.ndarray,
    frailty: np.ndarray,
    high_need: np.ndarray,
    stroke_hazard: np.ndarray,
    n_providers: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per provider: its patients' need, their high-need part; per GP: stroke hazard and patients at risk."""
    n, n_disc = provider.shape
    total = np.zeros(n_providers)
    high = np.zeros(n_providers)
    hazard = np.zeros(n_providers)
    at_risk = np.zeros(n_providers)
    for i in range(n):
        diagnosis_at = diagnosis_row[i]
        for d in range(n_disc):
            row = provider[i, d]
            units = by_diagnosis[diagnosis_at, d] * frailty[i]
            total[row] += units
            high[row] += units * high_need[i]
        g = provider[i, GP]
        hazard[g] += stroke_hazard[i]
        at_risk[g] += 1.0 if stroke_hazard[i] > 0 else 0.0
    return total, high, hazard, at_risk


__all__ = [
    "ADMISSION_RECORDS",
    "RECORD_SLOTS",
    "SLOT",
    "appraise_admissions_pass",
    "appraise_pass",
    "masked_quantile",
    "outlook_pass",
    "record_pass",
    "steering_pass",
]
