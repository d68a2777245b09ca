"""The delivery and observation passes: need, care delivered, admissions, and what the purchaser sees.

Four loops over the patients per step replace the numpy formulation of
``VBPModel.deliver_care`` and ``VBPModel.observe`` (kept in ``tests/oracle_delivery.py``):

* :func:`care_need` -- each patient's guideline need by diagnosis and in person, with the
  column totals the later passes read;
* :func:`deliver` -- the care their providers deliver (practice style, need classes,
  shifting, pending duplicates) and this step's discretionary admissions, with the
  per-hospital and per-GP sums of the admissions;
* :func:`risk_cells` -- each living patient's cell of the purchaser's risk model and the
  raw scores' column sums (the calibration needs them before any score is final);
* :func:`observe` -- calibrated risk scores and every per-provider sum of the observation
  (members, expected cost, units, cases, guideline met, need, case value, outlier and
  stop-loss excess), with the patients' year-to-date cost.

Every per-provider sum is accumulated in patient order, discipline by discipline, exactly
as ``np.bincount`` over ``provider.ravel()`` adds, and every formula keeps the numpy
order of operations, so results agree with the oracle to the last bit, except where
numpy's vectorised ``exp``/``log`` round the last place differently from libm and where
the living's mean risk (the admission price) is summed by blocks instead of pairwise.
Helpers called inside the loops take scalars only: an array argument costs reference
counting on every call. Tables that could change (the guideline need, the quality
standard) are arguments, not constants frozen into the disk cache.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..care import CHRONIC, DEAD, DISABLED, GP, HEALTHY, HOSPITAL, NURSING, REHAB
from . import JIT_OPTIONS, SUM_BLOCK

N_DISCIPLINES = 4
# rows of the need's column totals and of the (k, n) admission outputs, and their care keys
TOTALS = ("cost_total", "diagnosis_cost_total", "in_care_count")
# (one entry per admission candidate of the step, in patient order: ``admission_index`` says whose)
ADMISSION_VALUES = (
    "admission_guideline",
    "admission_here_units",
    "admission_low_value_units",
    "admission_qalys",
    "redirected_units",
)
ADMISSION_FLAGS = ("redirected", "planned_admitted", "acs_admitted", "admission_candidates")
GUIDELINE, HERE_UNITS, LOW_VALUE_UNITS, QALYS, REDIRECTED_UNITS = range(5)
REDIRECTED, PLANNED_ADMITTED, ACS_ADMITTED, CANDIDATES = range(4)
# rows of the per-provider sums of :func:`observe`
MEMBERS, EXPECTED, UNITS, IN_CARE, MET, NEED, CASE_VALUE, OUTLIER, STOPLOSS = range(9)
N_SUMS = 9


class Buffers(dict):
    """Patient-sized output and work arrays of the passes (and stream copies), reused step to step.

    A fresh 32 MB array faults its pages; a fresh generator seeds itself.

    Scratch space only: a copy or a pickle of a model starts with no buffers, so forked
    arms never share them and saved models do not carry them.
    """

    def array(self, name: str, shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
        """The buffer ``name`` of this shape and dtype (contents undefined), allocated on first use."""
        out = self.get(name)
        if out is None or out.shape != shape or out.dtype != dtype:
            out = self[name] = np.empty(shape, dtype=dtype)
        return out

    def at_least(
        self, name: str, shape: tuple[int, ...], minimum: int, dtype: type = np.float64, *, axis: int = 0, keep: int = 0
    ) -> np.ndarray:
        """The buffer ``name`` if it holds ``minimum`` entries along ``axis``, else a new one of ``shape``.

        For outputs counted as a pass runs chunk by chunk (admission candidates, failed
        hand-offs): sized to what the run has needed so far, not to every patient. The other
        dimensions and the dtype are those of ``shape`` and ``dtype``; a new buffer carries
        over the old one's first ``keep`` entries along ``axis``.
        """
        out = self.get(name)
        other = [size for d, size in enumerate(shape) if d != axis]
        if out is not None and out.dtype == dtype and out.ndim == len(shape):
            if [size for d, size in enumerate(out.shape) if d != axis] == other and out.shape[axis] >= minimum:
                return out
        fresh = np.empty(shape, dtype=dtype)
        if keep:
            np.copyto(fresh[(slice(None),) * axis + (slice(0, keep),)], out[(slice(None),) * axis + (slice(0, keep),)])
        self[name] = fresh
        return fresh

    def generator(self, name: str, like: np.random.Generator) -> np.random.Generator:
        """A reused generator ``name`` of ``like``'s kind (its state is the caller's to set).

        For copies of a model's streams advanced to a chunk: seeding a fresh generator
        costs more than drawing a small world's chunk.
        """
        out = self.get(name)
        if out is None or type(out.bit_generator) is not type(like.bit_generator):
            out = self[name] = np.random.Generator(type(like.bit_generator)(0))
        return out

    def __reduce__(self) -> tuple[type, tuple[()]]:
        return (Buffers, ())


@numba.njit(**JIT_OPTIONS)
def diagnosis_table(need_per_month: np.ndarray, months: float, n_conditions: int) -> np.ndarray:
    """Guideline units by diagnosis this step: row ``state x (n_conditions + 1) + chronic conditions``, by discipline.

    ``Population.diagnosis_need`` times the step's months: the state's row of the need
    table, whose chronic row holds one condition's care, plus each further condition's
    GP and hospital care and, for the chronically ill, the healthy GP check-up. A lookup
    per patient instead of that arithmetic and its branches (same operations, same bits).
    """
    n_states = need_per_month.shape[0]
    table = np.empty((n_states * (n_conditions + 1), N_DISCIPLINES))
    for s in range(n_states):
        for count in range(n_conditions + 1):
            extra = count - 1 if s == CHRONIC else 0
            for d in range(N_DISCIPLINES):
                per_month = need_per_month[s, d]
                if d < 2:
                    per_month += extra * need_per_month[CHRONIC, d]
                if d == 0:
                    per_month += need_per_month[HEALTHY, 0] if s == CHRONIC else 0.0
                table[s * (n_conditions + 1) + count, d] = per_month * months
    return table


@numba.njit(**JIT_OPTIONS)
def care_need(
    state: np.ndarray,
    conditions: np.ndarray,
    frailty: np.ndarray,
    need_per_month: np.ndarray,
    months: float,
    unit_cost: np.ndarray,
    need: np.ndarray,
    diagnosis_cost: np.ndarray,
    cost: np.ndarray,
    diagnosis_row: np.ndarray,
    totals: np.ndarray,
) -> None:
    """Need in units, its cost by diagnosis and in person; ``totals`` rows: cost, diagnosis cost, in care.

    By diagnosis: ``need_per_month`` (``care.NEED_PER_MONTH``) of the patient's state, whose
    chronic row counts per condition (the first included in the state's row) plus the
    healthy check-up, as ``Population.diagnosis_need``; in person: times the frailty.
    ``need``, ``diagnosis_cost``, ``cost`` and ``diagnosis_row`` (each patient's row of
    :func:`diagnosis_table`) are written unless empty; the totals are always summed. The
    step keeps only the rows: its passes read a patient's need as the row's units by
    diagnosis times the frailty (the same product, so the same bits) and price it.
    """
    write_need, write_diagnosis, write_cost = need.shape[0] > 0, diagnosis_cost.shape[0] > 0, cost.shape[0] > 0
    write_row = diagnosis_row.shape[0] > 0
    # column sums in scalars (an accumulator in memory is a store-to-load chain per patient)
    cost0 = cost1 = cost2 = cost3 = diagnosis0 = diagnosis1 = diagnosis2 = diagnosis3 = 0.0
    count0 = count1 = count2 = count3 = 0.0
    by_diagnosis = diagnosis_table(need_per_month, months, conditions.shape[1])
    rows_per_state = conditions.shape[1] + 1
    for i in range(state.shape[0]):
        s = state[i]
        count = 0  # chronic conditions, which only the chronic state's need counts (a helper taking the array
        if s == CHRONIC:  # would slow this loop twofold, even inlined)
            for c in range(conditions.shape[1]):
                count += conditions[i, c]
        row = s * rows_per_state + count
        if write_row:
            diagnosis_row[i] = row
        for d in range(N_DISCIPLINES):
            diagnosis = by_diagnosis[row, d]
            units = diagnosis * frailty[i]
            diagnosis_value = diagnosis * unit_cost[d]
            need_value = units * unit_cost[d]
            if write_need:
                need[i, d] = units
            if write_diagnosis:
                diagnosis_cost[i, d] = diagnosis_value
            if write_cost:
                cost[i, d] = need_value
            in_care = 1.0 if units > 0 else 0.0
            if d == 0:  # (the loop's four rounds are unrolled: each branch is fixed at compile time)
                cost0, diagnosis0, count0 = cost0 + need_value, diagnosis0 + diagnosis_value, count0 + in_care
            elif d == 1:
                cost1, diagnosis1, count1 = cost1 + need_value, diagnosis1 + diagnosis_value, count1 + in_care
            elif d == 2:
                cost2, diagnosis2, count2 = cost2 + need_value, diagnosis2 + diagnosis_value, count2 + in_care
            else:
                cost3, diagnosis3, count3 = cost3 + need_value, diagnosis3 + diagnosis_value, count3 + in_care
    totals[0, 0], totals[0, 1], totals[0, 2], totals[0, 3] = cost0, cost1, cost2, cost3
    totals[1, 0], totals[1, 1], totals[1, 2], totals[1, 3] = diagnosis0, diagnosis1, diagnosis2, diagnosis3
    totals[2, 0], totals[2, 1], totals[2, 2], totals[2, 3] = count0, count1, count2, count3


@numba.njit(**JIT_OPTIONS)
def alive_mean(state: np.ndarray, values: np.ndarray) -> float:
    """Mean of ``values`` over the living (1 when nobody lives), summed by blocks of ``SUM_BLOCK`` patients."""
    total = 0.0
    count = 0
    n = state.shape[0]
    for start in range(0, n, SUM_BLOCK):
        block = 0.0
        for i in range(start, min(start + SUM_BLOCK, n)):
            if state[i] != DEAD:
                block += values[i]
                count += 1
        total += block
    return total / count if count > 0 else 1.0


@numba.njit(**JIT_OPTIONS)
def _benefit(ratio: float, overtreatment_harm: float) -> float:
    """``care.care_benefit`` for one ratio (both sides computed: a select, not a branch, on a ratio near 1)."""
    below = max(ratio * (2.0 - ratio), 0.0)
    above = 1.0 - overtreatment_harm * ((ratio - 1.0) * (ratio - 1.0))
    return below if ratio <= 1.0 else above


@numba.njit(**JIT_OPTIONS)
def _care_ratio(intensity: float, noise: float, need_classes: bool, sign: float, tilt: float) -> float:
    """Care delivered per unit of need: intensity x the patient's noise, x (1 +/- tilt) with need classes.

    (``kernels.health.transitions`` writes the same out: a pass calling another file's
    function would keep a stale disk cache when that file changes.)
    """
    ratio = intensity * noise
    if need_classes:
        ratio = ratio * (1 + sign * tilt)
    return ratio


@numba.njit(**JIT_OPTIONS)
def deliver(
    state: np.ndarray,
    conditions: np.ndarray,
    frailty: np.ndarray,
    provider: np.ndarray,
    delivery_noise: np.ndarray,
    high_need: np.ndarray,
    pending_rows: np.ndarray,
    pending_units: np.ndarray,
    unit_cost: np.ndarray,
    intensity: np.ndarray,
    need_tilt: np.ndarray,
    need_multiplier: np.ndarray,
    shift: np.ndarray,
    shift_units: float,
    need_classes: bool,
    care_shifting: bool,
    diagnosis_row: np.ndarray,
    by_diagnosis: np.ndarray,
    delivered: np.ndarray,
    shifted_cost: np.ndarray,
    admissions: bool,
    draws: np.ndarray,
    admission_params: np.ndarray,
    benefit_factor: np.ndarray,
    admission_share: np.ndarray,
    selection: np.ndarray,
    prevention: bool,
    prevention_stock: np.ndarray,
    risk_selection: bool,
    steer_weight: np.ndarray,
    values: np.ndarray,
    flags: np.ndarray,
    candidates: np.ndarray,
    hospital_sums: np.ndarray,
    acs_at_gp: np.ndarray,
    start: int,
    stop: int,
    carry: np.ndarray,
    counters: np.ndarray,
    need_totals: np.ndarray,
) -> None:
    """Delivery and discretionary admissions of every patient this step (need: ``by_diagnosis[row] x frailty``).

    Patients ``start`` to ``stop`` (a chunk: the caller walks the population chunk by chunk,
    ``draws`` holding the chunk's admission draws). The need comes first, as in
    :func:`care_need`: each patient's row of ``by_diagnosis`` goes to ``diagnosis_row``,
    and ``need_totals`` (rows of :data:`TOTALS`: cost, diagnosis cost, patients in care per
    discipline) adds each patient's need in turn, across the chunks, as :func:`care_need`
    does (the same sums, without a pass of their own). ``carry`` holds the running totals and
    the open block's sums, in pairs (total, block): the cost of last step's duplicated work
    delivered now (the pending duplicates at unit cost), the cost of the units innovations
    add or save at the delivered intensities, the summed ACS admission probability, and the
    guideline cost of care given beyond the guideline (overtreatment) and short of it
    (withheld), each weighted by how far the ratio is off; a total is its pair's sum after
    the last chunk (summed by blocks of ``SUM_BLOCK`` patients). ``counters``: the admission
    candidates so far and the next pending patient. ``hospital_sums`` and ``acs_at_gp`` add
    up over the chunks (the caller zeroes them first). The ratio of care to need,
    ``intensity x noise (x (1 +/- need tilt))``, is not stored: later passes recompute it.
    The candidates' indices go to the start of ``candidates`` and their values and flags
    (rows ``ADMISSION_VALUES``, ``ADMISSION_FLAGS``) to the same columns of ``values`` and
    ``flags``: a few percent of the patients, so the rest of those buffers is never touched.

    Delivery: ratio = intensity x noise (x (1 +/- need tilt)); delivered = ratio x need x
    the provider's need multiplier, a rehab provider's shifted share moved to home care at ``shift_units``
    per unit, plus last step's pending duplicates (``pending_units`` of the patients
    ``pending_rows``, ascending; the caller clears them). Admissions (when
    ``admissions``): candidates from ``draws`` (columns ``start:stop`` of the admissions stream's ``random((4, n))``)
    as in ``VBPModel._admit``; ``admission_params`` holds, in order: overtreatment harm,
    planned and ACS admission rates, undertreatment harm, prevention efficacy, step length
    in years, admission units, twice the QALY gain of an admission, the appropriate share,
    redirect harm, and the case price's parts (``VBPModel._admission_price``): the price of
    an admission's units, the risk-free share times the mean risk, the share passed through
    per unit of the patient's risk. Per hospital,
    ``hospital_sums`` collects the candidates' count, units and value (rows 0-2) and
    this step's admission cases, their value and redirected units (rows 3-5).
    """
    row = np.empty(N_DISCIPLINES)
    by_hospital, acs_by_gp = hospital_sums, acs_at_gp
    (
        overtreatment_harm,
        planned_rate_param,
        acs_rate_param,
        undertreatment_harm,
        prevention_efficacy,
        dt,
        admission_units,
        gain_scale,
        appropriate,
        redirect_harm,
        price_unit,
        price_base,
        price_risk,
    ) = admission_params
    p_planned = 1 - math.exp(-planned_rate_param * dt)  # the same for every eligible patient
    duplicate_cost, duplicate_block, innovation_cost, innovation_block = carry[0], carry[1], carry[2], carry[3]
    acs_total, acs_block, over_total, over_block = carry[4], carry[5], carry[6], carry[7]
    withheld_total, withheld_block = carry[8], carry[9]
    count, next_pending = counters[0], counters[1]
    # the need's column sums (rows of ``TOTALS``) as :func:`care_need` adds them, patient after patient, in scalars
    cost0, cost1, cost2, cost3 = need_totals[0, 0], need_totals[0, 1], need_totals[0, 2], need_totals[0, 3]
    diagnosis0, diagnosis1, diagnosis2, diagnosis3 = (
        need_totals[1, 0],
        need_totals[1, 1],
        need_totals[1, 2],
        need_totals[1, 3],
    )
    count0, count1, count2, count3 = need_totals[2, 0], need_totals[2, 1], need_totals[2, 2], need_totals[2, 3]
    rows_per_state = conditions.shape[1] + 1
    # The chunk's rows, indexed from 0: the compiler then knows no index is negative (no wraparound code).
    state, conditions, frailty = state[start:stop], conditions[start:stop], frailty[start:stop]
    provider, delivery_noise, high_need = provider[start:stop], delivery_noise[start:stop], high_need[start:stop]
    diagnosis_row, delivered, shifted_cost = diagnosis_row[start:stop], delivered[start:stop], shifted_cost[start:stop]
    prevention_stock, steer_weight = prevention_stock[start:stop], steer_weight[start:stop]
    for i in range(stop - start):  # (start is a multiple of SUM_BLOCK)
        if (i & (SUM_BLOCK - 1)) == 0:  # a new block of patients: the last block's sums to the totals
            duplicate_cost += duplicate_block
            innovation_cost += innovation_block
            acs_total += acs_block
            over_total += over_block
            withheld_total += withheld_block
            duplicate_block = innovation_block = acs_block = over_block = withheld_block = 0.0
        sign = 1.0 if high_need[i] else -1.0
        s = state[i]
        n_chronic = 0  # chronic conditions, which only the chronic state's need counts
        if s == CHRONIC:
            for c in range(conditions.shape[1]):
                n_chronic += conditions[i, c]
        diagnosis_at = s * rows_per_state + n_chronic
        diagnosis_row[i] = diagnosis_at
        gp_ratio = 0.0
        for d in range(N_DISCIPLINES):
            p = provider[i, d]
            r = _care_ratio(intensity[p], delivery_noise[i, d], need_classes, sign, need_tilt[p])
            if d == GP:
                gp_ratio = r
            units = by_diagnosis[diagnosis_at, d] * frailty[i]
            row[d] = r * units * need_multiplier[p]
            innovation_block += r * (units * unit_cost[d]) * (need_multiplier[p] - 1.0)
            need_cost = units * unit_cost[d]
            over_block += max(r - 1.0, 0.0) * need_cost
            withheld_block += max(1.0 - r, 0.0) * need_cost
            diagnosis_value = by_diagnosis[diagnosis_at, d] * unit_cost[d]
            in_care = 1.0 if units > 0 else 0.0
            if d == 0:  # (the loop's four rounds are unrolled: each branch is fixed at compile time)
                cost0, diagnosis0, count0 = cost0 + need_cost, diagnosis0 + diagnosis_value, count0 + in_care
            elif d == 1:
                cost1, diagnosis1, count1 = cost1 + need_cost, diagnosis1 + diagnosis_value, count1 + in_care
            elif d == 2:
                cost2, diagnosis2, count2 = cost2 + need_cost, diagnosis2 + diagnosis_value, count2 + in_care
            else:
                cost3, diagnosis3, count3 = cost3 + need_cost, diagnosis3 + diagnosis_value, count3 + in_care
        shifted = 0.0
        if care_shifting:
            shifted = row[REHAB] * shift[provider[i, REHAB]]
            row[REHAB] -= shifted
            row[NURSING] += shifted * shift_units
        shifted_cost[i] = shifted * unit_cost[REHAB]
        with_duplicates = next_pending < pending_rows.shape[0] and pending_rows[next_pending] == start + i
        for d in range(N_DISCIPLINES):
            duplicate = pending_units[next_pending, d] if with_duplicates else 0.0
            delivered[i, d] = row[d] + duplicate
            duplicate_block += duplicate * unit_cost[d]
        if with_duplicates:
            next_pending += 1
        if not admissions:
            continue
        gp = provider[i, GP]
        p_acs = 0.0  # outside the chronic state the ACS hazard is 0, and 1 - exp(-0) is 0
        if s == CHRONIC:
            benefit = _benefit(gp_ratio, overtreatment_harm) * benefit_factor[gp]
            acs_rate = acs_rate_param * n_chronic
            acs_rate = acs_rate * max(1 + undertreatment_harm * (1 - benefit), 0.0)
            if prevention:
                acs_rate = acs_rate * (1 - prevention_efficacy * prevention_stock[i])
            if acs_rate != 0:
                p_acs = 1 - math.exp(-acs_rate * dt)
        acs_block += p_acs
        acs_by_gp[gp] += p_acs
        acs = draws[1, i] < p_acs
        eligible = s == HEALTHY or s == CHRONIC or s == DISABLED  # (a draw in [0, 1) is never below 0)
        planned = eligible and draws[0, i] < p_planned and not acs
        if not (planned or acs):  # most patients: no candidate this step
            continue
        hospital = provider[i, HOSPITAL]
        rank = draws[2, i]
        admitted = rank < admission_share[hospital]
        redirected = False
        if risk_selection:
            redirected = planned and admitted and (draws[3, i] < selection[hospital] * steer_weight[i])
        here = admitted and not redirected
        units = admission_units * frailty[i]
        price = price_unit * (price_base + price_risk * frailty[i])
        if here:
            delivered[i, HOSPITAL] += units
        gain = gain_scale * (1 - rank / appropriate)
        candidates[count] = start + i
        values[GUIDELINE, count] = units if rank < appropriate else 0.0
        values[HERE_UNITS, count] = units if here else 0.0
        values[LOW_VALUE_UNITS, count] = units if (here and rank >= appropriate) else 0.0
        values[QALYS, count] = gain * (1 - redirect_harm * (1.0 if redirected else 0.0)) if admitted else 0.0
        values[REDIRECTED_UNITS, count] = units if redirected else 0.0
        flags[REDIRECTED, count] = redirected
        flags[PLANNED_ADMITTED, count] = planned and admitted
        flags[ACS_ADMITTED, count] = acs and admitted
        flags[CANDIDATES, count] = True
        count += 1
        by_hospital[0, hospital] += 1.0
        by_hospital[1, hospital] += units
        by_hospital[2, hospital] += price
        if here:
            by_hospital[3, hospital] += 1.0
            by_hospital[4, hospital] += price
        if redirected:
            by_hospital[5, hospital] += units
    carry[0], carry[1], carry[2], carry[3] = duplicate_cost, duplicate_block, innovation_cost, innovation_block
    carry[4], carry[5], carry[6], carry[7] = acs_total, acs_block, over_total, over_block
    carry[8], carry[9] = withheld_total, withheld_block
    counters[0], counters[1] = count, next_pending
    need_totals[0, 0], need_totals[0, 1], need_totals[0, 2], need_totals[0, 3] = cost0, cost1, cost2, cost3
    need_totals[1, 0], need_totals[1, 1], need_totals[1, 2], need_totals[1, 3] = (
        diagnosis0,
        diagnosis1,
        diagnosis2,
        diagnosis3,
    )
    need_totals[2, 0], need_totals[2, 1], need_totals[2, 2], need_totals[2, 3] = count0, count1, count2, count3


GUIDE_CELLS = 4096  # buckets of the signal's range that point near its cell (exact search finishes)


@numba.njit(**JIT_OPTIONS)
def _search_guide(edges: np.ndarray) -> tuple[np.ndarray, float, float]:
    """For a uniform grid over the edges' range, each grid point's ``np.searchsorted`` index.

    A binary search over the 199 cell edges mispredicts its branches on every patient;
    from the grid point below a signal its exact position is a step or two away.
    """
    guide = np.zeros(GUIDE_CELLS + 1, dtype=np.int64)
    if edges.shape[0] == 0:
        return guide, 0.0, 0.0
    origin, span = edges[0], edges[-1] - edges[0]
    scale = GUIDE_CELLS / span if span > 0 else 0.0
    for j in range(GUIDE_CELLS + 1):
        guide[j] = _search_left(edges, origin + j / scale if scale > 0 else origin)
    return guide, origin, scale


@numba.njit(**JIT_OPTIONS)
def _search_left(edges: np.ndarray, key: float) -> int:
    """``np.searchsorted(edges, key)`` (side left) as numba implements it, NaN last.

    Written out because typing numba's overload cost over a second of every first compile.
    """
    lo, hi = 0, edges.shape[0]
    while lo < hi:
        mid = lo + ((hi - lo) >> 1)
        if edges[mid] < key or (math.isnan(key) and not math.isnan(edges[mid])):
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(**JIT_OPTIONS)
def risk_cells(
    table: np.ndarray,
    rows: np.ndarray,
    weight: np.ndarray,
    price: np.ndarray,
    alive: np.ndarray,
    eta: np.ndarray,
    sigma: float,
    edges: np.ndarray,
    cell_means: np.ndarray,
    blend: float,
    cells: np.ndarray,
    raw_sum: np.ndarray,
    last_total: np.ndarray,
    reuse: bool,
    scale: np.ndarray,
    scores: np.ndarray,
) -> int:
    """Each living patient's risk cell (``RiskModel.scores``) and the raw scores' column sums; returns the living.

    Patient i's cost is ``table[rows[i]] x weight[i] x price`` per discipline (the model: units
    by diagnosis x frailty x unit cost; ``RiskModel.scores``: each patient's own row of costs,
    weight and price 1). The signal is log(total cost)
    + sigma x eta; without edges every patient is in cell 0 and the blend is not applied
    (the risk model's degenerate fit). A cell depends only on the patient's total cost and
    the fit: with ``reuse`` (the same fit as the call that left ``cells`` and
    ``last_total``) a patient whose total cost is unchanged keeps their cell without its
    logarithm and search; ``last_total`` is updated either way. Unless ``scores`` is empty,
    each patient's raw scores times ``scale`` are written to it (0 for the dead):
    ``RiskModel.scores`` (scale 1) and the model's calibrated scores.
    """
    if table.shape[1] != N_DISCIPLINES or price.shape[0] != N_DISCIPLINES or raw_sum.shape[0] != N_DISCIPLINES:
        raise ValueError("risk_cells: cost and raw_sum need one column per discipline")  # (numba checks no bounds)
    price0, price1, price2, price3 = price[0], price[1], price[2], price[3]
    raw0 = raw1 = raw2 = raw3 = 0.0  # column sums in scalars: a local array is a store-to-load chain per patient
    write = scores.shape[0] > 0
    living = 0
    has_edges = edges.shape[0] > 0
    guide, guide_origin, guide_scale = _search_guide(edges)
    use_blend = has_edges and blend > 0
    for i in range(alive.shape[0]):
        if not alive[i]:
            cells[i] = 0
            last_total[i] = np.nan  # (no cell to keep)
            if write:
                for d in range(N_DISCIPLINES):
                    scores[i, d] = 0.0 * scale[d]
            continue
        living += 1
        cell = 0
        at, w = rows[i], weight[i]
        cost0, cost1 = table[at, 0] * w * price0, table[at, 1] * w * price1
        cost2, cost3 = table[at, 2] * w * price2, table[at, 3] * w * price3
        if has_edges:
            total = ((cost0 + cost1) + cost2) + cost3
            if reuse and total == last_total[i]:
                cell = cells[i]
            else:
                last_total[i] = total
                signal = math.log(max(total, 1e-12)) + sigma * eta[i]
                # np.searchsorted(edges, signal) (side left): from the guide's start to the first edge >= signal
                j = (signal - guide_origin) * guide_scale
                cell = guide[0 if j < 0 else (GUIDE_CELLS if j > GUIDE_CELLS else int(j))]
                while cell > 0 and edges[cell - 1] >= signal:
                    cell -= 1
                while cell < edges.shape[0] and edges[cell] < signal:
                    cell += 1
        cells[i] = cell
        score0 = _raw_score(cost0, cell_means[cell, 0], blend, use_blend)
        score1 = _raw_score(cost1, cell_means[cell, 1], blend, use_blend)
        score2 = _raw_score(cost2, cell_means[cell, 2], blend, use_blend)
        score3 = _raw_score(cost3, cell_means[cell, 3], blend, use_blend)
        raw0, raw1, raw2, raw3 = raw0 + score0, raw1 + score1, raw2 + score2, raw3 + score3
        if write:
            scores[i, 0], scores[i, 1] = score0 * scale[0], score1 * scale[1]
            scores[i, 2], scores[i, 3] = score2 * scale[2], score3 * scale[3]
    raw_sum[0], raw_sum[1], raw_sum[2], raw_sum[3] = raw0, raw1, raw2, raw3
    return living


@numba.njit(**JIT_OPTIONS)
def _raw_score(cost: float, cell_mean: float, blend: float, use_blend: bool) -> float:
    """A living patient's uncalibrated score in one discipline: the cell mean, blended with the own cost."""
    if use_blend:
        return blend * cost + (1 - blend) * cell_mean
    return cell_mean


@numba.njit(**JIT_OPTIONS)
def observe(
    provider: np.ndarray,
    alive: np.ndarray,
    frailty: np.ndarray,
    cells: np.ndarray,
    cell_means: np.ndarray,
    blend: float,
    use_blend: bool,
    score_scale: np.ndarray,
    full: bool,
    diagnosis_row: np.ndarray,
    by_diagnosis: np.ndarray,
    intensity: np.ndarray,
    need_tilt: np.ndarray,
    need_classes: bool,
    high_need: np.ndarray,
    delivery_noise: np.ndarray,
    delivered: np.ndarray,
    case_scale: np.ndarray,
    threshold: np.ndarray,
    unit_cost: np.ndarray,
    attachment: float,
    quality_standard: float,
    year_to_date_cost: np.ndarray,
    year_score: np.ndarray,
    year_patient_cost: np.ndarray,
    out_scores: np.ndarray,
    sums: np.ndarray,
) -> None:
    """Calibrated risk scores and the observation's per-provider sums (rows MEMBERS..STOPLOSS).

    With ``full`` false only the normative part (members, expected cost, scores) is
    computed and the patients' year-to-date accumulators are left alone; otherwise the
    delivered cost also adds to each patient's year-to-date cost, year's cost and score.
    Each patient's scores are written to ``out_scores`` unless it is empty. A patient's need
    is read and priced here as in :func:`care_need`: ``by_diagnosis[diagnosis_row]`` units by
    diagnosis (priced at unit cost: the case value), times the frailty (the need in units).
    """
    acc = np.zeros(sums.shape)  # (local: the compiler knows nothing else writes it)
    write_scores = out_scores.shape[0] > 0
    for i in range(provider.shape[0]):
        living = alive[i]
        cell = cells[i]
        score_total = 0.0
        cost_total = 0.0
        row = diagnosis_row[i]
        for d in range(N_DISCIPLINES):
            p = provider[i, d]
            raw = 0.0
            if living:
                acc[MEMBERS, p] += 1.0
                raw = _raw_score(
                    by_diagnosis[row, d] * frailty[i] * unit_cost[d], cell_means[cell, d], blend, use_blend
                )
            score = raw * score_scale[d]
            if write_scores:
                out_scores[i, d] = score
            acc[EXPECTED, p] += score
            score_total = score if d == 0 else score_total + score
            if not full:
                continue
            # (adding an exact 0 changes no sum, so zeros are skipped; need and delivered care are never negative)
            units = by_diagnosis[row, d] * frailty[i]
            if units > 0:
                acc[IN_CARE, p] += 1.0
                sign = 1.0 if high_need[i] else -1.0
                r = _care_ratio(intensity[p], delivery_noise[i, d], need_classes, sign, need_tilt[p])  # as delivered
                acc[MET, p] += 1.0 if r >= quality_standard else 0.0
                acc[CASE_VALUE, p] += by_diagnosis[row, d] * unit_cost[d] * case_scale[d]
                acc[NEED, p] += units
            delivered_units = delivered[i, d]
            delivered_cost = delivered_units * unit_cost[d]
            cost_total = delivered_cost if d == 0 else cost_total + delivered_cost
            if delivered_units == 0:
                continue
            acc[UNITS, p] += delivered_units
            if delivered_cost > threshold[d]:
                acc[OUTLIER, p] += delivered_cost - threshold[d]
            before = year_to_date_cost[i, d]
            after = before + delivered_cost
            year_to_date_cost[i, d] = after
            if after > attachment:
                acc[STOPLOSS, p] += max(after - attachment, 0.0) - max(before - attachment, 0.0)
        if full:
            year_score[i] += score_total
            year_patient_cost[i] += cost_total
    for row in range(acc.shape[0]):  # (a loop, not ``sums[:] = acc``: that costs seconds of compiling)
        for p in range(acc.shape[1]):
            sums[row, p] = acc[row, p]
