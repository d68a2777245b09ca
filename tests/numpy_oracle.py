"""The numpy formulation of the patient pass, kept as the oracle of the compiled passes.

``NumpyModel`` is :class:`~vbpsim.model.VBPModel` with the patient-side methods as they
were before they were compiled (code at commit 1bcaa63, copied verbatim into the mixins
of ``oracle_*.py``). ``assert_same_run`` requires two models to agree on every recorded
number, the patients' and providers' state, within a relative 1e-12.
"""

from __future__ import annotations

import numpy as np
from oracle_accounts import AccountsOracle
from oracle_delivery import DeliveryOracle
from oracle_health import HealthOracle

from vbpsim.model import VBPModel

RTOL = 1e-12


class NumpyModel(HealthOracle, DeliveryOracle, AccountsOracle, VBPModel):
    """The model stepped by the numpy patient pass (the compiled passes' oracle)."""


def close(a: np.ndarray | float, b: np.ndarray | float, rtol: float = RTOL, scale: float = 1.0) -> bool:
    """Equal within ``rtol`` of the larger magnitude, of the array's largest value and of ``scale``.

    Sums in another order differ in their last bits, and an account that is the difference
    of two large totals (overtime = cost - delivered cost) keeps only the totals' precision,
    so records are compared at the scale of their step's largest figure.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    finite = np.abs(a[np.isfinite(a)])
    scale = max(float(finite.max()) if finite.size else 0.0, scale, 1.0)
    both_nan = np.isnan(a) & np.isnan(b)
    return bool(np.all(both_nan | (np.abs(a - b) <= rtol * np.maximum(np.maximum(np.abs(a), np.abs(b)), scale))))


def differences(compiled: VBPModel, oracle: VBPModel, rtol: float = RTOL) -> list[str]:
    """What differs between two models (records, patients, providers): empty when they agree."""
    out: list[str] = []
    rows_a = compiled.history_records + compiled.records
    rows_b = oracle.history_records + oracle.records
    if len(rows_a) != len(rows_b):
        return [f"{len(rows_a)} vs {len(rows_b)} records"]
    for i, (ra, rb) in enumerate(zip(rows_a, rows_b, strict=True)):
        if ra.keys() != rb.keys():
            out.append(f"step {i}: keys differ {sorted(set(ra) ^ set(rb))}")
            continue
        row_scale = max((abs(v) for v in ra.values() if np.isfinite(v)), default=1.0)
        bad = [k for k in ra if not close(ra[k], rb[k], rtol, row_scale)]
        if bad:
            out.append(f"step {i}: " + ", ".join(f"{k} {ra[k]!r} vs {rb[k]!r}" for k in bad[:6]))
            break
    pa, pb = compiled.population, oracle.population
    for name in ("state", "age", "conditions", "provider", "experience"):
        if not close(getattr(pa, name), getattr(pb, name), rtol):
            out.append(f"population.{name}")
    for name in ("prevention_stock", "pending_duplicates", "year_to_date_cost", "steer_weight", "unprofitable"):
        if not close(getattr(compiled, name), getattr(oracle, name), rtol):
            out.append(name)
    for name in ("intensity", "effort", "selection", "shift", "need_tilt", "admission"):
        a, b = getattr(compiled.providers.decision, name), getattr(oracle.providers.decision, name)
        if not close(a, b, rtol):
            out.append(f"decision.{name}")
    if not close(compiled.providers.reserves, oracle.providers.reserves, rtol):
        out.append("providers.reserves")
    for name, value in compiled.reported_outcomes.items():  # the outcomes reported with next step's claims
        if not close(value, oracle.reported_outcomes[name], rtol):
            out.append(f"reported_outcomes.{name}")
    for name in ("handoff_belief", "failure_units_belief", "admission_belief", "acs_belief", "unpriced_band"):
        if not close(getattr(compiled, name), getattr(oracle, name), rtol):
            out.append(name)
    for name, value in compiled.patient_tally.items():
        if not close(value, oracle.patient_tally[name], rtol):
            out.append(f"patient_tally.{name}")
    return out
