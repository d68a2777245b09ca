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

N_CELLS = 200
FIT_SAMPLE = 200_000  # the score's R^2 is carried by few costly patients: fit on many


def r_squared(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Squared correlation of a prediction with the truth (0 for a constant)."""
    if len(truth) < 2 or np.ptp(prediction) == 0 or np.ptp(truth) == 0:
        return 0.0
    return float(np.corrcoef(prediction, truth)[0, 1] ** 2)


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

    def _signal(self, total: np.ndarray, index: np.ndarray, sigma: float) -> np.ndarray:
        return np.log(np.maximum(total, 1e-12)) + sigma * self.eta[index]

    def _cells(self, signal: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cell edges on the signal and each cell's mean cost per discipline."""
        edges = np.quantile(signal, np.linspace(0, 1, N_CELLS + 1)[1:-1])
        cell = np.searchsorted(edges, signal)
        counts = np.maximum(np.bincount(cell, minlength=N_CELLS), 1)
        means = np.stack(
            [np.bincount(cell, weights=cost[:, d], minlength=N_CELLS) / counts for d in range(cost.shape[1])],
            axis=1,
        )
        return edges, means

    def _predict(self, signal: np.ndarray, edges: np.ndarray, means: np.ndarray) -> np.ndarray:
        return means[np.searchsorted(edges, signal)]

    def estimate(self, cost: np.ndarray, alive: np.ndarray) -> None:
        """Fit the cells and the signal noise so the score's R^2 on the living hits the target."""
        living = np.flatnonzero(alive)
        if self.target <= 0 or len(living) < 2:
            self.cell_means = cost[living].mean(axis=0, keepdims=True) if len(living) else np.zeros((1, cost.shape[1]))
            self.edges = np.zeros(0)
            self.achieved.append(0.0)
            return
        sample = living
        if len(living) > FIT_SAMPLE:
            sample = np.sort(self.fit_rng.choice(living, FIT_SAMPLE, replace=False))
        c = cost[sample]
        total = c.sum(axis=1)

        def fitted_r2(sigma: float) -> float:
            signal = self._signal(total, sample, sigma)
            edges, means = self._cells(signal, c)
            return r_squared(self._predict(signal, edges, means).sum(axis=1), total)

        ceiling = fitted_r2(0.0)
        self.blend = 0.0
        if self.target >= ceiling:
            self.sigma = 0.0
            if ceiling < 1.0:  # blend with the true cost: R^2 rises monotonically to 1
                signal = self._signal(total, sample, 0.0)
                cells = self._predict(signal, *self._cells(signal, c)).sum(axis=1)
                lo, hi = 0.0, 1.0
                for _ in range(30):
                    mid = (lo + hi) / 2
                    if r_squared(mid * total + (1 - mid) * cells, total) < self.target:
                        lo = mid
                    else:
                        hi = mid
                self.blend = (lo + hi) / 2
        else:
            lo, hi = 0.0, 1.0
            while fitted_r2(hi) > self.target and hi < 1e3:
                lo, hi = hi, hi * 2
            for _ in range(30):
                mid = (lo + hi) / 2
                if fitted_r2(mid) > self.target:
                    lo = mid
                else:
                    hi = mid
            self.sigma = (lo + hi) / 2
        full_total = cost[living].sum(axis=1)
        self.edges, self.cell_means = self._cells(self._signal(full_total, living, self.sigma), cost[living])
        self.achieved.append(r_squared(self.scores(cost, alive).sum(axis=1)[living], full_total))

    def scores(self, cost: np.ndarray, alive: np.ndarray) -> np.ndarray:
        """Predicted cost per patient and discipline (0 for the dead), before calibration to totals."""
        if len(self.edges) == 0:
            predicted = np.broadcast_to(self.cell_means[0], cost.shape)
        else:
            total = cost.sum(axis=1)
            signal = self._signal(total, np.arange(len(total)), self.sigma)
            predicted = self._predict(signal, self.edges, self.cell_means)
            if self.blend > 0:
                predicted = self.blend * cost + (1 - self.blend) * predicted
        return np.where(alive[:, None], predicted, 0.0)

    @property
    def pass_through(self) -> float:
        """Average share of a patient's extra true cost the score pays back: its R^2 (slope on the truth)."""
        return self.achieved[-1] if self.achieved else self.target
