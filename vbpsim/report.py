"""A report of a finished sweep: each outcome against each swept parameter, per arm, and the arms side by side.

Response plots show, for every swept parameter, the mean of each outcome over all runs at
that parameter's value (averaging over the other parameters and the replications) with a
95% confidence band, one line per arm; a continuous parameter sampled at many values is
binned into quantile bins. ``arms.png`` compares the arms on every outcome (mean and 95%
interval over all runs). ``report.md`` links the figures and lists failed runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .sensitivity import KEY_OUTPUTS
from .sweep import load_results, read_manifest

MAX_LEVELS = 12
BINS = 8
Z = 1.96


def mean_ci(values: pd.Series) -> tuple[float, float, float]:
    """Mean with a normal 95% interval (the interval is the mean itself for one value)."""
    x = values.dropna().to_numpy(dtype=float)
    if len(x) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    half = Z * float(x.std(ddof=1)) / np.sqrt(len(x)) if len(x) > 1 else 0.0
    return mean, mean - half, mean + half


def response(runs: pd.DataFrame, parameter: str, output: str) -> pd.DataFrame:
    """Mean and 95% band of ``output`` by arm and by value (or quantile bin) of ``parameter``."""
    data = runs[["arm", parameter, output]].dropna(subset=[parameter])
    x = data[parameter]
    numeric = pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x)
    if numeric and x.nunique() > MAX_LEVELS:
        bins = pd.qcut(x, BINS, duplicates="drop")
        key = bins.astype(str)
        centre = x.groupby(bins, observed=True).transform("mean")
    else:
        key = x.astype(str)
        centre = x if numeric else key
    data = data.assign(_key=key.to_numpy(), _x=np.asarray(centre))
    rows = []
    for (arm, _), part in data.groupby(["arm", "_key"], sort=False, observed=True):
        mean, low, high = mean_ci(part[output])
        rows.append({"arm": arm, "x": part["_x"].iloc[0], "mean": mean, "low": low, "high": high, "n": len(part)})
    out = pd.DataFrame(rows)
    return out.sort_values(["arm", "x"], ignore_index=True) if numeric else out


def build_report(out: str | os.PathLike[str], outputs: list[str] | None = None) -> Path:
    """Write the figures and ``report.md`` into ``DIR/report``; return the path of ``report.md``."""
    from matplotlib.figure import Figure

    folder = Path(out)
    manifest = read_manifest(folder)
    runs = load_results(folder)
    ok = runs[runs["status"] == "ok"]
    outputs = [o for o in (outputs or KEY_OUTPUTS) if o in runs.columns]
    target = folder / "report"
    target.mkdir(exist_ok=True)
    arms = list(manifest["arms"])
    params = [p for p in manifest["parameters"] if p in ok.columns]

    figures: list[tuple[str, str]] = []
    for parameter in params:
        cols = min(3, len(outputs))
        rows = -(-len(outputs) // cols)
        fig = Figure(figsize=(4.2 * cols, 3.0 * rows), layout="constrained")
        for k, output in enumerate(outputs):
            ax = fig.add_subplot(rows, cols, k + 1)
            curve = response(ok, parameter, output)
            for arm in arms:
                part = curve[curve["arm"] == arm]
                if part.empty:
                    continue
                xs = part["x"].to_numpy()
                ax.plot(xs, part["mean"], marker="o", ms=3, label=arm)
                ax.fill_between(xs, part["low"].to_numpy(float), part["high"].to_numpy(float), alpha=0.2)
            ax.set_title(output.replace("_", " "), fontsize=9)
            ax.set_xlabel(parameter, fontsize=8)
            ax.tick_params(labelsize=7)
        fig.axes[0].legend(fontsize=7, title="arm", title_fontsize=7)
        fig.suptitle(f"Outcomes against {parameter} (mean over runs, 95% band)", fontsize=10)
        name = f"response_{_slug(parameter)}.png"
        fig.savefig(target / name, dpi=100)
        figures.append((f"Outcomes against `{parameter}`", name))

    summary = arm_summary(ok, arms, outputs)
    cols = min(3, len(outputs))
    rows = -(-len(outputs) // cols)
    fig = Figure(figsize=(4.2 * cols, 2.8 * rows), layout="constrained")
    for k, output in enumerate(outputs):
        ax = fig.add_subplot(rows, cols, k + 1)
        part = summary[summary["output"] == output]
        err = np.vstack([part["mean"] - part["low"], part["high"] - part["mean"]])
        ax.bar(part["arm"], part["mean"], yerr=err, capsize=3, color=[f"C{i}" for i in range(len(part))])
        ax.set_title(output.replace("_", " "), fontsize=9)
        ax.tick_params(labelsize=7)
    fig.suptitle("Arms side by side (mean over all runs, 95% interval)", fontsize=10)
    fig.savefig(target / "arms.png", dpi=100)
    summary.to_csv(target / "arms.csv", index=False)

    text = _markdown(manifest, runs, summary, figures, outputs)
    (target / "report.md").write_text(text, encoding="utf-8")
    return target / "report.md"


def arm_summary(ok: pd.DataFrame, arms: list[str], outputs: list[str]) -> pd.DataFrame:
    """Mean and 95% interval of each outcome by arm, over all successful runs."""
    rows = []
    for output in outputs:
        for arm in arms:
            mean, low, high = mean_ci(ok.loc[ok["arm"] == arm, output])
            rows.append({"output": output, "arm": arm, "mean": mean, "low": low, "high": high})
    return pd.DataFrame(rows)


def _markdown(
    manifest: dict[str, Any],
    runs: pd.DataFrame,
    summary: pd.DataFrame,
    figures: list[tuple[str, str]],
    outputs: list[str],
) -> str:
    n_ok = int((runs["status"] == "ok").sum())
    failed = runs[runs["status"] != "ok"]
    design = manifest["design"]
    lines = [
        f"# Sweep report: {manifest['name']}",
        "",
        f"- Runs: {len(runs)} of {manifest['n_runs']} finished, {n_ok} ok, {len(failed)} failed.",
        f"- Design: {design['kind']}, {manifest['n_points']} points x {manifest['replications']} replications "
        f"x {len(manifest['arms'])} arms ({', '.join(manifest['arms'])}).",
        f"- Parameters: {', '.join(f'`{p}`' for p in manifest['parameters']) or 'none'}.",
        f"- Spec fingerprint `{manifest['fingerprint']}`, vbpsim {manifest.get('vbpsim_version', '?')}.",
        "",
        "## Arms side by side",
        "",
        "![arms](arms.png)",
        "",
        "| outcome | " + " | ".join(manifest["arms"]) + " |",
        "|---|" + "---|" * len(manifest["arms"]),
    ]
    for output in outputs:
        part = summary[summary["output"] == output].set_index("arm")
        cells = [
            f"{part.loc[a, 'mean']:.4g} [{part.loc[a, 'low']:.4g}, {part.loc[a, 'high']:.4g}]"
            if a in part.index
            else "n/a"
            for a in manifest["arms"]
        ]
        lines.append(f"| {output} | " + " | ".join(cells) + " |")
    lines += ["", "Mean over all successful runs of each arm with a 95% interval (data: `arms.csv`).", ""]
    if figures:
        lines += ["## Outcomes against each swept parameter", ""]
        for title, name in figures:
            lines += [f"### {title}", "", f"![{title}]({name})", ""]
    if len(failed):
        lines += ["## Failed runs", "", "| run | error |", "|---|---|"]
        for _, row in failed.head(50).iterrows():
            lines.append(f"| {row['run_id']} | {str(row['error']).replace('|', '/')} |")
        if len(failed) > 50:
            lines.append(f"| ... | {len(failed) - 50} more |")
        lines.append("")
    return "\n".join(lines)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)
