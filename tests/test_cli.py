"""The command-line interface: listings, one run, a comparison and clean one-line errors."""

import json

import pytest
from typer.testing import CliRunner

from vbpsim.cli import app, parse_overrides
from vbpsim.errors import ParameterError
from vbpsim.metrics import DIMENSIONS

runner = CliRunner()
FAST = ["--scenario", "small", "--years", "1"]


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_schemes_lists_base_schemes_and_p4p_addon():
    result = invoke("schemes")
    assert result.exit_code == 0, result.output
    for name in ("ffs", "capitation", "per_case", "per_period", "mixed"):
        assert name in result.stdout
    assert "+p4p" in result.stdout


def test_scenarios_lists_builtins():
    result = invoke("scenarios")
    assert result.exit_code == 0, result.output
    for name in ("default", "small", "large"):
        assert name in result.stdout


def test_run_writes_summary_and_timeseries(tmp_path):
    out = tmp_path / "run"
    result = invoke("run", "--scheme", "capitation", *FAST, "--seed", "3", "--out", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["value_dimensions"]) == set(DIMENSIONS)
    assert summary["scheme"] == "capitation"
    assert summary["seed"] == 3
    lines = (out / "timeseries.csv").read_text().splitlines()
    assert len(lines) == 1 + 12  # header + one year of monthly steps
    assert "quality" in result.stdout and "intensity ratio" in result.stdout
    assert result.stderr == ""  # no progress bar when stderr is not a terminal


def test_run_overrides_reach_the_model(tmp_path):
    result = invoke(
        "run",
        *FAST,
        "--set",
        "fee_to_cost=1.4",
        "--set",
        "providers.altruism_mean=0.2",
        "--out",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "fee_to_cost=1.4" in summary["parameters"]["contract"]
    assert summary["parameters"]["scenario"]["providers"]["altruism_mean"] == 0.2


@pytest.mark.parametrize(
    ("args", "parameter"),
    [
        (["--scheme", "no_such_scheme"], "scheme"),
        (["--set", "fee_to_cost=-1"], "fee_to_cost"),
        (["--years", "0"], "years"),
        (["--scheme", "mixed", "--set", "ffs_share=1.5"], "ffs_share"),
        (["--set", "no_such_parameter=1"], "no_such_parameter"),
        (["--set", "providers.no_such_field=1"], "providers.no_such_field"),
        (["--seed", "-1"], "seed"),
        (["--seed", "abc"], "--seed"),
        (["--set", "fee_to_cost"], "--set"),
        (["--scenario", "nowhere"], "scenario"),
    ],
)
def test_bad_input_is_one_line_error_with_exit_2(args, parameter):
    result = invoke("run", "--scenario", "small", "--years", "1", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert parameter in lines[0]
    assert "Traceback" not in result.output


def test_compare_prints_a_table(tmp_path):
    result = invoke(
        "compare",
        "--scenario",
        "small",
        "--seeds",
        "1",
        "--years",
        "1",
        "--schemes",
        "ffs,capitation",
        "--out",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert "ffs" in result.stdout and "capitation" in result.stdout
    assert "quality" in result.stdout and "NMB" in result.stdout
    runs = (tmp_path / "runs.csv").read_text().splitlines()
    assert len(runs) == 1 + 3  # header + one run per scheme, and the status quo continued
    assert any(line.startswith("status_quo,") for line in runs)
    assert (tmp_path / "comparison.csv").read_text().startswith("scheme,metric,mean,ci_low,ci_high")


def test_compare_default_schemes_are_all_valid():
    result = invoke("compare", "--scenario", "small", "--seeds", "1", "--years", "1")
    assert result.exit_code == 0, result.output
    assert "capitation+p4p" in result.stdout


@pytest.mark.parametrize(
    ("args", "parameter"),
    [(["--seeds", "0"], "seeds"), (["--schemes", "ffs,bogus"], "scheme")],
)
def test_compare_bad_input(args, parameter):
    result = invoke("compare", "--scenario", "small", "--years", "1", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and parameter in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_parse_overrides_reads_json_then_text():
    parsed = parse_overrides(["a=1.4", "b=true", "c=abc", 'fees={"gp": 30}', "d=x=y"])
    assert parsed == {"a": 1.4, "b": True, "c": "abc", "fees": {"gp": 30}, "d": "x=y"}
    with pytest.raises(ParameterError, match="--seed"):
        parse_overrides(["seed=1"])


def test_no_command_shows_help():
    result = invoke()
    assert result.exit_code == 0
    assert "compare" in result.stdout and "schemes" in result.stdout
