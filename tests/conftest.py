"""Shared test set-up: hypothesis profile, import path for helpers, cached small runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))  # `import strategies` however pytest imports tests

settings.register_profile(
    "vbpsim",
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],  # inherited contract tests
    print_blob=True,
)
settings.register_profile("thorough", parent=settings.get_profile("vbpsim"), max_examples=500)
settings.load_profile("vbpsim")

SMALL = {"scenario": "small", "years": 1}


@pytest.fixture(scope="session")
def run_cache():
    """Memoised ``vbpsim.run`` on the small scenario: each (scheme, years, seed) runs once."""
    import vbpsim

    cache: dict[tuple, vbpsim.Result] = {}

    def get(scheme: str, years: int = 1, seed: int = 0):
        key = (scheme, years, seed)
        if key not in cache:
            cache[key] = vbpsim.run(scheme, scenario="small", years=years, seed=seed)
        return cache[key]

    return get
