"""The delivery and observation kernels against the numpy code they replaced, on random inputs.

Each test draws seeded random inputs (states, conditions, decisions, year-to-date costs,
risk-model fits) that reach every branch of a kernel, then requires the compiled pass to
give what the numpy formulation (``tests/oracle_delivery.py``) gives: bit for bit where
the formulas are the same, within 1e-12 where numpy's vectorised ``exp`` or its pairwise
mean round the last place differently from the kernel.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from numpy_oracle import NumpyModel
from oracle_delivery import diagnosis_need, risk_scores

from vbpsim.care import DEAD, HEALTH_STATES
from vbpsim.experiments import build_model
from vbpsim.kernels import delivery as kernels
from vbpsim.model import VBPModel
from vbpsim.risk import RiskModel

# keys whose values pass through exp or a mean over the living (last-place rounding may differ)
ROUNDED = {"duplicate_cost", "innovation_cost", "admission_value", "acs_expected"}


# admissions frequent enough that a small world has candidates, redirections and ACS admissions each step
FREQUENT = {"clinical.planned_admission_rate": 2.0, "clinical.acs_admission_rate": 1.0}


def randomised(seed: int, **overrides: object) -> tuple[VBPModel, VBPModel]:
    """A small model with random patients' states and providers' decisions, and its numpy twin."""
    model = build_model("ffs", "small", years=1, seed=seed, **{**FREQUENT, **overrides})
    rng = np.random.default_rng(seed)
    pop, table = model.population, model.providers
    n, k = pop.size, table.n
    pop.state = rng.integers(0, len(HEALTH_STATES), n).astype(np.int8)
    pop.conditions = rng.random(pop.conditions.shape) < 0.4
    decision = table.decision
    decision.intensity = rng.uniform(0.5, 1.5, k)
    decision.need_tilt = rng.uniform(-0.3, 0.3, k)
    decision.shift = rng.uniform(0.0, 0.6, k)
    decision.admission = rng.uniform(0.2, 1.0, k)
    decision.selection = rng.uniform(0.0, 1.0, k)
    decision.effort = rng.uniform(0.0, 1.0, decision.effort.shape)
    table.need_multiplier = rng.uniform(1.0, 1.3, k)
    model.prevention_stock = rng.uniform(0.0, 1.0, n)
    model.admission_steer_weight = rng.uniform(0.0, 1.0, n)
    model.pending_duplicates = np.where(rng.random((n, 4)) < 0.1, rng.uniform(0, 3, (n, 4)), 0.0)
    # year-to-date cost around the stop-loss attachment, so the excess starts within this step for some
    attachment = model.config.purchaser.stop_loss_attachment
    model.year_to_date_cost = rng.uniform(0.0, 1.2, (n, 4)) * attachment
    model.step_index = 5  # mid-year: no re-estimation of the risk model
    oracle = copy.deepcopy(model)
    oracle.__class__ = NumpyModel
    oracle.pending_duplicates = model.pending_duplicates  # (the oracle keeps them dense)
    return model, oracle


def assert_same(name: str, compiled: np.ndarray, oracle: np.ndarray) -> None:
    """Equal bit for bit, or within 1e-12 for the rounded keys."""
    compiled, oracle = np.asarray(compiled), np.asarray(oracle)
    assert compiled.shape == oracle.shape and compiled.dtype == oracle.dtype, name
    if name in ROUNDED:
        np.testing.assert_allclose(compiled, oracle, rtol=1e-12, atol=1e-15, err_msg=name)
    else:
        np.testing.assert_array_equal(compiled, oracle, err_msg=name)


def test_diagnosis_need_equals_numpy() -> None:
    """Every state and number of conditions gives the numpy table's need, bit for bit."""
    model, _ = randomised(1)
    assert_same("diagnosis_need", model.population.diagnosis_need(), diagnosis_need(model.population))


def test_care_need_equals_numpy() -> None:
    """Need, its prices and the column totals (sums in patient order) as the numpy code computes them."""
    model, oracle = randomised(2)
    care, expected = model.care_need(), oracle.care_need()
    for name in ("need", "diagnosis_cost", "cost"):
        assert_same(name, care[name], expected[name])
    assert_same("cost_total", care["cost_total"], expected["cost"].sum(axis=0))
    assert_same("diagnosis_cost_total", care["diagnosis_cost_total"], expected["diagnosis_cost"].sum(axis=0))
    assert_same("in_care_count", care["in_care_count"], (expected["need"] > 0).sum(axis=0).astype(float))


@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize("mechanisms", ["all", "none"])
def test_deliver_equals_numpy(seed: int, mechanisms: str) -> None:
    """Delivery and admissions: every care key, the pending duplicates and the admission beliefs."""
    over = {} if mechanisms == "all" else {"mechanisms.care_shifting": False, "mechanisms.need_classes": False}
    model, oracle = randomised(seed, **over)
    care, expected = model.deliver_care(), oracle.deliver_care()
    # the compiled pass keeps only the sums of the need multiplier's and the duplicates' cost
    multiplier, duplicates = expected.pop("multiplier"), expected.pop("duplicates")
    innovation = (expected["ratio"] * (expected["need"] * model.unit_cost) * (multiplier - 1.0)).sum()
    assert_same("innovation_cost", np.float64(care["innovation_cost"]), innovation)
    assert_same("duplicate_cost", np.float64(care["duplicate_cost"]), (duplicates * model.unit_cost).sum())
    # the ratio of care to need is recomputed where read, not stored; the record's over- and
    # undertreatment are summed in the delivery pass (by blocks; numpy sums pairwise)
    ratio, need_cost = expected.pop("ratio"), expected["need"] * model.unit_cost
    assert_same("ratio", model.care_ratios(), ratio)
    for name, excess in (("overtreatment_total", ratio - 1), ("withheld_total", 1 - ratio)):
        np.testing.assert_allclose(care.pop(name), (np.maximum(excess, 0) * need_cost).sum(), rtol=1e-14)
    assert duplicates.any()
    # and the admissions' cases and case value only by hospital
    hospital, n_providers = model.population.provider[:, 1], model.providers.n
    for row, name in enumerate(("admission_cases", "admission_value")):
        by_hospital = np.bincount(hospital, weights=expected.pop(name), minlength=n_providers)
        np.testing.assert_allclose(care["admission_by_hospital"][row], by_hospital, rtol=1e-12, err_msg=name)
    # the step keeps each patient's row of units by diagnosis, not the need and its prices: the
    # passes read the need as the row's units x frailty, priced at unit cost
    assert not {"need", "cost", "diagnosis_cost"} & care.keys()
    by_diagnosis = care["by_diagnosis"][care["diagnosis_row"]]
    assert_same("need", model.need_units(care), expected.pop("need"))
    assert_same("cost", model.need_units(care) * model.unit_cost, expected.pop("cost"))
    assert_same("diagnosis_cost", by_diagnosis * model.unit_cost, expected.pop("diagnosis_cost"))
    # the admissions' values and flags are kept for the candidates only (``admission_index``)
    # and the ACS admission probability only summed
    index = care["admission_index"]
    np.testing.assert_array_equal(index, np.flatnonzero(expected["admission_candidates"]))
    for name in (*kernels.ADMISSION_VALUES, *kernels.ADMISSION_FLAGS):
        dense = np.zeros_like(expected[name])
        dense[index] = care.pop(name)
        care[name] = dense
    acs_total = expected.pop("acs_expected").sum()  # (pairwise; the pass sums by blocks)
    np.testing.assert_allclose(care.pop("acs_expected_total"), acs_total, rtol=1e-14)
    assert care.keys() >= expected.keys()
    for name, value in expected.items():
        assert_same(name, care[name], value)
    assert care["admission_candidates"].any() and care["redirected"].any() and care["acs_admitted"].any()
    assert_same("pending_duplicates", model.pending_duplicates, oracle.pending_duplicates)
    np.testing.assert_allclose(model.admission_belief, oracle.admission_belief, rtol=1e-12)
    np.testing.assert_allclose(model.acs_belief, oracle.acs_belief, rtol=1e-12)  # sums of exp


@pytest.mark.parametrize("seed", [5, 6])
def test_observe_equals_numpy(seed: int) -> None:
    """The observation's per-provider sums, the scores and the patients' year-to-date accumulators."""
    model, oracle = randomised(seed, **{"purchaser.outlier_threshold": 1.5})
    care, expected = model.deliver_care(), oracle.deliver_care()
    obs, obs_expected = model.observe(care), oracle.observe(expected)
    for name in ("services", "cases", "outlier_cost", "expected_cost", "average_cost", "member_months", "cost"):
        assert_same(name, getattr(obs, name), getattr(obs_expected, name))
    for name in ("stoploss_excess", "outside_cost", "measured_quality"):
        assert_same(name, getattr(obs, name), getattr(obs_expected, name))
    np.testing.assert_allclose(obs.case_value, obs_expected.case_value, rtol=1e-12)  # admission prices (mean)
    assert obs.stoploss_excess.sum() > 0 and obs.outlier_cost.sum() > 0 and obs.outside_cost.sum() > 0
    assert_same("scores", model.observed_risk_scores(care), expected["scores"])  # (not stored: from the kept cells)
    for name in ("mean_cost", "outlier_threshold"):
        assert_same(name, care[name], expected[name])
    assert_same("need_history", model.need_history[-1], oracle.need_history[-1])
    for name in ("year_to_date_cost", "_year_score", "_year_patient_cost"):
        assert_same(name, getattr(model, name), getattr(oracle, name))


@pytest.mark.parametrize("target", [0.0, 0.3, 0.995])
def test_risk_scores_equal_numpy(target: float) -> None:
    """Cells (a guided search), the blend above what cells reach and the degenerate fit without cells."""
    rng = np.random.default_rng(11)
    n = 5000
    cost = rng.lognormal(0.0, 1.5, (n, 4)) * (rng.random((n, 4)) < 0.7)
    alive = rng.random(n) < 0.9
    model = RiskModel(target, n, np.random.default_rng(12))
    model.estimate(cost, alive)
    assert (len(model.edges) > 0) == (target > 0) and model.blended == (target > 0.99)
    later = cost * rng.uniform(0.5, 2.0, (n, 4))  # next months' cost, scored with this year's fit
    np.testing.assert_allclose(model.scores(later, alive), risk_scores(model, later, alive), rtol=1e-12, atol=0)


def test_guided_search_is_searchsorted() -> None:
    """Signals on, between, below and above edges with ties fall in np.searchsorted's cell."""
    rng = np.random.default_rng(13)
    edges = np.sort(np.concatenate([rng.normal(0, 2, 150), np.repeat(rng.normal(0, 2, 7), 7)]))
    signal = np.concatenate([rng.normal(0, 3, 20000), edges, np.nextafter(edges, -np.inf), [-1e9, 1e9]])
    n = len(signal)
    cost = np.full((n, 4), 0.25)  # a total of 1 in every patient
    model = RiskModel(0.5, n, np.random.default_rng(0))
    model.edges, model.cell_means, model.sigma = edges, np.repeat(np.arange(len(edges) + 1.0)[:, None], 4, 1), 1.0
    model.eta = signal - np.log(1.0)  # signal = log(total cost) + sigma * eta
    cells = np.empty(n, dtype=np.int32)
    alive = np.ones(n, dtype=bool)
    means, totals = model.cell_means, np.empty(n)
    no_scores = np.empty((0, 4))
    kernels.risk_cells(
        cost, np.arange(n), np.ones(n), np.ones(4), alive, model.eta, 1.0, edges, means, 0.0, cells, np.empty(4),
        totals, False, np.ones(4), no_scores,
    )  # fmt: skip
    np.testing.assert_array_equal(cells, np.searchsorted(edges, signal))


def test_search_left_is_searchsorted() -> None:
    """The guide's hand-written search (no overload to compile) finds np.searchsorted's index, NaN last."""
    rng = np.random.default_rng(17)
    edges = np.sort(np.concatenate([rng.normal(0, 2, 60), np.repeat(rng.normal(0, 2, 5), 4), [np.nan, np.nan]]))
    keys = np.concatenate([rng.normal(0, 3, 500), edges, np.nextafter(edges, -np.inf), [-np.inf, np.inf, np.nan]])
    for some_edges in (edges, edges[:-2], edges[:1], edges[:0]):
        found = [kernels._search_left(some_edges, key) for key in keys]
        np.testing.assert_array_equal(found, np.searchsorted(some_edges, keys))


def test_risk_cells_refuse_another_width() -> None:
    """The pass sums four disciplines' columns: another width is an error, not a write out of bounds."""
    n = 10
    with pytest.raises(ValueError, match="one column per discipline"):
        kernels.risk_cells(
            np.ones((n, 1)), np.arange(n), np.ones(n), np.ones(1), np.ones(n, dtype=bool), np.zeros(n), 1.0,
            np.zeros(0), np.ones((1, 1)), 0.0,
            np.empty(n, dtype=np.int32), np.empty(1), np.empty(n), False, np.ones(1), np.empty((0, 1)),
        )  # fmt: skip


def test_dead_patients_score_nothing() -> None:
    """The dead get a zero score and no membership, however their cost looks."""
    model, _ = randomised(7)
    care = model.deliver_care()
    model.observe(care)
    dead = model.population.state == DEAD
    assert dead.any() and not model.observed_risk_scores(care)[dead].any()


def test_copies_do_not_share_buffers() -> None:
    """A forked model (deepcopy) starts without the patient buffers of the model it was copied from."""
    model, _ = randomised(8)
    care = model.deliver_care()
    fork = copy.deepcopy(model)
    assert len(fork._buffers) == 0
    fork_care = fork.deliver_care()
    assert not np.shares_memory(care["delivered"], fork_care["delivered"])
    assert not np.shares_memory(care["diagnosis_row"], fork_care["diagnosis_row"])
    assert_same("need", model.need_units(care), fork.need_units(fork_care))


def test_cached_risk_cells_follow_changes() -> None:
    """Cells kept from the last step are recomputed for patients whose cost changed, and after a new fit."""
    model, oracle = randomised(9)
    rng = np.random.default_rng(9)
    for step in range(3):
        changed = rng.random(model.population.size) < 0.2
        new_state = rng.integers(0, len(HEALTH_STATES) - 1, model.population.size).astype(np.int8)
        for m in (model, oracle):
            m.population.state = np.where(changed, new_state, m.population.state)
            if step == 2:
                m.step_index = 12  # a year start: the purchaser re-estimates its risk model
        care, expected = model.deliver_care(), oracle.deliver_care()
        model.observe(care)
        oracle.observe(expected)
        assert_same("scores", model.observed_risk_scores(care), expected["scores"])
    assert model.risk_model.fits == 2


@pytest.mark.parametrize("admitting", [True, False])
def test_chunked_admission_draws_are_the_whole_draw(monkeypatch: pytest.MonkeyPatch, admitting: bool) -> None:
    """Chunk by chunk (each chunk's draws from copies of the streams advanced to it), steps are unchanged."""
    from vbpsim import population as population_module

    over = {} if admitting else {"mechanisms.discretionary_admissions": False}
    whole, chunked = (build_model("ffs", "small", years=1, seed=4, **over) for _ in range(2))
    assert whole.population.size > 1024 and whole.mechanisms.discretionary_admissions == admitting
    for _ in range(3):
        whole.step()
    monkeypatch.setattr(population_module, "PATIENT_CHUNK", 1024)  # (a multiple of SUM_BLOCK, as it must be)
    for _ in range(3):
        chunked.step()
    assert chunked.records == whole.records
    for name, stream in whole.streams.items():
        assert chunked.streams[name].bit_generator.state == stream.bit_generator.state, name
    np.testing.assert_array_equal(chunked.population.state, whole.population.state)
    np.testing.assert_array_equal(chunked.admission_belief, whole.admission_belief)


def test_buffers_grow_only_when_short_and_keep_what_was_written() -> None:
    """``Buffers.at_least`` reuses a buffer with room, and a grown one starts with the old first entries."""
    from vbpsim.kernels.delivery import Buffers

    buffers = Buffers()
    first = buffers.at_least("values", (2, 4), 3, axis=1)
    first[:] = np.arange(8.0).reshape(2, 4)
    assert buffers.at_least("values", (2, 6), 4, axis=1) is first  # room enough: the same array
    grown = buffers.at_least("values", (2, 10), 5, axis=1, keep=3)
    assert grown.shape == (2, 10) and grown is not first
    np.testing.assert_array_equal(grown[:, :3], first[:, :3])
    rows = buffers.at_least("rows", (5,), 5, np.int64)
    rows[:] = 7
    assert buffers.at_least("rows", (9,), 6, np.int64, keep=5)[:5].tolist() == [7] * 5
    assert buffers.at_least("rows", (9,), 6, np.int32).dtype == np.int32  # another dtype: a new buffer


def test_skipping_draws_is_drawing_them() -> None:
    """``VBPModel._skip`` leaves a stream where drawing the floats would, the half-used 32-bit draw included."""
    from vbpsim.model import VBPModel

    drawn, skipped = (np.random.Generator(np.random.PCG64(11)) for _ in range(2))
    for stream in (drawn, skipped):
        stream.integers(0, 5, 3)  # 32-bit numbers: one half of a 64-bit draw is kept for the next
    drawn.random(1000)
    VBPModel._skip(skipped, 1000)
    assert skipped.bit_generator.state == drawn.bit_generator.state
    assert skipped.integers(0, 1 << 30, 5).tolist() == drawn.integers(0, 1 << 30, 5).tolist()


def test_stream_copies_are_reused_and_leave_the_stream_alone() -> None:
    """``VBPModel._stream_at`` gives the stream's numbers from a position on, from one reused generator per slot."""
    model = build_model("ffs", "small", years=1, seed=4)
    stream = model.streams["health"]
    expected = np.random.Generator(type(stream.bit_generator)())
    expected.bit_generator.state = stream.bit_generator.state
    ahead = expected.random(1000)[500:]
    state = stream.bit_generator.state
    first = model._stream_at("health", 500)
    assert first.random(500).tolist() == ahead.tolist()
    assert stream.bit_generator.state == state
    assert model._stream_at("health", 0) is first  # the same slot: the same generator, reset to the stream
    assert model._stream_at("health", 0, slot=1) is not first
