"""Patients: individuals with their own state and rules, stored as numpy arrays.

Each patient has an age, chronic conditions (stroke risk factors), a lognormal cost risk
split into a part the purchaser can observe and a private part that providers partly
see (their information advantage, Cattel et al. 2018 Section 4.2.4), a health state
(healthy, chronic, acute stroke, post-acute, disabled, dead), a provider in each
discipline of the care chain, and an experience of care that drives switching. Every rule
is a vectorised operation over all patients at once, so 10^6 patients stay practical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .care import (  # noqa: F401  (re-exported: the population's states and need table)
    ACUTE,
    CHRONIC,
    DEAD,
    DISABLED,
    GP,
    HEALTHY,
    HOSPITAL,
    LEAD_DISCIPLINE,
    NEED_PER_MONTH,
    NURSING,
    POST_ACUTE,
    REHAB,
    care_benefit,
    qol_by_state,
)
from .kernels import delivery as kernels
from .parameters import CONDITIONS, DISCIPLINES, ClinicalParams, PopulationParams


@dataclass
class Population:
    """All patients as parallel arrays; index i is one individual throughout the run."""

    age: np.ndarray
    conditions: np.ndarray  # (n, 3) bool
    state: np.ndarray  # int8, HEALTH_STATES index
    log_risk_observable: np.ndarray
    log_risk_private: np.ndarray
    provider_view_private: np.ndarray  # providers' noisy reading of the private part
    # (n, 4) uint32: the patient's provider in each discipline (GP's chain); unsigned, so the
    # compiled passes index arrays with it without a negative-index check (3-9% faster passes)
    provider: np.ndarray
    delivery_noise: np.ndarray  # (n, 4) persistent patient-level response to practice style
    experience: np.ndarray  # moving average of care benefit received, 0..1

    @classmethod
    def generate(
        cls,
        params: PopulationParams,
        clinical: ClinicalParams,
        gp_chains: np.ndarray,
        rng: np.random.Generator,
    ) -> Population:
        """Draw a population from the scenario's distributions."""
        n = params.n_patients
        age = np.clip(rng.normal(params.age_mean, params.age_sd, n), params.age_min, params.age_max)
        prevalence = np.array(
            [
                params.hypertension_prevalence_60,
                params.diabetes_prevalence_60,
                params.atrial_fibrillation_prevalence_60,
            ]
        )
        odds60 = prevalence / np.maximum(1 - prevalence, 1e-12)
        odds = odds60[None, :] * params.condition_odds_per_decade ** ((age[:, None] - 60) / 10)
        conditions = rng.random((n, len(CONDITIONS))) < odds / (1 + odds)
        var_obs = params.risk_sd**2 * (1 - params.private_risk_share)
        var_priv = params.risk_sd**2 * params.private_risk_share
        log_obs = rng.normal(-var_obs / 2, np.sqrt(var_obs), n)
        log_priv = rng.normal(-var_priv / 2, np.sqrt(var_priv), n)
        noise_sd = params.provider_signal_noise
        view = log_priv + rng.normal(-(noise_sd**2) / 2, noise_sd, n)  # unbiased in exp: E[e^view] = e^priv
        provider = gp_chains[rng.integers(0, len(gp_chains), n)]
        sigma = clinical.delivery_noise
        noise = np.exp(rng.normal(-(sigma**2) / 2, sigma, (n, len(DISCIPLINES))))
        state = np.where(conditions.any(axis=1), CHRONIC, HEALTHY).astype(np.int8)
        by_age = clinical.stroke_hr_per_decade ** ((age - 60) / 10)
        history = rng.random(n)
        p_post_acute = np.minimum(params.post_acute_prevalence_60 * by_age, 1.0)
        p_disabled = np.minimum(params.disabled_prevalence_60 * by_age, 1.0 - p_post_acute)
        state[history < p_post_acute] = POST_ACUTE
        state[(history >= p_post_acute) & (history < p_post_acute + p_disabled)] = DISABLED
        return cls(
            age=age,
            conditions=conditions,
            state=state,
            log_risk_observable=log_obs,
            log_risk_private=log_priv,
            provider_view_private=view,
            provider=provider.astype(np.uint32),
            delivery_noise=noise,
            experience=np.full(n, 0.8),
        )

    @property
    def size(self) -> int:
        """Number of individuals ever in the population (alive or dead)."""
        return int(self.age.shape[0])

    @property
    def alive(self) -> np.ndarray:
        """Mask of living patients."""
        return self.state != DEAD

    def __post_init__(self) -> None:
        self.frailty = np.exp(self.log_risk_observable + self.log_risk_private)
        self.perceived_risk = np.exp(self.log_risk_observable + self.provider_view_private)  # providers' view

    def diagnosis_need(self) -> np.ndarray:
        """Guideline need per month of an average-risk patient in the same state and diagnoses."""
        shape, k = (self.size, len(DISCIPLINES)), len(DISCIPLINES)
        need, out, cost, totals = np.empty(shape), np.empty(shape), np.empty(shape), np.empty((3, k))
        # the need pass for a month at unit prices and average risk: its diagnosis price is this need
        frailty, unit_cost = np.ones(self.size), np.ones(k)
        no_rows = np.empty(0, dtype=np.uint8)
        kernels.care_need(
            self.state, self.conditions, frailty, NEED_PER_MONTH, 1.0, unit_cost, need, out, cost, no_rows, totals
        )
        return out

    def stroke_hazard(self, clinical: ClinicalParams) -> np.ndarray:
        """Yearly stroke hazard before care effects, for those who can have one."""
        hr = np.array([clinical.stroke_hr[c] for c in CONDITIONS])
        by_conditions = np.prod(np.where(self.conditions, hr[None, :], 1.0), axis=1)
        at_risk = (self.state == HEALTHY) | (self.state == CHRONIC)
        return np.where(at_risk, clinical.stroke_rate_60 * self.stroke_age_factor(clinical) * by_conditions, 0.0)

    def stroke_age_factor(
        self, clinical: ClinicalParams, out: np.ndarray | None = None, rows: slice = slice(None)
    ) -> np.ndarray:
        """Stroke hazard ratio of each patient's age (of ``rows``) against age 60 (into ``out`` if given)."""
        years = np.subtract(self.age[rows], 60, out=out)
        return np.power(clinical.stroke_hr_per_decade, np.divide(years, 10, out=years), out=years)

    def background_mortality(
        self, clinical: ClinicalParams, out: np.ndarray | None = None, rows: slice = slice(None)
    ) -> np.ndarray:
        """Yearly other-cause mortality hazard (Gompertz) of each patient (of ``rows``; into ``out`` if given)."""
        hazard = np.subtract(self.age[rows], 60, out=out)
        np.multiply(clinical.mortality_gompertz_slope, hazard, out=hazard)
        return np.multiply(clinical.background_mortality_60, np.exp(hazard, out=hazard), out=hazard)
