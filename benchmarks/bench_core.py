"""Core performance benchmark of vbpsim (a script, not a test).

Prints wall times and peak memory against the targets:

* (a) the ``default`` scenario (10,000 patients, 42 providers, 10 years monthly) with
  ``vbpsim.run(scheme=...)`` for ffs, capitation and mixed: best of 3, target < 2 s;
* (b) 1,000,000 patients and 400 providers (240 GP, 60 hospital, 50 rehab, 50 nursing)
  for 10 years monthly under FFS, in a fresh subprocess so its peak resident memory
  (``ru_maxrss``) is its own: targets < 2 minutes and < 4 GB.

Usage::

    .venv/bin/python benchmarks/bench_core.py            # everything (the 1M run takes ~1-2 min)
    .venv/bin/python benchmarks/bench_core.py --quick    # skip the 1M run
    .venv/bin/python benchmarks/bench_core.py --profile  # also cProfile 1 year of the 1M run
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import time

import numpy as np

import vbpsim

DEFAULT_SCHEMES = ("ffs", "capitation", "mixed")
DEFAULT_TARGET_S = 2.0
MILLION_TARGET_S = 120.0
MILLION_TARGET_GB = 4.0
MILLION = {
    "scheme": "ffs",
    "scenario": "default",
    "seed": 1,
    "n_patients": 1_000_000,
    "n_gp": 240,
    "n_hospital": 60,
    "n_rehab": 50,
    "n_nursing": 50,
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        if names:
            cpu = names[0]
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as fh:
            kb = int(fh.readline().split()[1])
        mem = f", {kb / 1024**2:.1f} GB RAM"
    except (OSError, ValueError, IndexError):
        mem = ""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {cores} cores{mem}; "
        f"Python {platform.python_version()}, numpy {np.__version__}, vbpsim {vbpsim.__version__}"
    )


def peak_rss_gb() -> float:
    """Peak resident set size of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024**3 if sys.platform == "darwin" else 1024**2)


def bench_default(repeats: int = 3) -> list[tuple[str, float, float]]:
    """Best-of-``repeats`` wall time (and that run's CPU time) of a default run per scheme."""
    out = []
    for scheme in DEFAULT_SCHEMES:
        times = []
        for _ in range(repeats):
            start, cpu = time.perf_counter(), time.process_time()
            vbpsim.run(scheme=scheme, scenario="default", seed=1)
            times.append((time.perf_counter() - start, time.process_time() - cpu))
        wall, cpu_s = min(times)
        out.append((scheme, wall, cpu_s))
    return out


def load() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def million_child(years: int | None) -> None:
    """Body of the subprocess: build and run the 1M model, print one JSON line."""
    start = time.perf_counter()
    model = vbpsim.build_model(years=years, **MILLION)
    built = time.perf_counter()
    model.run()
    stepped = time.perf_counter()
    vbpsim.experiments.result_of(model)
    done = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "steps": model.n_steps,
                "build_s": built - start,
                "steps_s": stepped - built,
                "summary_s": done - stepped,
                "wall_s": done - start,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "peak_gb": peak_rss_gb(),
            }
        )
    )


def bench_million() -> dict[str, float]:
    """Run the 1M case in a fresh interpreter; its peak memory is then its own."""
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--million-child"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def profile_million(years: int = 1, top: int = 25) -> str:
    """cProfile of the 1M model over ``years`` (build + steps): by cumulative and by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    model = vbpsim.build_model(years=years, **MILLION)
    model.run()
    profiler.disable()
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top // 2)
    return buf.getvalue()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="skip the 1,000,000-patient run")
    parser.add_argument("--profile", action="store_true", help="cProfile one year of the 1M run")
    parser.add_argument("--million-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--years", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.million_child:
        million_child(args.years)
        return 0

    print(f"vbpsim core benchmark, {dt.datetime.now().isoformat(timespec='seconds')}")
    print(f"machine: {machine()}")
    print()
    print(f"load average (1/5/15 min) at start: {load()}; wall time is what the targets are on, CPU")
    print("time (user + system) is shown too, as it is less affected by other jobs on the machine.")
    print()
    rows: list[tuple[str, str, str, str]] = []
    for scheme, seconds, cpu in bench_default():
        rows.append(
            (
                f"default 10k patients, 42 providers, 10 y: {scheme} (best of 3)",
                f"{seconds:.2f} s (cpu {cpu:.2f} s)",
                f"< {DEFAULT_TARGET_S:.0f} s",
                verdict(seconds < DEFAULT_TARGET_S),
            )
        )
    million = None
    if not args.quick:
        million = bench_million()
        label = "1M patients, 400 providers, 10 y: ffs"
        rows.append(
            (
                f"{label} wall time",
                f"{million['wall_s']:.1f} s (cpu {million['cpu_s']:.1f} s)",
                f"< {MILLION_TARGET_S:.0f} s",
                verdict(million["wall_s"] < MILLION_TARGET_S),
            )
        )
        rows.append(
            (
                f"{label} peak RSS",
                f"{million['peak_gb']:.2f} GB",
                f"< {MILLION_TARGET_GB:.0f} GB",
                verdict(million["peak_gb"] < MILLION_TARGET_GB),
            )
        )
    widths = [max(len(r[i]) for r in [("case", "measured", "target", "result"), *rows]) for i in range(4)]
    header = ("case", "measured", "target", "result")
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if million is not None:
        print()
        print(
            f"1M run breakdown: build {million['build_s']:.1f} s, {million['steps']:.0f} steps "
            f"{million['steps_s']:.1f} s ({million['steps_s'] / million['steps']:.2f} s/step), "
            f"summary {million['summary_s']:.2f} s"
        )
    print(f"load average at end: {load()}")
    if args.profile:
        print()
        print("cProfile, 1M patients, 1 year, sorted by cumulative time, then by own time:")
        print(profile_million())
    return 0 if all(r[3] == "PASS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
