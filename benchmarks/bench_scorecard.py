"""Scorecard benchmark (a script, not a test): 10 replications on the default world, 8 arms + reference.

Target: under 3 minutes wall time on the project's 2-core machine. Prints wall and CPU time,
the load average at start (the machine is shared), the scorecard table, and writes the
scorecard files (CSV, heatmap, markdown) to ``--out``.

Usage::

    .venv/bin/python benchmarks/bench_scorecard.py                       # 10 seeds, default world
    .venv/bin/python benchmarks/bench_scorecard.py --seeds 3 --out /tmp/card
"""

from __future__ import annotations

import argparse
import os
import resource
import time

from vbpsim.scorecard import run_scorecard

TARGET_S = 180.0


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    """Run and time the scorecard; exit status 0 if it meets the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="scorecard_benchmark")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), _cpu()
    card = run_scorecard(args.scenario, seeds=args.seeds, workers=args.workers)
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    card.write(args.out)
    print(card.scores().round(1).to_string())
    verdict = "PASS" if wall < TARGET_S else "FAIL"
    print(
        f"\nscorecard '{args.scenario}', {args.seeds} seeds, {len(card.schemes())} arms incl. reference, "
        f"{card.years} years after the status-quo history: {wall:.1f} s wall (cpu {cpu:.1f} s, worker "
        f"processes included), load at start {load:.1f}; target < {TARGET_S:.0f} s: {verdict}; files in {args.out}/"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
