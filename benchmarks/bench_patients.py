"""Issue 11 benchmark: the compiled patient pass, start-up and memory (a script, not a test).

Prints each figure the issue names beside its target:

* µs per patient-step of ``VBPModel.step`` at 1,000,000 patients (400 providers), over the
  whole run after the first (compiling) step, and the time of 10 years (120 monthly steps)
  at that rate; target <= 0.1 µs, i.e. 10 years in < 15 s;
* peak resident memory of that 1M run (a fresh subprocess, so the peak is its own); < 0.5 GB;
* the default world (10,000 patients, 42 providers, 10 years after its 5-year history) with
  ``vbpsim.run``, best of 3, after the first compile: < 0.3 s; ``vbpsim compare``'s six
  schemes for one seed (``run_arms``: one shared history, six contract arms): < 1.8 s;
* the first run after a fresh install: a fresh interpreter with an empty numba cache
  (``NUMBA_CACHE_DIR`` in a new temporary folder) imports vbpsim, compiles and runs the
  default world: < 20 s; and the same with the cache warm;
* ``vbpsim --help`` in a fresh interpreter: < 0.5 s;
* CPU µs per patient-step of an idiomatic Mesa model with one agent per patient doing the
  monthly update (``bench_mesa_baseline.py``) over vbpsim's at 1M: >= 100x.

Usage::

    .venv/bin/python benchmarks/bench_patients.py            # everything (~3-5 min)
    .venv/bin/python benchmarks/bench_patients.py --quick    # skip the 1M run and the Mesa baseline
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

MILLION = {"scenario": "default", "seed": 1, "n_patients": 1_000_000, "n_gp": 240, "n_hospital": 60}
MILLION_PROVIDERS = {"n_rehab": 50, "n_nursing": 50}
TARGETS = {
    "us_per_patient_step": 0.1,
    "ten_years_1m_s": 15.0,
    "peak_gb": 0.5,
    "default_run_s": 0.3,
    "first_run_s": 20.0,
    "help_s": 0.5,
    "mesa_ratio": 100.0,
}


def peak_rss_gb() -> float:
    """Peak resident set size of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024**3 if sys.platform == "darwin" else 1024**2)


def million_child(years: int) -> None:
    """Body of the 1M subprocess: build, one compiling step, the rest timed; one JSON line."""
    import vbpsim

    start = time.perf_counter()
    model = vbpsim.build_model(scheme="ffs", years=years, **MILLION, **MILLION_PROVIDERS)
    built = time.perf_counter()
    model.step()
    first = time.perf_counter()
    cpu = time.process_time()
    model.run()
    done = time.perf_counter()
    steps = model.n_steps - 1
    print(
        json.dumps(
            {
                "build_s": built - start,
                "first_step_s": first - built,
                "steps": steps,
                "steps_s": done - first,
                "steps_cpu_s": time.process_time() - cpu,
                "peak_gb": peak_rss_gb(),
            }
        )
    )


def fresh_python(code: str, env: dict[str, str] | None = None) -> float:
    """Wall seconds of a fresh interpreter running ``code``."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, **(env or {})})
    return time.perf_counter() - start


def help_seconds() -> float:
    """Best of 3 wall seconds of ``vbpsim --help`` in a fresh process."""
    exe = Path(sys.executable).with_name("vbpsim")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "vbpsim.cli"]
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([*command, "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="skip the 1M run and the Mesa baseline")
    parser.add_argument("--years", type=int, default=10, help="years of the 1M run after its history")
    parser.add_argument("--million-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.million_child:
        million_child(args.years)
        return 0

    print(f"vbpsim patient-pass benchmark (issue 11), {dt.datetime.now().isoformat(timespec='seconds')}")
    print(f"load average at start: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    rows: list[tuple[str, str, str, bool]] = []

    with tempfile.TemporaryDirectory() as cache:
        run_default = "import vbpsim; vbpsim.run(scenario='default', seed=1)"
        cold = fresh_python(run_default, {"NUMBA_CACHE_DIR": cache})
        warm = fresh_python(run_default, {"NUMBA_CACHE_DIR": cache})
    rows.append(("first run after install: import, compile, default world", f"{cold:.1f} s", "< 20 s", cold < 20))
    rows.append(("the same with the compiled cache warm", f"{warm:.1f} s", "", True))
    helped = help_seconds()
    rows.append(("vbpsim --help (fresh process, best of 3)", f"{helped:.2f} s", "< 0.5 s", helped < 0.5))

    import vbpsim

    vbpsim.run(scenario="default", seed=1, years=1)  # load the compiled passes in this process
    best = min(_timed(lambda: vbpsim.run(scheme="ffs", scenario="default", seed=1)) for _ in range(3))
    rows.append(("default world, 10 y after 5 y history (best of 3)", f"{best:.2f} s", "< 0.3 s", best < 0.3))
    from vbpsim.cli import DEFAULT_COMPARE

    compared = _timed(lambda: vbpsim.run_arms(list(DEFAULT_COMPARE), seed=1, scenario="default"))
    rows.append(("`compare`'s 6 schemes, one seed (shared history)", f"{compared:.2f} s", "< 1.8 s", compared < 1.8))

    if not args.quick:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--million-child", "--years", str(args.years)],
            capture_output=True,
            text=True,
            check=True,
        )
        big = json.loads(proc.stdout.strip().splitlines()[-1])
        n = MILLION["n_patients"]
        us = big["steps_s"] / (n * big["steps"]) * 1e6
        us_cpu = big["steps_cpu_s"] / (n * big["steps"]) * 1e6
        ten_years = us * n * 120 / 1e6
        rows.append(("1M patients: µs per patient-step (wall; CPU)", f"{us:.3f}; {us_cpu:.3f}", "<= 0.1", us <= 0.1))
        rows.append(("1M patients: 10 years (120 steps) at that rate", f"{ten_years:.1f} s", "< 15 s", ten_years < 15))
        rows.append(("1M patients: peak resident memory", f"{big['peak_gb']:.2f} GB", "< 0.5 GB", big["peak_gb"] < 0.5))
        print(
            f"1M run: build {big['build_s']:.1f} s, first step {big['first_step_s']:.1f} s, "
            f"{big['steps']} steps {big['steps_s']:.1f} s ({big['steps_s'] / big['steps']:.3f} s/step)"
        )
        mesa_us = mesa_baseline_cpu_us()
        ratio = mesa_us / us_cpu
        rows.append(
            (
                f"Mesa one-agent-per-patient ({mesa_us:.1f} µs CPU) / vbpsim at 1M",
                f"{ratio:.0f}x",
                ">= 100x",
                ratio >= 100,
            )
        )

    print()
    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'measured':>14}  {'target':>8}  result")
    print("-" * (width + 36))
    for name, measured, target, ok in rows:
        print(f"{name:<{width}}  {measured:>14}  {target:>8}  {verdict(ok) if target else ''}")
    return 0 if all(ok for *_, ok in rows) else 1


def _timed(call) -> float:  # noqa: ANN001
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def mesa_baseline_cpu_us(n: int = 10_000, steps: int = 3) -> float:
    """CPU µs per patient-step of the idiomatic Mesa model (one agent per patient) at ``n`` patients."""
    from bench_mesa_baseline import MesaPatients, per_patient_step, timed, world

    model = MesaPatients(world(n))
    model.step()
    _, cpu = timed(model.step, steps)
    return per_patient_step(cpu, n, steps)


if __name__ == "__main__":
    raise SystemExit(main())
