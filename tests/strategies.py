"""Hypothesis generators for vbpsim tests (in the spirit of Axelrod's ``tests/property.py``).

* :func:`observations`: random purchaser observations (1..20 payees, finite non-negative
  extensive fields, quality in [0, 1], a month or a year).
* :func:`valid_scheme_params` / :func:`invalid_scheme_params`: keyword parameters of each
  registered scheme that must be accepted, or that must be rejected with a
  ``ParameterError`` (exactly one parameter is made bad).
* :func:`obs`: a hand-written observation for closed-form tables.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vbpsim.contracts import SharedSavings
from vbpsim.parameters import DISCIPLINES
from vbpsim.schemes import SHARE as SHARE_RANGE
from vbpsim.schemes import Observation

N_DISC = len(DISCIPLINES)
UNIT_COST = np.array([50.0, 1000.0, 200.0, 50.0])

# Magnitudes stay far from overflow: payments are sums of a few products of these.
# No subnormal floats: an amount of 5e-324 underflows to 0 when a period is rescaled, so no
# scheme could be linear in the period length on it; real observations never hold such values.
AMOUNT = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False)
QUALITY = st.floats(min_value=0.0, max_value=1.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)
RATIO = st.floats(min_value=0.0, max_value=5.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)
SHARE = st.floats(min_value=0.0, max_value=1.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def obs(
    n: int | None = None,
    *,
    months: float = 1.0,
    unit_cost: np.ndarray | None = None,
    **fields: Any,
) -> Observation:
    """An observation with every field given or zero (``n`` payees, inferred if omitted)."""
    if n is None:
        n = len(next(iter(fields.values())))
    zero = Observation.zeros(n, UNIT_COST if unit_cost is None else np.asarray(unit_cost, float), months)
    changes = {k: np.asarray(v, dtype=float) for k, v in fields.items()}
    return zero.replace(**changes)


@st.composite
def observations(draw: st.DrawFn, min_payees: int = 1, max_payees: int = 20) -> Observation:
    """A random valid observation: non-negative finite arrays, quality in [0, 1].

    Every extensive field (whatever ``Observation.EXTENSIVE`` lists, with the shape
    ``Observation.zeros`` gives it) is cut from one array draw: fast, and it shrinks well.
    """
    n = draw(st.integers(min_payees, max_payees))
    months = draw(st.sampled_from([1.0, 12.0]))
    unit_cost = draw(hnp.arrays(np.float64, N_DISC, elements=st.floats(1.0, 5_000.0)))
    template = Observation.zeros(n, unit_cost, months)
    widths = {f: int(np.prod(getattr(template, f).shape[1:], dtype=int)) for f in Observation.EXTENSIVE}
    table = draw(hnp.arrays(np.float64, (n, sum(widths.values())), elements=AMOUNT))
    changes, col = {}, 0
    for name, width in widths.items():
        shape = getattr(template, name).shape
        changes[name] = table[:, col : col + width].reshape(shape).copy()
        col += width
    changes["measured_quality"] = draw(hnp.arrays(np.float64, n, elements=QUALITY))
    return template.replace(**changes)


# -- scheme parameters --------------------------------------------------------------------
FEES = st.dictionaries(st.sampled_from(DISCIPLINES), st.floats(0.0, 1e4, allow_nan=False), max_size=4)

# the benchmark of vbpsim.contracts schemes; corridors as increasing bands (bound, rate)
BENCHMARK: dict[str, st.SearchStrategy[Any]] = {
    "level": RATIO,
    "benchmark": st.sampled_from(["normative", "regional", "historical"]),
    "trend": st.floats(-0.5, 0.5),
    "carve_out": st.lists(st.sampled_from(DISCIPLINES), max_size=N_DISC - 1, unique=True).map(tuple),
}
CORRIDORS = st.lists(st.tuples(st.floats(0.01, 0.5), SHARE), min_size=1, max_size=4).map(
    lambda bands: tuple((sum(width for width, _ in bands[: i + 1]), rate) for i, (_, rate) in enumerate(bands))
)

VALID: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "ffs": {"fee_to_cost": RATIO, "fees": FEES},
    "per_case": {"price_to_cost": RATIO},
    "capitation": {"rate_to_cost": RATIO, "risk_adjusted": st.booleans()},
    "per_period": {"budget_to_cost": RATIO},
    "cost_reimbursement": {},
    "p4p": {"bonus_share": SHARE, "threshold": st.floats(0.0, 0.99, allow_nan=False)},
    "mixed": {
        "ffs_share": SHARE,
        "fee_to_cost": RATIO,
        "rate_to_cost": RATIO,
        "risk_adjusted": st.booleans(),
    },
    "bundle": {
        "covered": st.lists(st.sampled_from(DISCIPLINES), min_size=1, max_size=4, unique=True).map(tuple),
        "price_to_cost": RATIO,
        "fee_to_cost": RATIO,
    },
    "outlier": {"share": SHARE},
    # vbpsim.contracts
    "global_budget": {**BENCHMARK, "carve_out_fee_to_cost": RATIO},
    "shared_savings": {
        "savings_rate": SHARE,
        "loss_rate": SHARE,
        "min_savings_rate": SHARE,
        "min_loss_rate": SHARE,
        "first_dollar": st.booleans(),
        "savings_cap": SHARE,
        "loss_cap": st.floats(0.01, 1.0),  # 0 is refused for a two-sided contract
        "corridors": CORRIDORS,
        "quality_gate": SHARE,
        "quality_scaled": st.booleans(),
        # glide_path (loss rates by year) excludes a constant loss_rate; tested in test_contracts.py
        **BENCHMARK,
        "basis": st.sampled_from(["fees", "budget"]),
        "reinsured_share": SHARE,
        "reinsured_outlier_share": SHARE,
    },
    "stop_loss": {"share": SHARE},
    "quality_gate": {"share": SHARE, "threshold": SHARE, **BENCHMARK},
    # paying for outcomes
    "readmission_penalty": {"cap": SHARE, "multiplier": RATIO},
    "outcome_bonus": {
        "bonus_per_event": st.floats(0.0, 1e5, allow_nan=False),
        "outcome": st.sampled_from(["acute_events", "readmissions", "deaths"]),
        "two_sided": st.booleans(),
    },
    "prom_bonus": {"bonus_share": SHARE, "threshold": st.floats(0.0, 0.99, allow_nan=False)},
}

NOT_A_NUMBER = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)
NEGATIVE = st.one_of(
    st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=True),
    st.integers(max_value=-1),
)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
BAD_NONNEGATIVE = st.one_of(NOT_A_NUMBER, NEGATIVE, NON_FINITE)
BAD_SHARE = st.one_of(BAD_NONNEGATIVE, st.floats(min_value=1.0 + 1e-9, allow_nan=False))
# above the plausible range of a payment level (at most 10 x cost), up to values that overflowed
BAD_RATIO = st.one_of(BAD_NONNEGATIVE, st.floats(min_value=10.0 + 1e-6, max_value=1e300))
BAD_BOOL = st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5))
BAD_FEES = st.one_of(
    # an unknown discipline
    st.dictionaries(
        st.text(min_size=1, max_size=8).filter(lambda s: s not in DISCIPLINES),
        st.floats(0, 10, allow_nan=False),
        min_size=1,
        max_size=2,
    ),
    # a known discipline with a bad fee
    st.dictionaries(
        st.sampled_from(DISCIPLINES),
        st.one_of(BAD_NONNEGATIVE, st.floats(min_value=1e6 + 1, max_value=1e300)),
        min_size=1,
        max_size=2,
    ),
)

BAD_BENCHMARK: dict[str, st.SearchStrategy[Any]] = {
    "level": BAD_RATIO,
    "benchmark": st.one_of(
        st.none(), st.integers(), st.text(max_size=8).filter(lambda s: s not in ("normative", "regional", "historical"))
    ),
    "trend": st.one_of(
        NOT_A_NUMBER,
        NON_FINITE,
        st.floats(max_value=-0.5 - 1e-9, allow_nan=False),
        st.floats(min_value=0.5 + 1e-9, allow_nan=False),
    ),
    "carve_out": st.one_of(
        st.integers(),
        st.just(list(DISCIPLINES)),  # nothing left in the contract
        st.lists(st.text(min_size=1, max_size=8).filter(lambda s: s not in DISCIPLINES), min_size=1, max_size=2),
    ),
}

INVALID: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "ffs": {"fee_to_cost": BAD_RATIO, "fees": BAD_FEES},
    "per_case": {"price_to_cost": BAD_RATIO},
    "capitation": {"rate_to_cost": BAD_RATIO, "risk_adjusted": BAD_BOOL},
    "per_period": {"budget_to_cost": BAD_RATIO},
    "p4p": {
        "bonus_share": BAD_SHARE,
        "threshold": st.one_of(BAD_NONNEGATIVE, st.floats(min_value=1.0, allow_nan=False)),
    },
    "mixed": {
        "ffs_share": BAD_SHARE,
        "fee_to_cost": BAD_RATIO,
        "rate_to_cost": BAD_RATIO,
        "risk_adjusted": BAD_BOOL,
    },
    "bundle": {
        "covered": st.one_of(
            st.just(()),
            st.lists(st.text(min_size=1, max_size=8).filter(lambda s: s not in DISCIPLINES), min_size=1, max_size=2),
        ),
        "price_to_cost": BAD_RATIO,
        "fee_to_cost": BAD_RATIO,
    },
    "outlier": {"share": BAD_SHARE},
    # vbpsim.contracts
    "global_budget": {**BAD_BENCHMARK, "carve_out_fee_to_cost": BAD_RATIO},
    "shared_savings": {
        # every share of the reconciliation, as the class declares them (glide_path has its own cases below)
        **{k: BAD_SHARE for k, allowed in SharedSavings.ranges.items() if allowed == SHARE_RANGE and k != "glide_path"},
        "first_dollar": BAD_BOOL,
        "quality_scaled": BAD_BOOL,
        "corridors": st.one_of(
            st.integers(),
            st.just("bands"),
            st.just([(0.05, 0.5), (0.02, 1.0)]),  # bounds not increasing
            st.just([(0.05, 1.5)]),  # rate above 1
            st.just([(0.0, 0.5)]),  # bound not above 0
            st.just([(math.inf, 0.5)]),  # bound not finite
            st.just([(1e10, 0.5)]),  # bound above 1e9 ("no bound")
            st.just([(0.05,)]),
        ),
        "glide_path": st.one_of(st.integers(), st.just("0.5"), st.just([0.0, 1.5]), st.just([-0.1]), st.just([None])),
        "basis": st.text(max_size=8).filter(lambda s: s not in ("fees", "budget")),
        **BAD_BENCHMARK,
    },
    "stop_loss": {"share": BAD_SHARE},
    "quality_gate": {"share": BAD_SHARE, "threshold": BAD_SHARE, **BAD_BENCHMARK},
    "readmission_penalty": {"cap": BAD_SHARE, "multiplier": BAD_NONNEGATIVE},
    "outcome_bonus": {
        "bonus_per_event": BAD_NONNEGATIVE,
        "outcome": st.one_of(st.none(), st.integers(), st.just("strokes"), st.just("prom")),
        "two_sided": BAD_BOOL,
    },
    "prom_bonus": {
        "bonus_share": BAD_NONNEGATIVE,
        "threshold": st.one_of(BAD_NONNEGATIVE, st.floats(min_value=1.0, allow_nan=False)),
    },
}

UNKNOWN_KEY = st.text(
    alphabet=st.characters(whitelist_categories=("Ll",), whitelist_characters="_"), min_size=1, max_size=12
)


@st.composite
def valid_scheme_params(draw: st.DrawFn, scheme: str) -> dict[str, Any]:
    """A random subset of a scheme's parameters, each with a valid value."""
    fields = VALID[scheme]
    if not fields:  # a scheme without parameters (the cost-reimbursement reference)
        return {}
    keys = draw(st.lists(st.sampled_from(sorted(fields)), unique=True))
    return {k: draw(fields[k]) for k in keys}


@st.composite
def invalid_scheme_params(draw: st.DrawFn, scheme: str, unknown_keys: bool = True) -> tuple[dict[str, Any], str]:
    """Valid parameters with exactly one made bad; returns (params, name of the bad one).

    The bad one is a bad value of a real parameter or (if ``unknown_keys``) a key the
    scheme does not have.
    """
    params = draw(valid_scheme_params(scheme))
    if INVALID.get(scheme) and (not unknown_keys or draw(st.booleans())):
        key = draw(st.sampled_from(sorted(INVALID[scheme])))
        params[key] = draw(INVALID[scheme][key])
    else:
        key = draw(UNKNOWN_KEY.filter(lambda k: k not in VALID[scheme] and not k.startswith("p4p_")))
        params[key] = draw(st.floats(0, 1))
    return params, key


@st.composite
def scheme_with_params(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """Any registered scheme with random valid parameters."""
    name = draw(st.sampled_from(sorted(VALID)))
    return name, draw(valid_scheme_params(name))


@st.composite
def addon_scheme_params(draw: st.DrawFn, scheme: str) -> dict[str, Any]:
    """Valid parameters of ``base+addon``: the base's own, each add-on's with its name as prefix."""
    base, *addons = scheme.split("+")
    params = draw(valid_scheme_params(base))
    for addon in addons:
        params.update({f"{addon}_{k}": v for k, v in draw(valid_scheme_params(addon)).items()})
    return params


def params_strategy(scheme: str) -> st.SearchStrategy[dict[str, Any]]:
    """Valid parameters for a registered scheme name or a ``base+addon`` name."""
    return addon_scheme_params(scheme) if "+" in scheme else valid_scheme_params(scheme)


PER_PAYEE = ("services", *Observation.EXTENSIVE[1:], "measured_quality")


def take_payees(observation: Observation, index: Any) -> Observation:
    """The observation restricted to (or reordered by) some payee rows."""
    return observation.replace(**{f: getattr(observation, f)[index] for f in PER_PAYEE})
