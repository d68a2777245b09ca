"""Compiled passes over the patient arrays (numba, cached on disk after the first run).

Each pass walks the patients once and accumulates the per-provider sums it needs in the
same loop, instead of the dozens of patient-sized temporary arrays a numpy formulation
creates. Random numbers are never drawn here: the model draws them in bulk from its own
numpy generators and passes them in, so streams, seeds and common random numbers behave
exactly as in the numpy formulation, which the tests keep as the oracle
(``tests/numpy_oracle.py``: equal results within 1e-12).

Passes run on one core (``parallel=False``): sweeps parallelise across runs, and one
thread per run keeps every result independent of the machine's core count.
"""

from __future__ import annotations

JIT_OPTIONS = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}
