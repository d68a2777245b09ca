"""Clinical constants and care functions shared by patients, providers and the compiled passes.

The lowest module of the model: it imports only numpy and the parameter names, so imports
run one way (care <- population <- agents <- model) with no circle. Patients' dynamics
(:mod:`vbpsim.population`, :mod:`vbpsim.kernels`) and providers' view of their patients
(:mod:`vbpsim.agents`) both read the same guideline need, benefit curve and hand-off
constants from here.
"""

from __future__ import annotations

import numpy as np

from .parameters import DISCIPLINES, EFFORT_TASKS, HEALTH_STATES, ClinicalParams

HEALTHY, CHRONIC, ACUTE, POST_ACUTE, DISABLED, DEAD = range(len(HEALTH_STATES))
GP, HOSPITAL, REHAB, NURSING = range(len(DISCIPLINES))
MEASURED, UNMEASURED, COORDINATION, PREVENTION = range(len(EFFORT_TASKS))

# Guideline need in service units per month, by health state and discipline; the chronic
# row is per condition (plus the healthy check-up). Units priced by ClinicalParams.unit_cost.
NEED_PER_MONTH = np.array(
    [
        #  gp    hospital rehab nursing
        [0.15, 0.00, 0.0, 0.0],  # healthy
        [0.20, 0.01, 0.0, 0.0],  # chronic, per condition
        [0.00, 8.00, 0.0, 0.0],  # acute stroke (admission)
        [0.30, 0.00, 8.0, 4.0],  # post-acute
        [0.30, 0.00, 0.0, 20.0],  # disabled
        [0.00, 0.00, 0.0, 0.0],  # dead
    ]
)
# Which discipline's care drives health in each state (for QoL and transitions).
LEAD_DISCIPLINE = np.array([GP, GP, HOSPITAL, REHAB, NURSING, GP])

QUALITY_STANDARD = 0.9  # measured indicator: share of patients getting >= 90% of guideline care
HANDOFF_FAILURE = 0.2  # share of hand-offs that fail without coordination effort
DUPLICATE_SHARE = 0.25  # duplicated work after a failed hand-off, share of a month's need
READMISSION_AFTER_FAILURE = 0.1  # chance that a failed hand-off ends in readmission
MAX_NEED_TILT = 0.5  # [need_classes] largest relative difference in care between need classes


def qol_by_state(clinical: ClinicalParams) -> np.ndarray:
    """Quality of life at guideline care indexed by health state (0 for the dead)."""
    return np.array([clinical.qol[s] for s in HEALTH_STATES[:-1]] + [0.0])


def care_benefit(ratio: np.ndarray, overtreatment_harm: float) -> np.ndarray:
    """Health benefit of care at ``ratio`` x the patient-optimal intensity, 1 at the optimum.

    Concave: too little care harms health quadratically (b(0)=0); beyond the optimum care
    adds cost and a little harm (b(x)=1-h(x-1)^2), so the patient optimum is exactly 1.
    """
    below = ratio * (2.0 - ratio)
    above = 1.0 - overtreatment_harm * (ratio - 1.0) ** 2
    return np.where(ratio <= 1.0, np.maximum(below, 0.0), above)


def task_value(effort: np.ndarray) -> np.ndarray:
    """Concave return to effort on a task, 0 at no effort and 1 at full effort."""
    e = np.clip(effort, 0.0, 1.0)
    return e * (2.0 - e)


def care_cost(units: np.ndarray, capacity: np.ndarray, unit_cost: np.ndarray, premium: float) -> np.ndarray:
    """Cost of delivering ``units``: unit cost, plus an overtime premium beyond capacity."""
    return unit_cost * (units + premium * np.maximum(units - capacity, 0.0))
