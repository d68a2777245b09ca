"""Headless sweeps: specs, designs, executors, the Parquet store, resume, sensitivity and reports.

Everything runs on the small world for one year without a status-quo history
(``simulation.history_years = 0``) and with tiny designs, so the file stays fast: these
tests are about the sweep machinery, not about the model's behaviour.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from vbpsim.cli import app
from vbpsim.errors import ParameterError
from vbpsim.metrics import DIMENSIONS
from vbpsim.sweep import DaskExecutor, SpecError, SweepDirError, load_results, load_spec, parse_spec, run_sweep

BIN = Path(sys.executable).parent
VBPSIM = [str(BIN / "vbpsim")]
runner = CliRunner()

GRID = """
name = "grid"
scenario = "small"
years = 1
set = { "simulation.history_years" = 0 }
[arms]
ffs = "ffs"
cap = "capitation"
[parameters.payment_level]
range = [1.0, 1.4]
levels = 2
keys = { ffs = "fee_to_cost", cap = "rate_to_cost" }
[parameters."providers.altruism_mean"]
values = [0.2, 0.6]
[seeds]
replications = 2
base = 11
"""
#: Columns that depend on where and when a run happened, not on what it computed.
WHERE_AND_WHEN = ["run_seconds", "cpu_seconds", "worker", "finished_at"]


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def computed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=WHERE_AND_WHEN).sort_values("run_id", ignore_index=True)


@pytest.fixture(scope="module")
def grid_serial(tmp_path_factory):
    """The grid sweep run in this process: the reference for every other executor."""
    folder = tmp_path_factory.mktemp("grid")
    spec = write(folder, GRID)
    outcome = run_sweep(spec, folder / "serial", workers=1)
    assert (outcome.finished, outcome.failed) == (16, 0)
    return spec, folder / "serial", load_results(folder / "serial")


# ----------------------------------------------------------------------------- specs and designs


def spec_with(design: str, samples: int = 0) -> str:
    return f"""
scenario = "small"
years = 1
set = {{ "simulation.history_years" = 0 }}
schemes = ["ffs"]
[parameters."providers.altruism_mean"]
range = [0.1, 0.7]
[parameters.fee_to_cost]
range = [1.0, 1.5]
[parameters."purchaser.risk_adjustment"]
values = [0.0, 0.5, 1.0]
[design]
kind = "{design}"
{f"samples = {samples}" if samples else ""}
[seeds]
replications = 2
"""


@pytest.mark.parametrize(
    ("design", "samples", "points"),
    [("grid", 0, 3 * 3 * 3), ("lhs", 10, 10), ("sobol", 8, 8 * (3 + 2)), ("morris", 5, 5 * (3 + 1))],
)
def test_each_design_has_the_expected_runs_and_covers_its_ranges(tmp_path, design, samples, points):
    spec = load_spec(write(tmp_path, spec_with(design, samples)))
    jobs = spec.jobs()
    assert spec.n_points == points and len(jobs) == spec.n_runs == points * 2
    assert len({j.run_id for j in jobs}) == len(jobs)
    values = pd.DataFrame(spec.points())
    altruism, fee = values["providers.altruism_mean"], values["fee_to_cost"]
    assert altruism.between(0.1, 0.7).all() and fee.between(1.0, 1.5).all()
    assert set(values["purchaser.risk_adjustment"]) == {0.0, 0.5, 1.0}
    spread = 0.25 if design == "lhs" else 0.1  # every design reaches both ends of each range
    assert altruism.min() < 0.1 + spread * 0.6 and altruism.max() > 0.7 - spread * 0.6
    if design == "lhs":  # one point in each of the n strata of every range
        strata = np.floor((altruism - 0.1) / 0.6 * samples).clip(0, samples - 1)
        assert sorted(strata) == list(range(samples))


def test_seeds_are_common_across_arms_and_points_and_differ_across_replications(grid_serial):
    spec = load_spec(grid_serial[0])
    jobs = spec.jobs()
    by_rep = {}
    for job in jobs:
        by_rep.setdefault(job.replication, set()).add(job.seed)
    assert all(len(seeds) == 1 for seeds in by_rep.values())
    assert len({s for seeds in by_rep.values() for s in seeds}) == spec.replications
    per_point = parse_spec({**_toml(GRID), "seeds": {"replications": 2, "policy": "per_point"}}, source="x.toml")
    pairs = {(j.point, j.replication): j.seed for j in per_point.jobs()}
    assert len(set(pairs.values())) == len(pairs)  # fresh seeds per point, still shared by arms


def _toml(text: str) -> dict:
    import tomllib

    data = tomllib.loads(text)
    return data


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ('[parameters."providers.no_such_thing"]\nvalues = [1, 2]', "parameters.providers.no_such_thing"),
        ("[parameters.no_such_fee]\nrange = [1.0, 2.0]", "parameters.no_such_fee"),
        ('[parameters."providers.altruism_mean"]\nrange = [0.3, 0.3]', "parameters.providers.altruism_mean.range"),
        ('[parameters."providers.altruism_mean"]\nvalues = []', "parameters.providers.altruism_mean.values"),
        ('[parameters."providers.altruism_mean"]\nrange = [0.1, 7.0]', "parameters.providers.altruism_mean"),
        ('[design]\nkind = "factorial"', "design.kind"),
        ('[design]\nkind = "sobol"\nsamples = 6', "design.samples"),
        ('[arms]\nx = "no_such_scheme"', "arms.x"),
        ('colour = "blue"', "colour"),
    ],
)
def test_a_bad_spec_fails_before_any_run_naming_file_key_and_value(tmp_path, change, key):
    text = 'scenario = "small"\nyears = 1\n' + change + "\n"
    if "[arms]" not in change:
        text = 'schemes = ["ffs"]\n' + text
    if "[parameters" not in change and "[design]" in change:
        text += '[parameters."providers.altruism_mean"]\nrange = [0.1, 0.5]\n[parameters.fee_to_cost]\nrange = [1, 2]\n'
    spec = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        run_sweep(spec, tmp_path / "out", workers=1)
    message = str(info.value)
    assert message.startswith(str(spec)) and key in message and "\n" not in message
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was written
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and key in result.stderr


# ----------------------------------------------------------------------------- executors


def test_process_and_local_dask_results_are_identical_to_serial(grid_serial, tmp_path):
    spec, _, serial = grid_serial
    run_sweep(spec, tmp_path / "processes", workers=2)
    run_sweep(spec, tmp_path / "dask", executor=DaskExecutor(None, workers=2, processes=False))
    reference = computed(serial)
    assert set(reference["status"]) == {"ok"}
    pd.testing.assert_frame_equal(computed(load_results(tmp_path / "processes")), reference)
    pd.testing.assert_frame_equal(computed(load_results(tmp_path / "dask")), reference)
    assert load_results(tmp_path / "processes")["worker"].nunique() == 2


def test_a_hand_started_dask_scheduler_and_worker_give_identical_results(tmp_path):
    tiny = GRID.replace("replications = 2", "replications = 1").replace('cap = "capitation"', "")
    spec = write(tmp_path, tiny.replace(', cap = "rate_to_cost"', ""))
    serial = load_results(run_sweep(spec, tmp_path / "serial", workers=1).out)
    assert len(serial) == 4
    info = tmp_path / "scheduler.json"
    procs = [
        subprocess.Popen(
            [
                BIN / "dask",
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(info),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        procs.append(
            subprocess.Popen(
                [
                    BIN / "dask",
                    "worker",
                    address,
                    "--nworkers",
                    "1",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        result = subprocess.run(
            [*VBPSIM, "sweep", str(spec), "--out", str(tmp_path / "cluster"), "--scheduler", address],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stderr
        pd.testing.assert_frame_equal(computed(load_results(tmp_path / "cluster")), computed(serial))
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_compare_with_workers_matches_serial(tmp_path):
    world = write(tmp_path, 'extends = "small"\n[simulation]\nhistory_years = 0\n', "world.toml")
    args = ["compare", "--scenario", str(world), "--years", "1", "--seeds", "2", "--schemes", "ffs,capitation"]
    serial = runner.invoke(app, [*args, "--out", str(tmp_path / "one")])
    parallel = runner.invoke(app, [*args, "--out", str(tmp_path / "two"), "--workers", "2"])
    assert serial.exit_code == 0 and parallel.exit_code == 0, parallel.output
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "one" / "runs.csv"), pd.read_csv(tmp_path / "two" / "runs.csv")
    )


# ----------------------------------------------------------------------------- the store


def test_one_row_per_run_with_inputs_seed_arm_outcomes_time_and_status(grid_serial):
    _, folder, runs = grid_serial
    assert len(runs) == 16 and runs["run_id"].is_unique
    for column in (
        "point",
        "replication",
        "arm",
        "scheme",
        "seed",
        "payment_level",
        "providers.altruism_mean",
        "status",
        "error",
        "run_seconds",
        *DIMENSIONS,
        "spending_per_capita",
        "intensity_ratio",
    ):
        assert column in runs.columns, column
    assert (runs["run_seconds"] > 0).all()
    assert set(runs["scheme"]) == {"ffs", "capitation"}
    assert len(pd.read_parquet(folder / "results")) == 16  # pandas reads the folder directly


def test_a_run_that_raises_is_recorded_and_the_others_complete(tmp_path):
    spec = write(
        tmp_path,
        """
scenario = "small"
years = 1
set = { "simulation.history_years" = 0 }
schemes = ["ffs"]
[parameters."population.age_min"]
values = [50.0, 80.0]
[parameters."population.age_max"]
values = [70.0, 100.0]
""",
    )
    outcome = run_sweep(spec, tmp_path / "out", workers=1)
    runs = load_results(tmp_path / "out")
    assert (outcome.finished, outcome.failed, len(runs)) == (4, 1, 4)
    bad = runs[runs["status"] != "ok"]
    assert list(bad["run_id"]) == ["p000002-r000-ffs"]  # age_min 80 >= age_max 70
    assert "age_min" in bad["error"].iloc[0] and np.isnan(bad["quality"].iloc[0])
    assert runs.loc[runs["status"] == "ok", "quality"].notna().all()


def test_a_changed_spec_or_a_second_run_into_the_same_folder_is_refused(grid_serial, tmp_path):
    spec, folder, _ = grid_serial
    with pytest.raises(SweepDirError, match="--resume"):
        run_sweep(spec, folder, workers=1)
    changed = write(tmp_path, GRID.replace("base = 11", "base = 12"), "changed.toml")
    with pytest.raises(SweepDirError, match="changed in: seeds"):
        run_sweep(changed, folder, workers=1, resume=True)
    again = run_sweep(spec, folder, workers=1, resume=True)
    assert (again.skipped, again.finished) == (16, 0)


def test_a_sweep_killed_with_sigkill_resumes_with_every_run_exactly_once(grid_serial, tmp_path):
    spec, _, serial = grid_serial
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [*VBPSIM, "sweep", str(spec), "--out", str(out), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "results").glob("*.parquet"))) < 3:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(list((out / "results").glob("*.parquet")))
    assert 3 <= before < 16, "the sweep must be killed mid-way"
    result = subprocess.run(
        [*VBPSIM, "sweep", str(spec), "--out", str(out), "--workers", "1", "--resume"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"{16 - before} runs finished" in result.stderr
    runs = load_results(out)
    assert len(runs) == 16 and runs["run_id"].is_unique
    pd.testing.assert_frame_equal(computed(runs), computed(serial))


# ----------------------------------------------------------------------------- sensitivity and report


def two_parameter_sweep(tmp_path: Path, kind: str, samples: int) -> Path:
    """Altruism, which drives behaviour, and willingness to pay, which only prices QALYs in NMB."""
    spec = write(
        tmp_path,
        f"""
scenario = "small"
years = 1
set = {{ "simulation.history_years" = 0 }}
schemes = ["ffs"]
[parameters."clinical.willingness_to_pay"]
range = [20000, 60000]
[parameters."providers.altruism_mean"]
range = [0.1, 0.7]
[design]
kind = "{kind}"
samples = {samples}
""",
    )
    run_sweep(spec, tmp_path / "out", workers=1)
    return tmp_path / "out"


def test_sobol_index_of_a_parameter_the_outcome_ignores_is_near_zero(tmp_path):
    from vbpsim.sensitivity import analyse

    out = two_parameter_sweep(tmp_path, "sobol", 4)
    table = analyse(out, ["quality", "net_monetary_benefit"]).set_index(["output", "parameter"])
    assert abs(table.loc[("quality", "clinical.willingness_to_pay"), "ST"]) < 0.05
    assert table.loc[("quality", "providers.altruism_mean"), "ST"] > 0.5
    assert table.loc[("net_monetary_benefit", "clinical.willingness_to_pay"), "ST"] > 0.3
    assert table.loc[("quality", "providers.altruism_mean"), "rank"] == 1


def test_sensitivity_and_report_commands_write_tables_plots_and_markdown(grid_serial):
    _, folder, _ = grid_serial
    result = runner.invoke(app, ["sensitivity", str(folder), "--outputs", "quality,spending_per_capita"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(folder / "sensitivity" / "sensitivity.csv")
    assert set(table["output"]) == {"quality", "spending_per_capita"} and set(table["arm"]) == {"ffs", "cap"}
    assert (folder / "sensitivity" / "sensitivity.png").stat().st_size > 0
    result = runner.invoke(app, ["report", str(folder), "--outputs", "quality,spending_per_capita"])
    assert result.exit_code == 0, result.output
    text = (folder / "report" / "report.md").read_text()
    images = [line.split("(")[-1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    assert "arms.png" in images and "response_payment_level.png" in images
    assert all((folder / "report" / name).stat().st_size > 0 for name in images)
    bad = runner.invoke(app, ["sensitivity", str(folder), "--outputs", "no_such_outcome"])
    assert bad.exit_code == 2 and "no_such_outcome" in bad.stderr


def test_morris_ranks_the_parameter_that_matters_first(tmp_path):
    from vbpsim.sensitivity import analyse

    table = analyse(two_parameter_sweep(tmp_path, "morris", 4), ["quality"]).set_index("parameter")
    assert table.loc["clinical.willingness_to_pay", "mu_star"] == 0.0
    assert table.loc["providers.altruism_mean", "mu_star"] > 0 and table.loc["providers.altruism_mean", "rank"] == 1


# ----------------------------------------------------------------------------- start-up


def test_the_cli_and_package_import_no_heavy_modules_until_needed():
    probe = (
        "import sys, vbpsim, vbpsim.cli; "
        "print(sorted(m for m in ('mesa', 'pandas', 'numpy', 'pydantic', 'matplotlib', 'pyarrow') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    names = "import vbpsim; print(all(getattr(vbpsim, n) is not None for n in vbpsim.__all__))"
    assert subprocess.run([sys.executable, "-c", names], capture_output=True, text=True).stdout.strip() == "True"
    with pytest.raises(AttributeError):
        import vbpsim

        vbpsim.no_such_name  # noqa: B018


def test_bad_executor_options_are_clear_errors(tmp_path, grid_serial):
    spec = grid_serial[0]
    for args, key in ((["--workers", "0"], "--workers"), (["--cluster", "slurm"], "--cluster")):
        result = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "x"), *args])
        assert result.exit_code == 2 and key in result.stderr, result.output
    result = runner.invoke(app, ["sweep", str(spec)])
    assert result.exit_code == 2 and "--out" in result.stderr
    with pytest.raises(ParameterError, match="DIR"):
        load_results(tmp_path / "nothing")


def test_a_killed_worker_process_loses_nothing_and_the_sweep_completes(grid_serial, tmp_path):
    psutil = pytest.importorskip("psutil")
    spec, _, serial = grid_serial
    out = tmp_path / "worker_killed"
    proc = subprocess.Popen(
        [*VBPSIM, "sweep", str(spec), "--out", str(out), "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list((out / "results").glob("*.parquet"))) < 2:
            time.sleep(0.02)
        # Pool workers are the forkserver's children: grandchildren of the sweep process.
        workers = [g for c in psutil.Process(proc.pid).children() for g in c.children()]
        assert workers, "no worker process found"
        first_pool = {w.pid for w in workers}
        workers[0].kill()
        _, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, stderr
    runs = load_results(out)
    assert len(runs) == 16 and runs["run_id"].is_unique and set(runs["status"]) == {"ok"}
    pids = {int(w.rsplit(":", 1)[1]) for w in runs["worker"]}
    assert pids - first_pool, "the pool was not restarted"
    pd.testing.assert_frame_equal(computed(runs), computed(serial))


def test_ctrl_c_keeps_finished_and_running_runs_and_resume_completes(grid_serial, tmp_path):
    spec, _, serial = grid_serial
    out = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [*VBPSIM, "sweep", str(spec), "--out", str(out), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "results").glob("*.parquet"))) < 2:
        time.sleep(0.02)
    at_interrupt = len(list((out / "results").glob("*.parquet")))
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "--resume" in stderr
    saved = len(list((out / "results").glob("*.parquet")))
    assert at_interrupt <= saved < 16
    outcome = run_sweep(spec, out, workers=1, resume=True)
    assert (outcome.skipped, outcome.finished) == (saved, 16 - saved)
    pd.testing.assert_frame_equal(computed(load_results(out)), computed(serial))
