"""Scenarios as TOML files: built-ins ship and run, user files load, bad files fail in one line."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

import vbpsim
from vbpsim.cli import app
from vbpsim.errors import ParameterError, VBPSimError
from vbpsim.parameters import SECTIONS, Scenario
from vbpsim.scenarios import (
    ScenarioFileError,
    builtin_files,
    list_scenarios,
    load_scenario,
    render_default_toml,
    scenario_dir,
    scenario_text,
    scenario_to_toml,
)

runner = CliRunner()
FAST = {"years": 1, "n_patients": 300}


def write(folder: Path, text: str, name: str = "mine.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_one_line(exc: BaseException) -> str:
    message = str(exc)
    assert message and "\n" not in message, message
    return message


# ----------------------------------------------------------------------------- built-ins


def test_builtins_ship_as_toml_files_inside_the_package():
    files = builtin_files()
    assert {"default", "small", "large"} <= set(files)
    assert list(files)[0] == "default"
    for path in files.values():
        assert path.parent == scenario_dir() and path.suffix == ".toml"
        assert Path(vbpsim.__file__).parent in path.parents
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "scenario_files/*.toml" in pyproject["tool"]["setuptools"]["package-data"]["vbpsim"]


def test_list_scenarios_reads_descriptions_from_the_files():
    listed = list_scenarios()
    for name, path in builtin_files().items():
        assert listed[name] == tomllib.loads(path.read_text())["description"]
        assert listed[name]


@pytest.mark.parametrize("name", sorted(builtin_files()))
def test_every_builtin_loads_and_runs_one_year(name):
    scenario = load_scenario(name)
    assert scenario.name == name
    result = vbpsim.run(None, scenario=name, **FAST)
    assert result.scenario == name
    assert all(math.isfinite(v) for v in result.value_dimensions.values())


def test_builtins_keep_their_sizes():
    small, large = load_scenario("small"), load_scenario("large")
    assert small.population.n_patients == 2_000 and small.providers.n_gp == 6
    assert large.population.n_patients == 100_000 and large.providers.n_gp == 120


def test_default_toml_lists_every_parameter_at_its_code_default():
    """default.toml is the analysts' template: it must stay true to parameters.py.

    If this fails after a parameter was added or changed, regenerate the file from the code
    with ``vbpsim.scenarios.render_default_toml()`` (REGENERATE below).
    """
    path = builtin_files()["default"]
    data = tomllib.loads(path.read_text())
    for section, cls in SECTIONS.items():
        assert section in data, f"default.toml lacks [{section}]"
        missing = set(cls.model_fields) - set(data[section])
        assert not missing, f"default.toml lacks {section}.{sorted(missing)}"
    in_file, in_code = load_scenario("default").model_dump(), Scenario().model_dump()
    drift = [
        f"{section}.{field}: file {value!r} != code {in_code[section][field]!r}"
        for section in SECTIONS
        for field, value in in_file[section].items()
        if value != in_code[section][field]
    ]
    assert not drift, f"default.toml differs from the code defaults: {drift}; {REGENERATE}"
    assert path.read_text() == render_default_toml(), REGENERATE


REGENERATE = (
    'regenerate: python -c "from vbpsim.scenarios import render_default_toml as r; '
    "open('vbpsim/scenario_files/default.toml', 'w').write(r())\""
)


@pytest.mark.parametrize("name", sorted(builtin_files()))
def test_written_scenario_loads_back_unchanged(tmp_path, name):
    scenario = load_scenario(name)
    path = write(tmp_path, scenario_to_toml(scenario), f"{name}.toml")
    assert load_scenario(path) == scenario


# ----------------------------------------------------------------------------- user files


def test_user_file_loads_and_runs(tmp_path):
    path = write(
        tmp_path,
        """
description = "My contract"
[population]
n_patients = 300
[providers]
n_gp = 4
n_hospital = 1
n_rehab = 1
n_nursing = 1
altruism_mean = 0.2
[contract]
scheme = "capitation+p4p"
params = { rate_to_cost = 1.0, p4p_bonus_share = 0.1 }
length_years = 3
[simulation]
years = 1
""",
        "my_contract.toml",
    )
    scenario = load_scenario(path)
    assert scenario.name == "my_contract"  # the file stem
    assert scenario.providers.altruism_mean == 0.2
    assert load_scenario(str(path)) == scenario
    result = vbpsim.run(None, scenario=path)  # scheme=None: the file's contract
    assert result.scenario == "my_contract"
    assert result.scheme == "capitation+p4p"
    assert result.years == 1
    assert vbpsim.run("ffs", scenario=str(path)).scheme == "ffs"


def test_name_in_file_wins_over_stem(tmp_path):
    path = write(tmp_path, 'name = "pilot"\n')
    assert load_scenario(path).name == "pilot"


def test_extends_builtin_and_relative_file(tmp_path):
    text = 'extends = "small"\n[contract]\nscheme = "ffs"\nparams = { fee_to_cost = 1.4 }\n'
    sub = tmp_path / "sub"
    sub.mkdir()
    base = write(sub, text, "base.toml")  # a base lives in the extending file's folder or below it
    child = write(tmp_path, 'extends = "sub/base.toml"\n[providers]\naltruism_mean = 0.1\n', "child.toml")
    scenario = load_scenario(child)
    assert scenario.name == "child"
    assert scenario.population.n_patients == 2_000  # from small
    assert scenario.contract.params == {"fee_to_cost": 1.4}  # from base
    assert scenario.providers.altruism_mean == 0.1 and scenario.providers.n_gp == 6  # merged per key
    assert load_scenario(base).description == ""  # descriptions are not inherited


def test_extends_with_a_new_scheme_drops_the_base_params(tmp_path):
    write(tmp_path, '[contract]\nscheme = "ffs"\nparams = { fee_to_cost = 1.4 }\n', "base.toml")
    child = write(tmp_path, 'extends = "base.toml"\n[contract]\nscheme = "capitation"\n', "child.toml")
    assert load_scenario(child).contract.params == {}


def test_extends_cycle_and_missing_base_fail_cleanly(tmp_path):
    write(tmp_path, 'extends = "b.toml"\n', "a.toml")
    write(tmp_path, 'extends = "a.toml"\n', "b.toml")
    with pytest.raises(ScenarioFileError, match="cycle") as info:
        load_scenario(tmp_path / "a.toml")
    assert_one_line(info.value)
    with pytest.raises(ScenarioFileError, match="extends='nowhere.toml'"):
        load_scenario(write(tmp_path, 'extends = "nowhere.toml"\n'))


def test_code_in_a_file_is_only_ever_a_string(tmp_path):
    marker = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {marker}')"
    path = write(tmp_path, f'description = "{payload}"\nname = "{payload}"\n')
    scenario = load_scenario(path)
    assert scenario.description == payload and scenario.name == payload
    with pytest.raises(ParameterError) as info:
        load_scenario(write(tmp_path, f'[population]\nn_patients = "{payload}"\n', "bad.toml"))
    assert "population.n_patients" in assert_one_line(info.value)
    with pytest.raises(ParameterError):
        load_scenario(write(tmp_path, f'[contract]\nscheme = "{payload}"\n', "bad2.toml"))
    with pytest.raises(ParameterError):
        load_scenario(write(tmp_path, f'extends = "{payload}"\n', "bad3.toml"))
    assert not marker.exists()


# ----------------------------------------------------------------------------- errors

BAD_FILES = [
    # (label, TOML text, key path in the message, value in the message)
    ("wrong type", '[population]\nn_patients = "many"\n', "population.n_patients", "'many'"),
    ("wrong type bool", "[mechanisms]\nmultitasking = 3\n", "mechanisms.multitasking", "3"),
    ("section not a table", "population = 5\n", "population", "5"),
    ("unknown top-level key", "populaton = { n_patients = 100 }\n", "populaton", "n_patients"),
    ("unknown nested key", "[population]\nn_patient = 500\n", "population.n_patient", "500"),
    ("unknown table key", "[clinical]\nunit_cost = { gp = 50.0 }\n", "clinical.unit_cost", "'gp'"),
    ("out of range", "[population]\nn_patients = 5\n", "population.n_patients", "5"),
    ("out of range years", "[simulation]\nyears = 0\n", "simulation.years", "0"),
    ("share above 1", "[population]\nprivate_risk_share = 1.5\n", "population.private_risk_share", "1.5"),
    ("share below 0", "[effort]\nmeasured_share = -0.1\n", "effort.measured_share", "-0.1"),
    ("infinite", "[providers]\nloss_aversion = inf\n", "providers.loss_aversion", "inf"),
    ("nan", "[providers]\naltruism_mean = nan\n", "providers.altruism_mean", "nan"),
    ("not a choice", '[groups]\ndistribution = "random"\n', "groups.distribution", "'random'"),
    ("inconsistent ages", "[population]\nage_min = 90\nage_max = 50\n", "population.age_min", "90"),
    ("unknown scheme", '[contract]\nscheme = "capitaton"\n', "contract.scheme", "'capitaton'"),
    ("unknown add-on", '[contract]\nscheme = "ffs+bonus"\n', "contract.scheme", "'ffs+bonus'"),
    (
        "unknown scheme parameter",
        '[contract]\nscheme = "ffs"\nparams = { fee_to_costs = 1.4 }\n',
        "contract.params.fee_to_costs",
        "1.4",
    ),
    (
        "bad scheme parameter value",
        '[contract]\nscheme = "ffs"\nparams = { fee_to_cost = -1 }\n',
        "contract.params.fee_to_cost",
        "-1",
    ),
    (
        "unknown add-on parameter",
        '[contract]\nscheme = "capitation+p4p"\nparams = { p4p_bonus = 0.1 }\n',
        "contract.params.p4p_bonus",
        "0.1",
    ),
    (
        "add-on parameter without the add-on",
        '[contract]\nscheme = "capitation"\nparams = { p4p_bonus_share = 0.1 }\n',
        "contract.params.p4p_bonus_share",
        "0.1",
    ),
    (
        "carve-out of no known service",
        '[contract]\nscheme = "bundle"\nparams = { covered = ["xray"] }\n',
        "contract.params.covered",
        "xray",
    ),
    ("extends not a string", "extends = 3\n", "extends", "3"),
]


@pytest.mark.parametrize(("label", "text", "path", "value"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_file_gives_one_line_error_naming_file_key_and_value(tmp_path, label, text, path, value):
    file = write(tmp_path, text)
    with pytest.raises(ParameterError) as info:
        load_scenario(file)
    message = assert_one_line(info.value)
    assert isinstance(info.value, ScenarioFileError)
    assert message.startswith(f"{file}: "), message
    assert f" {path}=" in message, message
    assert value in message, message
    assert "not allowed" in message


def test_unknown_top_level_key_lists_what_is_allowed(tmp_path):
    with pytest.raises(ParameterError, match="allowed: .*'extends'.*'population'") as info:
        load_scenario(write(tmp_path, "colour = 1\n"))
    assert info.value.name == "colour"


def test_bad_toml_syntax_names_file_and_line(tmp_path):
    file = write(tmp_path, "[population]\nn_patients 500\n")
    with pytest.raises(VBPSimError) as info:
        load_scenario(file)
    message = assert_one_line(info.value)
    assert str(file) in message and "line 2" in message and "n_patients 500" in message
    assert "not valid TOML" in message


def test_duplicate_key_is_a_syntax_error(tmp_path):
    with pytest.raises(VBPSimError, match="not valid TOML"):
        load_scenario(write(tmp_path, "[population]\nn_patients = 500\nn_patients = 600\n"))


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nowhere.toml"
    for ref in (missing, str(missing)):
        with pytest.raises(ParameterError) as info:
            load_scenario(ref)
        message = assert_one_line(info.value)
        assert str(missing) in message and "no such file" in message


def test_unknown_name_suggests_a_builtin():
    with pytest.raises(ParameterError, match="did you mean 'small'"):
        load_scenario("smal")


def test_directory_and_binary_file_fail_cleanly(tmp_path):
    with pytest.raises(ParameterError, match="not a file"):
        load_scenario(tmp_path)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(VBPSimError, match="not UTF-8") as info:
        load_scenario(binary)
    assert_one_line(info.value)


def test_run_and_build_model_fail_on_load_not_mid_run(tmp_path):
    file = write(tmp_path, '[contract]\nscheme = "ffs"\nparams = { fee_to_costs = 1.4 }\n')
    with pytest.raises(ParameterError, match="contract.params.fee_to_costs"):
        vbpsim.run(None, scenario=file)
    with pytest.raises(ParameterError, match="contract.params.fee_to_costs"):
        vbpsim.build_model(None, scenario=str(file))


# ----------------------------------------------------------------------------- CLI


def test_cli_scenarios_lists_builtins_and_where_they_live():
    result = runner.invoke(app, ["scenarios"])
    assert result.exit_code == 0, result.output
    for name in builtin_files():
        assert name in result.stdout
    assert "scenario_files" in result.stdout.replace("\n", "")


def test_cli_scenarios_show_prints_the_file_verbatim():
    result = runner.invoke(app, ["scenarios", "--show", "default"])
    assert result.exit_code == 0, result.output
    assert result.stdout == scenario_text("default")
    assert "[population]" in result.stdout  # not eaten as rich markup


def test_cli_scenarios_show_resolved_loads_back(tmp_path):
    result = runner.invoke(app, ["scenarios", "--show", "small", "--resolved"])
    assert result.exit_code == 0, result.output
    assert load_scenario(write(tmp_path, result.stdout, "small.toml")) == load_scenario("small")


def test_cli_run_accepts_a_file(tmp_path):
    file = write(
        tmp_path,
        '[population]\nn_patients = 300\n[contract]\nscheme = "capitation"\n[simulation]\nyears = 1\n',
        "pilot.toml",
    )
    result = runner.invoke(app, ["run", "--scenario", str(file)])
    assert result.exit_code == 0, result.output
    assert "capitation on 'pilot'" in result.stdout.replace("\n", " ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[population]\nn_patients = -3\n", "population.n_patients=-3"),
        ('[contract]\nscheme = "nope"\n', "contract.scheme='nope'"),
        ("[population\n", "not valid TOML"),
    ],
)
def test_cli_bad_file_prints_one_error_line_and_exits_2(tmp_path, text, expected):
    file = write(tmp_path, text)
    commands = (["run", "--scenario"], ["compare", "--seeds", "1", "--scenario"], ["scenarios", "--resolved", "--show"])
    for command in commands:
        result = runner.invoke(app, [*command, str(file)])
        assert result.exit_code == 2, result.output
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert str(file) in lines[0] and expected in lines[0]


def test_cli_missing_file_exits_2(tmp_path):
    result = runner.invoke(app, ["run", "--scenario", str(tmp_path / "gone.toml")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: scenario=") and "no such file" in result.stderr
    assert len(result.stderr.splitlines()) == 1


# ----------------------------------------------------------------------------- properties


def toml_text(data: dict[str, Any]) -> str:
    """Write a scenario-shaped dict as TOML (tomli_w is not a dependency)."""
    return scenario_to_toml(data)


FIELD_PATHS = [(section, field) for section, cls in SECTIONS.items() for field in cls.model_fields]
JUNK = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.booleans(),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=6), st.integers(-5, 5), max_size=3),
)
KEY = st.text(min_size=1, max_size=12)


@st.composite
def mutated_scenarios(draw) -> dict[str, Any]:
    """A valid scenario dict with one to three keys replaced by junk or added."""
    data = Scenario().model_dump()
    data["contract"]["scheme"] = draw(st.sampled_from(["ffs", "capitation", "mixed", "bundle", "capitation+p4p"]))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["replace", "add_nested", "add_top", "param"]))
        if kind == "replace":
            section, field = draw(st.sampled_from(FIELD_PATHS))
            data[section][field] = draw(JUNK)
        elif kind == "add_nested":
            section = draw(st.sampled_from(sorted(SECTIONS)))
            data[section][draw(KEY)] = draw(JUNK)
        elif kind == "add_top":
            data[draw(KEY)] = draw(JUNK)
        else:
            data["contract"]["params"][draw(KEY)] = draw(JUNK)
    return data


@given(mutated_scenarios())
def test_random_scenario_files_load_or_fail_with_a_one_line_vbpsim_error(tmp_path_factory, data):
    file = write(tmp_path_factory.mktemp("h"), toml_text(data))
    try:
        scenario = load_scenario(file)
    except VBPSimError as exc:
        message = assert_one_line(exc)
        assert str(file) in message
    else:
        assert isinstance(scenario, Scenario)


NUMERIC_FIELDS = [
    (section, field)
    for section, cls in SECTIONS.items()
    for field, info in cls.model_fields.items()
    if info.annotation in (int, float)
]


# Surely invalid for every number field: text of any kind (numeric text such as "0" or "12"
# included: types are strict, nothing is coerced), booleans, lists, non-finite numbers, and
# 1e300, above every field's finite upper bound.
SURELY_NOT_A_NUMBER = st.one_of(
    st.text(max_size=8),
    st.from_regex(r"-?[0-9]{1,4}(\.[0-9]{1,2})?", fullmatch=True),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.sampled_from([math.inf, -math.inf, math.nan, 1e300]),
)


@given(
    st.sampled_from(NUMERIC_FIELDS),
    SURELY_NOT_A_NUMBER,
    st.sampled_from(["value", "unknown_nested", "unknown_top"]),
)
def test_surely_invalid_files_always_raise_vbpsim_error(tmp_path_factory, target, junk, where):
    section, field = target
    if where == "value":
        data, path = {section: {field: junk}}, f"{section}.{field}"
    elif where == "unknown_nested":
        data, path = {section: {f"{field}_x": 1}}, f"{section}.{field}_x"
    else:
        data, path = {f"{section}_x": {field: 1}}, f"{section}_x"
    file = write(tmp_path_factory.mktemp("h"), toml_text(data))
    with pytest.raises(VBPSimError) as info:
        load_scenario(file)
    assert f" {path}=" in assert_one_line(info.value)


@given(st.text(max_size=40))
def test_any_string_value_round_trips_through_toml(tmp_path_factory, text):
    file = write(tmp_path_factory.mktemp("h"), toml_text({"description": text}))
    assert load_scenario(file).description == text
