"""The risk model's yearly refit reads its cells off one sort per step of the search.

The oracle is the straightforward version it replaced (``np.quantile`` edges, cells by
``np.searchsorted``, means by ``np.bincount``, R^2 by ``np.corrcoef``, the same
bisection): on the same data and seed the fast refit must give the same noise, blend,
edges, cell means and achieved R^2.
"""

from __future__ import annotations

import numpy as np
import pytest

from vbpsim import risk
from vbpsim.risk import N_CELLS, QUANTILES, RiskModel, between_cell_r2, cell_sums, r_squared, sorted_cells


def _population(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Heavy-tailed cost per patient and discipline, a few of them dead, some exact ties."""
    g = np.random.default_rng(seed)
    cost = g.lognormal(3, 1.2, (n, 4)) * g.lognormal(0, 0.8, (n, 1))
    cost[: n // 10] = np.round(cost[: n // 10], -1) + 10  # patients with identical costs
    alive = g.random(n) > 0.05
    return cost, alive


def _oracle_cells(signal: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    edges = np.quantile(signal, QUANTILES)
    cell = np.searchsorted(edges, signal)
    counts = np.maximum(np.bincount(cell, minlength=N_CELLS), 1)
    means = np.stack(
        [np.bincount(cell, weights=cost[:, d], minlength=N_CELLS) / counts for d in range(cost.shape[1])], axis=1
    )
    return edges, means


def _oracle_estimate(model: RiskModel, cost: np.ndarray, alive: np.ndarray) -> None:
    """The refit as it was before the sort-based cells (same bisections, same random sample)."""
    living = np.flatnonzero(alive)
    sample = living
    if len(living) > risk.FIT_SAMPLE:
        sample = np.sort(model.fit_rng.choice(living, risk.FIT_SAMPLE, replace=False))
    c = cost[sample]
    total = c.sum(axis=1)

    def fitted_r2(sigma: float) -> float:
        signal = model._signal(total, sample, sigma)
        edges, means = _oracle_cells(signal, c)
        return r_squared(means[np.searchsorted(edges, signal)].sum(axis=1), total)

    ceiling = fitted_r2(0.0)
    model.blend = 0.0
    if model.target >= ceiling:
        model.sigma = 0.0
        if ceiling < 1.0:
            signal = model._signal(total, sample, 0.0)
            edges, means = _oracle_cells(signal, c)
            cells = means[np.searchsorted(edges, signal)].sum(axis=1)
            lo, hi = 0.0, 1.0
            for _ in range(30):
                mid = (lo + hi) / 2
                if r_squared(mid * total + (1 - mid) * cells, total) < model.target:
                    lo = mid
                else:
                    hi = mid
            model.blend = (lo + hi) / 2
    else:
        lo, hi = 0.0, 1.0
        while fitted_r2(hi) > model.target and hi < 1e3:
            lo, hi = hi, hi * 2
        for _ in range(30):
            mid = (lo + hi) / 2
            if fitted_r2(mid) > model.target:
                lo = mid
            else:
                hi = mid
        model.sigma = (lo + hi) / 2
    full_total = cost[living].sum(axis=1)
    model.edges, model.cell_means = _oracle_cells(model._signal(full_total, living, model.sigma), cost[living])
    model.achieved.append(r_squared(model.scores(cost, alive).sum(axis=1)[living], full_total))


@pytest.mark.parametrize("n", [30, 199, 2_000])
def test_sorted_cells_are_the_quantile_cells(n: int) -> None:
    g = np.random.default_rng(n)
    for signal in (g.normal(size=n), np.round(g.normal(size=n), 1)):  # continuous, then heavily tied
        order, edges, bounds = sorted_cells(signal)
        np.testing.assert_array_equal(edges, np.quantile(signal, QUANTILES))
        cell = np.empty(n, dtype=np.intp)
        cell[order] = np.repeat(np.arange(N_CELLS), np.diff(bounds))
        np.testing.assert_array_equal(cell, np.searchsorted(edges, signal))


def test_cell_sums_and_r2_match_bincount_and_corrcoef() -> None:
    cost, _ = _population(3_000)
    total = cost.sum(axis=1)
    signal = np.log(total) + 1.5 * np.random.default_rng(1).standard_normal(len(total))
    order, edges, bounds = sorted_cells(signal)
    _, oracle_means = _oracle_cells(signal, cost)
    means = cell_sums(cost[order], bounds) / np.maximum(np.diff(bounds), 1)[:, None]
    np.testing.assert_allclose(means, oracle_means, rtol=1e-12, atol=0)
    oracle_r2 = r_squared(oracle_means[np.searchsorted(edges, signal)].sum(axis=1), total)
    assert between_cell_r2(total[order], bounds) == pytest.approx(oracle_r2, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("target", [0.0, 0.015, 0.11, 0.4, 0.97, 1.0])
@pytest.mark.parametrize("fit_sample", [risk.FIT_SAMPLE, 1_500])
def test_refit_equals_the_oracle(target: float, fit_sample: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(risk, "FIT_SAMPLE", fit_sample)
    cost, alive = _population(4_000)
    fast, slow = (RiskModel(target, len(alive), np.random.default_rng(7)) for _ in range(2))
    for year in range(2):
        yearly = cost * (1 + 0.1 * year)
        fast.estimate(yearly, alive)
        if target <= 0:
            RiskModel.estimate(slow, yearly, alive)
        else:
            _oracle_estimate(slow, yearly, alive)
        assert fast.sigma == pytest.approx(slow.sigma, rel=1e-12, abs=0)
        assert fast.blend == pytest.approx(slow.blend, rel=1e-12, abs=0)
        np.testing.assert_allclose(fast.edges, slow.edges, rtol=1e-12, atol=0)
        np.testing.assert_allclose(fast.cell_means, slow.cell_means, rtol=1e-12, atol=1e-12)
        assert fast.achieved[-1] == pytest.approx(slow.achieved[-1], rel=1e-12, abs=1e-15)
        np.testing.assert_allclose(fast.scores(yearly, alive), slow.scores(yearly, alive), rtol=1e-12, atol=1e-12)
    if fit_sample >= len(alive) and 0.1 < target < 0.9:  # above the cells' floor (~200 cells / 4,000 patients)
        assert fast.achieved[-1] == pytest.approx(target, abs=0.02)


@pytest.mark.parametrize("n", [5, 130, 3_000, 40_000])
def test_compiled_cell_sums_are_numpys_bit_for_bit(n: int) -> None:
    """The refit's compiled gather-and-sum equals ``cell_sums(cost[rows], bounds)`` to the last bit.

    Cells of every size (numpy's pairwise summation switches at 8 and 128 terms), empty
    cells, and heavily tied signals whose top cells are empty (``reduceat``'s clipped starts).
    """
    from vbpsim.kernels.delivery import living_totals, ordered_cell_sums

    cost, alive = _population(n, seed=n)
    living = np.flatnonzero(alive)
    own, one = np.arange(n), np.ones(n)  # each patient its own row of costs, weight 1
    total = living_totals(cost, own, one, living, np.ones(4))
    np.testing.assert_array_equal(total, cost[living].sum(axis=1))
    price = np.array([31.0, 0.7, 1e3, 2.5])
    np.testing.assert_array_equal(living_totals(cost, own, one, living, price), (cost * price)[living].sum(axis=1))
    # the model's form: rows of a table of units times a weight (the frailty), priced
    g = np.random.default_rng(n)
    table, rows, weight = g.random((24, 4)), g.integers(0, 24, n).astype(np.uint8), g.lognormal(0, 0.5, n)
    priced = table[rows] * weight[:, None] * price
    np.testing.assert_array_equal(living_totals(table, rows, weight, living, price), priced[living].sum(axis=1))
    for signal in (np.log(total) + g.standard_normal(len(living)), np.minimum(np.round(np.log(total)), 4.0)):
        order, _, bounds = sorted_cells(signal)
        ordered = living[order]
        sums = ordered_cell_sums(cost, own, one, ordered, bounds, np.ones(4))
        np.testing.assert_array_equal(sums, cell_sums(cost[ordered], bounds))
        sums = ordered_cell_sums(table, rows, weight, ordered, bounds, price)
        np.testing.assert_array_equal(sums, cell_sums(priced[ordered], bounds))
