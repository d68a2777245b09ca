"""The compiled health pass (``vbpsim.kernels.health``) against its numpy oracle.

``update_health`` and ``patients_choose`` of the compiled model and of the numpy oracle
(``tests/oracle_health.py``) run on the same scrambled patients: random states (all six),
ages, conditions, care ratios below, at and above the optimum, prevention stocks,
innovations and efforts, so every branch of the kernels is taken. They must return the
same numbers and leave the model in the same state, within 1e-12. A run of twin models
then checks, step by step, the state the health pass keeps between steps (outcomes
reported with the next claims, hand-off beliefs, experience), which records alone miss.
"""

from __future__ import annotations

import copy

import numba
import numpy as np
import pytest
from numpy_oracle import NumpyModel, close

from vbpsim.care import ACUTE, DEAD, DISCIPLINES, GP, HOSPITAL, LEAD_DISCIPLINE, POST_ACUTE
from vbpsim.experiments import _scenario_and_contract
from vbpsim.kernels import health as kernels
from vbpsim.model import VBPModel
from vbpsim.parameters import MechanismParams

MECHANISMS = tuple(MechanismParams.model_fields)
CARE_OUT = ("qol", "strokes", "dies", "state_before", "stroke_hazard")
MODEL_STATE = (
    "prevention_stock",
    "pending_duplicates",
    "handoff_belief",
    "failure_units_belief",
    "year_readmission_risk",
    "steered",
)
PATIENTS = ("state", "age", "conditions", "provider", "experience")


def pair(seed: int, mechanisms_on: bool, **overrides: object) -> tuple[VBPModel, VBPModel]:
    """A compiled model and its numpy oracle on the same small world and seed."""
    over: dict[str, object] = {"population.n_patients": 6000, **overrides}
    if not mechanisms_on:
        over.update({f"mechanisms.{m}": False for m in MECHANISMS})
    scenario, contract = _scenario_and_contract("ffs", "small", 1, **over)
    return VBPModel(scenario, scheme=contract, seed=seed), NumpyModel(scenario, scheme=contract, seed=seed)


def scramble(model: VBPModel, seed: int) -> dict[str, np.ndarray]:
    """Random patients and providers (the same for the same seed); returns this step's care."""
    rng = np.random.default_rng(seed)
    pop, table = model.population, model.providers
    n = pop.size
    pop.state = rng.integers(0, 6, n).astype(np.int8)
    pop.age = rng.uniform(20, 100, n)
    pop.conditions = rng.random(pop.conditions.shape) < 0.3
    pop.experience = rng.random(n)
    model.prevention_stock[:] = rng.random(n)
    model.unprofitable = rng.random(n) < 0.5
    model.steer_weight = rng.random(n)
    table.benefit_gain = rng.uniform(0.0, 0.4, table.n) * (rng.random(table.n) < 0.5)
    table.decision.effort[:] = rng.random(table.decision.effort.shape)
    table.decision.selection[:] = rng.random(table.n)
    # care ratios below, at and above the optimum and zero: as the delivery noise at intensity 1, no tilt
    # (the compiled passes recompute the ratio from these, the numpy ones store it)
    ratio = rng.uniform(0.0, 2.0, (n, len(DISCIPLINES)))
    ratio[rng.random(ratio.shape) < 0.1] = 1.0
    ratio[rng.random(ratio.shape) < 0.05] = 0.0
    table.decision.intensity[:] = 1.0
    table.decision.need_tilt[:] = 0.0
    pop.delivery_noise = ratio
    care = model.deliver_care()
    assert np.array_equal(model.care_ratios(), ratio)
    care["ratio"] = ratio
    return care


def compare(compiled: VBPModel, oracle: VBPModel) -> list[str]:
    """What the health pass left different in two models."""
    bad = [
        f"population.{k}" for k in PATIENTS if not close(getattr(compiled.population, k), getattr(oracle.population, k))
    ]
    bad += [k for k in MODEL_STATE if not close(getattr(compiled, k), getattr(oracle, k))]
    a, b = compiled.reported_outcomes, oracle.reported_outcomes
    bad += [f"reported_outcomes.{k}" for k in b if not close(a[k], b[k])]
    return bad


@pytest.mark.parametrize("mechanisms_on", [True, False], ids=["mechanisms", "core"])
@pytest.mark.parametrize("seed", [1, 2])
def test_health_pass_equals_numpy_on_scrambled_patients(seed: int, mechanisms_on: bool) -> None:
    """Same records, care outputs and state as numpy on random patients, with every branch taken."""
    compiled, oracle = pair(seed, mechanisms_on, **{"effort.readmission_elsewhere": 0.9})
    care_c, care_o = scramble(compiled, seed), scramble(oracle, seed)
    hospital_before = compiled.population.provider[:, HOSPITAL].copy()
    state_before = compiled.population.state.copy()
    health_c, health_o = compiled.update_health(care_c), oracle.update_health(care_o)
    assert health_c.keys() == health_o.keys()
    assert [k for k in health_o if not close(health_c[k], health_o[k])] == []
    assert [k for k in CARE_OUT if not close(care_c[k], care_o[k])] == []
    # the compiled pass keeps the benefit of care only where it is read again: the GP's and the new lead's
    lead = LEAD_DISCIPLINE[compiled.population.state]  # (onsets keep a patient's lead discipline)
    assert close(care_c["gp_benefit"], care_o["benefit"][:, GP])
    assert close(care_c["after_benefit"], care_o["benefit"][np.arange(len(lead)), lead])
    assert compare(compiled, oracle) == []
    # the scrambled step reached every branch: each transition, failed hand-offs, readmissions
    new = compiled.population.state
    assert health_c["strokes"] > 0 and health_c["deaths"] > 0 and health_c["handoff_failures"] > 0
    assert health_c["readmissions"] > 0
    assert ((state_before == POST_ACUTE) & (new != POST_ACUTE) & (new != DEAD)).sum() > 0
    assert ((state_before == ACUTE) & (new == ACUTE)).sum() > 0  # readmitted
    if mechanisms_on:  # readmissions routed to another region's hospital
        assert (compiled.population.provider[:, HOSPITAL] != hospital_before).any()
        assert health_c["acc_care_harm"] != health_c["acc_care_harm_innovated"]
        assert health_c["strokes_prevented"] > 0
    provider_before = compiled.population.provider[:, GP].copy()
    compiled.patients_choose(care_c)
    oracle.patients_choose(care_o)
    assert compare(compiled, oracle) == []
    assert (compiled.population.provider[:, GP] != provider_before).any()
    assert compiled.steered.any() == mechanisms_on


@pytest.mark.parametrize("mechanisms_on", [True, False], ids=["mechanisms", "core"])
def test_health_state_between_steps_equals_numpy(mechanisms_on: bool) -> None:
    """Stepped side by side, the models keep the same outcomes, beliefs and patients every step."""
    compiled, oracle = pair(4, mechanisms_on, **{"population.n_patients": 2000, "simulation.history_years": 1})
    for step in range(compiled.n_steps):
        compiled.step()
        oracle.step()
        assert compare(compiled, oracle) == [], f"step {step}"
        assert close(np.array(list(compiled.records[-1].values())), np.array(list(oracle.records[-1].values())))


def test_health_pass_keeps_the_health_stream() -> None:
    """The compiled pass draws the same numbers from the health stream as numpy (same calls)."""
    compiled, oracle = pair(5, True)
    care_c, care_o = scramble(compiled, 5), scramble(oracle, 5)
    compiled.update_health(care_c)
    oracle.update_health(care_o)
    for name in ("health", "choice", "selection"):
        assert compiled.streams[name].random() == oracle.streams[name].random(), name


@numba.njit
def _below_exactly(draws: np.ndarray, hazard: np.ndarray) -> np.ndarray:
    """``draws < 1 - exp(-hazard)`` with the exponential the kernels use (libm's, not numpy's SIMD one)."""
    return draws < 1.0 - np.exp(-hazard)


def test_event_shortcut_decides_as_the_exponential() -> None:
    """``_below_event_probability`` equals ``draw < 1 - exp(-hazard)``, draws close to it included."""
    rng = np.random.default_rng(11)
    hazard = np.concatenate([rng.exponential(1e-3, 20_000), rng.uniform(-0.01, 3.0, 5_000), [0.0, -0.0, 1e-300]])
    p = 1.0 - np.exp(-hazard)
    near = p * (1.0 + rng.normal(0.0, 1e-12, hazard.size)) + rng.normal(0.0, 1e-17, hazard.size)
    for draws in (rng.random(hazard.size), near, np.nextafter(p, 1.0), np.nextafter(p, -1.0), p, hazard):
        got = np.array([kernels._below_event_probability(d, h) for d, h in zip(draws, hazard, strict=True)])
        assert np.array_equal(got, _below_exactly(draws, hazard))


def test_onset_bound_skips_only_patients_without_onsets() -> None:
    """Condition onsets are the same with the age bound as when every probability is computed."""
    compiled, _ = pair(6, True)
    care = scramble(compiled, 6)
    rng = np.random.default_rng(6)
    pop, n = compiled.population, compiled.population.size
    params = compiled.config.population
    for incidence in (params.condition_incidence, 0.5):
        p_onset = 1 - np.exp(-incidence * params.condition_odds_per_decade ** ((pop.age - 60) / 10) * compiled.dt_years)
        draws = p_onset[:, None] * rng.uniform(0.999, 1.001, pop.conditions.shape)  # about half below
        draws[: n // 2] = rng.random((n // 2, pop.conditions.shape[1]))

        def onsets(
            youngest: float, oldest: float, draws: np.ndarray = draws, incidence: float = incidence
        ) -> tuple[np.ndarray, np.ndarray]:
            conditions, new_state = pop.conditions.copy(), pop.state.copy()
            providers = compiled.providers.n
            kernels.after_routing(
                state_before=pop.state,
                new_state=new_state,
                age=pop.age.copy(),
                conditions=conditions,
                onset_draws=draws,
                provider=pop.provider,
                gp_benefit=care["ratio"][:, 0].copy(),
                after_benefit=care["ratio"][:, 1].copy(),
                base_stroke=np.zeros(n),
                qol_out=np.zeros(n),
                p_background=np.zeros(n),
                dies=np.zeros(n, dtype=bool),
                events=np.zeros(n, dtype=np.uint8),
                prevention_stock=np.zeros(n),
                lead_discipline=LEAD_DISCIPLINE,
                condition_incidence=incidence,
                condition_odds_per_decade=params.condition_odds_per_decade,
                youngest=youngest,
                oldest=oldest,
                dt=compiled.dt_years,
                months=1.0,
                prevention=False,
                buildup=0.0,
                prevention_target=np.zeros(providers),
                prevention_efficacy=0.0,
                innovation=False,
                benefit_gain=np.zeros(providers),
                qol_table=np.ones(6),
                qol_care_weight=0.0,
                harm=0.0,
                monthly=np.zeros(5),
                reference_readmission_rate=0.0,
                per_provider=np.zeros((6, providers)),
                start=0,
                stop=n,
                totals=np.zeros(len(kernels.ROUTED_TOTALS)),
            )
            return conditions, new_state

        bounded, unbounded = onsets(pop.age.min(), pop.age.max()), onsets(-np.inf, np.inf)
        assert np.array_equal(bounded[0], unbounded[0]) and np.array_equal(bounded[1], unbounded[1])
        new = unbounded[0] & ~pop.conditions
        assert 0 < new.sum() < (~pop.conditions).sum()
        alive = pop.state != DEAD
        assert np.array_equal(new, (draws < p_onset[:, None]) & ~pop.conditions & alive[:, None])


def test_copies_of_a_model_start_without_its_work_arrays() -> None:
    """A deep copy (compare's arms) shares no work array and continues exactly like the original."""
    original, _ = pair(7, True, **{"population.n_patients": 1000, "simulation.history_years": 1})
    for _ in range(2):
        original.step()
    assert original._buffers
    twin = copy.deepcopy(original)
    assert not twin._buffers
    for _ in range(3):
        original.step()
        twin.step()
    assert original.records[-1] == twin.records[-1]
    shared = [
        k for k, v in twin._buffers.items() if isinstance(v, np.ndarray) and np.shares_memory(v, original._buffers[k])
    ]
    assert shared == []
