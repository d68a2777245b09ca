"""Refuse a run the machine cannot hold, before it starts, instead of failing deep inside it.

A run keeps a few dozen numbers per patient (numpy arrays) and a few hundred per provider
(beliefs, decisions, payments), on top of the interpreter and its libraries. The estimate
below is linear in both, with coefficients measured on this code (peak resident memory of
one-year runs, Python 3.12, numpy 2): about 740 bytes per patient and 22 kB per provider
over a base of about 150 MB, rounded up here for safety. ``check_memory`` compares it with
the memory the operating system reports as available and raises a
:class:`~vbpsim.errors.ParameterError` naming the parameter that drives the size.
"""

from __future__ import annotations

import os

from .errors import ParameterError
from .parameters import Scenario

#: Resident memory of the interpreter with vbpsim, numpy, pandas and mesa loaded.
BASE_BYTES = 160_000_000
#: Per patient (measured about 740 B).
BYTES_PER_PATIENT = 1_000
#: Per provider (measured about 22 kB).
BYTES_PER_PROVIDER = 30_000


def estimate_memory(scenario: Scenario) -> int:
    """Bytes of memory a run of this scenario needs at its peak (a safe upper estimate)."""
    providers = scenario.providers
    n_providers = providers.n_gp + providers.n_hospital + providers.n_rehab + providers.n_nursing
    return BASE_BYTES + BYTES_PER_PATIENT * scenario.population.n_patients + BYTES_PER_PROVIDER * n_providers


def available_memory() -> int | None:
    """Bytes of memory available to a new run (Linux ``MemAvailable``), or None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def check_memory(scenario: Scenario) -> None:
    """Raise a ParameterError if the run would need more memory than is available."""
    available = available_memory()
    need = estimate_memory(scenario)
    if available is None or need <= available:
        return
    providers = scenario.providers
    patient_bytes = BYTES_PER_PATIENT * scenario.population.n_patients
    counts = {f"providers.n_{d}": getattr(providers, f"n_{d}") for d in ("gp", "hospital", "rehab", "nursing")}
    largest = max(counts, key=lambda name: counts[name])
    if patient_bytes >= BYTES_PER_PROVIDER * sum(counts.values()):
        name, value, each = "population.n_patients", scenario.population.n_patients, "patients"
    else:
        name, value, each = largest, counts[largest], "providers"
    raise ParameterError(
        name,
        value,
        f"a run this size needs about {need / 1e9:.1f} GB of memory and {available / 1e9:.1f} GB are available; "
        f"use fewer {each} (see vbpsim.limits)",
    )
