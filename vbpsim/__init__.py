"""vbpsim: an agent-based model of health-care provider behaviour under payment incentives.

Quick start::

    import vbpsim
    result = vbpsim.run(scheme="ffs", scenario="default", years=10, seed=1)
    result.value_dimensions
"""

from . import contracts  # noqa: F401
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

__version__ = "0.1.0"

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
