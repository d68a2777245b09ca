"""Sweep throughput on the default world: 1 worker, 2 local processes, a 2-worker dask LocalCluster.

Prints runs per minute, parallel efficiency (throughput on 2 workers / twice that on 1),
per-run executor overhead (wall time x workers / runs minus the mean time inside a run:
start-up, scheduling, pickling, writing Parquet) and the start-up time of `vbpsim --help`,
`vbpsim schemes` and `vbpsim scenarios` (median of 5).

    .venv/bin/python benchmarks/bench_sweep.py [--runs 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vbpsim.sweep import DaskExecutor, ProcessExecutor, SerialExecutor, load_results, parse_spec, run_sweep


def spec(runs: int):
    return parse_spec(
        {"name": "bench", "scenario": "default", "schemes": ["ffs"], "seeds": {"replications": runs}},
        source="bench.toml",
    )


def measure(label: str, executor, runs: int, workers: int, folder: Path) -> dict:
    out = folder / label
    start = time.perf_counter()
    outcome = run_sweep(spec(runs), out, executor=executor)
    wall = time.perf_counter() - start
    table = load_results(out)
    inside = table["run_seconds"]
    assert outcome.finished == runs and outcome.failed == 0
    return {
        "label": label,
        "workers": workers,
        "wall": wall,
        "per_minute": 60 * runs / wall,
        "run_mean": float(inside.mean()),
        "cpu_mean": float(table["cpu_seconds"].mean()),
        "overhead": wall * workers / runs - float(inside.mean()),
    }


def startup(*args: str) -> float:
    exe = Path(sys.executable).parent / "vbpsim"
    times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([str(exe), *args], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="runs per executor (default world, 10 years)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = [
            measure("serial (1 worker)", SerialExecutor(), args.runs, 1, folder),
            measure("processes (2 workers)", ProcessExecutor(2), args.runs, 2, folder),
            measure("dask LocalCluster (2 workers)", DaskExecutor(None, 2), args.runs, 2, folder),
        ]
    base = rows[0]["per_minute"]
    header = ("runs/min", "efficiency", "run (s)", "cpu (s)", "overhead/run (s)")
    print(f"{'executor':32s} " + " ".join(f"{h:>10s}" for h in header))
    for row in rows:
        efficiency = row["per_minute"] / (row["workers"] * base)
        cells = (f"{row['per_minute']:.1f}", f"{efficiency:.0%}", f"{row['run_mean']:.2f}", f"{row['cpu_mean']:.2f}")
        print(f"{row['label']:32s} " + " ".join(f"{c:>10s}" for c in cells) + f" {row['overhead']:10.2f}")
    for command in (["--help"], ["schemes"], ["scenarios"]):
        print(f"vbpsim {' '.join(command):10s} start-up: {startup(*command):.2f} s (median of 5)")
    print(f"load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
