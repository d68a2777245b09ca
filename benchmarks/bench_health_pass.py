"""The compiled health pass against its numpy oracle at 1,000,000 patients (a script, not a test).

Times ``update_health`` and ``patients_choose`` per step (after one warm-up step, which
compiles or loads the kernels) in the compiled model and in the numpy formulation kept as
the oracle (``tests/numpy_oracle.py``), on the 1M-patient world of ``bench_patients.py``,
and reports how far the two models' records drift apart over those steps.

Usage::

    .venv/bin/python benchmarks/bench_health_pass.py             # 1M patients, 5 steps
    .venv/bin/python benchmarks/bench_health_pass.py --patients 200000 --steps 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from numpy_oracle import NumpyModel  # noqa: E402

import vbpsim  # noqa: E402

TIMED = ("update_health", "patients_choose")


def timed_model(n_patients: int, oracle: bool) -> tuple[Any, dict[str, list[float]]]:
    """The 1M world (400 providers), its TIMED methods wrapped to record their wall time."""
    model = vbpsim.build_model(
        scheme="ffs", scenario="default", seed=1, n_patients=n_patients,
        n_gp=240, n_hospital=60, n_rehab=50, n_nursing=50, years=1,
    )  # fmt: skip
    if oracle:
        model.__class__ = NumpyModel
    times: dict[str, list[float]] = {name: [] for name in TIMED}
    for name in TIMED:
        method = getattr(model, name)

        def wrapped(*args: Any, _method: Any = method, _name: str = name) -> Any:
            start = time.perf_counter()
            result = _method(*args)
            times[_name].append(time.perf_counter() - start)
            return result

        setattr(model, name, wrapped)
    return model, times


def main() -> None:
    """Step both models side by side and print ms per step and the largest record difference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    compiled, compiled_times = timed_model(args.patients, oracle=False)
    numpy_model, numpy_times = timed_model(args.patients, oracle=True)
    for model, times in ((compiled, compiled_times), (numpy_model, numpy_times)):
        model.step()  # warm-up: compiles (or loads) the kernels
        for series in times.values():
            series.clear()
    worst: dict[str, float] = {}
    for _ in range(args.steps):
        compiled.step()
        numpy_model.step()
        for key, value in compiled.records[-1].items():
            other = numpy_model.records[-1][key]
            if value != other:
                worst[key] = max(worst.get(key, 0.0), abs(value - other) / max(abs(value), abs(other)))
    print(f"{args.patients:,} patients, {args.steps} steps after a warm-up step (ms per step, median / min)")
    for name in TIMED:
        c, o = np.array(compiled_times[name]) * 1e3, np.array(numpy_times[name]) * 1e3
        print(
            f"  {name:16s} compiled {np.median(c):7.1f} / {c.min():7.1f}   numpy {np.median(o):7.1f} / {o.min():7.1f}"
            f"   x{np.median(o) / np.median(c):.1f}"
        )
    health_keys = set(compiled.update_health(compiled.deliver_care()))  # its records' names (one more pass)
    for label, keys in (("health pass", [k for k in worst if k in health_keys]), ("all", list(worst))):
        listed = ", ".join(f"{k} {worst[k]:.1e}" for k in sorted(keys, key=lambda k: -worst[k])[:5])
        print(f"largest relative record differences ({label}):", listed or "none")


if __name__ == "__main__":
    main()
