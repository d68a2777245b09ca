"""Which swept parameter drives which outcome: sensitivity indices of a finished sweep.

Indices are computed per arm and per outcome (value dimension or indicator) from the runs
of a sweep folder, on the mean over replications at each design point (with the default
``common`` seed policy every point shares its seeds, so the noise between points is small).
The method follows the sweep's design (SALib):

* ``sobol`` (Saltelli sampling): first-order ``S1`` and total ``ST`` Sobol' indices with
  bootstrap confidence intervals; a parameter the outcome does not depend on has ``ST`` near 0.
* ``morris`` (trajectories): elementary effects ``mu_star`` (mean absolute effect of moving a
  parameter across its whole range, in the outcome's units) and ``sigma`` (interactions,
  non-linearity), with a bootstrap interval on ``mu_star``.
* ``grid``: first-order ``S1`` and total ``ST`` indices from the variance decomposition of
  the full factorial (exact for the grid; no interval).
* ``lhs``: RBD-FAST first-order indices ``S1`` with a bootstrap interval.

Parameters are on their unit range (0 = low end or first value, 1 = high end or last value),
so effects are comparable across parameters. Parameters that do not apply to an arm are
listed with ``applies = False``: their indices measure only noise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import ParameterError
from .metrics import DIMENSIONS
from .sweep import DESIGN_FILE, load_results, read_manifest

#: Outcomes analysed by default: the five value dimensions and three key indicators.
KEY_OUTPUTS = (*DIMENSIONS, "intensity_ratio", "spending_per_capita", "net_monetary_benefit")
#: The index that ranks parameters under each method.
RANK_BY = {"sobol": "ST", "morris": "mu_star", "rbd_fast": "S1", "anova": "ST"}
METHOD_OF_DESIGN = {"sobol": "sobol", "morris": "morris", "lhs": "rbd_fast", "grid": "anova"}


def point_means(out: str | os.PathLike[str], outputs: list[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Successful runs averaged over replications: one row per arm and design point."""
    manifest = read_manifest(out)
    runs = load_results(out)
    missing = [o for o in outputs if o not in runs.columns]
    if missing:
        known = [c for c in runs.columns if runs[c].dtype.kind == "f" and c not in ("run_seconds", "cpu_seconds")]
        raise ParameterError("outputs", missing, f"outputs of this sweep: {known}")
    ok = runs[runs["status"] == "ok"]
    means = ok.groupby(["arm", "point"], sort=True)[outputs].mean().reset_index()
    return means, manifest


def analyse(
    out: str | os.PathLike[str],
    outputs: list[str] | None = None,
    conf_level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Sensitivity indices of every parameter, per arm and outcome, ranked within each.

    Columns: arm, output, parameter, applies, method, the method's indices with their
    confidence half-widths (``*_conf``), and ``rank`` (1 = most influential).
    """
    outputs = list(outputs or KEY_OUTPUTS)
    means, manifest = point_means(out, outputs)
    design = pd.read_parquet(Path(out) / DESIGN_FILE)
    params = list(manifest["parameters"])
    if not params:
        raise ParameterError("DIR", str(out), "a sweep with swept parameters (this one sweeps none)")
    kind = manifest["design"]["kind"]
    method = METHOD_OF_DESIGN[kind]
    problem = {"num_vars": len(params), "names": params, "bounds": [[0.0, 1.0]] * len(params)}
    X = design[[f"u:{p}" for p in params]].to_numpy(dtype=float)
    applies = _applies(manifest)
    rows = []
    for arm in manifest["arms"]:
        table = means[means["arm"] == arm].set_index("point").reindex(design["point"])
        lost = table[outputs].isna().any(axis=1)
        if lost.any():
            raise ParameterError(
                "DIR",
                str(out),
                f"every design point with a successful run in arm '{arm}' ({int(lost.sum())} of {len(table)} "
                "points have none); finish the sweep with --resume (--retry-failed) first",
            )
        for output in outputs:
            y = table[output].to_numpy(dtype=float)
            indices = _indices(method, problem, X, y, manifest["design"], conf_level, seed)
            for i, name in enumerate(params):
                row = {"arm": arm, "output": output, "parameter": name, "applies": name in applies.get(arm, params)}
                row["method"] = method
                row.update({k: float(v[i]) for k, v in indices.items()})
                rows.append(row)
    result = pd.DataFrame(rows)
    key = RANK_BY[method]
    result["rank"] = (
        result.groupby(["arm", "output"])[key].rank(ascending=False, method="min", na_option="bottom").astype(int)
    )
    return result.sort_values(["arm", "output", "rank"], ignore_index=True)


def _applies(manifest: dict[str, Any]) -> dict[str, list[str]]:
    """Arm -> parameters that reach it (from the spec identity stored with the sweep)."""
    out: dict[str, list[str]] = {}
    for p in manifest.get("identity", {}).get("parameters", []):
        for arm in p.get("keys", {}):
            out.setdefault(arm, []).append(p["path"])
    return out


def _indices(
    method: str,
    problem: dict[str, Any],
    X: np.ndarray,
    y: np.ndarray,
    design: dict[str, Any],
    conf_level: float,
    seed: int,
) -> dict[str, np.ndarray]:
    d = problem["num_vars"]
    if np.allclose(y, y[0], rtol=0, atol=1e-12 * max(1.0, abs(float(y[0])))):
        zero = np.zeros(d)  # a constant outcome depends on nothing
        if method == "sobol":
            return {"S1": zero, "S1_conf": zero, "ST": zero, "ST_conf": zero}
        if method == "morris":
            return {"mu_star": zero, "mu_star_conf": zero, "sigma": zero, "mu": zero}
        if method == "anova":
            return {"S1": zero, "ST": zero}
        return {"S1": zero, "S1_conf": zero}
    if method == "sobol":
        from SALib.analyze import sobol

        si = sobol.analyze(problem, y, calc_second_order=design["second_order"], conf_level=conf_level, seed=seed)
        return {k: np.asarray(si[k]) for k in ("S1", "S1_conf", "ST", "ST_conf")}
    if method == "morris":
        from SALib.analyze import morris

        si = morris.analyze(problem, X, y, num_levels=design["levels"], conf_level=conf_level, seed=seed)
        return {k: np.asarray(si[k], dtype=float) for k in ("mu_star", "mu_star_conf", "sigma", "mu")}
    if method == "anova":
        return _anova(X, y)
    from SALib.analyze import rbd_fast

    si = rbd_fast.analyze(problem, X, y, conf_level=conf_level, seed=seed)
    return {k: np.asarray(si[k], dtype=float) for k in ("S1", "S1_conf")}


def _anova(X: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """First-order and total indices of a full factorial: Var(E[Y|Xi]) and E[Var(Y|X~i)] over Var(Y)."""
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]).assign(y=y)
    total = float(np.var(y))
    s1, st = [], []
    for i in range(X.shape[1]):
        col = f"x{i}"
        others = [c for c in frame.columns if c not in (col, "y")]
        s1.append(float(np.var(frame.groupby(col)["y"].mean())) / total)
        within = frame.groupby(others)["y"].var(ddof=0) if others else pd.Series([total])
        st.append(float(within.mean()) / total)
    return {"S1": np.array(s1), "ST": np.array(st)}


def plot(table: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Ranked bar charts with confidence intervals: one panel per outcome, arms as bar groups."""
    from matplotlib.figure import Figure

    method = str(table["method"].iloc[0])
    key = RANK_BY[method]
    outputs = list(dict.fromkeys(table["output"]))
    arms = list(dict.fromkeys(table["arm"]))
    params = list(dict.fromkeys(table["parameter"]))
    cols = min(3, len(outputs))
    rows = -(-len(outputs) // cols)
    fig = Figure(figsize=(4.2 * cols, 0.5 + (0.35 * len(params) * len(arms) + 1.2) * rows), layout="constrained")
    height = 0.8 / len(arms)
    for k, output in enumerate(outputs):
        ax = fig.add_subplot(rows, cols, k + 1)
        part = table[table["output"] == output]
        order = part.groupby("parameter")[key].max().sort_values().index.tolist()
        for j, arm in enumerate(arms):
            sub = part[part["arm"] == arm].set_index("parameter").reindex(order)
            conf = sub[f"{key}_conf"].to_numpy() if f"{key}_conf" in sub else None
            ax.barh(
                np.arange(len(order)) + (j - (len(arms) - 1) / 2) * height,
                sub[key].to_numpy(),
                height=height,
                xerr=conf,
                label=arm,
                capsize=2,
            )
        ax.set_yticks(np.arange(len(order)), order, fontsize=7)
        ax.set_title(output.replace("_", " "), fontsize=9)
        ax.set_xlabel(key, fontsize=8)
        ax.axvline(0, color="0.5", lw=0.5)
    fig.axes[0].legend(fontsize=7, title="arm", title_fontsize=7)
    fig.suptitle(f"Sensitivity ({method}): {key} with {int(100 * 0.95)}% intervals", fontsize=10)
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path
