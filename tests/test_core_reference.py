"""With every behavioural mechanism switched off the model is exactly the core model.

`tests/data/core_reference.json` holds the core model's results (scenario `small`, 3
years, seeds 0 and 1). It was first computed by the code before the mechanisms of issue 3
existed (commit 0b08e19 plus the core fixes to chronic need, capacity planning, GP
reputation and the P4P threshold) and the all-off model matched it to 1e-9; it was
regenerated with `tests/data/make_core_reference.py` after deliberate core changes
(overtime premium 0.2, keeping the current choice when a decision has nothing at stake).
Regenerate it only for a deliberate change to the core model, and say why in the commit.
"""

import json
from pathlib import Path

import pytest

import vbpsim

REFERENCE = json.loads((Path(__file__).parent / "data" / "core_reference.json").read_text())
ALL_OFF = {f"mechanisms.{name}": False for name in vbpsim.Scenario.model_fields["mechanisms"].annotation.model_fields}


@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_all_mechanisms_off_reproduces_core_model(key):
    scheme, seed = key.split("/")
    result = vbpsim.run(scheme=scheme, scenario="small", years=3, seed=int(seed), **ALL_OFF)
    expected = REFERENCE[key]
    for group in ("value_dimensions", "indicators"):
        got = getattr(result, group)
        for name, value in expected[group].items():
            assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-9), (group, name)
