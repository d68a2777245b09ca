"""The decision rule's batched evaluation computes what one-at-a-time evaluation would, bit for bit.

The rule probes all candidates stacked, tiles the providers' tables, picks several
dimensions' logit choices in one call and sums payee observations with flat bincounts;
each of these must give the very numbers (and random draws) of the plain version, so
results do not depend on how the work is batched.
"""

from __future__ import annotations

import numpy as np
import pytest

import vbpsim
from vbpsim.agents import Decision, DecisionRule, _tiled, aggregate
from vbpsim.schemes import Observation


def _decision(rng: np.random.Generator, n: int) -> Decision:
    return Decision(*(rng.random((n, 4)) if f == "effort" else rng.random(n) for f in Decision.FIELDS))


def test_logit_picks_of_several_dimensions_draw_as_calls_in_turn() -> None:
    rule = DecisionRule(vbpsim.load_scenario("small"), 12)
    rng = np.random.default_rng(5)
    utilities, scale = rng.normal(size=(6, 3, 40)) * 10, rng.random((6, 40)) * 5
    utilities[2, :, :5] = 1.0  # ties: nothing at stake for some providers
    one_by_one = [rule.logit_pick(u, s, np.random.default_rng(9)) for u, s in zip(utilities, scale, strict=True)]
    turn = np.random.default_rng(9)
    in_turn = np.array([rule.logit_pick(u, s, turn) for u, s in zip(utilities, scale, strict=True)])
    together = rule.logit_pick(utilities, scale, np.random.default_rng(9))
    assert np.array_equal(together, in_turn)
    assert not all(np.array_equal(a, b) for a, b in zip(one_by_one, in_turn, strict=True))  # the draws move on


def test_decision_matrix_columns_are_its_dimensions() -> None:
    decision = _decision(np.random.default_rng(1), 7)
    matrix = decision.matrix()
    assert matrix.shape == (7, len(Decision.DIMENSIONS))
    for dim in range(len(Decision.DIMENSIONS)):
        assert np.array_equal(matrix[:, dim], decision.get(dim))


def test_tiling_repeats_every_array_as_concatenate_would() -> None:
    rng = np.random.default_rng(2)
    arrays = {
        "a": rng.random(5),
        "b": rng.random(5),
        "ints": rng.integers(0, 9, 5),
        "matrix": rng.random((5, 3)),
        "flags": rng.random((5, 2)) > 0.5,
    }
    tiled = _tiled(arrays, 4)
    assert tiled.keys() == arrays.keys()
    for name, value in arrays.items():
        expected = np.concatenate([value] * 4)
        assert tiled[name].dtype == expected.dtype and tiled[name].flags.c_contiguous
        assert np.array_equal(tiled[name], expected)
    other = _tiled({"a": rng.random(5), "short": rng.random(3)}, 2)  # vectors of different lengths
    assert other["short"].shape == (6,) and other["a"].shape == (10,)


@pytest.mark.parametrize("with_discipline", [False, True])
def test_aggregate_sums_each_payee_in_provider_order(with_discipline: bool) -> None:
    rng = np.random.default_rng(3)
    n, n_payees = 30, 4
    fields = {
        name: rng.random((n, 4)) * 1e3
        if name in ("services", "case_mix", "cost_mix", "expected_mix", "ytd_services")
        else rng.random(n) * 1e3
        for name in (*Observation.EXTENSIVE, *Observation.YEAR_TO_DATE)
    }
    obs = Observation(months=1.0, unit_cost=np.ones(4), measured_quality=rng.random(n), **fields)
    payee, discipline = rng.integers(0, n_payees, n), rng.integers(0, 4, n)
    out = aggregate(obs, payee, n_payees, discipline if with_discipline else None)
    for name in ("services", "case_mix", "cost_mix", "expected_mix", "ytd_services"):
        expected = np.zeros((n_payees, 4))
        np.add.at(expected, payee, getattr(obs, name))  # row by row, in order, from zero
        assert np.array_equal(getattr(out, name), expected) and getattr(out, name).flags.c_contiguous
    for name in ("cost", "cases", "acute_events", "ytd_cost"):
        assert np.array_equal(getattr(out, name), np.bincount(payee, weights=getattr(obs, name), minlength=n_payees))
    if not with_discipline:
        assert np.array_equal(out.member_months, np.bincount(payee, weights=obs.member_months, minlength=n_payees))


def test_observation_replace_is_dataclasses_replace() -> None:
    import dataclasses

    obs = Observation.zeros(3, np.ones(4), months=1.0)
    fast, plain = obs.replace(cost=np.ones(3), year=2), dataclasses.replace(obs, cost=np.ones(3), year=2)
    assert fast.__dict__.keys() == plain.__dict__.keys()
    for name, value in plain.__dict__.items():
        assert np.array_equal(getattr(fast, name), value)
    assert obs.cost.sum() == 0 and fast.year == 2 and obs.year == 0  # a copy: the original is untouched
    assert np.array_equal(obs.replace(outlier_cost=None).outlier_cost, np.zeros(3))  # None still filled in
    with pytest.raises(TypeError):
        obs.replace(no_such_field=1.0)
