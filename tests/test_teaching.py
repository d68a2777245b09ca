"""Teaching helpers (vbpsim.teaching) and the course notebooks' form.

The notebooks themselves are executed by nbmake (`make test`); these tests check what
nbmake cannot: the helpers' statistics against their definitions, and that every notebook
is stored without outputs, ends with exercises and hidden solutions, and is listed in the
README.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import vbpsim
from vbpsim import teaching as T

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def arms() -> dict[str, list[vbpsim.Result]]:
    return T.arms_over_seeds(
        {"ffs": "ffs", "cap": "capitation", "cap, no altruism": ("capitation", {"altruism_mean": 0.0})},
        SEEDS,
        years=1,
    )


def test_arms_over_seeds_uses_common_seeds_and_arm_overrides(arms) -> None:
    assert list(arms) == ["ffs", "cap", "cap, no altruism"]
    for results in arms.values():
        assert [r.seed for r in results] == list(SEEDS)
    assert arms["cap, no altruism"][0].parameters["scenario"]["providers"]["altruism_mean"] == 0.0
    again = vbpsim.run("capitation", scenario="small", years=1, seed=1)
    assert arms["cap"][1].indicators == again.indicators  # same seed, same numbers


def test_forked_arms_with_contract_parameters_equal_separate_runs() -> None:
    world = {"n_patients": 600, "n_gp": 3, "n_hospital": 1, "n_rehab": 1, "n_nursing": 1}
    arms = {
        "own contract": None,
        "own contract, immediate risk": (None, {"shared_savings_glide_path": [], "shared_savings_loss_rate": 0.5}),
        "capitation+p4p": ("capitation+p4p", {"p4p_bonus_share": 0.1}),
    }
    forked = T.arms_over_seeds(arms, [1], scenario="stroke_vbp", years=1, **world)
    for label, arm in arms.items():
        scheme, overrides = arm if isinstance(arm, tuple) else (arm, {})
        alone = vbpsim.run(scheme, scenario="stroke_vbp", years=1, seed=1, **world, **overrides)
        assert forked[label][0].indicators == alone.indicators, label


def test_arm_overrides_win_over_common_ones() -> None:
    res = T.arms_over_seeds({"a": ("ffs", {"altruism_mean": 0.2})}, [0], years=1, altruism_mean=0.6, n_patients=500)
    scenario = res["a"][0].parameters["scenario"]
    assert scenario["providers"]["altruism_mean"] == 0.2
    assert scenario["population"]["n_patients"] == 500


def test_table_has_replicate_format(arms) -> None:
    runs = T.table(arms)
    assert len(runs) == 3 * len(SEEDS)
    assert {"scheme", "seed", *vbpsim.DIMENSIONS, "intensity_ratio"} <= set(runs.columns)
    reference = vbpsim.replicate(["ffs", "capitation"], SEEDS, scenario="small", years=1)
    mine = runs[runs.scheme.isin(["ffs", "cap"])].replace({"scheme": {"cap": "capitation"}})
    pd.testing.assert_frame_equal(
        mine.reset_index(drop=True)[reference.columns].sort_values(["scheme", "seed"]).reset_index(drop=True),
        reference.sort_values(["scheme", "seed"]).reset_index(drop=True),
    )


def test_table_adds_final_year_means(arms) -> None:
    runs = T.table(arms, final_gp="intensity_gp", final_ratio=T.intensity)
    first = arms["ffs"][0]
    last = first.timeseries[first.timeseries.year == first.timeseries.year.max()]
    assert runs.final_gp.iloc[0] == pytest.approx(last.intensity_gp.mean())
    assert runs.final_ratio.iloc[0] == pytest.approx(T.intensity(last).mean())
    assert T.final_year(first, "intensity_gp") == runs.final_gp.iloc[0]


def test_mean_ci_is_student_t() -> None:
    x = np.array([1.0, 2.0, 4.0, 7.0])
    mean, low, high = T.mean_ci(x)
    half = stats.t.ppf(0.975, 3) * x.std(ddof=1) / 2
    assert mean == pytest.approx(3.5)
    assert (low, high) == pytest.approx((3.5 - half, 3.5 + half))
    assert T.mean_ci(x, level=0.5)[2] - mean < half


def test_paired_ci_pairs_by_seed(arms) -> None:
    runs = T.table(arms)
    diff = (
        runs[runs.scheme == "ffs"].set_index("seed").intensity_ratio
        - runs[runs.scheme == "cap"].set_index("seed").intensity_ratio
    )
    assert T.paired_ci(runs, "intensity_ratio", "ffs", "cap") == pytest.approx(T.mean_ci(diff.to_numpy()))


def test_band_summarises_yearly_means_over_seeds() -> None:
    res = T.arms_over_seeds({"ffs": "ffs"}, SEEDS, years=2)["ffs"]
    b = T.band(res, "intensity_gp")
    assert list(b.index) == [0, 1]
    first_year = [r.timeseries.query("year == 0").intensity_gp.mean() for r in res]
    assert b.loc[0, "mean"] == pytest.approx(np.mean(first_year))
    assert (b["low"] <= b["mean"]).all() and (b["mean"] <= b["high"]).all()
    ratio = T.band(res, T.intensity)
    assert ((ratio["mean"] > 0.5) & (ratio["mean"] < 3)).all()


def test_plots_draw(arms) -> None:
    fig, (a, b) = plt.subplots(1, 2)
    line = T.plot_band(a, arms["ffs"], "intensity_gp", label="ffs")
    assert len(line.get_xdata()) == 1
    T.plot_means(b, T.table(arms), "intensity_ratio")
    assert len(b.patches) == 3
    plt.close(fig)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: T.arms_over_seeds({"x": "ffs"}, []), "seeds"),
        (lambda: T.arms_over_seeds({"x": ("ffs", 3)}, [0]), "arms['x']"),
        (lambda: T.arms_over_seeds({"x": "ffs"}, [-1]), "seed"),
        (lambda: T.mean_ci([1.0]), "n"),
        (lambda: T.t_quantile(5, level=1.5), "level"),
    ],
)
def test_bad_input_names_the_parameter(call, name) -> None:
    with pytest.raises(vbpsim.ParameterError) as err:
        call()
    assert err.value.name == name


def test_unknown_column_names_the_parameter(arms) -> None:
    with pytest.raises(vbpsim.ParameterError, match="column='nope'"):
        T.band(arms["ffs"], "nope")


# -- the notebooks' form ------------------------------------------------------------------------


def test_there_are_seven_numbered_notebooks() -> None:
    assert [p.name[:3] for p in NOTEBOOKS] == [f"{i:02d}_" for i in range(1, 8)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, "strip outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_asserts_and_ends_with_exercises_and_hidden_solutions(path: Path) -> None:
    nb = json.loads(path.read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    markdown = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    assert sum("assert " in c for c in code) >= 3, "a notebook checks the directions its text claims"
    assert any(m.startswith("## Exercises") for m in markdown)
    solutions = [c for c in nb["cells"] if "solution" in c.get("metadata", {}).get("tags", [])]
    assert 2 <= len(solutions) <= 3
    assert all(c["metadata"]["jupyter"]["source_hidden"] for c in solutions)
    assert all("assert " in "".join(c["source"]) for c in solutions)


def test_readme_lists_every_notebook() -> None:
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        assert f"notebooks/{path.name}" in readme
