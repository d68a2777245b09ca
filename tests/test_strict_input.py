"""Plausible ranges and strict input (issue 7, item 5).

Every numeric parameter has a finite allowed range that contains its default; text, bytes
and booleans are never read as numbers by the Python API; an override that another
argument shadows is an error; and every hostile CLI input found by fuzzing ends in one
``error:`` line with exit code 2, without reading or echoing files it should not.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from pathlib import Path
from typing import Any

import annotated_types
import numpy as np
import pytest
from typer.testing import CliRunner

import vbpsim
from vbpsim import ParameterError, build_model, limits
from vbpsim.cli import app
from vbpsim.errors import VBPSimError
from vbpsim.parameters import SECTIONS, TABLE_RANGES, Scenario, build_scenario
from vbpsim.scenarios import MAX_EXTENDS, load_scenario
from vbpsim.schemes import SCHEMES, FeeForService, make_scheme

runner = CliRunner()
TINY = {"scenario": "small", "years": 1, "n_patients": 300, "history_years": 0}
TINY_TOML = "[population]\nn_patients = 300\n[simulation]\nyears = 1\nhistory_years = 0\n"
QUICK = ["--set", "n_patients=300", "--set", "history_years=0"]  # runs that must succeed, kept short


def numeric_fields() -> list[tuple[str, str, Any]]:
    """(section, field, pydantic FieldInfo) of every int or float scenario field."""
    return [
        (section, name, info)
        for section, cls in SECTIONS.items()
        for name, info in cls.model_fields.items()
        if info.annotation in (int, float)
    ]


def bounds(info: Any) -> tuple[float | None, float | None]:
    low = high = None
    for item in info.metadata:
        if isinstance(item, annotated_types.Ge | annotated_types.Gt):
            low = getattr(item, "ge", None) if isinstance(item, annotated_types.Ge) else item.gt
        if isinstance(item, annotated_types.Le | annotated_types.Lt):
            high = getattr(item, "le", None) if isinstance(item, annotated_types.Le) else item.lt
    return low, high


NUMERIC = numeric_fields()
NUMERIC_IDS = [f"{s}.{f}" for s, f, _ in NUMERIC]


def scheme_numeric_parameters() -> list[tuple[str, str, Any]]:
    """(scheme, parameter, default) of every numeric constructor parameter of every scheme."""
    out = []
    for name, cls in sorted(SCHEMES.items()):
        for p in inspect.signature(cls.__init__).parameters.values():
            numeric = isinstance(p.default, int | float) and not isinstance(p.default, bool)
            if p.name != "self" and numeric:
                out.append((name, p.name, p.default))
    return out


SCHEME_NUMERIC = scheme_numeric_parameters()
SCHEME_IDS = [f"{s}.{p}" for s, p, _ in SCHEME_NUMERIC]


# -- ranges ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("section", "field", "info"), NUMERIC, ids=NUMERIC_IDS)
def test_every_numeric_scenario_field_has_a_finite_range_containing_its_default(section, field, info):
    low, high = bounds(info)
    assert low is not None and high is not None, f"{section}.{field} needs both a lower and an upper bound"
    assert math.isfinite(low) and math.isfinite(high) and low < high
    assert low <= info.default <= high
    above = int(high) + 1 if info.annotation is int else high * 2 + 1
    with pytest.raises(ParameterError) as caught:
        Scenario().with_overrides(**{f"{section}.{field}": above})
    assert caught.value.name == f"{section}.{field}"


def test_keyed_tables_have_ranges_containing_their_defaults():
    tables = {
        f"{section}.{name}"
        for section, cls in SECTIONS.items()
        for name, info in cls.model_fields.items()
        if info.annotation == dict[str, float]
    }
    assert tables == set(TABLE_RANGES)
    defaults = Scenario()
    for name, (keys, low, high) in TABLE_RANGES.items():
        section, field = name.split(".")
        table = getattr(getattr(defaults, section), field)
        assert set(table) == set(keys)
        assert all(low <= v <= high for v in table.values()), name
        too_big = {**table, keys[0]: high * 2 + 1}
        with pytest.raises(ParameterError) as caught:
            Scenario().with_overrides(**{name: too_big})
        assert caught.value.name == f"{name}.{keys[0]}"


@pytest.mark.parametrize(("scheme", "parameter", "default"), SCHEME_NUMERIC, ids=SCHEME_IDS)
def test_every_numeric_scheme_parameter_has_a_finite_range_containing_its_default(scheme, parameter, default):
    cls = SCHEMES[scheme]
    assert parameter in cls.ranges, f"{scheme}.{parameter} has no range in {cls.__name__}.ranges"
    allowed = cls.ranges[parameter]
    assert math.isfinite(allowed.low) and math.isfinite(allowed.high)
    assert default in allowed
    with pytest.raises(ParameterError) as caught:
        make_scheme(scheme, {parameter: allowed.high * 2 + 1})
    assert caught.value.name == parameter


def test_presets_and_builtins_lie_inside_every_range():
    for name in vbpsim.list_scenarios():
        scenario = load_scenario(name)  # fails if a value is out of range
        make_scheme(scenario.contract.scheme, dict(scenario.contract.params))


@pytest.mark.parametrize(
    ("scheme", "overrides", "name"),
    [
        ("global_budget", {"trend": 1e200}, "trend"),
        ("ffs", {"arrival_rate": 1e300}, "innovation.arrival_rate"),
        ("ffs", {"innovation.arrival_rate": 1e6}, "innovation.arrival_rate"),
        ("ffs", {"fee_to_cost": 1e300}, "fee_to_cost"),
        ("ffs", {"fees": {"gp": 1e300}}, "fees.gp"),
        ("shared_savings", {"corridors": [(math.inf, 0.5)]}, "corridors"),
    ],
)
def test_values_that_overflowed_are_refused_before_the_run(scheme, overrides, name):
    with pytest.raises(ParameterError) as caught:
        build_model(scheme, "small", 1, 5, **overrides)
    assert caught.value.name == name


# -- strict types ---------------------------------------------------------------------------

NOT_NUMBERS = ["1", b"1", True, "0", "12"]


@pytest.mark.parametrize(("section", "field", "info"), NUMERIC, ids=NUMERIC_IDS)
def test_text_bytes_and_booleans_are_not_numbers(section, field, info):
    for junk in NOT_NUMBERS:
        with pytest.raises(ParameterError) as caught:
            build_scenario({section: {field: junk}})
        assert caught.value.name == f"{section}.{field}", junk
        assert "not read as numbers" in str(caught.value)


@pytest.mark.parametrize(("scheme", "parameter", "default"), SCHEME_NUMERIC, ids=SCHEME_IDS)
def test_scheme_parameters_refuse_text_bytes_and_booleans(scheme, parameter, default):
    for junk in NOT_NUMBERS:
        with pytest.raises(ParameterError) as caught:
            make_scheme(scheme, {parameter: junk})
        assert caught.value.name == parameter


def test_keyed_table_values_refuse_booleans_and_text():
    table = dict(Scenario().clinical.unit_cost)
    for junk in (True, "50"):
        with pytest.raises(ParameterError, match="clinical.unit_cost"):
            build_scenario({"clinical": {"unit_cost": {**table, "gp": junk}}})


def test_whole_number_fields_refuse_floats_with_a_hint():
    with pytest.raises(ParameterError, match="without a decimal point") as caught:
        build_scenario({"population": {"n_patients": 4e3}})
    assert caught.value.name == "population.n_patients"


def test_numpy_scalars_count_as_the_numbers_they_hold():
    scenario = Scenario().with_overrides(n_patients=np.int64(300), altruism_mean=np.float64(0.3))
    assert scenario.population.n_patients == 300 and type(scenario.population.n_patients) is int
    assert scenario.providers.altruism_mean == 0.3


# -- shadowed overrides ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "years", "overrides", "name"),
    [
        ("ffs", 1, {"simulation.years": 2}, "simulation.years"),
        ("ffs", None, {"contract.scheme": "capitation"}, "contract.scheme"),
        ("ffs", None, {"contract.params": {"fee_to_cost": 1.1}}, "contract.params"),
        ("ffs", None, {"params": {"fee_to_cost": 1.1}}, "params"),
        (None, None, {"contract.params": {"fee_to_cost": 1.1}, "fee_to_cost": 1.2}, "contract.params"),
        (FeeForService(), None, {"contract.scheme": "capitation"}, "contract.scheme"),
        ("status_quo", None, {"contract.length_years": 3}, "contract.length_years"),
        ("status_quo", None, {"contract.status_quo": "capitation"}, "contract.status_quo"),
    ],
    ids=["years", "scheme", "params", "flat-params", "scheme-kwargs", "scheme-object", "sq-length", "sq-scheme"],
)
def test_shadowed_overrides_raise_naming_the_override(scheme, years, overrides, name):
    with pytest.raises(ParameterError) as caught:
        build_model(scheme, "small", years, 0, **overrides)
    assert caught.value.name == name
    assert "shadowed by" in str(caught.value)


def test_overrides_that_nothing_shadows_still_apply():
    model = build_model(None, "small", None, 0, **{"simulation.years": 2, "contract.scheme": "capitation"})
    assert model.config.simulation.years == 2 and model.contract_under_study.name == "capitation"
    model = build_model(None, "small", 1, 0, **{"contract.params": {"fee_to_cost": 1.1}})
    assert model.contract_under_study.fee_to_cost == 1.1


# -- memory estimate ------------------------------------------------------------------------


def test_memory_estimate_grows_with_patients_and_providers():
    base = Scenario()
    more_patients = base.with_overrides(n_patients=base.population.n_patients * 10)
    more_gps = base.with_overrides(n_gp=base.providers.n_gp * 10)
    assert limits.estimate_memory(more_patients) > limits.estimate_memory(base)
    assert limits.estimate_memory(more_gps) > limits.estimate_memory(base)
    # the benchmark's 1M-patient run peaked at 0.93 GB (benchmarks/README.md): the estimate covers it
    million = base.with_overrides(n_patients=1_000_000, n_gp=240, n_hospital=60, n_rehab=50, n_nursing=50)
    assert limits.estimate_memory(million) >= 0.93e9


def test_run_larger_than_available_memory_is_refused_up_front(monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: 50_000_000)
    with pytest.raises(ParameterError, match="GB of memory") as caught:
        build_model("ffs", "small", 1, 0)  # 2,000 patients outweigh 12 providers
    assert caught.value.name == "population.n_patients"
    with pytest.raises(ParameterError) as caught:
        build_model("ffs", "small", 1, 0, n_patients=10, n_gp=9_000)
    assert caught.value.name == "providers.n_gp"


def test_unknown_available_memory_does_not_block(monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: None)
    assert build_model("ffs", **TINY).population.size == 300


# -- the CLI: one error line, exit code 2 ---------------------------------------------------


def one_error_line(args: list[str]) -> str:
    """Run the CLI; it must fail with exactly one ``error:`` line on stderr and exit code 2."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.exit_code, result.output[-500:], result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-500:]
    assert "Traceback" not in result.output
    return lines[0]


def write(folder: Path, text: str, name: str = "mine.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


RUN = ["run", "--scenario", "small", "--years", "1"]


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("[" * 100_000 + "]" * 100_000, "fees"),  # RecursionError inside the JSON parser
        (json.dumps({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}), "fees"),
    ],
    ids=["100000-deep", "9-deep"],
)
def test_cli_deeply_nested_set_value(value, name):
    line = one_error_line([*RUN, "--set", f"{name}={value}"])
    assert f"error: {name}=" in line and "nested" in line and len(line) < 300


@pytest.mark.parametrize(
    "text",
    [
        "x = " + "[" * 3000 + "]" * 3000,  # arrays: RecursionError inside tomllib
        "x = " + "{a = " * 3000 + "1" + "}" * 3000,  # inline tables
        "[" + ".".join(["a"] * 3000) + "]\n",  # dotted table header
    ],
    ids=["arrays", "inline-tables", "dotted-keys"],
)
def test_cli_toml_nested_3000_deep(tmp_path, text):
    file = write(tmp_path, text)
    assert "nested more than" in one_error_line(["run", "--scenario", str(file)])


def test_cli_extends_chain_of_1200_files(tmp_path):
    for i in range(1200):
        write(tmp_path, f'extends = "f{i + 1}.toml"\n', f"f{i}.toml")
    write(tmp_path, TINY_TOML, "f1200.toml")
    line = one_error_line(["run", "--scenario", str(tmp_path / "f0.toml")])
    assert f"at most {MAX_EXTENDS} files" in line


def test_extends_chain_within_the_limit_loads(tmp_path):
    for i in range(MAX_EXTENDS - 1):
        write(tmp_path, f'extends = "f{i + 1}.toml"\n', f"f{i}.toml")
    write(tmp_path, TINY_TOML, f"f{MAX_EXTENDS - 1}.toml")
    assert load_scenario(tmp_path / "f0.toml").population.n_patients == 300


@pytest.mark.parametrize(
    ("setting", "name"),
    [
        ("n_patients=4e9", "population.n_patients"),
        ("n_patients=4000000000", "population.n_patients"),
        ("n_gp=2e9", "providers.n_gp"),
        ("n_gp=2000000000", "providers.n_gp"),
    ],
)
def test_cli_huge_populations_are_refused(setting, name):
    assert one_error_line([*RUN, "--set", setting]).startswith(f"error: {name}=")


def test_cli_refuses_a_run_larger_than_available_memory(monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: 1_000_000_000)
    line = one_error_line([*RUN, "--set", "n_patients=5000000"])
    assert line.startswith("error: population.n_patients=5000000") and "GB of memory" in line


@pytest.mark.parametrize("name", ["[/bold]", "[red]x[/red]", "evil\x1b[31mRED\x1b]0;title\x07"])
def test_cli_shows_markup_and_escapes_in_names_literally(tmp_path, name):
    file = write(tmp_path, f"name = {json.dumps(name)}\n{TINY_TOML}")
    result = runner.invoke(app, ["run", "--scenario", str(file)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    shown = result.stdout.replace("\n", "").replace(" ", "")
    assert name.replace("\x1b", "\\x1b").replace("\x07", "\\x07").replace(" ", "") in shown


def test_cli_error_lines_never_carry_terminal_escapes(tmp_path):
    file = write(tmp_path, '[population]\nn_patients = "\\u001b[2J"\n', "esc\x1b[2J.toml")
    line = one_error_line(["run", "--scenario", str(file)])
    assert "\x1b" not in line and "\\x1b" in line


def test_cli_50_mb_one_line_file_gets_a_short_error(tmp_path):
    file = tmp_path / "big.toml"
    file.write_text("x = " + "y" * 50_000_000 + "\n")
    assert len(one_error_line(["run", "--scenario", str(file)])) < 300


def test_cli_long_invalid_line_is_cut_to_an_excerpt(tmp_path):
    file = write(tmp_path, 'x = "' + "y" * 900_000 + "\n")
    line = one_error_line(["run", "--scenario", str(file)])
    assert "line 1" in line and "not valid TOML" in line and len(line) < 300 + len(str(file))


SECRET = "TOP_SECRET_VALUE_4711"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A file outside the scenario folder, with content that must never be read or echoed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "secret.toml"
    path.write_text(f'description = "{SECRET}"\nHOME = "{SECRET}"\n')
    (outside / "environ").write_text(f"HOME={SECRET}\n")
    return path


@pytest.mark.parametrize(
    "reference",
    ["ABSOLUTE_TOML", "ABSOLUTE_ENVIRON", "/proc/self/environ", "../outside/secret.toml", "link.toml", "plain.txt"],
)
def test_cli_extends_is_confined_to_builtins_and_the_files_folder(tmp_path, secret_file, reference):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "link.toml").symlink_to(secret_file)
    (folder / "plain.txt").write_text(f"{SECRET}\n")
    reference = {
        "ABSOLUTE_TOML": str(secret_file),
        "ABSOLUTE_ENVIRON": str(secret_file.parent / "environ"),
    }.get(reference, reference)
    child = write(folder, f"extends = {json.dumps(reference)}\n{TINY_TOML}")
    line = one_error_line(["run", "--scenario", str(child)])
    assert "extends=" in line and "folder" in line
    assert SECRET not in line


@pytest.mark.parametrize("target", ["environ", "secret.toml", "/proc/self/environ"])
def test_cli_scenarios_show_prints_only_valid_scenarios(secret_file, target):
    path = target if target.startswith("/") else str(secret_file.parent / target)
    line = one_error_line(["scenarios", "--show", path])
    assert "environ" not in target or "not a .toml file" in line
    assert SECRET not in line or target == "secret.toml"  # a .toml file's own bad key is named
    result = runner.invoke(app, ["scenarios", "--show", path])
    assert SECRET not in result.stdout


def test_cli_scenarios_show_prints_a_valid_user_file(tmp_path):
    file = write(tmp_path, TINY_TOML)
    result = runner.invoke(app, ["scenarios", "--show", str(file)])
    assert result.exit_code == 0 and result.stdout == TINY_TOML


def test_cli_save_ignores_a_planted_temporary_link(tmp_path):
    out, victim = tmp_path / "out", tmp_path / "victim"
    out.mkdir()
    (out / "summary.json.tmp").symlink_to(victim)
    result = runner.invoke(app, [*RUN, *QUICK, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert not victim.exists()  # the link's target was never written
    assert json.loads((out / "summary.json").read_text())["scheme"] == "ffs"
    assert not [p for p in os.listdir(out) if p.endswith(".tmp") and p != "summary.json.tmp"]


@pytest.mark.parametrize("command", ["run", "compare"])
def test_cli_save_refuses_result_files_that_are_links(tmp_path, command):
    out, victim = tmp_path / "out", tmp_path / "victim"
    out.mkdir()
    victim.write_text("untouched")
    target = "summary.json" if command == "run" else "runs.csv"
    (out / target).symlink_to(victim)
    if command == "run":
        args = [*RUN, *QUICK]
    else:
        quick = write(tmp_path, TINY_TOML, "quick.toml")
        args = ["compare", "--scenario", str(quick), "--years", "1", "--seeds", "1", "--schemes", "ffs"]
    line = one_error_line([*args, "--out", str(out)])
    assert "symbolic link" in line
    assert victim.read_text() == "untouched"


@pytest.mark.parametrize(
    "args",
    [
        ["--scheme", "global_budget", "--set", "trend=1e200"],
        ["--set", "arrival_rate=1e300"],
        ["--set", "fee_to_cost=1e300"],
        ["--set", "simulation.years=3"],
        ["--scheme", "ffs", "--set", "contract.scheme=capitation"],
        ["--set", "n_patients=true"],
    ],
    ids=["trend", "arrival_rate", "fee_to_cost", "shadowed-years", "shadowed-scheme", "bool-as-number"],
)
def test_cli_overflow_and_shadowing_cases(args):
    one_error_line([*RUN, *args])


def test_cli_set_still_reads_text_as_json():
    result = runner.invoke(app, [*RUN, *QUICK, "--set", "altruism_mean=0.3"])
    assert result.exit_code == 0, result.output


def test_errors_are_vbpsim_errors():
    with pytest.raises(VBPSimError):
        build_scenario({"population": {"n_patients": "300"}})


def test_calibration_searches_only_allowed_values():
    from vbpsim.calibration import FREE_PARAMETERS

    for name, (low, high) in FREE_PARAMETERS.items():
        Scenario().with_overrides(**{name: low})
        Scenario().with_overrides(**{name: high})
