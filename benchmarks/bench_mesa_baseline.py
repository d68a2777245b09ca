"""vbpsim against an idiomatic Mesa 3.x model with one agent object per patient (a script, not a test).

The baseline is what a Mesa user would write for vbpsim's monthly patient update: one
``mesa.Agent`` per patient and per provider, ``model.agents_by_type[Patient].do("step")``
(Mesa 3.x has no schedulers; ``shuffle_do`` with ``--shuffle``), each patient in Python:

* care need per discipline (guideline units by health state and chronic conditions, times
  the patient's frailty),
* delivery against the provider's intensity (times the patient's delivery noise), its cost,
  and the per-provider sums a purchaser observes (units, cost, cases, cases meeting the
  quality standard),
* the health benefit of that care and the monthly health-state transition draws (death,
  stroke, recovery, disability), with under-treatment raising the hazards,
* the patient's cost accumulated.

Patients, providers, intensities and parameters are taken from a vbpsim model of the same
size, so both start from the same world. vbpsim is timed on its whole ``VBPModel.step``,
which does much more than this update (contracts, observation, payments, choice,
appraisal, learning, recording): the ratio is therefore conservative. A vectorised numpy
version of exactly the baseline's update is timed too (the floor of numpy on this work),
and its aggregates are printed beside the Mesa model's as a check that both do the same
thing (different random draws, so they agree only statistically).

Usage::

    .venv/bin/python benchmarks/bench_mesa_baseline.py                 # 10k and 100k patients
    .venv/bin/python benchmarks/bench_mesa_baseline.py --million       # also vbpsim at 1M (~1-2 min)
    .venv/bin/python benchmarks/bench_mesa_baseline.py --sizes 10000 --steps 6
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import time
from collections.abc import Callable

import mesa
import numpy as np

import vbpsim
from vbpsim.agents import QUALITY_STANDARD
from vbpsim.parameters import CONDITIONS, DISCIPLINES
from vbpsim.population import (
    ACUTE,
    CHRONIC,
    DEAD,
    DISABLED,
    HEALTHY,
    LEAD_DISCIPLINE,
    NEED_PER_MONTH,
    POST_ACUTE,
    care_benefit,
)

PROVIDERS_LARGE = {"n_gp": 240, "n_hospital": 60, "n_rehab": 50, "n_nursing": 50}  # as bench_core's 1M world
N_DISCIPLINES = len(DISCIPLINES)


def world(n_patients: int, seed: int = 0) -> vbpsim.VBPModel:
    """A vbpsim FFS model of the default scenario with ``n_patients``, no status-quo history."""
    providers = {} if n_patients <= 10_000 else PROVIDERS_LARGE
    return vbpsim.build_model("ffs", "default", years=2, seed=seed, n_patients=n_patients, history_years=0, **providers)


class Clinical:
    """The clinical constants of one month, read from a vbpsim scenario."""

    def __init__(self, model: vbpsim.VBPModel) -> None:
        c = model.config.clinical
        self.months = model.months_per_step
        self.dt = model.dt_years
        self.unit_cost = [float(x) for x in model.unit_cost]
        self.need = [[float(x) * self.months for x in row] for row in NEED_PER_MONTH]
        self.harm = c.undertreatment_harm
        self.over_harm = c.overtreatment_harm
        self.stroke_rate_60 = c.stroke_rate_60
        self.stroke_hr_per_decade = c.stroke_hr_per_decade
        self.stroke_hr = [c.stroke_hr[name] for name in CONDITIONS]
        self.bg_60 = c.background_mortality_60
        self.gompertz = c.mortality_gompertz_slope
        monthly = [c.case_fatality, c.post_acute_mortality, c.disabled_mortality, c.recovery_rate, c.disability_rate]
        self.monthly = [1 - (1 - p) ** self.months for p in monthly]


def benefit_of(ratio: float, over_harm: float) -> float:
    """vbpsim's care benefit (``population.care_benefit``) for one number."""
    if ratio <= 1.0:
        return max(ratio * (2.0 - ratio), 0.0)
    return 1.0 - over_harm * (ratio - 1.0) ** 2


class Provider(mesa.Agent):
    """A provider: its intensity of care and what the purchaser observes of it this month."""

    def __init__(self, model: mesa.Model, intensity: float) -> None:
        super().__init__(model)
        self.intensity = intensity
        self.units = self.cost = self.cases = self.met = 0.0

    def reset(self) -> None:
        self.units = self.cost = self.cases = self.met = 0.0


class Patient(mesa.Agent):
    """A patient: health state, risk, and a provider in each discipline of the care chain."""

    def __init__(
        self,
        model: MesaPatients,
        state: int,
        age: float,
        conditions: list[bool],
        frailty: float,
        providers: list[Provider],
        noise: list[float],
    ) -> None:
        super().__init__(model)
        self.state = state
        self.age = age
        self.conditions = conditions
        self.frailty = frailty
        self.providers = providers
        self.noise = noise
        self.total_cost = 0.0

    def step(self) -> None:
        """One month: need, delivery, the providers' sums, benefit, then the health transition."""
        if self.state == DEAD:
            return
        k: Clinical = self.model.clinical
        state = self.state
        need = list(k.need[state])
        if state == CHRONIC:
            extra = sum(self.conditions) - 1
            need[0] += extra * k.need[CHRONIC][0] + k.need[HEALTHY][0]
            need[1] += extra * k.need[CHRONIC][1]
        benefit = [1.0] * N_DISCIPLINES
        for d in range(N_DISCIPLINES):
            units = need[d] * self.frailty
            provider = self.providers[d]
            ratio = provider.intensity * self.noise[d]
            benefit[d] = benefit_of(ratio, k.over_harm)
            if units > 0:
                delivered = ratio * units
                cost = delivered * k.unit_cost[d]
                provider.units += delivered
                provider.cost += cost
                provider.cases += 1.0
                provider.met += ratio >= QUALITY_STANDARD
                self.total_cost += cost
        shortfall = 1.0 - benefit[LEAD_DISCIPLINE[state]]
        background = k.bg_60 * math.exp(k.gompertz * (self.age - 60))
        p_background = 1 - math.exp(-background * k.dt)
        p_death = p_stroke = p_recover = p_disabled = 0.0
        if state in (HEALTHY, CHRONIC):
            hazard = k.stroke_rate_60 * k.stroke_hr_per_decade ** ((self.age - 60) / 10)
            for has, hr in zip(self.conditions, k.stroke_hr, strict=True):
                if has:
                    hazard *= hr
            hazard *= 1 + k.harm * (1.0 - benefit[0])
            p_stroke = 1 - math.exp(-hazard * k.dt)
        elif state == ACUTE:
            p_death = min(k.monthly[0] * (1 + k.harm * shortfall), 1.0)
        elif state == POST_ACUTE:
            p_death = min(k.monthly[1] * (1 + k.harm * shortfall), 1.0)
            p_recover = k.monthly[3] * max(1.0 - shortfall, 0.0)
            p_disabled = max(k.monthly[4] * (1 + k.harm * shortfall), 0.0)
        elif state == DISABLED:
            p_death = min(k.monthly[2] * (1 + k.harm * shortfall), 1.0)
        p_death = 1 - (1 - p_death) * (1 - p_background)
        u = self.random.random()
        if u < p_death:
            self.state = DEAD
            self.model.deaths += 1
            return
        u = (u - p_death) / max(1 - p_death, 1e-12)
        if state in (HEALTHY, CHRONIC) and u < p_stroke:
            self.state = ACUTE
            self.model.strokes += 1
        elif state == ACUTE:
            self.state = POST_ACUTE
        elif state == POST_ACUTE and u < p_recover:
            self.state = CHRONIC
        elif state == POST_ACUTE and u < p_recover + p_disabled:
            self.state = DISABLED
        self.age += k.dt


class MesaPatients(mesa.Model):
    """One agent per patient and per provider; a step resets the providers' sums and steps the patients."""

    def __init__(self, source: vbpsim.VBPModel, shuffle: bool = False, rng: int = 0) -> None:
        super().__init__(rng=rng)
        self.clinical = Clinical(source)
        self.shuffle = shuffle
        self.deaths = self.strokes = 0
        intensity = source.providers.decision.intensity
        providers = [Provider(self, float(x)) for x in intensity]
        pop = source.population
        for i in range(pop.size):
            Patient(
                self,
                int(pop.state[i]),
                float(pop.age[i]),
                [bool(x) for x in pop.conditions[i]],
                float(pop.frailty[i]),
                [providers[j] for j in pop.provider[i]],
                [float(x) for x in pop.delivery_noise[i]],
            )

    def step(self) -> None:
        self.agents_by_type[Provider].do("reset")
        patients = self.agents_by_type[Patient]
        if self.shuffle:
            patients.shuffle_do("step")
        else:
            patients.do("step")

    def totals(self) -> dict[str, float]:
        providers = self.agents_by_type[Provider]
        return {
            "cost": float(sum(providers.get("cost"))),
            "cases": float(sum(providers.get("cases"))),
            "met": float(sum(providers.get("met"))),
            "alive": float(sum(p.state != DEAD for p in self.agents_by_type[Patient])),
        }


class NumpyPatients:
    """The baseline's update vectorised over patient arrays, the way vbpsim writes it (the numpy floor)."""

    def __init__(self, source: vbpsim.VBPModel, seed: int = 0) -> None:
        pop = source.population
        self.k = Clinical(source)
        self.rng = np.random.default_rng(seed)
        self.state = pop.state.copy()
        self.age = pop.age.copy()
        self.conditions = pop.conditions.copy()
        self.frailty = pop.frailty.copy()
        self.provider = pop.provider.copy()
        self.noise = pop.delivery_noise.copy()
        self.intensity = source.providers.decision.intensity.copy()
        self.n_providers = len(self.intensity)
        self.total_cost = np.zeros(len(self.age))
        self.need_table = np.array(self.k.need)
        self.unit_cost = np.array(self.k.unit_cost)
        self.sums: dict[str, np.ndarray] = {}

    def step(self) -> None:
        k, state = self.k, self.state
        alive = state != DEAD
        chronic = state == CHRONIC
        need = self.need_table[state]
        extra = np.where(chronic, self.conditions.sum(axis=1) - 1, 0)
        need[:, :2] += extra[:, None] * self.need_table[CHRONIC, :2]
        need[:, 0] += np.where(chronic, self.need_table[HEALTHY, 0], 0.0)
        units = need * self.frailty[:, None]
        ratio = self.intensity[self.provider] * self.noise
        benefit = care_benefit(ratio, k.over_harm)
        in_care = alive[:, None] & (units > 0)
        delivered = np.where(in_care, ratio * units, 0.0)
        cost = delivered * self.unit_cost
        self.total_cost += cost.sum(axis=1)
        flat = self.provider.ravel()
        n = self.n_providers
        self.sums = {
            "units": np.bincount(flat, weights=delivered.ravel(), minlength=n),
            "cost": np.bincount(flat, weights=cost.ravel(), minlength=n),
            "cases": np.bincount(flat, weights=in_care.ravel().astype(float), minlength=n),
            "met": np.bincount(
                flat, weights=(in_care & (ratio >= QUALITY_STANDARD)).ravel().astype(float), minlength=n
            ),
        }
        shortfall = 1.0 - benefit[np.arange(len(state)), LEAD_DISCIPLINE[state]]
        p_background = 1 - np.exp(-k.bg_60 * np.exp(k.gompertz * (self.age - 60)) * k.dt)
        at_risk = (state == HEALTHY) | (state == CHRONIC)
        by_conditions = np.prod(np.where(self.conditions, np.array(k.stroke_hr)[None, :], 1.0), axis=1)
        hazard = k.stroke_rate_60 * k.stroke_hr_per_decade ** ((self.age - 60) / 10) * by_conditions
        p_stroke = np.where(at_risk, 1 - np.exp(-hazard * (1 + k.harm * (1 - benefit[:, 0])) * k.dt), 0.0)
        m = k.monthly
        p_death = np.select(
            [state == ACUTE, state == POST_ACUTE, state == DISABLED],
            [np.minimum(m[0] * (1 + k.harm * shortfall), 1), np.minimum(m[1] * (1 + k.harm * shortfall), 1),
             np.minimum(m[2] * (1 + k.harm * shortfall), 1)],
            0.0,
        )  # fmt: skip
        p_death = 1 - (1 - p_death) * (1 - p_background)
        post = state == POST_ACUTE
        p_recover = np.where(post, m[3] * np.maximum(1 - shortfall, 0), 0.0)
        p_disabled = np.where(post, np.maximum(m[4] * (1 + k.harm * shortfall), 0), 0.0)
        u = self.rng.random(len(state))
        dies = alive & (u < p_death)
        u2 = (u - p_death) / np.maximum(1 - p_death, 1e-12)
        survivor = alive & ~dies
        new = state.copy()
        new[survivor & at_risk & (u2 < p_stroke)] = ACUTE
        new[survivor & (state == ACUTE)] = POST_ACUTE
        recovers = survivor & post & (u2 < p_recover)
        new[recovers] = CHRONIC
        new[survivor & post & ~recovers & (u2 < p_recover + p_disabled)] = DISABLED
        new[dies] = DEAD
        self.age = np.where(survivor, self.age + k.dt, self.age)
        self.state = new

    def totals(self) -> dict[str, float]:
        return {
            "cost": float(self.sums["cost"].sum()),
            "cases": float(self.sums["cases"].sum()),
            "met": float(self.sums["met"].sum()),
            "alive": float((self.state != DEAD).sum()),
        }


def timed(step: Callable[[], None], steps: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``steps`` calls of ``step``."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    return time.perf_counter() - wall, time.process_time() - cpu


def per_patient_step(seconds: float, patients: int, steps: int) -> float:
    return seconds / (patients * steps) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--steps", type=int, default=12, help="timed steps per model (after one untimed step)")
    parser.add_argument("--million", action="store_true", help="also time vbpsim alone at 1,000,000 patients")
    parser.add_argument("--shuffle", action="store_true", help="Mesa activates patients in random order")
    args = parser.parse_args()
    activation = "shuffle_do" if args.shuffle else "do"
    print(f"vbpsim vs an idiomatic Mesa {mesa.__version__} model, {dt.datetime.now().isoformat(timespec='seconds')}")
    print(f"load average at start: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}; {args.steps} timed steps")
    print(f"(µs per patient-step, CPU = time.process_time; Mesa patients activated with AgentSet.{activation})")
    print()
    header = f"{'patients':>9} {'model':<28} {'wall µs':>9} {'CPU µs':>8} {'Mesa/this (CPU)':>16}"
    print(header)
    print("-" * len(header))
    checks = []
    for n in args.sizes:
        source = world(n)
        mesa_model = MesaPatients(source, shuffle=args.shuffle)
        numpy_model = NumpyPatients(source)
        for model in (mesa_model, numpy_model, source):
            model.step()  # untimed: the first step (vbpsim's risk refit, Mesa's lazy caches)
        checks.append((n, mesa_model.totals(), numpy_model.totals()))
        rows = [
            ("Mesa, one agent per patient", timed(mesa_model.step, args.steps)),
            ("numpy, same update", timed(numpy_model.step, args.steps)),
            ("vbpsim VBPModel.step (all)", timed(source.step, args.steps)),
        ]
        mesa_cpu = rows[0][1][1]
        for name, (wall, cpu) in rows:
            ratio = mesa_cpu / cpu
            print(
                f"{n:>9,} {name:<28} {per_patient_step(wall, n, args.steps):>9.3f} "
                f"{per_patient_step(cpu, n, args.steps):>8.3f} {ratio:>15.1f}x"
            )
    if args.million:
        n = 1_000_000
        source = world(n)
        source.step()
        wall, cpu = timed(source.step, args.steps)
        print(
            f"{n:>9,} {'vbpsim VBPModel.step (all)':<28} {per_patient_step(wall, n, args.steps):>9.3f} "
            f"{per_patient_step(cpu, n, args.steps):>8.3f} {'':>16}"
        )
    print()
    print("check, first step (Mesa / numpy): care and sums depend only on the common start, so they must")
    print("match; the living after it differ by the random draws only")
    for n, a, b in checks:
        print(f"  {n:>9,}: " + ", ".join(f"{key} {a[key]:,.0f} / {b[key]:,.0f}" for key in a))


if __name__ == "__main__":
    main()
