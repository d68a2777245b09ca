"""Compiled passes over the patient arrays (numba, cached on disk after the first run).

Each pass walks the patients once and accumulates the per-provider sums it needs in the
same loop, instead of the dozens of patient-sized temporary arrays a numpy formulation
creates. Random numbers are never drawn here: the model draws them in bulk from its own
numpy generators and passes them in, so streams, seeds and common random numbers behave
exactly as in the numpy formulation, which the tests keep as the oracle
(``tests/numpy_oracle.py``: equal results within 1e-12).

Passes run on one core (``parallel=False``): sweeps parallelise across runs, and one
thread per run keeps every result independent of the machine's core count.

Developers: numba freezes the module-level constants a pass reads (state and discipline
indices, ``SUM_BLOCK``) into its compiled code and re-validates its disk cache only against
the pass's own source file. After editing such a constant elsewhere, clear the cache
(``find vbpsim -name '*.nbi' -delete``) or touch the pass's file. Numbers a scenario can
change are always passed in as arguments.

The first run compiles every pass (about 10 s). Inside a pass, copy arrays with loops, not
slice assignments (``out[:] = values``), and search with a loop, not ``np.searchsorted``:
numba compiles each of those anew per process and array type, one to three seconds apiece
(``benchmarks/README.md``, "Results, fourth session").
"""

from __future__ import annotations

# Totals over patients are summed block by block (this many patients), then over the blocks:
# one running sum over 10^6 patients drifts by up to ~1e-11 from numpy's pairwise sums, by
# blocks it stays near 1e-14.
SUM_BLOCK = 1024
JIT_OPTIONS = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}

PASS_MODULES = ("accounts", "delivery", "health")


def compiled_on_disk() -> bool:
    """Whether numba's disk cache holds the compiled passes (False on the first run after install).

    A pass module counts as compiled when its cache index holds any of its kernels (a
    kernel a scenario never calls, e.g. with its mechanism off, is compiled on first use
    and does not make every run look like the first). Used to tell the user that the
    first run compiles (once, some seconds).
    """
    import importlib
    import os

    import numba.core.registry

    for name in PASS_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError:
            continue
        indexes = []
        for kernel in vars(module).values():
            if isinstance(kernel, numba.core.registry.CPUDispatcher):
                try:
                    indexes.append(kernel._cache._cache_file._index_path)  # numba's private layout: be lenient
                except AttributeError:
                    return True
        if indexes and not any(os.path.exists(index) for index in indexes):
            return False
    return True
