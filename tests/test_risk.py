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


@pytest.mark.parametrize("n", [5, 130, 3_000])
def test_refit_reads_costs_from_a_table_as_from_the_priced_need(n: int) -> None:
    """The refit's costs as rows of a table x a weight x prices equal the priced dense need, bit for bit."""
    g = np.random.default_rng(n)
    table, rows, weight = g.random((24, 4)), g.integers(0, 24, n).astype(np.uint8), g.lognormal(0, 0.5, n)
    price = np.array([31.0, 0.7, 1e3, 2.5])
    priced = table[rows] * weight[:, None] * price  # the need (units by diagnosis x frailty) at unit cost
    who = np.sort(g.choice(n, max(n // 2, 1), replace=False))
    np.testing.assert_array_equal(risk._cost(table, rows, weight, price, who), priced[who])
    np.testing.assert_array_equal(risk._total_cost(table, rows, weight, price, who), priced[who].sum(axis=1))
    alive = g.random(n) > 0.1
    dense, viewed = RiskModel(0.11, n, np.random.default_rng(3)), RiskModel(0.11, n, np.random.default_rng(3))
    dense.estimate(priced, alive)
    viewed.estimate(table, alive, price, rows=rows, weight=weight)
    np.testing.assert_array_equal(viewed.cell_means, dense.cell_means)
    np.testing.assert_array_equal(viewed.edges, dense.edges)
    assert viewed.sigma == dense.sigma and viewed.achieved == dense.achieved
