"""The purchaser's risk-adjustment model: a risk score whose explanatory power is a dial.

Risk adjustment is only as good as what the purchaser can predict (Cattel et al. 2018,
Section 4.2.4). Users know risk-adjustment models by their R^2: demographic models
explain 1-2% of the variance of individual cost, prospective diagnosis-based models
(CMS-HCC) about 11%, concurrent models 30-50% (Van de Ven & Ellis 2000; Pope et al. 2004;
Ash et al. 2000). Here that R^2 is the parameter.

The score is a conditional expectation: the purchaser sees a noisy signal
``x = log(true cost) + sigma * eta`` of each patient's true expected cost (``eta`` a
persistent standard-normal draw per patient) and predicts each discipline's cost by the
mean cost of patients with a similar signal (quantile cells of ``x``, like the risk cells
of an actuarial model). A conditional expectation never goes negative and passes through
a share R^2 of a patient's true cost on average (its slope on the true cost equals its
R^2). ``sigma`` is found once a year, when the purchaser re-estimates its model, so that
the score's R^2 against the patients' true expected cost hits the target; above what the
cells can reach the score is blended with the true cost itself.
"""

from __future__ import annotations

import numpy as np

from .kernels import delivery as kernels

N_CELLS = 200
FIT_SAMPLE = 200_000  # the score's R^2 is carried by few costly patients: fit on many
QUANTILES = np.linspace(0, 1, N_CELLS + 1)[1:-1]
BISECTIONS = 30  # halvings of the bracket of sigma (or of the blend weight)
SIGMA_MAX = 1e3  # noise beyond which the cells are as good as random: the target is below their floor


def r_squared(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Squared correlation of a prediction with the truth (0 for a constant)."""
    if len(truth) < 2 or np.ptp(prediction) == 0 or np.ptp(truth) == 0:
        return 0.0
    return float(np.corrcoef(prediction, truth)[0, 1] ** 2)


def quantile_edges(sorted_signal: np.ndarray) -> np.ndarray:
    """Inner cell edges: ``np.quantile(signal, QUANTILES)`` (its 'linear' method) read off the sorted signal."""
    virtual = (len(sorted_signal) - 1) * QUANTILES
    below = np.floor(virtual)
    gamma = virtual - below
    index = below.astype(np.intp)
    a = sorted_signal[index]
    b = sorted_signal[np.minimum(index + 1, len(sorted_signal) - 1)]
    diff = b - a
    return np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)


def sorted_cells(signal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort the signal once: the order, the inner edges and where each cell starts in that order.

    Cell ``k`` holds the patients with ``edges[k-1] < signal <= edges[k]``, exactly the cell
    ``np.searchsorted(edges, signal)`` gives, so the sorted patients ``bounds[k]:bounds[k+1]``
    are cell ``k``'s members.
    """
    order = np.argsort(signal)
    ordered = signal[order]
    edges = quantile_edges(ordered)
    bounds = np.empty(N_CELLS + 1, dtype=np.intp)
    bounds[0], bounds[-1] = 0, len(signal)
    bounds[1:-1] = np.searchsorted(ordered, edges, side="right")
    return order, edges, bounds


def cell_sums(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Sum of ``values`` (already in signal order, one row per patient) over each cell (0 for an empty one)."""
    starts = np.minimum(bounds[:-1], len(values) - 1)
    sums = np.add.reduceat(values, starts, axis=0)
    empty = bounds[1:] == bounds[:-1]
    sums[empty] = 0.0
    return sums


def between_cell_r2(ordered_total: np.ndarray, bounds: np.ndarray) -> float:
    """R^2 of the cell means of ``total`` against ``total``: between-cell over total variance.

    For a conditional mean the covariance with the truth equals its own variance, so this
    equals ``r_squared(cell mean per patient, total)`` without building that array.
    """
    counts = np.diff(bounds)
    filled = counts > 0
    means = cell_sums(ordered_total, bounds)[filled] / counts[filled]
    grand = ordered_total.mean()
    spread = float(np.sum((ordered_total - grand) ** 2))
    if spread == 0 or np.ptp(means) == 0:
        return 0.0
    return float(np.sum(counts[filled] * (means - grand) ** 2) / spread)


def _cost(table: np.ndarray, rows: np.ndarray, weight: np.ndarray, scale: np.ndarray, who: np.ndarray) -> np.ndarray:
    """Patients ``who``'s cost per column: ``table[rows] x weight x scale`` (one gathered copy)."""
    out = np.take(table, rows[who], axis=0)
    out *= weight[who, None]
    out *= scale
    return out


def _total_cost(
    table: np.ndarray, rows: np.ndarray, weight: np.ndarray, scale: np.ndarray, who: np.ndarray
) -> np.ndarray:
    """Patients ``who``'s total cost, column by column as ``_cost(...).sum(axis=1)`` adds (without the copy)."""
    at, w = rows[who], weight[who]
    total = np.take(table[:, 0], at) * w * scale[0]
    for column in range(1, table.shape[1]):
        total += np.take(table[:, column], at) * w * scale[column]
    return total


class RiskModel:
    """A risk score with a requested R^2, re-estimated by the purchaser once a year."""

    def __init__(self, target_r2: float, n_patients: int, rng: np.random.Generator) -> None:
        self.target = float(target_r2)
        self.eta = rng.standard_normal(n_patients)
        self.fit_rng = rng
        self.sigma = 0.0
        self.blend = 0.0  # weight of the true cost, used only above what cells reach
        self.edges = np.zeros(0)
        self.cell_means = np.zeros((1, 1))
        self.achieved: list[float] = []
        self.fits = 0  # estimates so far: a new number means new cells

    def _signal(self, total: np.ndarray, index: np.ndarray, sigma: float) -> np.ndarray:
        return np.log(np.maximum(total, 1e-12)) + sigma * self.eta[index]

    def _predict(self, signal: np.ndarray, edges: np.ndarray, means: np.ndarray) -> np.ndarray:
        return means[np.searchsorted(edges, signal)]

    def _fit_sigma(self, log_total: np.ndarray, eta: np.ndarray, total: np.ndarray) -> float:
        """The signal noise at which the cells' R^2 on the fit sample crosses the target (bisection).

        R^2 falls as the noise grows, in small jumps (a costly patient changing cell), so
        the search brackets the crossing and halves the bracket a fixed number of times.
        Each step sorts the signal once and reads the cells' R^2 off the sorted order.
        """

        def excess(sigma: float) -> float:
            order, _, bounds = sorted_cells(log_total + sigma * eta)
            return between_cell_r2(total[order], bounds) - self.target

        lo, hi = 0.0, 1.0
        while excess(hi) > 0 and hi < SIGMA_MAX:
            lo, hi = hi, hi * 2
        for _ in range(BISECTIONS):
            mid = (lo + hi) / 2
            if excess(mid) > 0:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    def _fit_blend(self, cells: np.ndarray, total: np.ndarray) -> float:
        """Weight of the true cost in the score at which R^2 reaches a target above what the cells reach."""
        lo, hi = 0.0, 1.0
        for _ in range(BISECTIONS):
            mid = (lo + hi) / 2
            if r_squared(mid * total + (1 - mid) * cells, total) < self.target:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    def estimate(
        self,
        cost: np.ndarray,
        alive: np.ndarray,
        scale: np.ndarray | None = None,
        rows: np.ndarray | None = None,
        weight: np.ndarray | None = None,
    ) -> None:
        """Fit the cells and the signal noise so the score's R^2 on the living hits the target.

        Patient i's cost is ``cost[rows[i]] x weight[i] x scale`` per column: by default its
        own row, weight and scale 1. The model passes its table of units by diagnosis, each
        patient's row of it, the frailty and the unit costs, so no copy of the need is made.
        """
        self.fits += 1
        n = len(alive)
        scale = np.ones(cost.shape[1]) if scale is None else np.asarray(scale, dtype=float)
        rows = np.arange(n) if rows is None else rows
        weight = np.ones(n) if weight is None else weight
        living = np.flatnonzero(alive)
        if self.target <= 0 or len(living) < 2:
            self.cell_means = (
                _cost(cost, rows, weight, scale, living).mean(axis=0, keepdims=True)
                if len(living)
                else np.zeros((1, cost.shape[1]))
            )
            self.edges = np.zeros(0)
            self.achieved.append(0.0)
            return
        sample = living
        if len(living) > FIT_SAMPLE:
            sample = np.sort(self.fit_rng.choice(living, FIT_SAMPLE, replace=False))
        total = _total_cost(cost, rows, weight, scale, sample)
        log_total = np.log(np.maximum(total, 1e-12))
        order, _, bounds = sorted_cells(log_total)
        ceiling = between_cell_r2(total[order], bounds)
        self.blend = 0.0
        if self.target >= ceiling:
            self.sigma = 0.0
            if ceiling < 1.0:  # blend with the true cost: R^2 rises monotonically to 1
                counts = np.maximum(np.diff(bounds), 1)
                means = cell_sums(total[order], bounds) / counts
                cells = np.empty_like(total)
                cells[order] = np.repeat(means, np.diff(bounds))
                self.blend = self._fit_blend(cells, total)
        else:
            self.sigma = self._fit_sigma(log_total, self.eta[sample], total)
        full_total = _total_cost(cost, rows, weight, scale, living)
        order, self.edges, bounds = sorted_cells(self._signal(full_total, living, self.sigma))
        counts = np.diff(bounds)
        self.cell_means = (
            cell_sums(_cost(cost, rows, weight, scale, living[order]), bounds) / np.maximum(counts, 1)[:, None]
        )
        predicted = np.repeat(self.cell_means.sum(axis=1), counts)
        ordered_total = full_total[order]
        if self.blend > 0:
            predicted = self.blend * ordered_total + (1 - self.blend) * predicted
        self.achieved.append(r_squared(predicted, ordered_total))

    def scores(self, cost: np.ndarray, alive: np.ndarray) -> np.ndarray:
        """Predicted cost per patient and discipline (0 for the dead), before calibration to totals.

        Each living patient's signal falls in a cell; the prediction is the cell's mean cost
        (blended with the patient's own cost when the target is above what cells reach).
        """
        cells, totals = np.empty(len(cost), dtype=np.int32), np.empty(len(cost))
        raw_total, out = np.empty(cost.shape[1]), np.empty(cost.shape)
        kernels.risk_cells(
            cost, np.arange(len(cost)), np.ones(len(cost)), np.ones(cost.shape[1]), alive,
            self.eta, self.sigma, self.edges, self.cell_means, self.blend,
            cells, raw_total, totals, False, np.ones(cost.shape[1]), out,
        )  # fmt: skip
        return out

    @property
    def blended(self) -> bool:
        """Whether the scores blend in the patients' own cost (only a fit with cells does)."""
        return len(self.edges) > 0 and self.blend > 0

    @property
    def pass_through(self) -> float:
        """Average share of a patient's extra true cost the score pays back: its R^2 (slope on the truth)."""
        return self.achieved[-1] if self.achieved else self.target
