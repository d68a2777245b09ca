"""Built-in scenarios: named, validated starting points for runs, sweeps and teaching.

``default`` is the reference population (about 10,000 patients, 40 providers, 10 years,
monthly). ``small`` is the same world at a fifth of the size, fast enough for tests and
classrooms; ``large`` has 100,000 patients for studies.
"""

from __future__ import annotations

from typing import Any

from .errors import ParameterError
from .parameters import Scenario, build_scenario

BUILTIN: dict[str, dict[str, Any]] = {
    "default": {
        "description": "Reference population: 10,000 adults, 42 providers, 10 years monthly.",
    },
    "small": {
        "description": "A fifth of the default world: 2,000 adults and 12 providers.",
        "population": {"n_patients": 2_000},
        "providers": {"n_gp": 6, "n_hospital": 2, "n_rehab": 2, "n_nursing": 2},
    },
    "large": {
        "description": "100,000 adults and 210 providers, for studies.",
        "population": {"n_patients": 100_000},
        "providers": {"n_gp": 120, "n_hospital": 30, "n_rehab": 30, "n_nursing": 30},
    },
}


def list_scenarios() -> dict[str, str]:
    """Names and one-line descriptions of the built-in scenarios."""
    return {name: spec["description"] for name, spec in BUILTIN.items()}


def load_scenario(scenario: str | Scenario) -> Scenario:
    """A Scenario from a built-in name (or pass one through unchanged)."""
    if isinstance(scenario, Scenario):
        return scenario
    if not isinstance(scenario, str) or scenario not in BUILTIN:
        raise ParameterError("scenario", scenario, f"one of {sorted(BUILTIN)}")
    return build_scenario({"name": scenario, **BUILTIN[scenario]})
