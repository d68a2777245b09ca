"""The compiled patient passes against their numpy oracle: equal results within 1e-12.

Both models start from the same seed, so they draw the same random numbers in the same
order; any difference beyond rounding means a compiled pass computes something else than
the numpy formulation it replaced (``tests/numpy_oracle.py``).
"""

from __future__ import annotations

import pytest
from numpy_oracle import NumpyModel, differences

from vbpsim.experiments import _scenario_and_contract
from vbpsim.model import VBPModel
from vbpsim.parameters import MechanismParams

# Worlds that exercise every branch of the passes: all mechanisms (the default), the core
# model (mechanisms off), and contracts that read different observation fields.
CASES = [
    ("ffs", {}),
    ("capitation", {}),
    ("bundle", {}),
    ("shared_savings", {}),
    ("global_budget", {}),
    ("per_case", {}),
    ("stop_loss", {}),
    ("outlier", {}),
    ("ffs", {"mechanisms": "none"}),
    ("p4p", {"contract.attribution": "prospective"}),
    ("capitation", {"purchaser.risk_adjustment": "full"}),  # scores blended with the own cost (appraisal too)
]


def twins(scheme: str, overrides: dict, seed: int = 3) -> tuple[VBPModel, VBPModel]:
    """The compiled model and its numpy oracle on the same small world and seed."""
    over = dict(overrides)
    if over.pop("mechanisms", None) == "none":
        over.update({f"mechanisms.{m}": False for m in MECHANISMS})
    scenario, contract = _scenario_and_contract(scheme, "small", 2, **over)
    return VBPModel(scenario, scheme=contract, seed=seed), NumpyModel(scenario, scheme=contract, seed=seed)


MECHANISMS = tuple(MechanismParams.model_fields)


@pytest.mark.parametrize(("scheme", "overrides"), CASES, ids=[f"{s}-{'-'.join(o) or 'default'}" for s, o in CASES])
def test_compiled_pass_equals_numpy_oracle(scheme: str, overrides: dict) -> None:
    """History and contract years stepped by both formulations agree on every number."""
    compiled, oracle = twins(scheme, overrides)
    compiled.run()
    oracle.run()
    assert differences(compiled, oracle) == []
