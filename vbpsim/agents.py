"""Providers and the purchaser: the agents that decide and pay.

Every provider runs the same decision rule under every payment scheme (SPEC, "the one
design rule"). It weighs, for a few candidate intensities around its current practice,

    U(x) = v(income(x) - cost(x)) + altruism * benefit_to_cost * value_of_guideline_care * b(x)

where ``income(x)`` is what the contract in force *would* pay for the observation the
provider expects at intensity ``x`` (it asks the contract, it never inspects its type),
``v`` is loss-averse around zero profit (Tversky & Kahneman 1992), and ``b`` is the
patient's health benefit, 1 at the patient optimum. Bounded rationality: a noisy (logit)
choice among the current intensity, one step up, one step down and one random trial
(local search with exploration). Learning: the expected observation comes from the
provider's own data seen with a lag, smoothed into a belief.

Providers are few (10 to 1,000), so they are Mesa agents; their numeric state lives in a
:class:`ProviderTable` of arrays so the rule is evaluated for all providers at once.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import mesa
import numpy as np
from scipy.special import ndtr

from .care import (  # noqa: F401  (re-exported: providers' constants)
    COORDINATION,
    DUPLICATE_SHARE,
    HANDOFF_FAILURE,
    MAX_NEED_TILT,
    MEASURED,
    PREVENTION,
    QUALITY_STANDARD,
    READMISSION_AFTER_FAILURE,
    UNMEASURED,
    care_benefit,
    care_cost,
    task_value,
)
from .errors import ParameterError
from .parameters import DISCIPLINES, EFFORT_TASKS, Scenario
from .schemes import Observation, PaymentScheme


def _clip(values: np.ndarray, lower: np.ndarray | float, upper: np.ndarray | float) -> np.ndarray:
    """``np.clip`` for the small arrays of the decision rule: the same numbers, a fraction of the calls' cost."""
    return np.minimum(np.maximum(values, lower), upper)


@dataclass
class Decision:
    """What each provider chooses (arrays over providers); the same vector under every scheme.

    ``intensity``: care relative to the patient optimum; ``effort``: share of feasible effort
    on the tasks measured quality, unmeasured quality, coordination and prevention;
    ``selection``: share of perceived-unprofitable patients it tries to steer away;
    ``shift``: share of rehabilitation it lets home care deliver instead; ``need_tilt``
    [need_classes]: how much more care, relative to the optimum, its high-need patients get
    than its low-need ones (intensity x (1 + tilt) for high need, x (1 - tilt) for low need);
    ``admission`` [discretionary_admissions]: the hospital's admission threshold, the share of
    discretionary admission candidates (ranked by how much admission helps them) it admits.
    Under discretionary admissions a hospital's ``selection`` is the share of planned episodes
    of perceived-unprofitable patients it redirects to another hospital.
    """

    intensity: np.ndarray
    effort: np.ndarray
    selection: np.ndarray
    shift: np.ndarray
    need_tilt: np.ndarray = field(default=None)  # type: ignore[assignment]
    admission: np.ndarray = field(default=None)  # type: ignore[assignment]

    DIMENSIONS: ClassVar[tuple[str, ...]] = (
        "intensity",
        "measured",
        "unmeasured",
        "coordination",
        "prevention",
        "selection",
        "shift",
        "need_tilt",
        "admission",
    )
    FIELDS: ClassVar[tuple[str, ...]] = ("intensity", "effort", "selection", "shift", "need_tilt", "admission")

    def __post_init__(self) -> None:
        if self.need_tilt is None:
            self.need_tilt = np.zeros_like(self.intensity, dtype=float)
        if self.admission is None:
            self.admission = np.zeros_like(self.intensity, dtype=float)

    def copy(self) -> Decision:
        """An independent copy."""
        return Decision(*(getattr(self, f).copy() for f in self.FIELDS))

    def tiled(self, copies: int) -> Decision:
        """``copies`` stacked copies of this decision (provider rows repeated, as for the table)."""
        return Decision(**_tiled({f: getattr(self, f) for f in self.FIELDS}, copies))

    def matrix(self) -> np.ndarray:
        """All dimensions as one array, shape (P, 9): column ``dim`` is :meth:`get` (``dim``)."""
        return np.column_stack(
            [self.intensity, self.effort, self.selection, self.shift, self.need_tilt, self.admission]
        )

    def get(self, dim: int) -> np.ndarray:
        """The values of decision dimension ``dim`` (index into DIMENSIONS)."""
        if dim == 0:
            return self.intensity
        if dim <= len(EFFORT_TASKS):
            return self.effort[:, dim - 1]
        return {5: self.selection, 6: self.shift, 7: self.need_tilt}.get(dim, self.admission)

    def where(self, mask: np.ndarray, other: Decision) -> Decision:
        """Take this decision where ``mask`` holds and ``other`` elsewhere."""
        return Decision(
            np.where(mask, self.intensity, other.intensity),
            np.where(mask[:, None], self.effort, other.effort),
            np.where(mask, self.selection, other.selection),
            np.where(mask, self.shift, other.shift),
            np.where(mask, self.need_tilt, other.need_tilt),
            np.where(mask, self.admission, other.admission),
        )


@dataclass
class ProviderTable:
    """Numeric state of all providers, one row each (the vectorised side of the agents)."""

    discipline: np.ndarray  # int, index into DISCIPLINES
    unit_cost: np.ndarray  # EUR per service unit
    altruism: np.ndarray
    loss_aversion: np.ndarray
    capacity: np.ndarray  # service units per step before overtime
    reserves: np.ndarray  # EUR
    decision: Decision
    need_belief: np.ndarray  # expected guideline need of the panel, units per step
    payee: np.ndarray  # index of the contracting entity the provider belongs to
    ethics: np.ndarray = field(default=None)  # type: ignore[assignment]
    need_multiplier: np.ndarray = field(default=None)  # type: ignore[assignment]
    benefit_gain: np.ndarray = field(default=None)  # type: ignore[assignment]
    insolvent_steps: np.ndarray = field(default=None)  # type: ignore[assignment]
    habit: Decision = field(default=None)  # type: ignore[assignment]  # practice style the provider is used to
    high_need_share: np.ndarray = field(default=None)  # type: ignore[assignment]  # need units of high-need patients

    def __post_init__(self) -> None:
        n = len(self.discipline)
        if self.habit is None:
            self.habit = self.decision.copy()
        defaults = {
            "ethics": np.ones(n),
            "need_multiplier": np.ones(n),
            "benefit_gain": np.zeros(n),
            "insolvent_steps": np.zeros(n, dtype=np.int64),
            "high_need_share": np.zeros(n),
        }
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    @property
    def n(self) -> int:
        """Number of providers."""
        return len(self.discipline)

    @property
    def intensity(self) -> np.ndarray:
        """Chosen intensity of every provider."""
        return self.decision.intensity

    def tiled(self, copies: int, n_payees: int) -> ProviderTable:
        """``copies`` stacked copies of all providers, each copy with payees of its own."""
        arrays = {name: getattr(self, name) for name in _field_names(type(self))}
        changes: dict[str, Any] = _tiled({k: v for k, v in arrays.items() if isinstance(v, np.ndarray)}, copies)
        changes["payee"] = changes["payee"] + _copy_offsets(copies, n_payees, self.n)
        changes["decision"] = self.decision.tiled(copies)
        changes["habit"] = self.habit.tiled(copies)
        return dataclasses.replace(self, **changes)

    def form_habits(self, share: float) -> None:
        """Habits follow practice: each step they close ``share`` of the gap (exponential memory)."""
        weight = 1.0 - np.exp(-share)
        habit, now = self.habit, self.decision
        habit.intensity += weight * (now.intensity - habit.intensity)
        habit.effort += weight * (now.effort - habit.effort)
        habit.selection += weight * (now.selection - habit.selection)
        habit.shift += weight * (now.shift - habit.shift)
        habit.need_tilt += weight * (now.need_tilt - habit.need_tilt)
        habit.admission += weight * (now.admission - habit.admission)

    def quality(self, effort: np.ndarray, measured_share: float) -> np.ndarray:
        """Quality of care from the two quality tasks, 0..1."""
        return measured_share * task_value(effort[:, MEASURED]) + (1 - measured_share) * task_value(
            effort[:, UNMEASURED]
        )


def expected_indicator(intensity: np.ndarray, delivery_noise: float) -> np.ndarray:
    """Share of patients expected to reach the quality standard at a given intensity."""
    x = np.maximum(intensity, 1e-9)
    if delivery_noise <= 0:
        return (x >= QUALITY_STANDARD).astype(float)
    z = (np.log(x) - np.log(QUALITY_STANDARD) - delivery_noise**2 / 2) / delivery_noise
    return ndtr(z)


def data_timeliness(scenario: Scenario) -> float:
    """How much of the effect of quality and coordination effort survives late feedback (1 = real time).

    Improving care processes needs timely data on one's own performance (the stroke-care
    case): with a data lag L the efforts work at 1 / (1 + L / half-life).
    """
    context = scenario.context
    lag = context.trusted_party_lag_months if context.trusted_data_party else scenario.providers.data_lag_months
    return 1.0 / (1.0 + lag / scenario.effort.data_half_life_months)


def realised_share(horizon_years: np.ndarray, buildup_per_year: float) -> np.ndarray:
    """Average share of a lagged effect (first-order build-up) realised within a horizon."""
    t = np.maximum(horizon_years, 1e-9) * buildup_per_year
    return 1.0 - (1.0 - np.exp(-t)) / t


@dataclass
class Outlook:
    """What each provider expects, from its lagged data: the inputs to the decision rule.

    All arrays are over providers. Spillover targets are provider rows (-1 for none): they
    matter to a provider's income and cost only when the target shares its payee, which is
    how a shared contract internalises coordination, prevention and care shifting; probes
    keep only those (:func:`borne_by_own_payee`).
    """

    lagged: Observation
    active: np.ndarray  # (P, 9) bool: which decision dimensions each provider controls
    handoffs: np.ndarray  # hand-offs per step the provider sends on
    handoff_receiver: np.ndarray
    failure_units: np.ndarray  # receiver's duplicated units per failed hand-off
    readmission_target: np.ndarray
    readmission_units: np.ndarray  # hospital units per readmission
    shift_receiver: np.ndarray
    shift_units: np.ndarray  # home-care units per rehab unit shifted
    preventable_strokes: np.ndarray  # strokes per step preventable by full GP prevention
    prevention_targets: np.ndarray  # (P, 4) the GP's chain rows
    episode_units: np.ndarray  # (4,) units of care per stroke by discipline
    money_horizon: np.ndarray  # years of gains the contract lets the provider keep
    health_horizon: np.ndarray  # the provider's planning horizon in years
    selection_gain: np.ndarray  # yearly profit if every unprofitable patient left
    selection_harm: np.ndarray  # yearly care value of those patients
    budgets: np.ndarray  # (P, 5) EUR/year time cost of full effort per task and of selection
    switch_rate: np.ndarray | None = None  # yearly switching at zero benefit (GPs; None: no choice)
    rebase_weight: np.ndarray | None = None  # share of the horizon after the benchmark is rebased
    readmission_home: np.ndarray | None = None  # share of readmissions that return to readmission_target
    current_retention: np.ndarray | None = None  # cache: retention at the current decision
    outcome_belief: np.ndarray | None = None  # (P, len(Observation.OUTCOMES)) smoothed outcome counts per step
    # [discretionary_admissions] hospitals' beliefs, per step: admission candidates, hospital
    # units of one admission, the purchaser's case value of one admission; and each provider's
    # yearly rate of selection per unit of selection effort (None: the GPs' steering rate)
    admission_candidates: np.ndarray | None = None
    admission_units: np.ndarray | None = None
    admission_value: np.ndarray | None = None
    selection_rate: np.ndarray | None = None
    acs_candidates: np.ndarray | None = None  # GPs: ACS admission candidates per step among their patients

    TARGETS: ClassVar[tuple[str, ...]] = (
        "handoff_receiver",
        "readmission_target",
        "shift_receiver",
        "prevention_targets",
    )
    SHARED: ClassVar[tuple[str, ...]] = ("lagged", "episode_units", "current_retention")

    def retention(self, benefit: np.ndarray) -> np.ndarray:
        """Share of the panel kept over a year when patients experience ``benefit``."""
        return np.exp(-self.switch_rate * (1 - _clip(benefit, 0, 1.5)))

    def tiled(self, copies: int) -> Outlook:
        """The outlook of ``copies`` stacked copies of all providers (for batched probing)."""
        n = len(self.handoffs)
        arrays = {name: getattr(self, name) for name in _field_names(type(self)) if name not in self.SHARED}
        changes: dict[str, Any] = _tiled({k: v for k, v in arrays.items() if v is not None}, copies)
        offset = _copy_offsets(copies, n, n)
        for name in self.TARGETS:
            tiled = changes[name]
            changes[name] = np.where(tiled >= 0, tiled + (offset if tiled.ndim == 1 else offset[:, None]), -1)
        lagged = self.lagged
        stacked = _tiled({name: getattr(lagged, name) for name in _LAGGED_TILED}, copies)
        retention = None if self.current_retention is None else np.concatenate([self.current_retention] * copies)
        return dataclasses.replace(self, lagged=lagged.replace(**stacked), current_retention=retention, **changes)


_LAGGED_TILED = (*Observation.EXTENSIVE, *Observation.YEAR_TO_DATE, "measured_quality")


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    """Names of a dataclass's fields (looked up once per class)."""
    return tuple(f.name for f in dataclasses.fields(cls))


def _tiled(arrays: dict[str, np.ndarray], copies: int) -> dict[str, np.ndarray]:
    """``copies`` stacked copies of each array (along its first axis), as ``np.concatenate([a] * copies)``.

    The float vectors (most of them) are tiled together as the rows of one block (a few
    calls for the lot, not one per array); each result is a C-contiguous row of it.
    """
    out = {}
    vectors = []
    for name, value in arrays.items():
        if value.ndim == 1 and value.dtype == np.float64:
            vectors.append(name)
        else:
            out[name] = np.concatenate([value] * copies)
    lengths = {len(arrays[name]) for name in vectors}
    if len(lengths) > 1:  # not one table's rows: one at a time
        out.update({name: np.concatenate([arrays[name]] * copies) for name in vectors})
    elif vectors:
        block = np.array([arrays[name] for name in vectors])
        tiled = np.empty((len(vectors), copies, block.shape[1]))
        tiled[:] = block[:, None, :]
        out.update(zip(vectors, tiled.reshape(len(vectors), -1), strict=True))
    return out


@functools.cache
def _copy_offsets(copies: int, step: int, n: int) -> np.ndarray:
    """``step`` x the copy number of each row of ``copies`` stacked copies of ``n`` rows (read-only)."""
    offsets = np.repeat(np.arange(copies) * step, n)
    offsets.flags.writeable = False
    return offsets


class DecisionRule:
    """The single provider decision rule, shared by all providers under every contract."""

    def __init__(self, scenario: Scenario, steps_per_year: int) -> None:
        self.params = scenario.providers
        self.scenario = scenario
        self.benefit_to_cost = scenario.providers.benefit_to_cost
        self.overtreatment_harm = scenario.clinical.overtreatment_harm
        self.overtime_premium = scenario.providers.overtime_premium
        self.delivery_noise = scenario.clinical.delivery_noise
        self.steps_per_year = steps_per_year
        self.mechanisms = scenario.mechanisms
        self.effort = scenario.effort
        self.timeliness = data_timeliness(scenario)
        self.change_cost = scenario.providers.change_cost
        # While :meth:`evaluate` probes, quantities that several parts of the rule need, or
        # that every probing round needs again (a decision's benefit and task values, the
        # spillovers' landing rows, the outlook's realised prevention shares...), are computed
        # once per table, outlook or decision and remembered here; None outside a probe.
        self._memo: dict[tuple[Any, ...], tuple[tuple[Any, ...], Any]] | None = None
        self._rounds: tuple[bytes, np.ndarray, int] | None = None  # payees, member ranks, rounds (evaluate)

    def _remembered(self, name: str, owners: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """``compute()``, remembered while probing for these ``owners`` (nothing changes them while probing).

        Keyed by the owners' ids; the entry holds the owners, so no other object can take
        one of those ids while it lives. Outside a probe, just ``compute()``.
        """
        memo = self._memo
        if memo is None:
            return compute()
        key = (name, *map(id, owners))
        hit = memo.get(key)
        if hit is None:
            hit = memo[key] = (owners, compute())
        return hit[1]

    def _realised(self, outlook: Outlook, horizon: str) -> np.ndarray:
        """Share of prevention's lagged effect realised within a horizon of the outlook (:func:`realised_share`)."""
        return self._remembered(
            horizon, (outlook,), lambda: realised_share(getattr(outlook, horizon), self.effort.prevention_buildup)
        )

    def _task(self, decision: Decision, task: int) -> np.ndarray:
        """Value of a decision's effort on one task (:func:`task_value`)."""
        return self._remembered(f"task {task}", (decision,), lambda: task_value(decision.effort[:, task]))

    # -- candidates -----------------------------------------------------------------
    def candidates(
        self, current: Decision, active: np.ndarray, rng: np.random.Generator
    ) -> tuple[Decision, list[tuple[int, list[int]]]]:
        """Current choice, one step down and up in each active dimension, a random intensity.

        Returns the K candidates stacked into one decision (candidate k in rows k*P..(k+1)*P
        for P providers) and, per decision dimension, the indices of the candidates it
        chooses among. The first four (current, intensity down, up, random trial) are the
        core model's; further dimensions add their steps after them. A step moves one
        dimension of every provider (of those that control it) and leaves the rest current.
        """
        p = self.params
        lo, hi = p.intensity_min, p.intensity_max
        x = current.intensity
        trial = _clip(rng.uniform(lo, hi, x.shape), lo, hi)
        moves: list[tuple[int, np.ndarray, np.ndarray | None]] = [
            (0, _clip(x - p.search_step, lo, hi), None),
            (0, _clip(x + p.search_step, lo, hi), None),
            (0, trial, None),
        ]
        groups = [(0, [0, 1, 2, 3])]
        step = self.effort.effort_step
        for dim in range(1, len(Decision.DIMENSIONS)):
            mask = active[:, dim]
            if not mask.any():
                continue
            upper = self._upper_bound(dim)
            lower = -upper if dim == 7 else 0.0
            values = current.get(dim)
            groups.append((dim, [0, len(moves) + 1, len(moves) + 2]))
            moves.append((dim, _clip(values - step, lower, upper), mask))
            moves.append((dim, _clip(values + step, lower, upper), mask))
        n = len(x)
        stacked = current.tiled(len(moves) + 1)
        for k, (dim, values, mask) in enumerate(moves, start=1):
            target = stacked.get(dim)[k * n : (k + 1) * n]  # a view into candidate k
            if mask is None:
                target[:] = values
            else:
                target[mask] = values[mask]
        return stacked, groups

    def _upper_bound(self, dim: int) -> np.ndarray | float:
        if dim == 7:
            return MAX_NEED_TILT
        if dim == 6:
            return self.scenario.shifting.max_shift
        if dim == 5:
            return 1.0 - self._ethics
        return 1.0

    # -- what a decision would lead to -------------------------------------------------
    def own_units(self, table: ProviderTable, decision: Decision, outlook: Outlook) -> np.ndarray:
        """Service units the provider itself would deliver per step."""
        need = table.need_belief * table.need_multiplier * self._panel_change(table, decision, outlook)
        units = self.by_need(table, decision, lambda x: x) * need * (1.0 - decision.shift)
        if outlook.admission_candidates is not None:
            units = units + outlook.admission_candidates * decision.admission * outlook.admission_units
        return units

    def admission_benefit(self, share: np.ndarray) -> np.ndarray:
        """Health benefit of admitting the ``share`` most appropriate candidates, per candidate.

        The candidate at appropriateness rank u (0 most, 1 least) gains 2 (1 - u / s) times the
        mean gain of an appropriate admission, s the appropriate share: the integral
        2 a - a^2 / s is largest at a = s (the health-optimal threshold) and falls beyond it.
        """
        s = self.scenario.clinical.admission_appropriate_share
        a = np.clip(share, 0.0, 1.0)
        return 2 * a - a**2 / s

    def by_need(self, table: ProviderTable, decision: Decision, f: Any) -> np.ndarray:
        """``f`` of the intensity, averaged over the need classes by their share of need units.

        [need_classes] high-need patients get ``x (1 + tilt)``, low-need ones ``x (1 - tilt)``;
        without need classes this is ``f(x)``.
        """
        if not self.mechanisms.need_classes:
            return f(decision.intensity)
        high, tilt = table.high_need_share, decision.need_tilt
        return (1 - high) * f(decision.intensity * (1 - tilt)) + high * f(decision.intensity * (1 + tilt))

    def _panel_change(self, table: ProviderTable, decision: Decision, outlook: Outlook) -> np.ndarray:
        """Relative panel size a decision leads to within a year (patient choice)."""
        if outlook.switch_rate is None:
            return np.ones(table.n)
        if outlook.current_retention is None:
            outlook.current_retention = outlook.retention(self.benefit_of(table, table.decision))
        return outlook.retention(self.benefit_of(table, decision)) / outlook.current_retention

    def benefit_of(self, table: ProviderTable, decision: Decision) -> np.ndarray:
        """Expected benefit of the provider's care for a patient, 1 at guideline care."""
        return self._remembered("benefit", (table, decision), lambda: self._benefit(table, decision))

    def _benefit(self, table: ProviderTable, decision: Decision) -> np.ndarray:
        b = self.by_need(table, decision, lambda x: care_benefit(x, self.overtreatment_harm))
        if self.mechanisms.multitasking:
            q = self.timeliness * table.quality(decision.effort, self.effort.measured_share)
            b = b * (1.0 - self.effort.quality_weight * (1.0 - q))
        b = b * (1.0 + table.benefit_gain)
        return b * (1.0 - self.scenario.shifting.shift_health_penalty * decision.shift)

    def measured_quality(self, decision: Decision, table: ProviderTable | None = None) -> np.ndarray:
        """The indicator the purchaser would measure: guideline adherence (and measured effort)."""
        if table is None:
            adherence = expected_indicator(decision.intensity, self.delivery_noise)
        else:
            adherence = self.by_need(table, decision, lambda x: expected_indicator(x, self.delivery_noise))
        if self.mechanisms.multitasking:
            return 0.5 * adherence + 0.5 * self._task(decision, MEASURED)
        return adherence

    def spillover_units(
        self, decision: Decision, outlook: Outlook, table: ProviderTable
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Changes in other rows' units per step caused by each provider's decision.

        Returns (target rows, unit change) pairs relative to the current decision: failed
        hand-offs duplicate work at the receiver and cause readmissions; shifted rehab
        becomes home care; prevention removes future stroke care along the GP's chain.
        """
        now = table.decision
        out = []
        if self.mechanisms.coordination:
            avoided = self._task(decision, COORDINATION) - self._task(now, COORDINATION)
            failures = -outlook.handoffs * HANDOFF_FAILURE * self.timeliness * self.effort.coordination_effect * avoided
            out.append((outlook.handoff_receiver, failures * outlook.failure_units))
            out.append((outlook.readmission_target, self._readmissions(failures, outlook) * outlook.readmission_units))
        if self.mechanisms.care_shifting:
            rehab_units = table.need_belief * table.need_multiplier * decision.intensity
            out.append((outlook.shift_receiver, (decision.shift - now.shift) * rehab_units * outlook.shift_units))
        if self.mechanisms.prevention:
            prevented = (
                outlook.preventable_strokes
                * (self._task(decision, PREVENTION) - self._task(now, PREVENTION))
                * self._realised(outlook, "money_horizon")
            )
            for d in range(len(outlook.episode_units)):
                out.append((outlook.prevention_targets[:, d], -prevented * outlook.episode_units[d]))
        if outlook.acs_candidates is not None:
            out.append(self._acs_spillover(decision, outlook, table))
        return out

    def _readmissions(self, failures: np.ndarray, outlook: Outlook) -> np.ndarray:
        """Readmissions per step at the readmission target caused by ``failures`` failed hand-offs."""
        home = 1.0 if outlook.readmission_home is None else outlook.readmission_home
        return failures * READMISSION_AFTER_FAILURE * home

    def readmission_cases(
        self, decision: Decision, outlook: Outlook, table: ProviderTable
    ) -> tuple[np.ndarray, np.ndarray]:
        """Change in readmissions per step at each provider's readmission target (target rows, change).

        A readmission is a new admission: a new case with its own case value, which a
        contract paying per case pays for (a DRG does).
        """
        if not self.mechanisms.coordination:
            return outlook.readmission_target, np.zeros(table.n)
        avoided = self._task(decision, COORDINATION) - self._task(table.decision, COORDINATION)
        failures = -outlook.handoffs * HANDOFF_FAILURE * self.timeliness * self.effort.coordination_effect * avoided
        return outlook.readmission_target, self._readmissions(failures, outlook)

    def _acs_spillover(
        self, decision: Decision, outlook: Outlook, table: ProviderTable
    ) -> tuple[np.ndarray, np.ndarray]:
        """[discretionary_admissions] Hospital units a GP's care and prevention add to or save at its chain hospital.

        The ACS hazard of a GP's chronic patients scales with ``1 + u (1 - B_GP)`` and falls
        with prevention (as the stroke hazard, 7.3); the change in ACS candidates times the
        hospital's admission share and units per admission moves the hospital's units.
        """
        now = table.decision
        harm = self.scenario.clinical.undertreatment_harm
        b_new, b_now = self.benefit_of(table, decision), self.benefit_of(table, now)
        ratio = (1 + harm * (1 - b_new)) / np.maximum(1 + harm * (1 - b_now), 1e-12)
        prevented = np.zeros(table.n)
        if self.mechanisms.prevention:
            prevented = (
                self.effort.prevention_efficacy
                * (self._task(decision, PREVENTION) - self._task(now, PREVENTION))
                * self._realised(outlook, "money_horizon")
            )
        target = outlook.prevention_targets[:, 1]  # the GP's chain hospital (-1 for non-GPs)
        row = np.maximum(target, 0)
        per_candidate = now.admission[row] * outlook.admission_units[row]
        delta = outlook.acs_candidates * (ratio * (1 - prevented) - 1) * per_candidate
        return target, np.where(target >= 0, delta, 0.0)

    def expected_observation(
        self, table: ProviderTable, outlook: Outlook, decision: Decision, units: np.ndarray | None = None
    ) -> Observation:
        """What the purchaser would observe of every provider in a step under ``decision``."""
        lagged = outlook.lagged
        if units is None:
            units = self.own_units(table, decision, outlook)
        services = lagged.services.copy()
        services[np.arange(table.n), table.discipline] = units
        cost = care_cost(units, table.capacity, table.unit_cost, self.overtime_premium)
        spillovers = self.spillover_units(decision, outlook, table)
        if spillovers:  # all pairs at once, in the same order: the same sums as pair by pair
            valid, rows = self._remembered("spillover rows", (table, outlook), lambda: _landing(spillovers, table))
            delta = np.concatenate([delta for _, delta in spillovers])[valid]
            np.add.at(services, (rows, table.discipline[rows]), delta)
            np.add.at(cost, rows, delta * table.unit_cost[rows])
        historical = lagged.historical_cost
        if outlook.rebase_weight is not None:
            historical = (1 - outlook.rebase_weight) * historical + outlook.rebase_weight * cost
        scale = self._panel_change(table, decision, outlook)
        members = {
            name: getattr(lagged, name) * scale
            for name in ("member_months", "expected_cost", "average_cost", "cases", "case_value")
        }
        cost = np.maximum(cost, 0.0)
        cost_ratio = np.divide(cost, lagged.cost, out=np.ones_like(cost), where=lagged.cost > 0)
        members["case_mix"] = lagged.case_mix * scale[:, None]
        for name, value in self.expected_outcomes(table, outlook, decision).items():
            members[name] = value * scale
        target, readmitted = self.readmission_cases(decision, outlook, table)
        if np.any(readmitted != 0):
            valid = self._remembered(
                "readmission rows", (table, target), lambda: borne_by_own_payee(target, table.payee)
            )
            rows, extra = target[valid], readmitted[valid]
            value = extra * outlook.readmission_units[valid] * table.unit_cost[rows]
            members["cases"] = members["cases"].copy()
            members["case_value"] = members["case_value"].copy()
            np.add.at(members["cases"], rows, extra)
            np.add.at(members["case_value"], rows, value)
            np.add.at(members["case_mix"], (rows, table.discipline[rows]), value)
        if outlook.admission_candidates is not None:  # each admission is a case with its case value
            extra = outlook.admission_candidates * (decision.admission - table.decision.admission)
            members["cases"] = members["cases"] + extra
            members["case_value"] = members["case_value"] + extra * outlook.admission_value
            members["case_mix"][np.arange(table.n), table.discipline] += extra * outlook.admission_value
            # redirected planned episodes are a share of the admitted ones: their outside cost moves with the threshold
            now = table.decision.admission
            admitted = np.divide(decision.admission, now, out=np.ones_like(now), where=now > 0)
            members["outside_cost"] = lagged.outside_cost * scale * admitted
        cost_mix = np.zeros_like(services)
        cost_mix[np.arange(table.n), table.discipline] = cost
        return lagged.replace(
            services=np.maximum(services, 0.0),
            cost=cost,
            cost_mix=cost_mix,
            historical_cost=historical,
            outlier_cost=lagged.outlier_cost * cost_ratio,
            stoploss_excess=lagged.stoploss_excess * cost_ratio,
            measured_quality=self.measured_quality(decision, table),
            **members,
        )

    def expected_outcomes(self, table: ProviderTable, outlook: Outlook, decision: Decision) -> dict[str, np.ndarray]:
        """Outcome counts per step the purchaser would observe of each provider under ``decision``.

        From the provider's smoothed belief of its outcomes, moved to first order by what
        the decision changes: strokes among its patients by its benefit of care (the GP's
        shortfall raises the stroke hazard) and by prevention; readmissions after its
        discharges by coordination (its hand-offs times their failure and readmission
        rates); the patient-reported outcome by its benefit of care (quality of life falls
        with the lead provider's shortfall). Deaths are held at the belief. The same
        arithmetic for every provider and every contract.
        """
        if outlook.outcome_belief is None:
            return {}
        belief = dict(zip(Observation.OUTCOMES, outlook.outcome_belief.T, strict=True))
        clinical = self.scenario.clinical
        change = self.benefit_of(table, decision) - self.benefit_of(table, table.decision)
        out = dict(belief)
        acute = belief["acute_events"] - clinical.undertreatment_harm * belief["expected_acute_events"] * change
        if self.mechanisms.prevention:
            now = table.decision
            acute = acute - (
                outlook.preventable_strokes
                * (self._task(decision, PREVENTION) - self._task(now, PREVENTION))
                * self._realised(outlook, "money_horizon")
            )
        out["acute_events"] = np.maximum(acute, 0.0)
        failure = np.full(table.n, HANDOFF_FAILURE)
        if self.mechanisms.coordination:
            coordination = self._task(decision, COORDINATION)
            failure = failure * (1 - self.timeliness * self.effort.coordination_effect * coordination)
        out["readmissions"] = outlook.handoffs * failure * READMISSION_AFTER_FAILURE
        prom = belief["prom"] + clinical.qol_care_weight * belief["expected_prom"] * change
        out["prom"] = np.maximum(prom, 0.0)
        return out

    def contingent_discount(self, contract: PaymentScheme, obs: Observation) -> np.ndarray:
        """How much less than paid a payee counts on: the promised gains it doubts.

        Each contract part states what of its payment is contingent on results settled
        later (``PaymentScheme.contingent``); a positive contingent amount (a bonus, shared
        savings) counts at ``context.trust``, penalties and claw-backs count fully, and the
        non-contingent rest (fees, capitation, budgets, also when settled yearly) too.
        ``context.short_term_weight`` acts through the planning horizon, not here.
        """
        trust = self.scenario.context.trust
        discount = np.zeros(obs.n_payees)
        for weight, leaf in contract.components():
            contingent = weight * np.asarray(leaf.contingent(obs), dtype=float)
            if contingent.any():
                discount += (1 - trust) * np.maximum(contingent, 0.0)
        return discount

    def yearly_income(
        self,
        contract: PaymentScheme,
        obs: Observation,
        table: ProviderTable,
        distribute: DistributionRule,
        n_payees: int,
    ) -> np.ndarray:
        """Income each provider would get over a year if ``obs`` were its typical step."""
        yearly = obs.rescaled(obs.months * self.steps_per_year)
        payee_obs = aggregate(yearly, table.payee, n_payees, table.discipline)
        context = self.scenario.context
        payments = contract.pay(payee_obs)
        if context.trust < 1.0:
            payments = payments - self.contingent_discount(contract, payee_obs)
        own = contract.pay(yearly) if distribute.rule == "contribution" else None
        return distribute(payments, yearly, table.payee, cohesion=context.cohesion, own=own)

    # -- valuing a decision ------------------------------------------------------------------
    def health_value(self, table: ProviderTable, decision: Decision, outlook: Outlook) -> np.ndarray:
        """Yearly value (EUR) of the patients' health the decision produces, before altruism."""
        spy = self.steps_per_year
        kappa = self.benefit_to_cost
        # health, not units: innovation-neutral
        care_value = self._remembered("care value", (table,), lambda: kappa * table.unit_cost * table.need_belief * spy)
        value = care_value * self.benefit_of(table, decision)
        if self.mechanisms.coordination:
            failures = (
                outlook.handoffs
                * spy
                * HANDOFF_FAILURE
                * (1 - self.timeliness * self.effort.coordination_effect * self._task(decision, COORDINATION))
            )
            # Health is harmed by readmissions; duplicated work is a pure cost (counted as money only).
            readmission_harm = (
                READMISSION_AFTER_FAILURE
                * outlook.readmission_units
                * self._remembered(
                    "receiver cost", (table, outlook), lambda: self._receiver_cost(outlook.readmission_target, table)
                )
            )
            value = value - kappa * failures * readmission_harm
        if self.mechanisms.prevention:
            episode_cost = self._remembered(
                "episode cost", (table, outlook), lambda: self._episode_cost(outlook, table)
            )
            prevented = outlook.preventable_strokes * spy * self._task(decision, PREVENTION)
            value = value + kappa * prevented * episode_cost * self._realised(outlook, "health_horizon")
        if outlook.admission_candidates is not None:
            admission_cost = outlook.admission_units * table.unit_cost
            benefit = self.admission_benefit(decision.admission)
            value = value + kappa * outlook.admission_candidates * spy * admission_cost * benefit
        if self.mechanisms.risk_selection:
            value = value - decision.selection * self._steering_rate(outlook) * outlook.selection_harm
        return value

    def _episode_cost(self, outlook: Outlook, table: ProviderTable) -> np.ndarray:
        targets = np.maximum(outlook.prevention_targets, 0)
        return (table.unit_cost[targets] * outlook.episode_units[None, :]).sum(axis=1)

    @staticmethod
    def _receiver_cost(target: np.ndarray, table: ProviderTable) -> np.ndarray:
        return np.where(target >= 0, table.unit_cost[np.maximum(target, 0)], 0.0)

    def _steering_rate(self, outlook: Outlook) -> np.ndarray | float:
        """Yearly rate at which selection effort takes effect, per unit of effort.

        GPs steer patients at the steering rate and success; a hospital redirects a planned
        episode when it is admitted (rate 1).
        """
        if outlook.selection_rate is not None:
            return outlook.selection_rate
        sel = self.scenario.selection
        return sel.steer_rate * sel.steer_success

    def effort_cost(self, decision: Decision, outlook: Outlook) -> np.ndarray:
        """Yearly disutility of effort: convex in total (time-weighted) effort, so tasks compete."""
        efforts = np.column_stack([decision.effort, decision.selection])
        budgets = outlook.budgets
        total = self._remembered("effort budget", (outlook,), lambda: np.maximum(budgets.sum(axis=1), 1e-9))
        return (budgets * efforts).sum(axis=1) ** 2 / (2 * total)

    def utility(
        self,
        table: ProviderTable,
        decision: Decision,
        income: np.ndarray,
        outlook: Outlook,
        units: np.ndarray | None = None,
        cost: np.ndarray | None = None,
    ) -> np.ndarray:
        """Loss-averse yearly profit, plus altruism times health value, minus effort and moral cost.

        ``cost`` is the yearly cost of the provider's own row as probed: its own care plus
        the work its decision causes there (its own readmissions, the stroke care its
        prevention averts), so such costs land on the provider that bears them. Without it,
        the cost of its own care alone. Ethics bounds selection twice: as a ceiling on the
        share of patients a provider will steer away (1 - ethics) and as a moral cost of
        steering (Section 4.2.4).
        """
        if cost is not None:
            yearly_cost = cost
        else:
            if units is None:
                units = self.own_units(table, decision, outlook)
            yearly_cost = care_cost(units, table.capacity, table.unit_cost, self.overtime_premium) * self.steps_per_year
        profit = income - yearly_cost
        if self.mechanisms.risk_selection:
            profit = profit + decision.selection * self._steering_rate(outlook) * outlook.selection_gain
        felt_profit = np.where(profit >= 0, profit, table.loss_aversion * profit)
        utility = (
            felt_profit
            + table.altruism * self.health_value(table, decision, outlook)
            - self.effort_cost(decision, outlook)
            - self.change_cost_of(table, decision, outlook)
        )
        if self.mechanisms.risk_selection:  # professional ethics: steering patients away is distasteful
            moral = table.ethics * decision.selection * self._steering_rate(outlook) * outlook.selection_harm
            utility = utility - moral
        return utility

    # -- choosing ---------------------------------------------------------------------------------
    def evaluate(
        self,
        table: ProviderTable,
        outlook: Outlook,
        contract: PaymentScheme,
        distribute: DistributionRule,
        n_payees: int,
        candidates: Decision,
    ) -> np.ndarray:
        """Utility of each candidate for each provider, shape (K, P).

        ``candidates``: K decisions stacked (:meth:`candidates`). Providers sharing a payee
        are probed in separate rounds (others held at their current decision), so each
        weighs only its own effect on the shared payment.
        """
        n = table.n
        n_cands = len(candidates.intensity) // max(n, 1)
        utilities = np.empty((n_cands, n))
        if outlook.switch_rate is not None and outlook.current_retention is None:
            outlook.current_retention = outlook.retention(self.benefit_of(table, table.decision))
        stacked_table = table.tiled(n_cands, n_payees)
        stacked_outlook = outlook.tiled(n_cands)
        payees = table.payee.tobytes()
        if self._rounds is None or self._rounds[0] != payees:  # the groups rarely change: rank them once
            ranks = member_rank(table.payee)
            self._rounds = (payees, ranks, int(ranks.max()) + 1 if len(ranks) else 0)
        _, rounds, n_rounds = self._rounds
        self._memo = {}
        try:
            for r in range(n_rounds):
                movers = rounds == r
                if n_rounds == 1:  # everyone moves at once
                    trial = candidates
                else:
                    trial = candidates.where(np.concatenate([movers] * n_cands), stacked_table.decision)
                units = self.own_units(stacked_table, trial, stacked_outlook)
                obs = self.expected_observation(stacked_table, stacked_outlook, trial, units)
                income = self.yearly_income(contract, obs, stacked_table, distribute, n_cands * n_payees)
                own_cost = obs.cost * self.steps_per_year  # the work the decision causes on its own row included
                value = self.utility(stacked_table, trial, income, stacked_outlook, units, own_cost)
                utilities[:, movers] = value.reshape(n_cands, n)[:, movers]
        finally:
            self._memo = None
        return utilities

    def logit_pick(self, utilities: np.ndarray, scale: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Index of the chosen candidate per provider: a logit (noisy best) choice.

        ``utilities`` (K, P) with ``scale`` (P,) picks for one decision; (D, K, P) with
        ``scale`` (D, P) for D decisions at once, drawing as D calls in turn would.
        """
        weights = np.exp((utilities - utilities.max(axis=-2, keepdims=True)) / np.maximum(scale, 1e-9)[..., None, :])
        cumulative = np.cumsum(weights / weights.sum(axis=-2, keepdims=True), axis=-2)
        draws = rng.random(utilities.shape[:-2] + utilities.shape[-1:])
        pick = (draws[..., None, :] > cumulative).sum(axis=-2)
        return np.minimum(pick, utilities.shape[-2] - 1)

    def noise_scale(
        self, dim: int | list[int], table: ProviderTable, outlook: Outlook, stakes: np.ndarray | None = None
    ) -> np.ndarray:
        """Logit temperature of a decision dimension: choice noise times what is at stake in it.

        Intensity and care shifting put the provider's whole care at stake; an effort task
        or selection only its own time budget, so small decisions are not drowned in the
        noise of large ones. ``dim``: a dimension, or a list of them (one row each);
        ``stakes``: :meth:`stakes` if already computed.
        """
        if stakes is None:
            stakes = self.stakes(table, outlook)
        return self.params.choice_noise * np.maximum(stakes[:, dim].T, 1e-9)

    def stakes(self, table: ProviderTable, outlook: Outlook) -> np.ndarray:
        """What is at stake in each decision dimension, EUR per year, shape (P, 9).

        Intensity and care shifting put the provider's whole care at stake; an effort task
        or selection only its own time budget; the admission threshold the yearly cost of
        admitting every candidate.
        """
        care_value = table.unit_cost * table.need_belief * self.steps_per_year
        admissions = np.zeros(table.n)
        if outlook.admission_candidates is not None:
            admissions = outlook.admission_candidates * outlook.admission_units * table.unit_cost * self.steps_per_year
        return np.column_stack([care_value, outlook.budgets[:, :5], care_value, care_value, admissions])

    def change_cost_of(self, table: ProviderTable, decision: Decision, outlook: Outlook) -> np.ndarray:
        """Yearly cost of practising away from habit: change_cost x stake x squared distance, summed.

        Practice style is sticky (habits, staff and capacity commitments, re-organisation):
        a quadratic adjustment cost around a habit that follows practice gives partial
        adjustment, so a new contract's effect builds up over years (ODD, "Practice inertia").
        """
        if self.change_cost <= 0:
            return np.zeros(table.n)
        stakes = self._remembered(
            "active stakes", (table, outlook), lambda: self.stakes(table, outlook) * outlook.active
        )
        habit = self._remembered("habit", (table.habit,), table.habit.matrix)
        return self.change_cost * (stakes * (decision.matrix() - habit) ** 2).sum(axis=1)

    def choose(
        self,
        table: ProviderTable,
        outlook: Outlook,
        contract: PaymentScheme,
        distribute: DistributionRule,
        n_payees: int,
        rng: np.random.Generator,
    ) -> Decision:
        """The providers' next decision: a noisy local search, probing the contract for each move.

        Each dimension is compared separately (its candidates differ from the current
        decision in that dimension only) with a logit choice scaled to its stakes.
        """
        self._ethics = table.ethics
        cands, groups = self.candidates(table.decision, outlook.active, rng)
        utilities = self.evaluate(table, outlook, contract, distribute, n_payees, cands)
        stakes = self.stakes(table, outlook)
        chosen = table.decision.copy()
        providers = np.arange(table.n)
        # dimensions with as many candidates are picked together, in order (the same draws)
        for batch in _same_size_runs(groups):
            dims = [dim for dim, _ in batch]
            members = np.array([members for _, members in batch])  # (dimensions, candidates)
            options = utilities[members]
            pick = self.logit_pick(options, self.noise_scale(dims, table, outlook, stakes), rng)
            pick = np.where(np.ptp(options, axis=-2) > 0, pick, 0)  # nothing at stake: keep current
            rows = np.take_along_axis(members, pick, axis=1) * table.n + providers  # candidate pick[i]'s row of i
            for dim, dim_rows in zip(dims, rows, strict=True):
                chosen.get(dim)[:] = cands.get(dim)[dim_rows]
        return chosen

    def adoption_gain(
        self,
        table: ProviderTable,
        outlook: Outlook,
        contract: PaymentScheme,
        distribute: DistributionRule,
        n_payees: int,
        need_change: float,
        health_gain: float,
        upfront: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Utility gain over the horizon of adopting an innovation per provider, and what is at stake.

        The provider probes the contract with its care changed by the innovation (more or
        fewer service units, more benefit) and counts money over the years the contract
        lets it keep and health over its planning horizon. The up-front cost is a cost, and
        the contract is asked what it would pay for it (an observation with the investment),
        so a contract that reimburses investments does not lean against innovation. The
        stakes (money moved, health moved and the up-front cost) scale the adoption choice's
        noise, so adoption is smooth in the gain relative to the stakes (no knife edge).
        """
        base = table.need_multiplier.copy(), table.benefit_gain.copy()
        values = []
        for change, gain in ((0.0, 0.0), (need_change, health_gain)):
            table.need_multiplier = base[0] * (1 + change)
            table.benefit_gain = base[1] + gain
            obs = self.expected_observation(table, outlook, table.decision)
            income = self.yearly_income(contract, obs, table, distribute, n_payees)
            cost = obs.cost * self.steps_per_year
            health = self.health_value(table, table.decision, outlook)
            values.append((income - cost, health, obs, income))
        table.need_multiplier, table.benefit_gain = base
        adopted_obs, adopted_income = values[1][2], values[1][3]
        invested = adopted_obs.replace(investment=adopted_obs.investment + upfront / self.steps_per_year)
        reimbursed = self.yearly_income(contract, invested, table, distribute, n_payees) - adopted_income
        money = (values[1][0] - values[0][0]) * outlook.money_horizon - upfront + reimbursed
        health = table.altruism * (values[1][1] - values[0][1]) * outlook.health_horizon
        felt = np.where(money >= 0, money, table.loss_aversion * money)
        stakes = np.abs(money) + np.abs(health) + upfront
        return felt + health, stakes


def _same_size_runs(groups: list[tuple[int, list[int]]]) -> list[list[tuple[int, list[int]]]]:
    """The groups split into runs of consecutive groups with as many candidates."""
    runs: list[list[tuple[int, list[int]]]] = []
    for group in groups:
        if runs and len(runs[-1][0][1]) == len(group[1]):
            runs[-1].append(group)
        else:
            runs.append([group])
    return runs


def borne_by_own_payee(target: np.ndarray, payee: np.ndarray, source_payee: np.ndarray | None = None) -> np.ndarray:
    """Which spillovers (source row -> ``target`` row, -1 for none) land inside the source's own payee.

    Only those can change what the source earns or spends. Probes keep only them: in a
    batched probe every payee's movers try a candidate at once, and a spillover onto another
    payee's row would otherwise leak one provider's trial move into a stranger's books.
    ``source_payee``: the payee of each spillover's source when entry i of ``target`` is
    not row i's (several lists of spillovers one after the other); by default ``payee``.
    """
    source_payee = payee if source_payee is None else source_payee
    valid = target >= 0
    valid[valid] = payee[target[valid]] == source_payee[valid]
    return valid


def _landing(spillovers: list[tuple[np.ndarray, np.ndarray]], table: ProviderTable) -> tuple[np.ndarray, np.ndarray]:
    """Where the spillover pairs, concatenated in order, land: which ones count and their target rows.

    A spillover counts when it is borne by its source's own payee (:func:`borne_by_own_payee`).
    """
    target = np.concatenate([target for target, _ in spillovers])
    valid = borne_by_own_payee(target, table.payee, np.concatenate([table.payee] * len(spillovers)))
    return valid, target[valid]


def member_rank(payee: np.ndarray) -> np.ndarray:
    """Rank of each provider within its payee (0 for the first member, 1 for the next...)."""
    order = np.argsort(payee, kind="stable")
    ranks = np.empty_like(order)
    sorted_payee = payee[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_payee)) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(payee)]))
    ranks[order] = np.arange(len(payee)) - group_start
    return ranks


def aggregate(obs: Observation, payee: np.ndarray, n_payees: int, discipline: np.ndarray | None = None) -> Observation:
    """Sum provider-level observations into payee-level ones (quality member-weighted).

    With ``discipline`` given, enrolment counts persons once: a patient enrolled with a
    group's GP and its hospital is one member, so member-months are the largest total of
    any one discipline.
    """

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(payee, weights=values, minlength=n_payees)

    if discipline is None:
        members = None
    else:
        n_disc = int(discipline.max()) + 1 if len(discipline) else 1
        per_discipline = np.bincount(
            payee * n_disc + discipline, weights=obs.member_months, minlength=n_payees * n_disc
        )
        members = per_discipline.reshape(n_payees, n_disc).max(axis=1)
    weights = np.maximum(obs.member_months, 1e-12)
    totals = {name: total(getattr(obs, name)) for name in _SUMMED}
    # a (payee, discipline) cell adds its providers' rows in order from zero, as np.add.at would
    n_cols = obs.services.shape[1]
    cells = (payee[:, None] * n_cols + np.arange(n_cols)).ravel()
    for name in _SUMMED_MIXES:
        values = np.ravel(getattr(obs, name))
        totals[name] = np.bincount(cells, weights=values, minlength=n_payees * n_cols).reshape(n_payees, n_cols)
    return Observation(
        months=obs.months,
        unit_cost=obs.unit_cost,
        member_months=total(obs.member_months) if members is None else members,
        measured_quality=total(obs.measured_quality * weights) / total(weights),
        year=obs.year,
        month_of_year=obs.month_of_year,
        **totals,
    )


# what :func:`aggregate` sums per payee: outcomes are counted once per event at one provider, so they add up
_SUMMED = (
    "cases",
    "case_value",
    "expected_cost",
    "average_cost",
    "baseline_cost",
    "cost",
    "outlier_cost",
    "historical_cost",
    "stoploss_excess",
    "investment",
    "outside_cost",
    *Observation.OUTCOMES,
    *Observation.YEAR_TO_DATE[1:],
)
_SUMMED_MIXES = ("services", "case_mix", "cost_mix", "expected_mix", "ytd_services")


class DistributionRule:
    """How a contracting group shares pain and gain among its members (Section 4.2.1).

    The group pays each member's cost of care and splits the surplus (payment minus the
    members' total cost, negative for a loss) by weights: ``equal`` the same for all;
    ``panel`` by the member's share of the group's risk-adjusted expected cost;
    ``contribution`` by the member's own contribution: what the contract would pay for its
    own row as if it contracted alone, minus its cost (for a loss, its overrun). Under FFS
    that credits a member's own billing, under capitation its own panel's capitation. A
    payee with one member keeps its whole surplus under any rule, so solo contracts are
    unaffected.
    """

    RULES = ("equal", "panel", "contribution")

    def __init__(self, rule: str = "equal") -> None:
        if rule not in self.RULES:
            raise ParameterError("groups.distribution", rule, f"one of {list(self.RULES)}")
        self.rule = rule

    def weights(
        self, payments: np.ndarray, obs: Observation, payee: np.ndarray, own: np.ndarray | None = None
    ) -> np.ndarray:
        """Each member's share of its payee's surplus (shares of a payee sum to 1).

        ``own``: what the contract would pay each member for its own row (``contribution``).
        """
        n_payees = len(payments)
        expected = np.maximum(obs.expected_cost, 0.0) + 1e-9
        expected_share = expected / np.bincount(payee, weights=expected, minlength=n_payees)[payee]
        if self.rule == "equal":
            raw = np.ones(len(payee))
        elif self.rule == "panel":
            raw = expected_share
        else:
            cost_total = np.bincount(payee, weights=obs.cost, minlength=n_payees)
            earned = payments[payee] * expected_share if own is None else own
            savings = earned - obs.cost
            gain = (payments - cost_total)[payee] >= 0
            raw = np.where(gain, np.maximum(savings, 0.0), np.maximum(-savings, 0.0))
            empty = np.bincount(payee, weights=raw, minlength=n_payees)[payee] <= 1e-9
            raw = np.where(empty, expected_share, raw)
        raw = raw + 1e-12
        return raw / np.bincount(payee, weights=raw, minlength=n_payees)[payee]

    def __call__(
        self,
        payments: np.ndarray,
        obs: Observation,
        payee: np.ndarray,
        cohesion: float = 0.0,
        own: np.ndarray | None = None,
    ) -> np.ndarray:
        """Each provider's income: its own cost plus its share of the payee's surplus.

        ``cohesion`` > 0 gives the income as a member *perceives* it when it weighs the
        group's whole surplus beyond its own share (used for decisions, never for paying).
        """
        cost_total = np.bincount(payee, weights=obs.cost, minlength=len(payments))
        surplus = payments - cost_total
        weights = self.weights(payments, obs, payee, own)
        if cohesion > 0:
            weights = weights + cohesion * (1.0 - weights)
        return obs.cost + weights * surplus[payee]


class Provider(mesa.Agent):
    """A provider (GP practice, hospital, rehab centre, nursing organisation).

    Its numbers live in the model's :class:`ProviderTable`, row ``index``; the properties
    below make one provider readable as an individual agent.
    """

    def __init__(self, model: mesa.Model, index: int) -> None:
        super().__init__(model)
        self.index = index

    @property
    def _table(self) -> ProviderTable:
        return self.model.providers  # type: ignore[attr-defined]

    @property
    def discipline(self) -> str:
        """Discipline name."""
        return DISCIPLINES[int(self._table.discipline[self.index])]

    @property
    def intensity(self) -> float:
        """Current chosen intensity relative to the patient optimum."""
        return float(self._table.intensity[self.index])

    @property
    def altruism(self) -> float:
        """Weight on patients' health benefit."""
        return float(self._table.altruism[self.index])

    @property
    def reserves(self) -> float:
        """Financial reserves in EUR."""
        return float(self._table.reserves[self.index])

    @property
    def insolvent(self) -> bool:
        """Whether reserves are below zero."""
        return self.reserves < 0

    def __repr__(self) -> str:
        return f"Provider({self.index}, {self.discipline}, intensity={self.intensity:.2f})"


class Purchaser(mesa.Agent):
    """The insurer: holds the contract, pays each settlement period and keeps the books.

    Monthly components are paid every step; yearly components (P4P, reconciliation) on
    observations accumulated over the contract year. Payments to a group are split among
    its members by the group's distribution rule.
    """

    def __init__(
        self,
        model: mesa.Model,
        contract: PaymentScheme,
        distribute: DistributionRule,
        n_payees: int,
        unit_cost: np.ndarray,
        steps_per_year: int,
    ) -> None:
        super().__init__(model)
        self.contract = contract
        self.distribute = distribute
        self.n_payees = n_payees
        self.unit_cost = unit_cost
        self.steps_per_year = steps_per_year
        self.pending: dict[int, Observation] = {}
        self.total_paid = 0.0

    def _due(self, period: int, step: int) -> bool:
        """A component settles every ``period`` steps and, whatever its period, at each year end."""
        return (step + 1) % period == 0 or (step + 1) % self.steps_per_year == 0

    def settlement_steps(self, leaf: PaymentScheme) -> int:
        """Steps between two settlements of a contract component."""
        return max(1, round(leaf.settlement_months * self.steps_per_year / 12))

    def pay(
        self, provider_obs: Observation, payee: np.ndarray, step: int, discipline: np.ndarray | None = None
    ) -> np.ndarray:
        """Settle every contract component due this step; returns each provider's income."""
        components = list(self.contract.components())
        for period in {self.settlement_steps(leaf) for _, leaf in components}:
            if period not in self.pending:
                self.pending[period] = Observation.zeros(len(payee), self.unit_cost)
            self.pending[period].accumulate(provider_obs)
        payments = np.zeros(self.n_payees)
        own = np.zeros(len(payee)) if self.distribute.rule == "contribution" else None
        for weight, leaf in components:
            period = self.settlement_steps(leaf)
            if self._due(period, step):
                payee_obs = aggregate(self.pending[period], payee, self.n_payees, discipline)
                payments += weight * np.asarray(leaf.pay(payee_obs), dtype=float)
                if own is not None:  # what each member would earn on its own row
                    own += weight * np.asarray(leaf.pay(self.pending[period]), dtype=float)
        income = self.distribute(payments, provider_obs, payee, own=own)
        for period in list(self.pending):
            if self._due(period, step):
                del self.pending[period]
        self.total_paid += float(income.sum())
        return income
