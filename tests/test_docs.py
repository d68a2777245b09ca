"""docs/ODD.md must stay true to the code: its parameter tables are regenerated and compared.

The generator runs in a fresh interpreter so that schemes registered by other tests in
this process (user-defined test schemes) do not leak into the comparison.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from vbpsim.parameters import SECTIONS

ROOT = Path(__file__).resolve().parents[1]
ODD = ROOT / "docs" / "ODD.md"
SCRIPT = ROOT / "docs" / "make_parameter_tables.py"
HINT = "docs/ODD.md is out of date: run `python docs/make_parameter_tables.py --write`"


def _load_script():
    spec = importlib.util.spec_from_file_location("make_parameter_tables", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tables() -> str:
    """The generator's current output, from a fresh interpreter."""
    done = subprocess.run([sys.executable, str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def odd_text() -> str:
    return ODD.read_text(encoding="utf-8")


def test_parameter_block_matches_generator(tables, odd_text):
    block = _load_script().current_block(odd_text)
    assert block == tables, HINT


def test_every_scenario_field_appears_with_its_default(odd_text):
    gen = _load_script()
    block = gen.current_block(odd_text)
    rows = {line.split(" | ")[0].strip("| `"): line for line in block.splitlines() if line.startswith("| `")}
    for section, cls in SECTIONS.items():
        for name, info in cls.model_fields.items():
            path = f"{section}.{name}"
            assert path in rows, f"{path} missing from ODD.md; {HINT}"
            default = gen.format_value(info.get_default(call_default_factory=True))
            assert f"| {default} |" in rows[path], f"{path}: default {default} not in ODD.md; {HINT}"


def test_every_registered_scheme_appears(odd_text):
    names = subprocess.run(
        [sys.executable, "-c", "import vbpsim; print('\\n'.join(vbpsim.list_schemes()))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert names
    for name in names:
        assert f"`{name}`" in odd_text, f"scheme {name!r} missing from ODD.md; {HINT}"


def test_write_is_idempotent_and_keeps_the_rest(tmp_path, tables, odd_text):
    copy = tmp_path / "ODD.md"
    stale = odd_text.replace(_load_script().current_block(odd_text), "stale\n")
    copy.write_text(stale, encoding="utf-8")
    subprocess.run([sys.executable, str(SCRIPT), "--write", "--odd", str(copy)], cwd=ROOT, check=True)
    assert copy.read_text(encoding="utf-8") == odd_text
    check = subprocess.run([sys.executable, str(SCRIPT), "--check", "--odd", str(copy)], cwd=ROOT)
    assert check.returncode == 0


def test_odd_has_all_protocol_sections(odd_text):
    for heading in (
        "## 1. Purpose and patterns",
        "## 2. Entities, state variables and scales",
        "## 3. Process overview and scheduling",
        "## 4. Design concepts",
        "## 5. Initialization",
        "## 6. Input data",
        "## 7. Submodels",
        "## 8. Mechanisms not yet modelled",
        "## 9. Parameters",
    ):
        assert heading in odd_text


def test_every_scheme_parameter_is_described(tables):
    """New schemes (e.g. vbpsim.contracts) must document unit and meaning of each parameter."""
    undescribed = [line for line in tables.splitlines() if "not yet described here" in line]
    assert not undescribed, (
        "undescribed rows (add them to SCHEME_PARAMETERS or contracts.PARAMETER_DOCS):\n" + "\n".join(undescribed)
    )


def test_every_builtin_scenario_and_preset_is_documented(odd_text):
    names = subprocess.run(
        [sys.executable, "-c", "import vbpsim; print('\\n'.join(vbpsim.list_scenarios()))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "default" in names
    presets = odd_text[odd_text.index("### 6.1 Presets") : odd_text.index("## 7. Submodels")]
    for name in names:
        assert f"| `{name}` |" in odd_text, f"scenario {name!r} missing from the tables of ODD.md Section 6"
        if name not in ("default", "small", "large"):
            assert f"| `{name}` |" in presets, f"preset {name!r} missing from ODD.md Section 6.1 (Presets)"
