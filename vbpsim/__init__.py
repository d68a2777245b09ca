"""vbpsim: an agent-based model of health-care provider behaviour under payment incentives.

Quick start::

    import vbpsim
    result = vbpsim.run(scheme="ffs", scenario="default", years=10, seed=1)
    result.value_dimensions

The names below are imported on first use (PEP 562), so ``import vbpsim`` and the
command line start fast; ``vbpsim.run`` and every name in ``__all__`` work as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the submodule that defines it.
_EXPORTS = {
    "DIMENSIONS": "metrics",
    "SCHEMES": "schemes",
    "Observation": "schemes",
    "ParameterError": "errors",
    "PaymentScheme": "schemes",
    "Result": "experiments",
    "Scenario": "parameters",
    "VBPModel": "model",
    "VBPSimError": "errors",
    "build_model": "experiments",
    "compare": "experiments",
    "filtered_schemes": "schemes",
    "free_riding": "experiments",
    "list_scenarios": "scenarios",
    "list_schemes": "schemes",
    "load_scenario": "scenarios",
    "make_scheme": "schemes",
    "paired_difference": "experiments",
    "register": "schemes",
    "replicate": "experiments",
    "run": "experiments",
    "run_arms": "experiments",
    "teaching_to_test": "experiments",
    "with_p4p": "schemes",
}
_SUBMODULES = (
    "agents",
    "app",
    "calibration",
    "cli",
    "contracts",
    "errors",
    "experiments",
    "metrics",
    "model",
    "parameters",
    "population",
    "report",
    "risk",
    "scenarios",
    "schemes",
    "sensitivity",
    "sweep",
)

__all__ = [
    "DIMENSIONS",
    "SCHEMES",
    "Observation",
    "ParameterError",
    "PaymentScheme",
    "Result",
    "Scenario",
    "VBPModel",
    "VBPSimError",
    "build_model",
    "compare",
    "filtered_schemes",
    "free_riding",
    "list_scenarios",
    "list_schemes",
    "load_scenario",
    "make_scheme",
    "paired_difference",
    "register",
    "replicate",
    "run",
    "run_arms",
    "teaching_to_test",
    "with_p4p",
]


def __getattr__(name: str) -> Any:
    """Import a public name (or a submodule) the first time it is used."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SUBMODULES})


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from .errors import ParameterError, VBPSimError
    from .experiments import (
        Result,
        build_model,
        compare,
        free_riding,
        paired_difference,
        replicate,
        run,
        run_arms,
        teaching_to_test,
    )
    from .metrics import DIMENSIONS
    from .model import VBPModel
    from .parameters import Scenario
    from .scenarios import list_scenarios, load_scenario
    from .schemes import (
        SCHEMES,
        Observation,
        PaymentScheme,
        filtered_schemes,
        list_schemes,
        make_scheme,
        register,
        with_p4p,
    )
