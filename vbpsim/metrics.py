"""The five value dimensions of Cattel et al. (2018, Section 2) and behaviour indicators.

Each dimension is one number per run, higher is better, computed from the same
population and seeds under every scheme so schemes compare fairly:

* ``quality``: QALYs per initial capita per year (health, including the QoL cost of
  too little or too much care).
* ``cost_consciousness``: 1 minus the low-value share of care delivered (care beyond the
  patient optimum and duplicated work), in [0, 1].
* ``coordination``: 1 minus the share of hand-offs in the care chain that fail (a failed
  hand-off duplicates work and may cause a readmission), in [0, 1].
* ``innovation``: net monetary benefit of adopted innovations, EUR per capita per year
  (0 while no innovations arrive in the scenario).
* ``prevention``: share of the care-preventable stroke hazard that care actually
  prevented, relative to guideline care (1 = guideline management of risk factors).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .parameters import DISCIPLINES

DIMENSIONS: tuple[str, ...] = ("quality", "cost_consciousness", "coordination", "innovation", "prevention")

#: Parts of the NMB accounts outside the five dimensions: cost saved by withholding care,
#: the overtime premium, and what the event valuations do not capture (chance, selection,
#: the approximations of :meth:`vbpsim.model.VBPModel.event_values`).
REMAINDER_PARTS: tuple[str, ...] = ("withheld_care", "overtime", "unattributed")

#: Natural-unit indicator of each dimension: (indicator name, unit).
NATURAL_INDICATORS: dict[str, tuple[str, str]] = {
    "quality": ("qalys_per_capita", "QALYs per capita-year"),
    "cost_consciousness": ("low_value_cost_share", "share of care cost beyond its value"),
    "coordination": ("handoff_failure_share", "share of hand-offs that fail"),
    "innovation": ("innovation_value_share", "share of the ideal adoption value realised"),
    "prevention": ("strokes_prevented_per_1000", "strokes averted per 1,000 person-years"),
}


def _ratio(numerator: float, denominator: float, default: float = 0.0) -> float:
    return float(numerator / denominator) if denominator > 0 else default


def value_dimensions(ts: pd.DataFrame, initial_patients: int, years: float) -> dict[str, float]:
    """The five value dimensions from a run's time series."""
    capita_years = initial_patients * years
    delivered = ts.guideline_cost.sum() - ts.shortfall_cost.sum() + ts.low_value_cost.sum()
    preventable = ts.stroke_hazard_untreated.sum() - ts.stroke_hazard_guideline.sum()
    prevented = ts.stroke_hazard_untreated.sum() - ts.stroke_hazard.sum()
    return {
        "quality": _ratio(ts.qalys.sum(), capita_years),
        "cost_consciousness": 1.0 - _ratio(ts.low_value_cost.sum(), delivered),
        "coordination": 1.0 - _ratio(ts.handoff_failures.sum(), ts.handoffs.sum()),
        "innovation": _ratio(ts.innovation_nmb.sum(), capita_years) if "innovation_nmb" in ts else 0.0,
        "prevention": _ratio(prevented, preventable, default=1.0),
    }


def indicators(
    ts: pd.DataFrame,
    initial_patients: int,
    years: float,
    steps_per_year: int,
    provider_income: np.ndarray,
    provider_cost: np.ndarray,
    insolvent_steps: np.ndarray,
    willingness_to_pay: float,
) -> dict[str, float]:
    """Behaviour and money indicators from a run's time series and provider books."""
    capita_years = initial_patients * years
    person_years = ts.alive.sum() / steps_per_year
    guideline = ts.guideline_cost.sum()
    delivered = guideline - ts.shortfall_cost.sum() + ts.low_value_cost.sum()
    spending_pc = _ratio(ts.spending.sum(), capita_years)
    qalys_pc = _ratio(ts.qalys.sum(), capita_years)
    margins = (provider_income - provider_cost) / np.maximum(provider_cost, 1e-9)
    out = {
        "overprovision": _ratio(ts.low_value_cost.sum(), guideline),
        "underprovision": _ratio(ts.shortfall_cost.sum(), guideline),
        "intensity_ratio": _ratio(delivered, guideline, default=1.0),
        "low_value_share": _ratio(ts.low_value_cost.sum(), delivered),
        "measured_quality": float(ts.measured_quality.mean()),
        "true_quality": float(ts.true_quality.mean()),
        "qalys_per_capita": qalys_pc,
        "strokes_per_1000": 1000 * _ratio(ts.strokes.sum(), person_years),
        "deaths": float(ts.deaths.sum()),
        "readmissions": float(ts.readmissions.sum()),
        "spending_per_capita": spending_pc,
        "provider_income": float(provider_income.sum()),
        "provider_cost": float(provider_cost.sum()),
        "provider_margin": _ratio(provider_income.sum() - provider_cost.sum(), provider_income.sum()),
        "margin_sd": float(np.std(margins)),
        "insolvent_providers": float((insolvent_steps > 0).sum()),
        "health_per_1000_eur": _ratio(1000 * qalys_pc, spending_pc),
        "net_monetary_benefit": willingness_to_pay * qalys_pc
        - _ratio(ts.provider_cost.sum() + ts.innovation_upfront.sum(), capita_years),
    }
    for name in DISCIPLINES:
        out[f"intensity_{name}"] = float(ts[f"intensity_{name}"].mean())
        out[f"spending_{name}_per_capita"] = _ratio(ts[f"spending_{name}"].sum(), capita_years)
    out.update(behaviour_indicators(ts, steps_per_year))
    return out


def behaviour_indicators(ts: pd.DataFrame, steps_per_year: int) -> dict[str, float]:
    """Indicators of the perverse and virtuous behaviours that can be read off one run.

    ``risk_selection``: steering of patients in the top quartile of unpriced risk (their
    true expected cost minus what the contract pays for them) minus steering of the bottom
    quartile, per 1,000 patient-years (0 = who is steered does not depend on unpriced risk).
    ``cost_shifting``: share of rehabilitation moved across the border to home care.
    Effort indicators are final-year means over the providers who control them.
    Teaching to the test and free-riding need a counterfactual run: see
    :func:`vbpsim.experiments.teaching_to_test` and :func:`vbpsim.experiments.free_riding`.
    """
    last = ts[ts.year == ts.year.max()]
    high_years = ts.alive_high_risk.sum() / steps_per_year
    low_years = ts.alive_low_risk.sum() / steps_per_year
    steered = ts.steered.sum()
    out = {
        "risk_selection": 1000
        * (_ratio(ts.steered_high_risk.sum(), high_years) - _ratio(ts.steered_low_risk.sum(), low_years)),
        "steered_per_1000": 1000 * _ratio(steered, ts.alive.sum() / steps_per_year),
        "steered_risk_ratio": _ratio(ts.steered_frailty.sum(), steered * ts.mean_frailty.mean(), default=1.0),
        "cost_shifting": _ratio(ts.shifted_cost.sum(), ts.rehab_guideline_cost.sum()),
        "duplicate_share": _ratio(ts.duplicate_cost.sum(), ts.guideline_cost.sum()),
        "unmeasured_quality": float(last.unmeasured_quality.mean()),
        "prevention_stock": float(last.prevention_stock.mean()),
    }
    out.update(admission_indicators(ts, steps_per_year))
    for name in ("measured", "unmeasured", "coordination", "prevention"):
        out[f"effort_{name}"] = float(last[f"effort_{name}"].mean())
    for name in ("selection", "shift"):
        out[f"decision_{name}"] = float(last[f"decision_{name}"].mean())
    return out


def admission_indicators(ts: pd.DataFrame, steps_per_year: int) -> dict[str, float]:
    """Discretionary admissions (issue 12): per 1,000 patient-years, redirected, declined emergencies.

    ``discretionary_admissions_per_1000`` counts planned and ambulatory-care-sensitive (ACS)
    admissions, redirected ones included; ``redirected_high_risk_share`` is the share of
    redirected planned episodes whose patient is in the top quartile of risk (0.25 if
    redirecting ignored risk); ``declined_emergencies`` must be 0 (strokes cannot be declined).
    """
    if "planned_admissions" not in ts:  # a time series written before discretionary admissions
        return {}
    person_years = ts.alive.sum() / steps_per_year
    planned, acs = ts.planned_admissions.sum(), ts.acs_admissions.sum()
    redirected = ts.redirected_planned.sum()
    return {
        "planned_admissions_per_1000": 1000 * _ratio(planned, person_years),
        "acs_admissions_per_1000": 1000 * _ratio(acs, person_years),
        "discretionary_admissions_per_1000": 1000 * _ratio(planned + acs, person_years),
        "acs_hazard_per_1000": 1000 * _ratio(ts.acs_hazard.sum(), person_years),
        "redirected_per_1000": 1000 * _ratio(redirected, person_years),
        "redirected_share": _ratio(redirected, planned),
        "redirected_high_risk_share": _ratio(ts.redirected_high_risk.sum(), redirected),
        "declined_emergencies": float(ts.declined_emergencies.sum()),
        "decision_admission": float(ts[ts.year == ts.year.max()].decision_admission.mean()),
        "decision_redirect": float(ts[ts.year == ts.year.max()].decision_redirect.mean()),
    }


# -- who gains and who loses (issue 12) ---------------------------------------------------------
EQUITY_GROUPS: dict[str, tuple[str, ...]] = {
    "need_class": ("low", "chronic", "high"),
    "risk_quartile": ("Q1", "Q2", "Q3", "Q4"),
    "age_band": ("<50", "50-64", "65-79", "80+"),
    "need_level": ("low", "high"),  # individual need below / above the median (frailty)
}


def equity_table(groups: dict[str, np.ndarray], tally: dict[str, np.ndarray]) -> pd.DataFrame:
    """Outcomes and care by need class, risk quartile and age band; plus top - bottom quartile gaps.

    One row per (``dimension``, ``group``) with the patients of the group (alive when the
    contract began) and their totals over the run (``qalys``, ``guideline_cost``,
    ``delivered_cost``, ``steered``, ``strokes``, ``deaths``), which add up over the groups
    of a dimension to the population's totals; then per-capita values and ``care_ratio``
    (care delivered relative to guideline care). Rows with ``dimension == "gap"`` give the
    top minus the bottom group of each dimension in the per-capita columns (for risk:
    Q4 - Q1, the highest-cost quarter against the lowest).
    """
    columns = ["dimension", "group", "patients", *tally]
    if not groups:
        return pd.DataFrame(columns=columns)
    rows = []
    for dimension, labels in EQUITY_GROUPS.items():
        index = groups[dimension]
        for k, label in enumerate(labels):
            member = index == k
            rows.append(
                {
                    "dimension": dimension,
                    "group": label,
                    "patients": float(member.sum()),
                    **{name: float(values[member].sum()) for name, values in tally.items()},
                }
            )
    table = pd.DataFrame(rows, columns=columns)
    per_capita = [name for name in tally if name not in ("guideline_cost", "delivered_cost")]
    patients = table["patients"].where(table["patients"] > 0)
    for name in per_capita:
        table[f"{name}_per_capita"] = table[name] / patients
    table["care_ratio"] = table["delivered_cost"] / table["guideline_cost"].where(table["guideline_cost"] > 0)
    share_columns = [*(f"{n}_per_capita" for n in per_capita), "care_ratio"]
    gaps = []
    for dimension, labels in EQUITY_GROUPS.items():
        rows_of = table[table["dimension"] == dimension].set_index("group")
        gap = rows_of.loc[labels[-1], share_columns] - rows_of.loc[labels[0], share_columns]
        gaps.append({"dimension": "gap", "group": f"{dimension}: {labels[-1]} - {labels[0]}", **gap.to_dict()})
    return pd.concat([table, pd.DataFrame(gaps)], ignore_index=True)


def nmb_accounts(ts: pd.DataFrame, initial_patients: int, years: float, willingness_to_pay: float) -> dict[str, float]:
    """A run's net monetary benefit split into the five value dimensions and a remainder (EUR per capita-year).

    ``nmb`` = willingness to pay x QALYs - provider cost (care and up-front investments).
    Each dimension is the money value (QALYs at the willingness to pay plus care cost) of
    what it is responsible for: ``quality`` the health lost to care away from the optimum
    (under- and overtreatment, quality effort, shifted rehab's health penalty);
    ``cost_consciousness`` the cost of care beyond the optimum and the extra cost of
    shifted care; ``coordination`` expected readmissions after failed hand-offs and
    duplicated work; ``innovation`` the health adopted innovations add (valued like the
    ideal adoption set, at ``benefit_to_cost`` times the care cost, the model's health value
    of care), minus the care cost they add and their up-front cost; ``prevention`` strokes averted by the
    prevention stock. ``remainder`` is ``nmb`` minus the five (it holds, among others,
    the QALY effect of innovations beyond their valuation above); it is reported in parts
    (``withheld_care``, ``overtime``, ``unattributed``). A scheme's scores are the paired
    differences of these accounts from the reference contract's on the same seed, so the
    five scores and the remainder add up to the NMB difference exactly.
    """
    capita_years = initial_patients * years

    def per_capita(value: float) -> float:
        return _ratio(value, capita_years)

    total = lambda name: float(ts[name].sum())  # noqa: E731
    nmb = per_capita(willingness_to_pay * total("qalys") - total("provider_cost") - total("innovation_upfront"))
    out = {
        "quality": -per_capita(total("acc_care_harm")),
        "cost_consciousness": -per_capita(total("acc_overtreatment") + total("acc_shift_extra")),
        "coordination": -per_capita(total("acc_readmission") + total("acc_duplicates")),
        "innovation": per_capita(
            total("acc_innovation_health") - total("acc_innovation_cost") - total("innovation_upfront")
        ),
        "prevention": per_capita(total("acc_prevented")),
    }
    remainder = nmb - sum(out.values())
    out["withheld_care"] = per_capita(total("acc_withheld"))
    out["overtime"] = -per_capita(total("acc_overtime"))
    out["unattributed"] = remainder - out["withheld_care"] - out["overtime"]
    out["remainder"] = remainder
    out["nmb"] = nmb
    return out


def natural_indicators(ts: pd.DataFrame, steps_per_year: int, innovation_value: np.ndarray) -> dict[str, float]:
    """Each dimension's indicator in its natural unit (see :data:`NATURAL_INDICATORS`)."""
    care_cost = float(ts.provider_cost.sum()) - float(ts.acc_overtime.sum())
    person_years = ts.alive.sum() / steps_per_year
    realised, ideal = float(innovation_value[0]), float(innovation_value[1])
    return {
        "low_value_cost_share": _ratio(float(ts.acc_overtreatment.sum() + ts.acc_shift_extra.sum()), care_cost),
        "handoff_failure_share": _ratio(float(ts.handoff_failures.sum()), float(ts.handoffs.sum())),
        "innovation_value_share": _ratio(realised, ideal, default=1.0),
        "strokes_prevented_per_1000": 1000 * _ratio(float(ts.strokes_prevented.sum()), person_years),
        "expected_readmissions_per_1000": 1000 * _ratio(float(ts.expected_readmissions.sum()), person_years),
    }


def adoption_value(social_value: np.ndarray, adopted: np.ndarray) -> tuple[float, float]:
    """Value realised by a set of adoption decisions and its gap to the ideal set.

    ``social_value`` is each offer's ex-ante net monetary benefit, ``adopted`` which were
    taken. The ideal set adopts exactly the offers with positive value; the gap (<= 0) is
    the value lost by missing good ones plus the value lost by adopting bad ones.
    """
    value = np.asarray(social_value, dtype=float)
    taken = np.asarray(adopted, dtype=bool)
    realised = float(value[taken].sum())
    missed_good = float(value[~taken & (value > 0)].sum())
    adopted_bad = float(-value[taken & (value < 0)].sum())
    return realised, -(missed_good + adopted_bad)
