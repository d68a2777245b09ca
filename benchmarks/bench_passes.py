"""Where a step goes: time per step of each compiled patient pass and each phase of the step (a script, not a test).

Wraps the passes (``vbpsim.kernels``) and the step's phases (``VBPModel`` methods) with
timers, steps a world of N patients (1,000,000 and 400 providers by default) for a year
and prints, per pass or phase, the median and the least time per call and the calls per
step. Medians move with other load on the machine; the least time is the pass alone.
The phases contain the passes (``observe`` calls ``kernels.observe``, ...), so the rows
do not add up; the ``step`` row is the whole step.

Usage::

    .venv/bin/python benchmarks/bench_passes.py                  # 1M patients, 14 steps
    .venv/bin/python benchmarks/bench_passes.py --patients 10000 --steps 60
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

PASSES = {
    "vbpsim.kernels.delivery": ("care_need", "deliver", "risk_cells", "observe"),
    "vbpsim.kernels.health": ("transitions", "after_routing", "choose"),
    "vbpsim.model": ("record_pass",),
    "vbpsim.appraisal": ("outlook_pass", "appraise_pass", "steering_pass", "appraise_admissions_pass"),
}
PHASES = (
    "deliver_care",
    "observe",
    "update_health",
    "patients_choose",
    "outlook",
    "providers_learn",
    "innovations_arrive",
    "providers_decide",
    "record",
    "step",
)


def timed(function: Callable[..., Any], label: str, log: dict[str, list[float]]) -> Callable[..., Any]:
    """``function`` with each call's wall time appended to ``log[label]``."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            log[label].append(time.perf_counter() - start)

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=14, help="timed steps after two warm-up steps")
    args = parser.parse_args()

    import importlib

    import vbpsim
    from vbpsim.model import VBPModel
    from vbpsim.risk import RiskModel

    log: dict[str, list[float]] = defaultdict(list)
    for module_name, names in PASSES.items():
        module = importlib.import_module(module_name)
        for name in names:
            setattr(module, name, timed(getattr(module, name), f"pass {name}", log))
    for name in PHASES:
        setattr(VBPModel, name, timed(getattr(VBPModel, name), name, log))
    RiskModel.estimate = timed(RiskModel.estimate, "risk refit (yearly)", log)

    scale = args.patients / 1_000_000
    providers = {
        "n_gp": max(round(240 * scale), 24),
        "n_hospital": max(round(60 * scale), 6),
        "n_rehab": max(round(50 * scale), 5),
        "n_nursing": max(round(50 * scale), 5),
    }
    model = vbpsim.build_model(scheme="ffs", scenario="default", seed=1, n_patients=args.patients, years=3, **providers)
    for _ in range(2):  # compile or load the passes
        model.step()
    log.clear()
    cpu = time.process_time()
    for _ in range(args.steps):
        model.step()
    cpu = time.process_time() - cpu

    print(f"{args.patients:,} patients, {sum(providers.values())} providers, {args.steps} steps")
    print(f"{'pass or phase':28s} {'median ms':>10s} {'least ms':>9s} {'calls/step':>10s}")
    for label, times in sorted(log.items(), key=lambda item: -statistics.median(item[1]) * len(item[1])):
        per_step = len(times) / args.steps
        print(f"{label:28s} {1e3 * statistics.median(times):10.2f} {1e3 * min(times):9.2f} {per_step:10.2f}")
    print(f"CPU per step {1e3 * cpu / args.steps:.1f} ms: {1e6 * cpu / args.steps / args.patients:.3f} µs per patient")


if __name__ == "__main__":
    main()
