"""Value-based payment contracts as composable pieces, each a registered payment scheme.

Cattel, Eijkenaar & Schut (2018), Section 4, describe the theoretically preferred VBP: a
substantial, fixed, risk-adjusted base payment to a multidisciplinary group for (nearly)
all care of a population, plus a small explicit pay-for-performance part (Section 4.1),
with arrangements that keep the group's financial risk manageable (Section 4.2.5). Here
each of those arrangements is a small scheme written against the public interface of
:mod:`vbpsim.schemes`, so they combine with ``make_scheme("base+addon+addon")`` and with
every other scheme, and providers read them, like any contract, only through ``pay``:

* :class:`GlobalBudget` (``global_budget``): the fixed base payment, set from a normative
  (risk-adjusted), regional (average) or historical benchmark (Section 4.2.3.1), with a
  yearly trend and carve-outs paid fee-for-service (Section 4.2.5.2).
* :class:`SharedSavings` (``shared_savings``): the year-end reconciliation of actual cost
  against a benchmark: one- or two-sided, minimum savings/loss rates, caps, risk
  corridors, a quality gate, a glide path of downside risk (Section 4.2.5.1-2).
* :class:`StopLoss` (``stop_loss``): reinsurance of patients' yearly cost above the
  purchaser's attachment point (Section 4.2.5.1).
* :class:`QualityGate` (``quality_gate``): the P4P "integral part" modality of Section
  4.1: part of the base is paid only if measured quality reaches a threshold.
* :func:`vbp_contract`: the whole preferred design in one call.

Conventions (documented in every class, tested by hand in ``tests/test_contracts.py``)
---------------------------------------------------------------------------------------
* **Benchmarks.** ``benchmark="normative"`` is ``obs.expected_cost`` (the purchaser's
  risk-adjusted normative cost of the enrolled), ``"regional"`` is ``obs.average_cost``
  (members x the unadjusted population average) and ``"historical"`` is
  ``obs.historical_cost`` (the payee's own cost in its last base period, rebased at each
  contract renewal: the ratchet). Each is multiplied by ``level`` and by
  ``(1 + trend) ** obs.year``.
* **Carve-outs.** The carved-out disciplines' part of *any* benchmark is removed by their
  share of the payee's expected cost, ``expected_mix[:, carved].sum() / expected_mix.sum()``
  (falling back to their share of ``cost_mix`` when no expected mix is observed). For the
  normative benchmark this equals removing their ``expected_mix`` columns; for the
  historical one, which is observed only as a total, it is the approximation. The
  normative share is used rather than the carved share of *current* cost because the
  payee cannot move it by shifting care across the carve-out border. Actual cost is
  ``cost`` minus the carved columns of ``cost_mix``. Carved-out care is paid
  fee-for-service by :class:`GlobalBudget`.
* **Outside care.** The payee answers for its population's total cost, so the cost of
  planned episodes its hospitals redirected outside the region (``obs.outside_cost``, which
  the purchaser pays the outside hospital) is deducted from a :class:`GlobalBudget` and
  counted in the actual cost that :class:`SharedSavings` reconciles (unless hospital care is
  carved out). The historical benchmark is the payee's own cost only.
* **Minimum savings/loss rate (MSR/MLR).** As in the Medicare Shared Savings Program,
  by default (``first_dollar=True``) a result below the minimum rate is not shared at
  all, and one at or above it is shared *from the first euro*; with
  ``first_dollar=False`` only the part above the threshold is shared (a deductible,
  which avoids the notch at the threshold).
* **Reconciliation vs. base** (``basis``). The reconciliation needs only a benchmark and
  the actual cost: the result is ``R = benchmark - cost`` and the payee's contractual
  share of it is ``phi(R)`` (savings rate, MSR, corridors, quality, caps; minus the
  loss-rate share of a loss). With ``basis="fees"`` (a fee-based base, e.g.
  ``ffs+shared_savings``, the MSSP) nothing of ``R`` has been transferred yet, so the
  reconciliation pays ``phi(R)``. With ``basis="budget"`` the base (a
  :class:`GlobalBudget` at the same benchmark) has already paid the benchmark, so the
  payee already holds all of ``R``; the reconciliation pays ``phi(R) - R``: the purchaser
  takes back its share of savings and bears its share of losses. Either way the payee's
  net result is ``phi(R)``; a budget with two-sided risk sharing at rate ``r`` is thus
  exactly "cost-based reimbursement plus ``r x (benchmark - cost)``".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, override

import numpy as np

from .errors import ParameterError
from .parameters import DISCIPLINES
from .schemes import (
    RATIO,
    SHARE,
    Blend,
    Observation,
    OutlierSharing,
    PayForPerformance,
    PaymentScheme,
    Range,
    _check_share,
    register,
)

BENCHMARKS: tuple[str, ...] = ("normative", "regional", "historical")
BASES: tuple[str, ...] = ("fees", "budget")
#: Largest corridor bound (as a share of the benchmark): 1e9 stands for "no upper bound".
MAX_BOUND = 1e9
#: Ranges of the benchmark parameters shared by every benchmarked piece. The trend is a
#: yearly growth of the benchmark: -50% to +50% a year covers any contract on record.
BENCHMARK_RANGES: dict[str, Range] = {"level": RATIO, "trend": Range(-0.5, 0.5)}
# Relative slack on the MSR/MLR comparison: a result equal to the threshold up to rounding
# qualifies, so a payment never flips when the same rates are observed over another period.
_THRESHOLD_SLACK = 1e-9

__all__ = [
    "BASES",
    "BENCHMARKS",
    "PARAMETER_DOCS",
    "GlobalBudget",
    "OutcomeBonus",
    "PromBonus",
    "QualityGate",
    "ReadmissionPenalty",
    "SharedSavings",
    "StopLoss",
    "vbp_contract",
]


# -- validation helpers ---------------------------------------------------------------------
def _check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ParameterError(name, value, f"one of {list(choices)}")
    return value


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ParameterError(name, value, "true or false")
    return value


def _check_carve_out(value: Any) -> tuple[str, ...]:
    allowed = f"a list of disciplines from {list(DISCIPLINES)}, not all of them"
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, tuple | list):
        raise ParameterError("carve_out", value, allowed)
    for discipline in value:
        if discipline not in DISCIPLINES:
            raise ParameterError("carve_out", discipline, allowed)
    out = tuple(d for d in DISCIPLINES if d in value)  # canonical order, no duplicates
    if len(out) == len(DISCIPLINES):
        raise ParameterError("carve_out", value, allowed + " (nothing would be left in the contract)")
    return out


def _check_corridors(value: Any) -> tuple[tuple[float, float], ...]:
    allowed = (
        "a list of (upper bound as share of benchmark, sharing rate) bands with increasing "
        "bounds > 0 (at most 1e9, which stands for 'no bound') and rates in [0, 1], "
        "e.g. [(0.02, 1.0), (0.05, 0.5), (1e9, 0.1)]"
    )
    if value is None:
        return ()
    if not isinstance(value, tuple | list):
        raise ParameterError("corridors", value, allowed)
    bands, previous = [], 0.0
    for band in value:
        if not isinstance(band, tuple | list) or len(band) != 2:
            raise ParameterError("corridors", value, allowed)
        bound, rate = band
        numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (bound, rate))
        if not numbers or not math.isfinite(bound) or not previous < bound <= MAX_BOUND or not 0 <= rate <= 1:
            raise ParameterError("corridors", value, allowed)
        bands.append((float(bound), float(rate)))
        previous = bound
    return tuple(bands)


def _check_glide_path(value: Any) -> tuple[float, ...]:
    allowed = "a list of loss rates in [0, 1] by contract year, e.g. [0, 0.25, 0.5]"
    if value is None:
        return ()
    if not isinstance(value, tuple | list):
        raise ParameterError("glide_path", value, allowed)
    rates = []
    for rate in value:
        if rate not in SHARE:
            raise ParameterError("glide_path", value, allowed)
        rates.append(float(rate))
    return tuple(rates)


# -- the benchmark, shared by every piece ---------------------------------------------------
class _Benchmarked(PaymentScheme):
    """A scheme whose amounts are set against a benchmark (Cattel et al. 2018, 4.2.3.1)."""

    benchmark: str
    level: float
    trend: float
    carve_out: tuple[str, ...]

    def _set_benchmark(self, benchmark: Any, level: Any, trend: Any, carve_out: Any) -> None:
        self.benchmark = _check_choice("benchmark", benchmark, BENCHMARKS)
        self.level = self._checked("level", level)
        self.trend = self._checked("trend", trend)
        self.carve_out = _check_carve_out(carve_out)

    def _carved(self) -> np.ndarray:
        return np.array([d in self.carve_out for d in DISCIPLINES])

    def carved_cost(self, obs: Observation) -> np.ndarray:
        """Actual cost of the carved-out disciplines (from ``cost_mix``)."""
        return obs.cost_mix[:, self._carved()].sum(axis=1)

    def in_scope_cost(self, obs: Observation) -> np.ndarray:
        """Actual cost of the care inside the contract: ``cost`` minus the carved-out columns."""
        return np.maximum(obs.cost - self.carved_cost(obs), 0.0)

    def outside_cost(self, obs: Observation) -> np.ndarray:
        """Cost of the payee's patients' care bought outside the region (``outside_cost``), charged back.

        The payee is accountable for its population's total cost, so hospital care it
        redirected elsewhere counts as its own cost; nothing when hospital care is carved out
        (the purchaser pays that outside the contract anyway).
        """
        if "hospital" in self.carve_out:
            return np.zeros(obs.n_payees)
        return np.asarray(obs.outside_cost, dtype=float)

    def carved_share(self, obs: Observation) -> np.ndarray:
        """Carved-out share of each payee's benchmark: its share of expected (else actual) cost."""
        carved = self._carved()
        if not carved.any():
            return np.zeros(obs.n_payees)
        expected, actual = obs.expected_mix.sum(axis=1), obs.cost_mix.sum(axis=1)
        expected_share = np.divide(
            obs.expected_mix[:, carved].sum(axis=1), expected, out=np.zeros_like(expected), where=expected > 0
        )
        cost_share = np.divide(obs.cost_mix[:, carved].sum(axis=1), actual, out=np.zeros_like(actual), where=actual > 0)
        return np.where(expected > 0, expected_share, cost_share)

    def benchmark_of(self, obs: Observation) -> np.ndarray:
        """``level x (1 + trend) ** year x`` the chosen benchmark, carve-outs removed."""
        source = {
            "normative": obs.expected_cost,
            "regional": obs.average_cost,
            "historical": obs.historical_cost,
        }[self.benchmark]
        growth = (1.0 + self.trend) ** obs.year
        return self.level * growth * np.asarray(source, dtype=float) * (1.0 - self.carved_share(obs))


# -- the base -------------------------------------------------------------------------------
@register
class GlobalBudget(_Benchmarked):
    """Global budget: a fixed payment per period for (nearly) all care of the enrolled.

    The payment is ``level x (1 + trend) ** year x benchmark`` (Cattel et al. 2018, Section
    4.2.3: a fixed payment for a defined period; Section 4.2.3.1: the payment level from
    ``"normative"`` risk-adjusted cost, Section 4.2.4, ``"regional"`` average cost or
    ``"historical"`` own cost, which carries the ratchet). ``carve_out`` disciplines are
    removed from the benchmark (by their share of expected cost, see the module notes) and
    paid fee-for-service at ``carve_out_fee_to_cost`` x unit cost instead (Section
    4.2.5.2). Combine with ``shared_savings`` (``basis="budget"``) for risk sharing, with
    ``stop_loss`` for reinsurance, and with ``p4p`` or ``quality_gate`` for the explicit
    quality component (Section 4.1). The budget covers the population's care wherever it is
    given: the cost of episodes the payee redirected outside the region (``outside_cost``,
    paid by the purchaser to the outside hospital) is deducted, unless hospital care is
    carved out.
    """

    name = "global_budget"
    ranges = {**BENCHMARK_RANGES, "carve_out_fee_to_cost": RATIO}
    description = "Fixed budget per month from a normative, regional or historical benchmark; carve-outs paid FFS."
    prospective = True
    risk_bearing = True

    def __init__(
        self,
        *,
        level: float = 1.0,
        benchmark: str = "normative",
        trend: float = 0.0,
        carve_out: tuple[str, ...] | list[str] = (),
        carve_out_fee_to_cost: float = 1.25,
    ):
        self._set_benchmark(benchmark, level, trend, carve_out)
        self.carve_out_fee_to_cost = self._checked("carve_out_fee_to_cost", carve_out_fee_to_cost)

    def carve_out_fees(self, obs: Observation) -> np.ndarray:
        """Fee-for-service payment for the carved-out disciplines' services."""
        carved = self._carved()
        return obs.services[:, carved] @ (obs.unit_cost[carved] * self.carve_out_fee_to_cost)

    @override
    def pay(self, obs: Observation) -> np.ndarray:
        return self.benchmark_of(obs) + self.carve_out_fees(obs) - self.outside_cost(obs)


# -- the reconciliation ---------------------------------------------------------------------
@register
class SharedSavings(_Benchmarked):
    """Year-end reconciliation of actual cost against a benchmark: shared savings and losses.

    The result is ``R = benchmark - cost`` over the contract year, with the benchmark as in
    :class:`GlobalBudget` and ``cost`` the actual cost of the care inside the contract
    (carve-outs removed; minus ``reinsured_share`` of the stop-loss excess and
    ``reinsured_outlier_share`` of the outlier cost, so care the purchaser already reinsures is not
    counted twice; plus ``outside_cost``, the payee's patients' care it redirected outside the
    region, since the payee answers for its population's total cost). The payee's share
    ``phi(R)`` (Cattel et al. 2018, Section 4.2.5):

    * **Savings** (``R > 0``): nothing below ``min_savings_rate x benchmark``; at or above
      it, ``savings_rate`` of the savings from the first euro (MSSP; with
      ``first_dollar=False`` only of the part above the threshold); nothing if
      ``measured_quality < quality_gate``; times ``measured_quality`` if
      ``quality_scaled``; at most ``savings_cap x benchmark``.
    * **Losses** (``R < 0``): the same with ``min_loss_rate`` and ``loss_cap``, at the loss
      rate of the contract year: ``loss_rate``, or ``glide_path[year]`` (the last value
      holding afterwards) when a glide path raises downside risk gradually. A loss rate of
      0 is a one-sided contract, above 0 a two-sided one (Section 4.2.5.1). Quality does
      not change losses.
    * **Risk corridors**: ``corridors`` bands ``(upper bound as share of benchmark, rate)``
      apply symmetrically to gains and losses: the part of ``|R|`` inside a band is shared
      at ``rate x savings_rate`` (gains) or ``rate x loss_rate`` (losses); beyond the last
      bound the last rate holds (Layton et al. 2016; Section 4.2.5.1). With a risk rate of
      1 the rates are the payee's shares of each band.

    What is *paid* depends on the base the reconciliation settles (``basis``):
    ``"fees"`` (a fee-based base, as in ``ffs+shared_savings``, the MSSP) pays ``phi(R)``,
    positive for shared savings and negative for shared losses; ``"budget"`` (the base, a
    :class:`GlobalBudget` at the same benchmark, already paid the benchmark) pays
    ``phi(R) - R``, so the purchaser takes back its share of savings and reimburses its
    share of losses. Either way the payee keeps ``phi(R)`` of the result. Payments can be
    negative. Settled yearly on the observation accumulated over the year.
    """

    name = "shared_savings"
    ranges = {
        **BENCHMARK_RANGES,
        "glide_path": SHARE,  # each loss rate (checked by _check_glide_path)
        **dict.fromkeys(
            (
                "savings_rate",
                "loss_rate",
                "min_savings_rate",
                "min_loss_rate",
                "savings_cap",
                "loss_cap",
                "quality_gate",
                "reinsured_share",
                "reinsured_outlier_share",
            ),
            SHARE,
        ),
    }
    description = "Add-on: yearly reconciliation sharing savings (and losses) against a benchmark; can be negative."
    settlement_months = 12
    add_on = True
    risk_bearing = True
    contingent_share = 1.0

    @classmethod
    def defaults_for(cls, base: PaymentScheme, companions: dict[str, PaymentScheme]) -> dict[str, Any]:
        """Reconcile against a global budget already paid, on its benchmark; never reconcile reinsured cost.

        With a ``stop_loss`` or ``outlier`` add-on, the share the purchaser already reimburses is
        left out of the reconciled cost, so it is not paid twice.
        """
        defaults: dict[str, Any] = {}
        if isinstance(base, GlobalBudget):
            defaults.update(
                basis="budget", benchmark=base.benchmark, level=base.level, trend=base.trend, carve_out=base.carve_out
            )
        if "stop_loss" in companions:
            defaults["reinsured_share"] = companions["stop_loss"].share
        if "outlier" in companions:
            defaults["reinsured_outlier_share"] = companions["outlier"].share
        return defaults

    def __init__(
        self,
        *,
        savings_rate: float = 0.5,
        loss_rate: float = 0.0,
        min_savings_rate: float = 0.02,
        min_loss_rate: float = 0.02,
        first_dollar: bool = True,
        savings_cap: float = 0.1,
        loss_cap: float = 0.15,
        corridors: Sequence[tuple[float, float]] | None = (),
        quality_gate: float = 0.0,
        quality_scaled: bool = False,
        glide_path: Sequence[float] | None = (),
        benchmark: str = "normative",
        level: float = 1.0,
        trend: float = 0.0,
        carve_out: tuple[str, ...] | list[str] = (),
        basis: str = "fees",
        reinsured_share: float = 0.0,
        reinsured_outlier_share: float = 0.0,
    ):
        self.savings_rate = self._checked("savings_rate", savings_rate)
        self.loss_rate = self._checked("loss_rate", loss_rate)
        self.min_savings_rate = self._checked("min_savings_rate", min_savings_rate)
        self.min_loss_rate = self._checked("min_loss_rate", min_loss_rate)
        self.first_dollar = _check_bool("first_dollar", first_dollar)
        self.savings_cap = self._checked("savings_cap", savings_cap)
        self.loss_cap = self._checked("loss_cap", loss_cap)
        self.corridors = _check_corridors(corridors)
        self.quality_gate = self._checked("quality_gate", quality_gate)
        self.quality_scaled = _check_bool("quality_scaled", quality_scaled)
        self.glide_path = _check_glide_path(glide_path)
        self._set_benchmark(benchmark, level, trend, carve_out)
        self.basis = _check_choice("basis", basis, BASES)
        self.reinsured_share = self._checked("reinsured_share", reinsured_share)
        self.reinsured_outlier_share = self._checked("reinsured_outlier_share", reinsured_outlier_share)
        # consistency across parameters, after each one is valid on its own
        if self.glide_path and self.loss_rate > 0:
            raise ParameterError(
                "glide_path", list(self.glide_path), f"either a constant loss_rate ({self.loss_rate}) or a glide_path"
            )
        if self.two_sided and self.loss_cap == 0:
            raise ParameterError("loss_cap", loss_cap, "> 0 for a two-sided contract (loss_rate or glide_path > 0)")

    @property
    def two_sided(self) -> bool:
        """Whether the payee shares in losses in some contract year."""
        return self.loss_rate > 0 or any(rate > 0 for rate in self.glide_path)

    def loss_rate_in(self, year: int) -> float:
        """The loss rate in force in a contract year (the glide path's last value holds)."""
        if not self.glide_path:
            return self.loss_rate
        return self.glide_path[min(max(int(year), 0), len(self.glide_path) - 1)]

    def actual_cost(self, obs: Observation) -> np.ndarray:
        """Cost reconciled: in-scope cost net of the reinsured and outlier-shared parts, plus outside care."""
        in_scope = self.in_scope_cost(obs)
        fraction = np.divide(in_scope, obs.cost, out=np.ones_like(in_scope), where=obs.cost > 0)
        reinsured = fraction * (
            self.reinsured_share * obs.stoploss_excess + self.reinsured_outlier_share * obs.outlier_cost
        )
        return np.maximum(in_scope - reinsured, 0.0) + self.outside_cost(obs)

    def result(self, obs: Observation) -> np.ndarray:
        """``R = benchmark - actual cost`` (positive: savings; negative: losses)."""
        return self.benchmark_of(obs) - self.actual_cost(obs)

    def _banded(self, start: np.ndarray, end: np.ndarray, bench: np.ndarray) -> np.ndarray:
        """Amount of ``[start, end]`` weighted by the corridor rates (1 without corridors)."""
        width = np.maximum(end - start, 0.0)
        if not self.corridors:
            return width
        out, lower = np.zeros_like(width), np.zeros_like(width)
        for i, (bound, rate) in enumerate(self.corridors):
            upper = np.full_like(width, np.inf) if i == len(self.corridors) - 1 else bound * bench
            out += rate * np.maximum(np.minimum(end, upper) - np.maximum(start, lower), 0.0)
            lower = upper
        return out

    def _shared(
        self, amount: np.ndarray, bench: np.ndarray, minimum: float, rate: float | np.ndarray, cap: float
    ) -> np.ndarray:
        threshold = minimum * bench
        qualifies = (amount > 0) & (amount >= threshold * (1 - _THRESHOLD_SLACK))
        start = np.zeros_like(amount) if self.first_dollar else np.minimum(threshold, amount)
        shared = rate * self._banded(start, amount, bench)
        return np.where(qualifies, np.minimum(shared, cap * bench), 0.0)

    def share_of_result(self, obs: Observation) -> np.ndarray:
        """``phi(R)``: the payee's share of the result (savings positive, losses negative)."""
        bench = np.maximum(self.benchmark_of(obs), 0.0)
        result = bench - self.actual_cost(obs)
        quality = np.asarray(obs.measured_quality, dtype=float)
        savings_rate = self.savings_rate * (quality if self.quality_scaled else 1.0)
        savings_rate = np.where(quality >= self.quality_gate, savings_rate, 0.0)
        # the cap applies to the quality-scaled share (the rate is an array, one per payee)
        gain = self._shared(np.maximum(result, 0.0), bench, self.min_savings_rate, savings_rate, self.savings_cap)
        loss = self._shared(
            np.maximum(-result, 0.0), bench, self.min_loss_rate, self.loss_rate_in(obs.year), self.loss_cap
        )
        return gain - loss

    @override
    def pay(self, obs: Observation) -> np.ndarray:
        shared = self.share_of_result(obs)
        if self.basis == "fees":
            return shared
        return shared - self.result(obs)


# -- reinsurance ----------------------------------------------------------------------------
@register
class StopLoss(PaymentScheme):
    """Stop-loss reinsurance: the purchaser pays ``share`` of patients' yearly cost above the attachment.

    An add-on to a risk-bearing base (Cattel et al. 2018, Section 4.2.5.1: reinsurance,
    "providers are retrospectively reimbursed by the purchaser for some or all of the
    expenses of specific individuals"). ``obs.stoploss_excess`` is each patient's cost in
    the contract year above ``purchaser.stop_loss_attachment``, counted as it accrues, so
    the add-on settles monthly. Keeps insurance risk with the purchaser (Section 4.2.3.3).
    Combined with ``shared_savings`` (``...+shared_savings+stop_loss``), the reconciliation
    leaves the reinsured share out of the cost by default, so it is not paid twice.
    """

    name = "stop_loss"
    ranges = {"share": SHARE}
    description = "Add-on: purchaser pays a share of patients' yearly cost above the stop-loss attachment point."
    add_on = True

    def __init__(self, *, share: float = 0.9):
        self.share = self._checked("share", share)

    @override
    def pay(self, obs: Observation) -> np.ndarray:
        return self.share * obs.stoploss_excess


# -- explicit quality component as a gate ---------------------------------------------------
@register
class QualityGate(_Benchmarked):
    """P4P as a gate on part of the base: ``share x benchmark`` paid only if quality >= ``threshold``.

    Cattel et al. (2018), Section 4.1: the variable payment can be an add-on (``p4p``) or
    "an integral part", where "receiving (part of) the base payment is conditional on
    meeting specific value targets". This add-on is that gated part: at year end it pays
    ``share x level x (1 + trend) ** year x benchmark`` (benchmark and carve-outs as in
    :class:`GlobalBudget`) if the year's measured quality reaches ``threshold``, nothing
    otherwise. To gate a share ``g`` of a global budget, pay the budget at
    ``level x (1 - g)`` and the gate at ``share = g`` (what :func:`vbp_contract` does).
    """

    name = "quality_gate"
    ranges = {**BENCHMARK_RANGES, "share": SHARE, "threshold": SHARE}
    description = "Add-on: a gated part of the base (share of benchmark), paid yearly only if quality >= threshold."
    settlement_months = 12
    add_on = True
    contingent_share = 1.0

    def __init__(
        self,
        *,
        share: float = 0.05,
        threshold: float = 0.7,
        benchmark: str = "normative",
        level: float = 1.0,
        trend: float = 0.0,
        carve_out: tuple[str, ...] | list[str] = (),
    ):
        self.share = self._checked("share", share)
        self.threshold = self._checked("threshold", threshold)
        self._set_benchmark(benchmark, level, trend, carve_out)

    @override
    def pay(self, obs: Observation) -> np.ndarray:
        met = np.asarray(obs.measured_quality, dtype=float) >= self.threshold
        return np.where(met, self.share * self.benchmark_of(obs), 0.0)


# -- paying for outcomes (issue 12) --------------------------------------------------------
OUTCOME_EVENTS: tuple[str, ...] = ("acute_events", "readmissions", "deaths")


def _ratio(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Observed over expected, 1 where nothing was expected (no information); may be inf."""
    with np.errstate(over="ignore", divide="ignore"):
        return np.divide(observed, expected, out=np.ones_like(observed, dtype=float), where=expected > 0)


@register
class ReadmissionPenalty(PaymentScheme):
    """Readmission penalty in the manner of the US Hospital Readmissions Reduction Program.

    At year end the payee loses ``min(cap, multiplier x max(0, ERR - 1))`` of the normative
    value of its cases (``case_value``, the DRG-like base), where the excess readmission
    ratio ``ERR = readmissions / expected_readmissions`` compares its avoidable
    readmissions with those expected for its discharges at the previous year's average
    risk (CMS HRRP, Affordable Care Act Section 3025: payment reduction = min(3%, excess
    readmission ratio - 1) of base DRG payments for one condition; McIlvennan, Eapen &
    Allen 2015). Never positive; contingent on outcomes settled later (Cattel et al. 2018,
    Section 4.1: paying for outcomes).
    """

    name = "readmission_penalty"
    description = "Add-on: yearly penalty, a share of case value, for readmissions above the expected number (HRRP)."
    settlement_months = 12
    add_on = True
    contingent_share = 1.0

    #: cap: a share of case value; multiplier: up to 10 x the excess ratio (HRRP uses 1).
    ranges = {"cap": SHARE, "multiplier": Range(0.0, 10.0)}

    def __init__(self, *, cap: float = 0.03, multiplier: float = 1.0):
        self.cap = self._checked("cap", cap)
        self.multiplier = self._checked("multiplier", multiplier)

    @override
    def pay(self, obs: Observation) -> np.ndarray:
        observed, expected = obs.readmissions, obs.expected_readmissions
        over = np.maximum(observed - expected, 0.0)
        capped = self.multiplier * over >= self.cap * expected  # also when the ratio would overflow
        share = np.where(capped, self.cap, self.multiplier * np.minimum(_ratio(over, expected), 1e300))
        return -np.where(expected > 0, share, 0.0) * obs.case_value


@register
class OutcomeBonus(PaymentScheme):
    """A bonus per adverse event avoided against its risk-adjusted expectation.

    At year end pays ``bonus_per_event x (expected - observed)`` events of kind ``outcome``
    (``acute_events``: strokes among the GP's patients; ``readmissions``; ``deaths``). One-
    sided by default (nothing below zero); ``two_sided=True`` also charges each event above
    the expectation. The default of EUR 10,000 per stroke avoided is about half the
    normative cost of a stroke episode in the model (EUR 18,600: acute, post-acute and
    disability care, ``VBPModel.episode_units``), so the purchaser and the payee share the
    saving; an assumption, not a measured contract (Cattel et al. 2018, Section 4.1: pay
    for outcomes rather than process; Section 4.2.4: against risk-adjusted expectations).
    """

    name = "outcome_bonus"
    description = "Add-on: yearly bonus per adverse event (stroke, readmission, death) avoided against expectation."
    settlement_months = 12
    add_on = True
    contingent_share = 1.0
    #: EUR per event: up to EUR 1 million, far above the cost of any episode in the model.
    ranges = {"bonus_per_event": Range(0.0, 1_000_000.0)}

    def __init__(self, *, bonus_per_event: float = 10_000.0, outcome: str = "acute_events", two_sided: bool = False):
        self.bonus_per_event = self._checked("bonus_per_event", bonus_per_event)
        self.outcome = _check_choice("outcome", outcome, OUTCOME_EVENTS)
        self.two_sided = _check_bool("two_sided", two_sided)

    @override
    def pay(self, obs: Observation) -> np.ndarray:
        avoided = getattr(obs, "expected_" + self.outcome) - getattr(obs, self.outcome)
        if not self.two_sided:
            avoided = np.maximum(avoided, 0.0)
        return self.bonus_per_event * avoided


@register
class PromBonus(PayForPerformance):
    """A yearly bonus on a patient-reported outcome (PROM), a QALY proxy.

    The score is ``prom / expected_prom``: patients' reported quality of life relative to
    what the same health states give at guideline care (risk-adjusted, measured with
    noise). The bonus is ``bonus_share`` of the payee's normative cost (as ``p4p``), scaled
    linearly from 0 at ``threshold`` to the full bonus at a score of 1. Unlike ``p4p`` it
    rewards what patients experience, which unmeasured quality also moves (Cattel et al.
    2018, Section 4.1: outcome and patient-reported measures; the English PROMs programme
    links PROMs to payment for elective surgery). Defaults are assumptions: a bonus of the
    size of the default ``p4p`` (5%), and a threshold below which a score is counted as
    care clearly short of the guideline.
    """

    name = "prom_bonus"
    description = "Add-on: yearly bonus on patient-reported quality of life relative to its risk-adjusted expectation."

    def __init__(self, *, bonus_share: float = 0.05, threshold: float = 0.9):
        super().__init__(bonus_share=bonus_share, threshold=threshold)

    @override
    def score(self, obs: Observation) -> np.ndarray:
        return np.where(obs.expected_prom > 0, _ratio(obs.prom, obs.expected_prom), 0.0)


# -- the preferred design in one call -------------------------------------------------------
VBP_DEFAULTS: dict[str, Any] = {
    # base: a risk-adjusted global budget to the group (Sections 4.2.1-4.2.4)
    "benchmark": "normative",
    "level": 1.0,
    "trend": 0.0,
    "carve_out": (),
    "carve_out_fee_to_cost": 1.25,
    # small explicit P4P (Section 4.1): an add-on bonus and/or a gate on part of the base
    "p4p_bonus_share": 0.02,
    "p4p_threshold": 0.0,
    "gated_share": 0.0,
    "gate_threshold": 0.7,
    # two-sided risk sharing with corridors (Section 4.2.5): the payee keeps/bears half of
    # the first 5% of benchmark, a quarter of the next 5%, nothing beyond 10%
    "savings_rate": 0.5,
    "loss_rate": 0.5,
    "min_savings_rate": 0.0,
    "min_loss_rate": 0.0,
    "first_dollar": True,
    "savings_cap": 1.0,
    "loss_cap": 1.0,
    "corridors": ((0.05, 1.0), (0.10, 0.5), (1e9, 0.0)),
    "quality_gate": 0.0,
    "quality_scaled": False,
    "glide_path": (),
    # reinsurance and outlier sharing (Section 4.2.5.1)
    "stop_loss_share": 0.9,
    "outlier_share": 0.0,
}


def vbp_contract(**params: Any) -> PaymentScheme:
    """The theoretically preferred VBP of Cattel et al. (2018), Section 4, as one contract.

    A risk-adjusted :class:`GlobalBudget` to the (multidisciplinary) payee, plus a small P4P
    bonus (``p4p_*``) and optionally a gate on ``gated_share`` of the budget
    (``gate_threshold``), reconciled yearly by a two-sided :class:`SharedSavings` with
    ``basis="budget"`` at the same benchmark (``savings_rate``, ``loss_rate``, corridors,
    minimum rates, caps, quality gate, glide path), with :class:`StopLoss` reinsurance
    (``stop_loss_share``, also excluded from the reconciled cost) and optional outlier
    sharing (``outlier_share``). Every keyword is optional; defaults are in
    :data:`VBP_DEFAULTS`. A glide path replaces the constant loss rate: give
    ``glide_path=[0, 0.25, 0.5]`` (with ``loss_rate`` left out). Unknown keywords raise
    :class:`~vbpsim.errors.ParameterError`.

    Example::

        contract = vbp_contract(benchmark="historical", glide_path=[0, 0.25, 0.5], carve_out=["nursing"])
        vbpsim.run(contract, scenario="small", years=3, composition="chain")
    """
    for key, value in params.items():
        if key not in VBP_DEFAULTS:
            raise ParameterError(key, value, f"not a parameter of vbp_contract; allowed: {sorted(VBP_DEFAULTS)}")
    p = {**VBP_DEFAULTS, **params}
    if "glide_path" in params and params["glide_path"] and "loss_rate" not in params:
        p["loss_rate"] = 0.0
    gated = _check_share("gated_share", p["gated_share"])
    level = GlobalBudget._checked("level", p["level"])
    benchmark = {"benchmark": p["benchmark"], "trend": p["trend"], "carve_out": p["carve_out"]}
    parts: list[tuple[float, PaymentScheme]] = [
        (
            1.0,
            GlobalBudget(level=level * (1 - gated), carve_out_fee_to_cost=p["carve_out_fee_to_cost"], **benchmark),
        ),
        (
            1.0,
            SharedSavings(
                savings_rate=p["savings_rate"],
                loss_rate=p["loss_rate"],
                min_savings_rate=p["min_savings_rate"],
                min_loss_rate=p["min_loss_rate"],
                first_dollar=p["first_dollar"],
                savings_cap=p["savings_cap"],
                loss_cap=p["loss_cap"],
                corridors=p["corridors"],
                quality_gate=p["quality_gate"],
                quality_scaled=p["quality_scaled"],
                glide_path=p["glide_path"],
                level=level,
                basis="budget",
                reinsured_share=p["stop_loss_share"],
                reinsured_outlier_share=p["outlier_share"],
                **benchmark,
            ),
        ),
        (1.0, StopLoss(share=p["stop_loss_share"])),
    ]
    if p["outlier_share"] > 0:
        parts.append((1.0, OutlierSharing(share=p["outlier_share"])))
    if gated > 0:
        parts.append((1.0, QualityGate(share=gated, threshold=p["gate_threshold"], level=level, **benchmark)))
    if p["p4p_bonus_share"] != 0:
        parts.append((1.0, PayForPerformance(bonus_share=p["p4p_bonus_share"], threshold=p["p4p_threshold"])))
    return Blend(parts=parts)


# Unit and meaning of each parameter, keyed like ``docs/make_parameter_tables.py``'s
# ``SCHEME_PARAMETERS`` (merge with ``SCHEME_PARAMETERS.update(contracts.PARAMETER_DOCS)``).
_BENCH_DOCS: dict[str, tuple[str, str]] = {
    "level": ("ratio", "Payment level relative to the benchmark."),
    "benchmark": (
        "normative | regional | historical",
        "Risk-adjusted normative cost, unadjusted average cost, or the payee's own historical cost (ratchet).",
    ),
    "trend": ("per year", "Yearly growth of the benchmark: x (1 + trend) ** contract year."),
    "carve_out": ("disciplines", "Disciplines excluded from benchmark and cost (paid FFS by global_budget)."),
}
PARAMETER_DOCS: dict[tuple[str, str], tuple[str, str]] = {
    **{("global_budget", k): v for k, v in _BENCH_DOCS.items()},
    ("global_budget", "carve_out_fee_to_cost"): ("ratio", "Fee-to-cost ratio paid for carved-out services."),
    ("shared_savings", "savings_rate"): ("share", "Payee's share of savings."),
    ("shared_savings", "loss_rate"): ("share", "Payee's share of losses (0 = one-sided)."),
    ("shared_savings", "min_savings_rate"): (
        "share of benchmark",
        "Savings below this are not shared; at or above, shared from the first euro (first_dollar).",
    ),
    ("shared_savings", "min_loss_rate"): ("share of benchmark", "Losses below this are not shared."),
    ("shared_savings", "first_dollar"): (
        "true/false",
        "Share from the first euro once the minimum rate is met (MSSP), or only the part above it.",
    ),
    ("shared_savings", "savings_cap"): ("share of benchmark", "Maximum shared savings paid."),
    ("shared_savings", "loss_cap"): ("share of benchmark", "Maximum shared loss charged."),
    ("shared_savings", "corridors"): (
        "(share of benchmark, rate) bands",
        "Risk corridors: sharing-rate multiplier by band of |benchmark - cost|, gains and losses alike.",
    ),
    ("shared_savings", "quality_gate"): ("indicator score", "Minimum measured quality to receive any savings."),
    ("shared_savings", "quality_scaled"): ("true/false", "Savings share multiplied by measured quality."),
    ("shared_savings", "glide_path"): ("loss rates by year", "Loss rate per contract year; the last value holds."),
    **{("shared_savings", k): v for k, v in _BENCH_DOCS.items()},
    ("shared_savings", "basis"): (
        "fees | budget",
        "What the base already paid: fees (pay the payee's share) or the benchmark (pay back the purchaser's share).",
    ),
    ("shared_savings", "reinsured_share"): ("share", "Share of stop-loss excess excluded from the reconciled cost."),
    ("shared_savings", "reinsured_outlier_share"): (
        "share",
        "Share of outlier cost excluded from the reconciled cost.",
    ),
    ("stop_loss", "share"): ("share", "Share of patients' yearly cost above purchaser.stop_loss_attachment paid."),
    ("quality_gate", "share"): (
        "share of benchmark",
        "Gated part of the base, paid yearly if quality meets threshold.",
    ),
    ("quality_gate", "threshold"): ("indicator score", "Measured quality needed to receive the gated part."),
    **{("quality_gate", k): v for k, v in _BENCH_DOCS.items()},
    ("readmission_penalty", "cap"): (
        "share of case value",
        "Largest yearly penalty (HRRP: 3% of base DRG payments since FY2015).",
    ),
    ("readmission_penalty", "multiplier"): (
        "share of case value per unit of ERR",
        "Penalty per unit of excess readmission ratio above 1 (HRRP, one condition: 1).",
    ),
    ("outcome_bonus", "bonus_per_event"): (
        "EUR per event",
        "Paid per event avoided against the risk-adjusted expectation (default ~half a stroke episode's cost).",
    ),
    ("outcome_bonus", "outcome"): (
        "acute_events | readmissions | deaths",
        "Which observed events the bonus counts.",
    ),
    ("outcome_bonus", "two_sided"): ("true/false", "Also charge each event above the expectation."),
    ("prom_bonus", "bonus_share"): ("share of normative cost", "Bonus at a PROM score of 1 (reported / expected)."),
    ("prom_bonus", "threshold"): ("PROM score", "Score below which no bonus is paid (linear above)."),
}
