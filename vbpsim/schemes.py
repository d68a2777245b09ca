"""Payment schemes: each says only how money flows given what was observed.

A scheme is a small object with one job, ``pay(obs) -> payments``: it maps an
:class:`Observation` (what the purchaser saw of each payee over a settlement period:
services billed, cases, enrolment, risk-adjusted expected cost, actual cost, measured
quality) to one payment per payee. Schemes never tell a provider what to do. Providers
read a contract only by asking it what it *would* pay for hypothetical observations, so
any scheme written against this interface, including one the project has never seen,
steers behaviour through its money flows alone (SPEC, "The one design rule").

The base payment methods are those of Cattel et al. (2018), Section 3.3 (FFS, per case,
capitation, per period) plus blends of them (mixed payment); the explicit component is
pay-for-performance (Section 4.1). Rates are set relative to the purchaser's normative
cost of guideline care, so "1.0" means a payment level equal to that cost.

Contract for implementers
-------------------------
* ``pay`` must return a float array of shape ``(n_payees,)`` for an observation of any
  number of payees and any ``months``; payee ``g``'s payment may depend only on row ``g``
  (payees are separable) and on the scheme's own parameters.
* ``settlement_months`` says how often the purchaser settles: 1 for monthly flows, 12 for
  a yearly settlement (P4P bonus, reconciliation).
* Keyword-only ``__init__`` parameters with defaults; validate them and raise
  :class:`~vbpsim.errors.ParameterError` on bad values.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, override

import numpy as np

from .errors import ParameterError
from .parameters import DISCIPLINES


@dataclass
class Observation:
    """What the purchaser observed of each payee over ``months`` months (arrays per payee).

    Extensive fields (services, cases, values, costs, outcome counts) are totals over the
    period; the purchaser's normative values price care at guideline intensity.

    Outcomes (issue 12) are counted once per event, at the provider responsible for the
    patient when it happened: acute events (strokes) at the patient's GP, deaths and the
    patient-reported outcome at the provider of the patient's lead discipline (GP for the
    healthy and chronic, hospital in the acute phase, rehabilitation post-acute, nursing
    for the disabled), readmissions at the discharging provider (as in the US Hospital
    Readmissions Reduction Program). Each comes with its risk-adjusted expected value: what
    the same patients would show at guideline care, from what the purchaser observes (age,
    diagnoses, health state). Outcomes are reported with the claims of the next period
    (events of month t are in the observation of month t + 1). The patient-reported outcome
    carries measurement noise as measured quality does (halved with a trusted data party);
    providers see every field with the same data lag.

    Fields
    ------
    ``acute_events`` / ``expected_acute_events``: strokes among the GP's patients / the
    number expected at guideline care without extra prevention (from age and conditions).
    ``readmissions`` / ``expected_readmissions``: avoidable readmissions after discharges
    (failed hand-offs) / discharges x the average readmission risk per discharge across
    the region in the previous contract year (as the HRRP uses the national average; in
    the first year the rate at usual care without extra coordination).
    ``deaths`` / ``expected_deaths``: deaths / deaths expected at guideline
    care. ``prom`` / ``expected_prom``: patient-reported quality of life (a QALY proxy, 0-1
    per patient-month) summed over patient-months / its value at guideline care for the
    same health states; ``prom / expected_prom`` is the risk-adjusted score.
    ``outside_cost``: the normative cost of the payee's patients' planned episodes its
    hospitals redirected to a hospital outside the region (issue 12, discretionary
    admissions), at the redirecting hospital. The purchaser pays that care to the outside
    hospital; whether the payee is charged for it is the contract's business: population-based
    contracts (global budget, shared savings, capitation with ``covers_outside_care``) count
    it in the cost of their population, per-case, per-period and fee-for-service payment do not.
    ``month_of_year``: months of the contract year elapsed before this period (0 in its
    first month). ``ytd_*``: year-to-date totals of the contract year before this period
    (services, cases, cost, acute events, readmissions, deaths); a whole-year projection
    (``rescaled`` to 12 months or more) starts the year afresh, so they are zero there.
    """

    months: float
    services: np.ndarray  # (payees, disciplines) service units billed
    unit_cost: np.ndarray  # (disciplines,) normative cost of a service unit
    cases: np.ndarray  # episodes of care (patients treated in a month, admissions)
    case_value: np.ndarray  # normative guideline cost of those cases (case-mix weighted)
    member_months: np.ndarray  # enrolled patients x months
    expected_cost: np.ndarray  # risk-adjusted normative cost of the enrolled
    average_cost: np.ndarray  # unadjusted normative cost: members x population average
    baseline_cost: np.ndarray  # normative cost of the panel fixed at contract start
    cost: np.ndarray  # provider's actual cost of the care delivered
    measured_quality: np.ndarray  # indicator score in [0, 1] as the purchaser measured it
    case_mix: np.ndarray | None = None  # (payees, disciplines) case_value split by discipline
    outlier_cost: np.ndarray | None = None  # cost above the purchaser's per-patient outlier threshold
    cost_mix: np.ndarray | None = None  # (payees, disciplines) actual cost split by discipline
    expected_mix: np.ndarray | None = None  # (payees, disciplines) expected_cost split by discipline
    historical_cost: np.ndarray | None = None  # the payee's own cost in its last base period, same period length
    stoploss_excess: np.ndarray | None = None  # patients' yearly cost above the stop-loss attachment point
    investment: np.ndarray | None = None  # up-front (adoption) costs incurred in the period, outside ``cost``
    outside_cost: np.ndarray | None = None  # cost of the payee's redirected episodes treated outside the region
    year: int = 0  # years since the contract relationship began (0 = first), across renewals
    acute_events: np.ndarray | None = None  # strokes among the GP's patients
    expected_acute_events: np.ndarray | None = None  # risk-adjusted strokes expected at guideline care
    readmissions: np.ndarray | None = None  # avoidable readmissions, at the discharging provider
    expected_readmissions: np.ndarray | None = None  # discharges x last year's average readmission risk
    deaths: np.ndarray | None = None  # deaths, at the provider of the lead discipline
    expected_deaths: np.ndarray | None = None  # deaths expected at guideline care
    prom: np.ndarray | None = None  # patient-reported quality of life x months (noisy)
    expected_prom: np.ndarray | None = None  # the same at guideline care for the same health states
    month_of_year: float = 0.0  # months of the contract year before this period
    ytd_services: np.ndarray | None = None  # (payees, disciplines) year-to-date services before this period
    ytd_cases: np.ndarray | None = None
    ytd_cost: np.ndarray | None = None
    ytd_acute_events: np.ndarray | None = None
    ytd_readmissions: np.ndarray | None = None
    ytd_deaths: np.ndarray | None = None

    OUTCOMES: ClassVar[tuple[str, ...]] = (
        "acute_events",
        "expected_acute_events",
        "readmissions",
        "expected_readmissions",
        "deaths",
        "expected_deaths",
        "prom",
        "expected_prom",
    )
    EXTENSIVE: ClassVar[tuple[str, ...]] = (
        "services",
        "cases",
        "case_value",
        "case_mix",
        "outlier_cost",
        "cost_mix",
        "expected_mix",
        "historical_cost",
        "stoploss_excess",
        "investment",
        "outside_cost",
        "member_months",
        "expected_cost",
        "average_cost",
        "baseline_cost",
        "cost",
        *OUTCOMES,
    )
    # year-to-date totals: state at the start of the period, not flows over it
    YEAR_TO_DATE: ClassVar[tuple[str, ...]] = (
        "ytd_services",
        "ytd_cases",
        "ytd_cost",
        "ytd_acute_events",
        "ytd_readmissions",
        "ytd_deaths",
    )

    def __post_init__(self) -> None:
        for name in ("case_mix", "cost_mix", "expected_mix", "ytd_services"):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros_like(self.services, dtype=float))
        vector = (
            "outlier_cost",
            "historical_cost",
            "stoploss_excess",
            "investment",
            "outside_cost",
            *self.OUTCOMES,
            *self.YEAR_TO_DATE[1:],
        )
        for name in vector:
            if getattr(self, name) is None:
                setattr(self, name, np.zeros_like(self.cost, dtype=float))

    @property
    def n_payees(self) -> int:
        """Number of payees (rows)."""
        return int(self.member_months.shape[0])

    def replace(self, **changes: Any) -> Observation:
        """A copy with some fields replaced (used to probe contracts counterfactually).

        Shallow, as ``dataclasses.replace``. When building it anew could change nothing (an
        Observation, known fields, no field None, so ``__post_init__`` has nothing to fill)
        the fields are copied without calling ``__init__``: the decision rule replaces
        observations in every probe.
        """
        state = self.__dict__
        if (
            type(self) is not Observation
            or not changes.keys() <= _OBSERVATION_FIELDS
            or any(value is None for value in changes.values())
            or any(value is None for value in state.values())
        ):
            return dataclasses.replace(self, **changes)
        new = object.__new__(Observation)
        new.__dict__.update(state)
        new.__dict__.update(changes)
        return new

    def rescaled(self, months: float) -> Observation:
        """The same rates over another period length (e.g. a month projected to a year)."""
        factor = months / self.months
        changes = {name: getattr(self, name) * factor for name in self.EXTENSIVE}
        if months >= 12:  # a whole contract year from its start
            changes.update({name: np.zeros_like(getattr(self, name)) for name in self.YEAR_TO_DATE})
            changes["month_of_year"] = 0.0
        return self.replace(months=months, **changes)

    @classmethod
    def zeros(cls, n_payees: int, unit_cost: np.ndarray, months: float = 0.0) -> Observation:
        """An empty observation to accumulate into."""
        vec = np.zeros(n_payees)
        return cls(
            months=months,
            services=np.zeros((n_payees, len(unit_cost))),
            unit_cost=unit_cost,
            cases=vec.copy(),
            case_value=vec.copy(),
            member_months=vec.copy(),
            expected_cost=vec.copy(),
            average_cost=vec.copy(),
            baseline_cost=vec.copy(),
            cost=vec.copy(),
            measured_quality=vec.copy(),
        )

    def accumulate(self, other: Observation) -> None:
        """Add a later period in place; quality becomes the member-weighted average.

        The year-to-date totals and month stay those at the start of the accumulated period.
        """
        if self.months == 0:
            for name in self.YEAR_TO_DATE:
                setattr(self, name, np.array(getattr(other, name), dtype=float, copy=True))
            self.month_of_year = other.month_of_year
        total = self.member_months + other.member_months
        weight = np.divide(other.member_months, total, out=np.zeros_like(total), where=total > 0)
        self.measured_quality = self.measured_quality * (1 - weight) + other.measured_quality * weight
        for name in self.EXTENSIVE:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.months += other.months
        self.year = other.year


_OBSERVATION_FIELDS = frozenset(field.name for field in dataclasses.fields(Observation))


class PaymentScheme:
    """Base class: turn an observation into one payment per payee."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    prospective: ClassVar[bool] = False  # is the payment fixed before care is given?
    add_on: ClassVar[bool] = False  # meant to be added to a base payment (``base+name``)?
    risk_bearing: ClassVar[bool] = False  # does the payee bear the cost of extra care?
    settlement_months: int = 1
    # share of the payment contingent on results settled later (bonuses, savings, penalties)
    contingent_share: ClassVar[float] = 0.0
    #: Allowed values of each numeric constructor parameter (see :class:`Range`).
    ranges: ClassVar[dict[str, Range]] = {}

    def pay(self, obs: Observation) -> np.ndarray:
        """Payments per payee for the observed period."""
        raise NotImplementedError

    def contingent(self, obs: Observation) -> np.ndarray:
        """The part of ``pay(obs)`` contingent on results settled later (bonuses, savings, penalties).

        This part, and only this, is what providers discount for doubt (``context.trust``,
        on promised gains) when they weigh a contract; fees, capitation and budgets count
        in full whenever they are settled.
        By default ``contingent_share x pay(obs)``; override when only part of a payment
        is contingent.
        """
        if self.contingent_share == 0:
            return np.zeros(obs.n_payees)
        return self.contingent_share * np.asarray(self.pay(obs), dtype=float)

    @classmethod
    def _checked(cls, name: str, value: Any) -> float:
        """A numeric parameter checked against its declared range."""
        return cls.ranges[name].check(name, value)

    @classmethod
    def defaults_for(cls, base: PaymentScheme, companions: dict[str, PaymentScheme]) -> dict[str, Any]:
        """Default parameters of this add-on given the base and the other add-ons (override to adapt)."""
        return {}

    def components(self) -> Iterator[tuple[float, PaymentScheme]]:
        """The leaf schemes with their weights (a leaf yields itself with weight 1)."""
        yield 1.0, self

    def params(self) -> dict[str, Any]:
        """Every constructor argument, so the scheme can be cloned and reported.

        Each parameter must be stored under its own name (or the subclass overrides
        ``params``); a missing one raises instead of silently dropping out of reports.
        """
        names = constructor_parameters(type(self))
        missing = [n for n in names if not hasattr(self, n)]
        if missing:
            raise ParameterError(
                f"{type(self).__name__}.params",
                missing,
                "every constructor parameter stored as an attribute of the same name (or override params())",
            )
        return {n: getattr(self, n) for n in names}

    def clone(self) -> PaymentScheme:
        """A fresh scheme with the same parameters."""
        return type(self)(**self.params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


@dataclass(frozen=True)
class Range:
    """The allowed values of a numeric scheme parameter: a finite interval.

    Every numeric constructor parameter of a scheme has one, declared in the class's
    ``ranges``; the constructor checks against it and the ODD tables show it. Booleans and
    text are never numbers here.
    """

    low: float
    high: float
    high_open: bool = False

    def __contains__(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        return self.low <= value and (value < self.high if self.high_open else value <= self.high)

    def allowed(self) -> str:
        """What is allowed, in words, for error messages."""
        close = ")" if self.high_open else "]"
        if self.low == 0 and self.high == 1:
            return f"a share in [0, 1{close}"
        return f"a finite number >= {_num(self.low)} and {'<' if self.high_open else '<='} {_num(self.high)}"

    def bounds(self) -> str:
        """The interval in the notation of the ODD tables, e.g. ``≥ 0, ≤ 10``."""
        return f"≥ {self.low:g}, {'<' if self.high_open else '≤'} {self.high:g}"

    def check(self, name: str, value: Any) -> float:
        """The value as a float, or a ParameterError naming ``name``, the value and this range."""
        if value not in self:
            raise ParameterError(name, value, self.allowed())
        return float(value)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


#: A payment level relative to cost (1 = cost). Up to ten times cost: beyond any contract seen.
RATIO = Range(0.0, 10.0)
#: A share, rate or probability.
SHARE = Range(0.0, 1.0)


def _check_share(name: str, value: Any) -> float:
    """A share in [0, 1] (for parameters outside a scheme's ``ranges``, e.g. ``vbp_contract``'s)."""
    return SHARE.check(name, value)


SCHEMES: dict[str, type[PaymentScheme]] = {}


def constructor_parameters(cls: type[PaymentScheme]) -> list[str]:
    """Names of a scheme class's ``__init__`` parameters (without ``self``)."""
    return [n for n in inspect.signature(cls.__init__).parameters if n != "self"]


def check_params_complete(cls: type[PaymentScheme]) -> None:
    """Raise unless a default-built ``cls`` reports every constructor parameter and clones.

    Registration calls this, so a parameter stored under another attribute name cannot
    silently drop out of ``params()``, reports, ``repr`` or clones.
    """
    sig = inspect.signature(cls.__init__)
    for name, p in sig.parameters.items():
        if name == "self":
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.default is p.empty:
            raise ParameterError(
                f"{cls.__name__}.__init__({name})",
                "no default" if p.default is p.empty else str(p.kind),
                "named (keyword) parameters with defaults only, so the scheme can be built by name",
            )
    try:
        instance = cls()
    except ParameterError:
        raise
    except Exception as exc:  # a scheme that cannot be built with its own defaults
        raise ParameterError(cls.__name__, cls.name, f"a scheme buildable from its defaults ({exc})") from exc
    reported = instance.params()
    missing = [n for n in constructor_parameters(cls) if n not in reported]
    if missing:
        raise ParameterError(f"{cls.__name__}.params", missing, "every constructor parameter reported by params()")
    type(instance)(**reported)


def register(cls: type[PaymentScheme]) -> type[PaymentScheme]:
    """Class decorator: make a scheme available by its ``name``.

    Raises :class:`~vbpsim.errors.ParameterError` when the scheme has no name or its
    ``params()`` cannot report every constructor parameter (see :func:`check_params_complete`).
    """
    if not cls.name:
        raise ParameterError("name", cls.name, "a non-empty scheme name")
    check_params_complete(cls)
    SCHEMES[cls.name] = cls
    return cls


@register
class FeeForService(PaymentScheme):
    """Fee-for-service: a fee per service unit billed (Cattel et al. 2018, Section 3.3).

    ``fee_to_cost`` is the fee relative to the unit cost of a service, one number or one
    per discipline (``{"gp": 1.10, ...}``, e.g. from published margins); above 1 every
    extra service is profitable, the classic incentive to overprovide (McGuire 2000).
    ``fees`` overrides the fee of single disciplines in EUR per unit.
    """

    name = "ffs"
    ranges = {"fee_to_cost": RATIO, "fees": Range(0.0, 1_000_000.0)}
    description = "Fee per service billed; more services, more income."

    def __init__(self, *, fee_to_cost: float | dict[str, float] = 1.25, fees: dict[str, float] | None = None):
        if isinstance(fee_to_cost, dict):
            unknown = set(fee_to_cost) - set(DISCIPLINES)
            if unknown or len(fee_to_cost) != len(DISCIPLINES):
                raise ParameterError("fee_to_cost", fee_to_cost, f"a number or one number per discipline {DISCIPLINES}")
            self.fee_to_cost: float | dict[str, float] = {
                d: self.ranges["fee_to_cost"].check(f"fee_to_cost.{d}", fee_to_cost[d]) for d in DISCIPLINES
            }
        else:
            self.fee_to_cost = self._checked("fee_to_cost", fee_to_cost)
        if fees is not None and not isinstance(fees, dict):
            raise ParameterError("fees", fees, "a mapping discipline -> EUR per unit")
        self.fees = dict(fees or {})
        for discipline, fee in self.fees.items():
            if discipline not in DISCIPLINES:
                raise ParameterError(f"fees.{discipline}", fee, f"a discipline in {DISCIPLINES}")
            self.ranges["fees"].check(f"fees.{discipline}", fee)

    def fee_schedule(self, unit_cost: np.ndarray) -> np.ndarray:
        """Fee per unit of each discipline."""
        ratio = self.fee_to_cost
        fees = unit_cost * (np.array([ratio[d] for d in DISCIPLINES]) if isinstance(ratio, dict) else ratio)
        for discipline, fee in self.fees.items():
            fees[DISCIPLINES.index(discipline)] = fee
        return fees

    @override
    def pay(self, obs: Observation) -> np.ndarray:
        return obs.services @ self.fee_schedule(obs.unit_cost)


@register
class CostReimbursement(PaymentScheme):
    """Cost reimbursement: pays each payee exactly its cost, including up-front investments.

    The incentive-neutral reference of the scorecard: every decision leaves profit at
    zero, so providers act on altruism and effort cost alone. Up-front adoption costs are
    reimbursed too, so the reference does not lean against innovation.
    """

    name = "cost_reimbursement"
    description = "Pays actual cost plus up-front investment: the incentive-neutral reference."

    def __init__(self) -> None:
        pass  # no parameters: the reference has nothing to tune

    @override
    def pay(self, obs: Observation) -> np.ndarray:
        return obs.cost + obs.investment


@register
class PerCase(PaymentScheme):
    """Per case (DRG-like): a case-mix weighted price per episode, whatever is done in it.

    The price is ``price_to_cost`` times the normative guideline cost of the case, so care
    within a case is a cost to the provider (Cattel et al. 2018, Section 3.3).
    """

    name = "per_case"
    ranges = {"price_to_cost": RATIO}
    description = "Fixed case-mix price per episode; care within it is a cost."
    risk_bearing = True

    def __init__(self, *, price_to_cost: float = 1.05):
        self.price_to_cost = self._checked("price_to_cost", price_to_cost)

    @override
    def pay(self, obs: Observation) -> np.ndarray:
        return self.price_to_cost * obs.case_value


@register
class Capitation(PaymentScheme):
    """Capitation: a fixed amount per enrolled person per period (Section 3.3).

    With ``risk_adjusted`` the rate follows the purchaser's risk score of each member
    (Section 4.2.4); without it every member brings the population average.

    With ``covers_outside_care`` (the default) the capitation covers the members' care
    wherever it is given: the cost of episodes the payee redirected outside the region
    (``outside_cost``), which the purchaser pays to the outside hospital, is deducted from the
    capitation. That is how comprehensive capitation of an integrated payee works (an HMO or a
    capitated medical group pays for its members' referred and out-of-network care: Robinson &
    Casalino 1995, NEJM 333:1684; Cattel et al. 2018, Section 4.2.2 on accountability for the
    whole population); without it, a capitated provider could send its members' care elsewhere
    and keep their capitation, the cost shifting capitation is meant to end.
    """

    name = "capitation"
    ranges = {"rate_to_cost": RATIO}
    description = "Fixed amount per enrolled person per month, optionally risk-adjusted."
    prospective = True
    risk_bearing = True

    def __init__(self, *, rate_to_cost: float = 1.05, risk_adjusted: bool = True, covers_outside_care: bool = True):
        self.rate_to_cost = self._checked("rate_to_cost", rate_to_cost)
        if not isinstance(risk_adjusted, bool):
            raise ParameterError("risk_adjusted", risk_adjusted, "true or false")
        self.risk_adjusted = risk_adjusted
        if not isinstance(covers_outside_care, bool):
            raise ParameterError("covers_outside_care", covers_outside_care, "true or false")
        self.covers_outside_care = covers_outside_care

    @override
    def pay(self, obs: Observation) -> np.ndarray:
        base = obs.expected_cost if self.risk_adjusted else obs.average_cost
        charged = obs.outside_cost if self.covers_outside_care else 0.0
        return self.rate_to_cost * base - charged


@register
class PerPeriod(PaymentScheme):
    """Per period: a salary or fixed budget, set at contract start (Section 3.3).

    Pays ``budget_to_cost`` times the normative cost of the panel the payee had when the
    contract began, whatever happens since.
    """

    name = "per_period"
    ranges = {"budget_to_cost": RATIO}
    description = "Fixed budget or salary per month, set at contract start."
    prospective = True
    risk_bearing = True

    def __init__(self, *, budget_to_cost: float = 1.05):
        self.budget_to_cost = self._checked("budget_to_cost", budget_to_cost)

    @override
    def pay(self, obs: Observation) -> np.ndarray:
        return self.budget_to_cost * obs.baseline_cost


@register
class PayForPerformance(PaymentScheme):
    """Pay-for-performance add-on: a yearly bonus on measured quality (Section 4.1).

    The bonus is ``bonus_share`` of the payee's normative cost, scaled linearly from 0 at
    ``threshold`` to the full bonus at a perfect score. Only what indicators measure is
    rewarded: the root of teaching to the test (Holmstrom & Milgrom 1991; Section 3.2).
    """

    name = "p4p"
    ranges = {"bonus_share": SHARE, "threshold": Range(0.0, 1.0, high_open=True)}
    description = "Add-on: yearly bonus for measured quality, as a share of normative cost."
    settlement_months = 12
    add_on = True
    contingent_share = 1.0

    def __init__(self, *, bonus_share: float = 0.05, threshold: float = 0.0):
        self.bonus_share = self._checked("bonus_share", bonus_share)
        self.threshold = self._checked("threshold", threshold)

    def score(self, obs: Observation) -> np.ndarray:
        """The score the bonus is paid on: measured quality (subclasses pay on other scores)."""
        return np.asarray(obs.measured_quality, dtype=float)

    @override
    def pay(self, obs: Observation) -> np.ndarray:
        score = np.clip((self.score(obs) - self.threshold) / (1 - self.threshold), 0, 1)
        return self.bonus_share * obs.average_cost * score


@register
class Bundle(PaymentScheme):
    """Bundled (episode) payment: one price for the covered disciplines' care of a case.

    Care of the disciplines in ``covered`` is paid ``price_to_cost`` times its normative
    case value whatever is done; every other discipline is paid fee-for-service at
    ``fee_to_cost``. Which services fall inside the bundle is the border across which
    care can be shifted (Cattel et al. 2018, Section 3.3; Section 4.2.2 on whole-person
    accountability removing the border).
    """

    name = "bundle"
    ranges = {"price_to_cost": RATIO, "fee_to_cost": RATIO}
    description = "Episode price for covered disciplines, FFS for the rest."
    risk_bearing = True

    def __init__(
        self,
        *,
        covered: tuple[str, ...] | list[str] = ("hospital", "rehab"),
        price_to_cost: float = 1.05,
        fee_to_cost: float | dict[str, float] = 1.25,
    ):
        if isinstance(covered, str):
            covered = (covered,)
        if not isinstance(covered, tuple | list):
            raise ParameterError("covered", covered, f"a list of disciplines from {list(DISCIPLINES)}")
        covered = tuple(covered)
        for discipline in covered:
            if discipline not in DISCIPLINES:
                raise ParameterError("covered", discipline, f"disciplines from {list(DISCIPLINES)}")
        if not covered:
            raise ParameterError("covered", covered, "at least one discipline")
        self.covered = covered
        self.price_to_cost = self._checked("price_to_cost", price_to_cost)
        self._fees = FeeForService(fee_to_cost=fee_to_cost)
        self.fee_to_cost = self._fees.fee_to_cost

    @override
    def pay(self, obs: Observation) -> np.ndarray:
        inside = np.array([d in self.covered for d in DISCIPLINES])
        episode = self.price_to_cost * obs.case_mix[:, inside].sum(axis=1)
        fees = obs.services[:, ~inside] @ self._fees.fee_schedule(obs.unit_cost)[~inside]
        return episode + fees


@register
class OutlierSharing(PaymentScheme):
    """Outlier risk sharing: the purchaser pays ``share`` of each patient's cost above a threshold.

    An add-on to a risk-bearing base payment (Cattel et al. 2018, Section 4.2.5.1): it
    protects providers against expensive patients, so steering them away pays less. The
    threshold is the purchaser's (``purchaser.outlier_threshold``).
    """

    name = "outlier"
    ranges = {"share": SHARE}
    description = "Add-on: purchaser pays a share of per-patient cost above the outlier threshold."
    add_on = True

    def __init__(self, *, share: float = 0.8):
        self.share = self._checked("share", share)

    @override
    def pay(self, obs: Observation) -> np.ndarray:
        return self.share * obs.outlier_cost


@dataclass
class Blend(PaymentScheme):
    """A weighted sum of schemes; the building block of mixed payment and add-ons."""

    parts: list[tuple[float, PaymentScheme]] = field(default_factory=list)
    name: ClassVar[str] = "blend"

    @override
    def pay(self, obs: Observation) -> np.ndarray:
        return sum((w * s.pay(obs) for w, s in self.parts), start=np.zeros(obs.n_payees))

    @override
    def contingent(self, obs: Observation) -> np.ndarray:
        return sum((w * s.contingent(obs) for w, s in self.parts), start=np.zeros(obs.n_payees))

    @override
    def components(self) -> Iterator[tuple[float, PaymentScheme]]:
        for weight, scheme in self.parts:
            for inner_weight, leaf in scheme.components():
                yield weight * inner_weight, leaf

    @override
    def params(self) -> dict[str, Any]:
        return {"parts": [(w, s.clone()) for w, s in self.parts]}


@register
class Mixed(Blend):
    """Mixed payment: a blend of FFS and capitation (default 50/50, Section 3.3, Table 1).

    ``ffs_share`` of the FFS fees plus ``1 - ffs_share`` of the capitation rate, so the
    marginal fee shrinks while a fixed part keeps income stable (Ellis & McGuire 1986).
    """

    name = "mixed"
    ranges = {"ffs_share": SHARE, "fee_to_cost": RATIO, "rate_to_cost": RATIO}
    description = "Blend of FFS and capitation (default 50% each)."
    prospective = False
    risk_bearing = True

    def __init__(
        self,
        *,
        ffs_share: float = 0.5,
        fee_to_cost: float | dict[str, float] = 1.25,
        rate_to_cost: float = 1.05,
        risk_adjusted: bool = True,
    ):
        self.ffs_share = self._checked("ffs_share", ffs_share)
        self.fee_to_cost = fee_to_cost
        self.rate_to_cost = rate_to_cost
        self.risk_adjusted = risk_adjusted
        super().__init__(
            parts=[
                (self.ffs_share, FeeForService(fee_to_cost=fee_to_cost)),
                (1 - self.ffs_share, Capitation(rate_to_cost=rate_to_cost, risk_adjusted=risk_adjusted)),
            ]
        )

    @override
    def params(self) -> dict[str, Any]:
        return PaymentScheme.params(self)

    @override
    def __repr__(self) -> str:
        return PaymentScheme.__repr__(self)


def with_p4p(base: PaymentScheme, **p4p_params: Any) -> Blend:
    """A base scheme plus a P4P add-on (Section 4.1: base payment + small variable part)."""
    return Blend(parts=[(1.0, base), (1.0, PayForPerformance(**p4p_params))])


def list_schemes() -> list[str]:
    """Names of the registered schemes, for the CLI and `vbpsim.list_schemes()`."""
    return sorted(SCHEMES)


def filtered_schemes(predicate: Callable[[type[PaymentScheme]], bool]) -> list[str]:
    """Names of schemes whose class satisfies a predicate (e.g. ``lambda s: s.prospective``)."""
    return sorted(name for name, cls in SCHEMES.items() if predicate(cls))


def make_scheme(name: str | PaymentScheme, params: dict[str, Any] | None = None) -> PaymentScheme:
    """Build a scheme by registered name with keyword params; ``base+addon`` adds add-ons.

    Add-ons (``p4p``, ``outlier``) take their parameters with their name as prefix, e.g.
    ``make_scheme("capitation+p4p", {"rate_to_cost": 1.0, "p4p_bonus_share": 0.1})``.
    """
    if isinstance(name, PaymentScheme):
        if params:
            raise ParameterError("params", params, "no extra parameters for a scheme object")
        return name
    if not isinstance(name, str):
        raise ParameterError("scheme", name, f"one of {list_schemes()} or a PaymentScheme")
    params = dict(params or {})
    base_name, *addons = name.split("+")
    add_ons = [n for n in list_schemes() if SCHEMES[n].add_on]
    valid = (
        base_name in SCHEMES
        and (not addons or not SCHEMES[base_name].add_on)
        and all(a in add_ons for a in addons)
        and len(set(addons)) == len(addons)
    )
    if not valid:
        bases = [n for n in list_schemes() if n not in add_ons]
        raise ParameterError("scheme", name, f"one of {bases}, optionally with +{'/+'.join(add_ons)}")
    addon_params = {
        a: {k.removeprefix(a + "_"): params.pop(k) for k in list(params) if k.startswith(a + "_")} for a in addons
    }
    for key in params:
        for a in add_ons:
            if key.startswith(a + "_") and a not in addons:
                raise ParameterError(key, params[key], f"only with '{base_name}+{a}'")
    base = _construct(SCHEMES[base_name], params)
    if not addons:
        return base
    plain = {a: _construct(SCHEMES[a], addon_params[a]) for a in addons}
    parts: list[tuple[float, PaymentScheme]] = [(1.0, base)]
    for a in addons:
        others = {name: scheme for name, scheme in plain.items() if name != a}
        defaults = SCHEMES[a].defaults_for(base, others)
        parts.append((1.0, _construct(SCHEMES[a], {**defaults, **addon_params[a]}) if defaults else plain[a]))
    return Blend(parts=parts)


def with_world_defaults(name: str, params: dict[str, Any], world: dict[str, Any]) -> dict[str, Any]:
    """``params`` completed by the world's terms (e.g. the status quo's fee levels) the base scheme takes.

    A switch of contract should not silently change what it does not mention: a blend or
    bundle that pays some care by fee keeps the world's fee schedule unless told otherwise.
    """
    base = SCHEMES.get(name.split("+")[0]) if isinstance(name, str) else None
    if base is None:
        return dict(params)
    accepted = set(inspect.signature(base.__init__).parameters) - {"self"}
    return {**{k: v for k, v in world.items() if k in accepted}, **params}


def _construct(cls: type[PaymentScheme], params: dict[str, Any]) -> PaymentScheme:
    allowed = constructor_parameters(cls)
    for key in params:
        if key not in allowed:
            raise ParameterError(key, params[key], f"not a parameter of '{cls.name}'; allowed: {allowed}")
    return cls(**params)


# Unit and meaning of each base scheme's parameters, keyed (scheme, parameter); the ODD
# tables and the app's controls read them (contract pieces: vbpsim.contracts.PARAMETER_DOCS).
PARAMETER_DOCS: dict[tuple[str, str], tuple[str, str]] = {
    ("ffs", "fee_to_cost"): ("ratio", "Fee per service unit relative to the unit cost."),
    ("ffs", "fees"): ("EUR per unit", "Overrides the fee of single disciplines, e.g. {'gp': 60}."),
    ("per_case", "price_to_cost"): ("ratio", "Price relative to the normative (case-mix) cost of a case."),
    ("capitation", "rate_to_cost"): ("ratio", "Rate relative to the member's normative cost."),
    ("capitation", "risk_adjusted"): (
        "true/false",
        "Rate follows the purchaser's risk score (true) or the population average (false).",
    ),
    ("capitation", "covers_outside_care"): (
        "true/false",
        "The capitation covers members' care outside the region: the cost of episodes the payee "
        "redirected there (outside_cost) is deducted (true) or paid by the purchaser on top (false).",
    ),
    ("per_period", "budget_to_cost"): (
        "ratio",
        "Budget relative to the risk-adjusted normative cost of the panel at contract start.",
    ),
    ("p4p", "bonus_share"): ("share of normative cost", "Bonus at a perfect indicator score."),
    ("p4p", "threshold"): ("indicator score", "Score below which no bonus is paid (linear above)."),
    ("mixed", "ffs_share"): ("share", "Weight of the FFS part; the capitation part gets 1 - ffs_share."),
    ("mixed", "fee_to_cost"): ("ratio", "Fee-to-cost ratio of the FFS part."),
    ("mixed", "rate_to_cost"): ("ratio", "Rate-to-cost ratio of the capitation part."),
    ("mixed", "risk_adjusted"): ("true/false", "Whether the capitation part is risk-adjusted."),
    ("bundle", "covered"): (
        "disciplines",
        "Disciplines inside the bundle (paid by episode); all others are paid FFS.",
    ),
    ("bundle", "price_to_cost"): ("ratio", "Episode price relative to the normative case-mix cost of covered care."),
    ("bundle", "fee_to_cost"): ("ratio", "Fee-to-cost ratio for the disciplines outside the bundle."),
    ("outlier", "share"): (
        "share",
        "Share of each patient's cost above purchaser.outlier_threshold that the purchaser pays back.",
    ),
}

# The VBP contracts register themselves in SCHEMES on import; importing them here means
# every user of the registry sees them, however vbpsim was imported (the package is lazy).
from . import contracts as _contracts  # noqa: E402, F401
