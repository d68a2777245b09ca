"""The package's layering: imports run one way, care <- population <- agents <- appraisal, books <- model.

The model's parts (mixins) live with whom they concern and reach the rest of the model
through ``self``, so a lower module never imports a higher one (no import circle).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vbpsim.books import PurchaserBooks
from vbpsim.model import VBPModel
from vbpsim.population import PatientDynamics

ABOVE = {
    "vbpsim.care": {"vbpsim.population", "vbpsim.agents", "vbpsim.appraisal", "vbpsim.books", "vbpsim.model"},
    "vbpsim.population": {"vbpsim.agents", "vbpsim.appraisal", "vbpsim.books", "vbpsim.model"},
    "vbpsim.agents": {"vbpsim.appraisal", "vbpsim.books", "vbpsim.model"},
    "vbpsim.books": {"vbpsim.agents", "vbpsim.appraisal", "vbpsim.model"},
    "vbpsim.appraisal": {"vbpsim.books", "vbpsim.model"},
}


@pytest.mark.parametrize("module", sorted(ABOVE))
def test_a_module_imports_nothing_above_it(module: str) -> None:
    """Imported alone (a fresh interpreter), a module loads none of the modules above it."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout))
    assert module in loaded
    assert not loaded & ABOVE[module], f"{module} imports {sorted(loaded & ABOVE[module])}"


def test_the_model_keeps_the_step_and_its_parts_the_rest() -> None:
    """The patients' dynamics and the purchaser's books are parts of the model, not copies of its methods."""
    assert issubclass(VBPModel, PatientDynamics) and issubclass(VBPModel, PurchaserBooks)
    for part, names in ((PatientDynamics, ("deliver_care", "update_health", "patients_choose")),
                        (PurchaserBooks, ("observe", "close_periods"))):  # fmt: skip
        for name in names:
            assert name in vars(part) and name not in vars(VBPModel), name
    assert "step" in vars(VBPModel)
