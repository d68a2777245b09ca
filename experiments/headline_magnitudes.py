"""Headline magnitudes of the default world: the status quo and each preset's switch against it.

Prints, for the default world's status quo (FFS with fees from published margins), the care
delivered relative to guideline by discipline; then, for every programme preset, the
change in purchaser spending and in resource cost of care against the same world's status
quo continued, contract year by contract year, and the change in QALYs per capita, as a
mean over seeds with a 95% CI (common random numbers: one shared history per seed).

    python experiments/headline_magnitudes.py --seeds 6 --years 6
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy import stats

import vbpsim

PRESETS = ("aqc", "mssp", "kinzigtal", "diabetes_bundle", "stroke_vbp", "cattel_vbp")
DISCIPLINES = ("gp", "hospital", "rehab", "nursing")


def mean_ci(values: np.ndarray) -> str:
    """Mean with a 95% Student-t interval, formatted."""
    values = np.asarray(values, dtype=float)
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0
    return f"{values.mean():+.1f} [{values.mean() - half:+.1f}, {values.mean() + half:+.1f}]"


def main() -> None:
    """Run the study and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--years", type=int, default=6)
    args = parser.parse_args()
    seeds = range(args.seeds)

    started = time.perf_counter()
    sq = [vbpsim.run("status_quo", scenario="default", years=1, seed=s) for s in seeds]
    window = pd.concat([r.history[r.history.year >= -3] for r in sq])
    print("Status quo (default world, last 3 history years): delivered / guideline care")
    for d in DISCIPLINES:
        ratio = (window[f"intensity_{d}"] * window[f"guideline_{d}"]).sum() / window[f"guideline_{d}"].sum()
        print(f"  {d:9s} {ratio:.3f}")

    for preset in PRESETS:
        spend, cost, qaly = [], [], []
        for seed in seeds:
            base, arm = vbpsim.run_arms(["status_quo", None], seed, preset, years=args.years)
            b, a = base.timeseries.groupby("year"), arm.timeseries.groupby("year")
            spend.append(100 * (a.spending.sum() / b.spending.sum() - 1))
            cost.append(100 * (a.provider_cost.sum() / b.provider_cost.sum() - 1))
            qaly.append(100 * (arm.indicators["qalys_per_capita"] / base.indicators["qalys_per_capita"] - 1))
        spend_df, cost_df = pd.DataFrame(spend), pd.DataFrame(cost)
        print(f"\n{preset}: change against its status quo, % (mean [95% CI] over {args.seeds} seeds)")
        print("  year  spending                 resource cost of care")
        for year in spend_df.columns:
            print(f"  {year + 1:4d}  {mean_ci(spend_df[year]):24s} {mean_ci(cost_df[year])}")
        print(f"  QALYs per capita over the {args.years} years: {mean_ci(np.array(qaly))} %")
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
