"""A session's model: one contract, or two (A/B) on the same population, stepping together.

Mesa's SolaraViz steps, plays and resets one ``mesa.Model``; :class:`AppModel` is that
model. It holds one :class:`~vbpsim.model.VBPModel` per arm, built by
:func:`~vbpsim.app.settings.build_arms` on the same scenario and seed and brought to the
end of the status-quo history (FFS by default), so the page starts at the switch to the
contract under study. In A/B mode both arms fork from that one history and draw the same
random numbers (common random numbers), so every difference between them is the
contracts' doing. Each browser session
builds its own AppModel (see :mod:`vbpsim.app.page`), so one student's steps never show
up in another's tab.

The functions below turn an arm's per-step records into what the views draw: rolling
one-year value dimensions, per-capita money and health, and per-provider panels.
"""

from __future__ import annotations

from typing import Any

import mesa
import numpy as np
import pandas as pd

from ..experiments import Result, result_of
from ..metrics import DIMENSIONS
from ..model import VBPModel
from ..parameters import DISCIPLINES
from .settings import Settings, build_arms, label_of


class SettingsBox:
    """The settings a session's Reset rebuilds from; the control panel updates it in place."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.value = settings or Settings()


class AppModel(mesa.Model):
    """One or two vbpsim models (arms A and B) stepping together."""

    def __init__(self, settings: Settings | SettingsBox | None = None) -> None:
        super().__init__(rng=0)
        if isinstance(settings, SettingsBox):
            settings = settings.value
        self.settings = settings or Settings()
        self.arms: dict[str, VBPModel] = build_arms(self.settings)
        self.labels = {arm: label_of(self.settings, arm) for arm in self.arms}

    @property
    def n_steps(self) -> int:
        """Steps under the contract (after the status-quo history)."""
        return max(m.n_steps - m.history_steps for m in self.arms.values())

    @property
    def step_index(self) -> int:
        """Steps taken under the contract so far (the arms step together)."""
        return min(m.step_index - m.history_steps for m in self.arms.values())

    def step(self) -> None:
        """Advance every arm by one step; stop at the end of the horizon."""
        for model in self.arms.values():
            if model.step_index < model.n_steps:
                model.step()
        self.running = self.step_index < self.n_steps

    def frames(self) -> dict[str, pd.DataFrame]:
        """The per-step records of each arm under its contract (empty before the first step)."""
        if self.step_index <= 0:
            return {arm: pd.DataFrame() for arm in self.arms}
        return {arm: pd.DataFrame.from_records(m.records) for arm, m in self.arms.items()}

    def results(self) -> dict[str, Result] | None:
        """Summaries of each arm so far, or None before the first step."""
        if self.step_index <= 0:
            return None
        return {arm: result_of(m) for arm, m in self.arms.items()}


def rolling_dimensions(ts: pd.DataFrame, initial_patients: int, steps_per_year: int) -> pd.DataFrame:
    """The five value dimensions over the last year (or less) at every step.

    The same formulas as :func:`vbpsim.metrics.value_dimensions`, on a trailing window of
    ``steps_per_year`` steps, so the last row equals ``value_dimensions`` of the last year.
    """
    window = min(steps_per_year, max(len(ts), 1))

    def roll(column: str) -> np.ndarray:
        return ts[column].rolling(window, min_periods=1).sum().to_numpy()

    steps = np.minimum(np.arange(1, len(ts) + 1), window)
    capita_years = initial_patients * steps / steps_per_year
    delivered = roll("guideline_cost") - roll("shortfall_cost") + roll("low_value_cost")
    preventable = roll("stroke_hazard_untreated") - roll("stroke_hazard_guideline")
    prevented = roll("stroke_hazard_untreated") - roll("stroke_hazard")
    handoffs = roll("handoffs")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "quality": roll("qalys") / capita_years,
            "cost_consciousness": 1.0 - np.where(delivered > 0, roll("low_value_cost") / delivered, 0.0),
            "coordination": 1.0 - np.where(handoffs > 0, roll("handoff_failures") / handoffs, 0.0),
            "innovation": roll("innovation_nmb") / capita_years if "innovation_nmb" in ts else 0.0 * capita_years,
            "prevention": np.where(preventable > 0, prevented / preventable, 1.0),
        }
    frame = pd.DataFrame(out, columns=list(DIMENSIONS))
    frame.insert(0, "month", np.arange(1, len(ts) + 1) * 12 / steps_per_year)
    return frame


def per_capita_year(ts: pd.DataFrame, column: str, initial_patients: int, steps_per_year: int) -> np.ndarray:
    """A per-step total as a rate per initial capita per year."""
    return ts[column].to_numpy() * steps_per_year / initial_patients


def provider_panels(model: VBPModel) -> pd.DataFrame:
    """One row per provider: discipline, contracting group, panel size, panel risk, margin, efforts."""
    table, pop = model.providers, model.population
    alive = pop.alive
    n = table.n
    size = np.zeros(n)
    risk_sum = np.zeros(n)
    for d in range(len(DISCIPLINES)):
        ids = pop.provider[alive, d]
        size += np.bincount(ids, minlength=n) * (table.discipline == d)
        risk_sum += np.bincount(ids, weights=pop.frailty[alive], minlength=n) * (table.discipline == d)
    cost = np.maximum(model.cost_total, 1e-9)
    decision = table.decision
    return pd.DataFrame(
        {
            "provider": np.arange(n),
            "discipline": [DISCIPLINES[d] for d in table.discipline],
            "group": table.payee,
            "group_size": model.group_size[table.payee],
            "panel": size,
            "panel_risk": np.divide(risk_sum, size, out=np.ones(n), where=size > 0),
            "margin": np.where(model.cost_total > 0, (model.income_total - model.cost_total) / cost, 0.0),
            "reserves": table.reserves,
            "intensity": decision.intensity,
            "effort_measured": decision.effort[:, 0],
            "effort_unmeasured": decision.effort[:, 1],
        }
    )


def differences(results: dict[str, Result], indicators: tuple[str, ...]) -> pd.DataFrame:
    """Value dimensions and indicators of arms A and B with the difference B - A."""
    rows: list[dict[str, Any]] = []
    a, b = results["A"], results["B"]
    for name in DIMENSIONS:
        rows.append({"measure": name, "A": a.value_dimensions[name], "B": b.value_dimensions[name]})
    for name in indicators:
        rows.append({"measure": name, "A": a.indicators[name], "B": b.indicators[name]})
    frame = pd.DataFrame(rows)
    frame["B - A"] = frame["B"] - frame["A"]
    return frame
