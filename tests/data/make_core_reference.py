"""Regenerate tests/data/core_reference.json: the core model (all mechanisms off).

Run only for a deliberate change to the core model and say why in the commit:
    python tests/data/make_core_reference.py
"""

import json
from pathlib import Path

import vbpsim

ALL_OFF = {f"mechanisms.{name}": False for name in vbpsim.parameters.MechanismParams.model_fields}
out = {}
for scheme in ["ffs", "capitation", "mixed", "ffs+p4p", "per_period", "per_case"]:
    for seed in [0, 1]:
        result = vbpsim.run(scheme=scheme, scenario="small", years=3, seed=seed, **ALL_OFF)
        out[f"{scheme}/{seed}"] = {"value_dimensions": result.value_dimensions, "indicators": result.indicators}
path = Path(__file__).with_name("core_reference.json")
path.write_text(json.dumps(out, indent=1))
print(f"wrote {path}")
