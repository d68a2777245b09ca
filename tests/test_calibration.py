"""The default scenario stays inside every documented calibration target (calibration/targets.toml).

The quantities are measured on the default world over three seeds with common random
numbers, exactly as `vbpsim calibrate --max-evaluations 0` reports them; a target is met
when the mean over seeds lies inside its range. The targets file itself is checked too:
every target has a source, a known role and a value inside its range.
"""

from __future__ import annotations

import functools

import pytest

from vbpsim.calibration import ROLES, TARGETS_FILE, load_targets, measure, report

TARGETS = load_targets()


@functools.cache
def default_report():
    return report(TARGETS, measure(seeds=(0, 1, 2)))


def test_targets_file_is_complete() -> None:
    assert TARGETS_FILE.exists()
    quantities = [t.quantity for t in TARGETS]
    assert len(quantities) == len(set(quantities))
    assert {t.role for t in TARGETS} <= set(ROLES)
    assert any(t.role == "fit" for t in TARGETS)
    for t in TARGETS:
        assert t.low <= t.value <= t.high
        assert t.source.strip() and t.maps_to.strip()
        if t.role == "assumption":
            assert "ASSUMPTION" in t.source


@pytest.mark.parametrize("quantity", [t.quantity for t in TARGETS])
def test_default_scenario_meets_target(quantity: str) -> None:
    table = default_report().set_index("quantity")
    row = table.loc[quantity]
    assert row["low"] <= row["model"] <= row["high"], (
        f"{quantity}: model {row['model']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}] "
        f"outside [{row['low']}, {row['high']}]"
    )
