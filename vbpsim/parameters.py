"""Scenario parameters: every number the model uses, with its unit and source.

A scenario is data, not code (as OpenFisca keeps parameters). It has sections for the
population, the clinical model, the providers, the purchaser, the contract and the
horizon. Each field carries a description, a unit and a source in its metadata, which is
what `docs/ODD.md` tabulates. Validation happens here, where input enters: a bad value
raises :class:`~vbpsim.errors.ParameterError` naming the parameter path, the value and
what is allowed.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ParameterError

DISCIPLINES: tuple[str, ...] = ("gp", "hospital", "rehab", "nursing")
HEALTH_STATES: tuple[str, ...] = ("healthy", "chronic", "acute", "post_acute", "disabled", "dead")
CONDITIONS: tuple[str, ...] = ("hypertension", "diabetes", "atrial_fibrillation")
INNOVATION_TYPES: tuple[str, ...] = ("cost_saving", "cost_effective", "low_value", "new_service")
EFFORT_TASKS: tuple[str, ...] = ("measured", "unmeasured", "coordination", "prevention")
# R^2 of the purchaser's risk score by information level (Van de Ven & Ellis 2000; Pope et al. 2004; Ash et al. 2000).
RISK_ADJUSTMENT_LEVELS: dict[str, float] = {
    "none": 0.0,
    "demographic": 0.015,
    "prospective": 0.11,
    "concurrent": 0.4,
    "full": 1.0,
}

ASSUMPTION = "modelling assumption (docs/ODD.md, 'Details')"


def param(default: Any, unit: str, source: str, description: str, **constraints: Any) -> Any:
    """Declare a scenario field with the metadata the ODD tables are built from."""
    return Field(
        default,
        description=description,
        json_schema_extra={"unit": unit, "source": source},
        **constraints,
    )


class Section(BaseModel):
    """A scenario section: unknown keys and wrong types are errors, not silent defaults.

    Types are strict: text (``"1"``), bytes (``b"1"``) and booleans are never read as
    numbers, and a whole number field refuses ``2.5`` and ``2.0`` alike. Only the CLI's
    ``--set KEY=VALUE`` turns text into values (it reads them as JSON). Every number has a
    finite allowed range in its field (``ge``/``gt`` and ``le``/``lt``), which the ODD tables show.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False, allow_inf_nan=False, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _plain_numbers(cls, data: Any) -> Any:
        """Numpy scalars (e.g. from a sweep's sample matrix) count as the Python numbers they hold."""
        if isinstance(data, dict):
            return {key: _plain(value) for key, value in data.items()}
        return data


def _plain(value: Any) -> Any:
    """A numpy scalar as its Python value (one level into a keyed table); anything else unchanged."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: item.item() if isinstance(item, np.generic) else item for key, item in value.items()}
    return value


class PopulationParams(Section):
    """Who the patients are: age, chronic risk factors and how much of risk is hidden."""

    n_patients: int = param(10_000, "persons", ASSUMPTION, "Initial population size.", ge=10, le=10_000_000)
    age_mean: float = param(62.0, "years", "adult population at stroke risk; ASSUMPTION", "Mean age.", ge=18, le=100)
    age_sd: float = param(12.0, "years", ASSUMPTION, "Standard deviation of age.", ge=0, le=50)
    age_min: float = param(40.0, "years", ASSUMPTION, "Youngest age in the population.", ge=18, le=110)
    age_max: float = param(95.0, "years", ASSUMPTION, "Oldest age in the population.", ge=18, le=110)
    hypertension_prevalence_60: float = param(
        0.35,
        "share",
        "Dutch GP registries (order of magnitude)",
        "Hypertension at age 60.",
        ge=0,
        le=1,
    )
    diabetes_prevalence_60: float = param(
        0.12, "share", "Dutch GP registries (order of magnitude)", "Diabetes at age 60.", ge=0, le=1
    )
    atrial_fibrillation_prevalence_60: float = param(
        0.03,
        "share",
        "Framingham cohort (order of magnitude)",
        "Atrial fibrillation at 60.",
        ge=0,
        le=1,
    )
    condition_odds_per_decade: float = param(
        1.6, "odds ratio", ASSUMPTION, "Odds of each condition per 10 years of age.", gt=0, le=10
    )
    condition_incidence: float = param(
        0.015,
        "1/year",
        ASSUMPTION,
        "Yearly incidence of each chronic condition at 60 (rising with age like prevalence).",
        ge=0,
        le=1,
    )
    post_acute_prevalence_60: float = param(
        0.002,
        "share",
        ASSUMPTION,
        "Share at 60 in the post-acute phase of a stroke at start.",
        ge=0,
        le=1,
    )
    disabled_prevalence_60: float = param(
        0.01,
        "share",
        "stroke survivors with lasting disability (order of magnitude)",
        "Share at 60 disabled after an earlier stroke at start.",
        ge=0,
        le=1,
    )
    risk_sd: float = param(
        0.6,
        "log units",
        "lognormal spread of individual cost risk (Van Vliet 1992)",
        "SD of the individual log cost risk (frailty).",
        ge=0,
        le=3,
    )
    private_risk_share: float = param(
        0.5,
        "share of variance",
        "Cattel et al. 2018, Section 4.2.4",
        "Share of log-risk variance the purchaser cannot observe (providers see part of it).",
        ge=0,
        le=1,
    )
    provider_signal_noise: float = param(
        0.3,
        "log units",
        "Cattel et al. 2018, Section 4.2.4",
        "Noise in a provider's reading of a patient's private risk.",
        ge=0,
        le=5,
    )
    switch_rate: float = param(
        0.02,
        "1/month",
        ASSUMPTION,
        "Monthly probability that a fully dissatisfied patient switches GP.",
        ge=0,
        le=1,
    )


class ClinicalParams(Section):
    """How care turns into health: the patient-optimal intensity is 1 by definition."""

    unit_cost: dict[str, float] = param(
        {"gp": 50.0, "hospital": 1000.0, "rehab": 200.0, "nursing": 50.0},
        "EUR per service unit",
        "Dutch cost manual (Hakkaart-van Roijen 2016), rounded",
        "Provider's cost of one service unit by discipline.",
    )
    stroke_rate_60: float = param(
        0.002,
        "1/year",
        "Dutch stroke incidence (order of magnitude)",
        "Stroke hazard at 60 without risk factors.",
        ge=0,
        le=1,
    )
    stroke_hr_per_decade: float = param(
        1.9,
        "hazard ratio",
        "stroke risk roughly doubles per decade after 55",
        "Stroke hazard ratio per 10 years of age.",
        gt=0,
        le=10,
    )
    stroke_hr: dict[str, float] = param(
        {"hypertension": 2.0, "diabetes": 1.8, "atrial_fibrillation": 4.0},
        "hazard ratio",
        "Framingham stroke risk profile (Wolf et al. 1991), rounded",
        "Stroke hazard ratio by condition.",
    )
    case_fatality: float = param(
        0.15,
        "probability",
        "30-day stroke case fatality, Western Europe",
        "Death in the acute month with guideline care.",
        ge=0,
        le=1,
    )
    recovery_rate: float = param(
        0.25,
        "1/month",
        ASSUMPTION,
        "Post-acute to recovered (chronic) with guideline rehab.",
        ge=0,
        le=1,
    )
    disability_rate: float = param(
        0.06,
        "1/month",
        ASSUMPTION,
        "Post-acute to lasting disability with guideline rehab.",
        ge=0,
        le=1,
    )
    post_acute_mortality: float = param(
        0.01, "1/month", ASSUMPTION, "Monthly death in the post-acute phase.", ge=0, le=1
    )
    disabled_mortality: float = param(0.01, "1/month", ASSUMPTION, "Monthly death while disabled.", ge=0, le=1)
    background_mortality_60: float = param(
        0.006,
        "1/year",
        "Dutch life table (order of magnitude)",
        "Other-cause death at 60.",
        ge=0,
        le=1,
    )
    mortality_gompertz_slope: float = param(
        0.09,
        "1/year of age",
        "Gompertz law, human adults",
        "Log-increase of mortality per year.",
        ge=0,
        le=0.5,
    )
    undertreatment_harm: float = param(
        0.6,
        "relative hazard",
        ASSUMPTION,
        "Extra relative hazard of adverse transitions with no care at all (intensity 0).",
        ge=0,
        le=10,
    )
    overtreatment_harm: float = param(
        0.3,
        "benefit per squared excess",
        "calibrated to the status quo's low-value share (calibration/targets.toml)",
        "Curvature of benefit beyond the optimum: b(x)=1-h(x-1)^2 for x>1.",
        ge=0,
        le=10,
    )
    delivery_noise: float = param(
        0.2,
        "log units",
        ASSUMPTION,
        "Patient-level spread of delivered around chosen intensity.",
        ge=0,
        le=2,
    )
    qol: dict[str, float] = param(
        {"healthy": 0.90, "chronic": 0.80, "acute": 0.35, "post_acute": 0.55, "disabled": 0.45},
        "utility (0-1)",
        "EQ-5D values after stroke (order of magnitude)",
        "Quality of life by health state with guideline care.",
    )
    qol_care_weight: float = param(
        0.2, "share of QoL", ASSUMPTION, "QoL lost in a month of no care at all.", ge=0, le=1
    )
    planned_admission_rate: float = param(
        0.06,
        "1/person-year",
        "Dutch hospital discharges about 110 per 1,000 a year, roughly half planned (OECD Health "
        "Statistics; CBS/LBZ), higher at 40+; order of magnitude",
        "[discretionary_admissions] Candidates for a planned (elective) admission per living adult "
        "outside an acute or post-acute episode.",
        ge=0,
        le=2,
    )
    acs_admission_rate: float = param(
        0.015,
        "1/condition-year",
        "ambulatory-care-sensitive admissions about 10-15% of emergency admissions, chronic ACS "
        "conditions about 10 per 1,000 population a year (Bardsley et al. 2013, BMJ Open 3:e002007; "
        "Purdy et al. 2009); order of magnitude",
        "[discretionary_admissions] Candidates for an ambulatory-care-sensitive admission per chronic "
        "condition and year at guideline GP care without prevention.",
        ge=0,
        le=2,
    )
    admission_units: float = param(
        5.0,
        "hospital units per admission",
        "average cost of a Dutch clinical admission, order of magnitude EUR 5,000 (NZa DBC data)",
        "[discretionary_admissions] Hospital service units of one discretionary admission of an "
        "average-risk patient (scaled by the patient's risk).",
        gt=0,
        le=100,
    )
    admission_appropriate_share: float = param(
        0.75,
        "share of candidates",
        "RAND/UCLA appropriateness studies: about a quarter of elective procedures and admissions "
        "rated inappropriate or uncertain (Brook et al. 1990; Kravitz et al. 1995), order of magnitude",
        "[discretionary_admissions] Share of admission candidates for whom admission does more good "
        "than harm: the health-optimal admission share.",
        gt=0,
        le=1,
    )
    admission_qaly_gain: float = param(
        0.05,
        "QALY per admission",
        ASSUMPTION,
        "[discretionary_admissions] Mean QALY gain of an admission of an appropriate candidate; "
        "the gain falls linearly with the candidate's appropriateness rank and is negative beyond "
        "the appropriate share (harm of unnecessary admission).",
        ge=0,
        le=5,
    )
    willingness_to_pay: float = param(
        50_000.0,
        "EUR per QALY",
        "Dutch reference values (Zwaap et al. 2015)",
        "Value of a QALY for net monetary benefit.",
        ge=0,
        le=1_000_000,
    )


class ProviderParams(Section):
    """Providers: how many of each discipline and how they weigh money against health."""

    n_gp: int = param(24, "providers", ASSUMPTION, "GP practices.", ge=1, le=10_000)
    n_hospital: int = param(6, "providers", ASSUMPTION, "Hospitals.", ge=1, le=10_000)
    n_rehab: int = param(6, "providers", ASSUMPTION, "Rehabilitation centres.", ge=1, le=10_000)
    n_nursing: int = param(6, "providers", ASSUMPTION, "Nursing/home-care organisations.", ge=1, le=10_000)
    altruism_mean: float = param(
        0.72,
        "weight (0-1)",
        "Ellis & McGuire 1986: provider weighs patient benefit; calibrated (calibration/targets.toml)",
        "Mean weight on patient benefit (money-equivalent).",
        ge=0,
        le=1,
    )
    altruism_sd: float = param(0.1, "weight", ASSUMPTION, "Heterogeneity of altruism across providers.", ge=0, le=0.5)
    benefit_to_cost: float = param(
        3.0,
        "EUR of health per EUR of care",
        "cost-effective guideline care; ASSUMPTION",
        "Patient's health value of guideline care relative to its cost.",
        gt=0,
        le=100,
    )
    loss_aversion: float = param(
        2.25,
        "ratio",
        "Tversky & Kahneman 1992",
        "Weight of a loss relative to an equal gain.",
        ge=1,
        le=10,
    )
    capacity_slack: float = param(
        1.3, "ratio", ASSUMPTION, "Capacity relative to the initial panel's guideline need.", gt=0, le=10
    )
    overtime_premium: float = param(
        0.2,
        "share of unit cost",
        "overtime pay on staff cost; ASSUMPTION (below the default FFS margin)",
        "Extra unit cost for work beyond capacity.",
        ge=0,
        le=5,
    )
    reserve_months: float = param(3.0, "months of cost", ASSUMPTION, "Initial financial reserves.", ge=0, le=120)
    intensity_min: float = param(0.1, "x optimum", ASSUMPTION, "Lowest intensity.", ge=0, le=10)
    intensity_max: float = param(2.5, "x optimum", ASSUMPTION, "Highest intensity.", gt=0, le=10)
    initial_intensity: float = param(1.0, "x optimum", ASSUMPTION, "Starting intensity.", ge=0, le=10)
    search_step: float = param(
        0.05, "x optimum", "local search (bounded rationality)", "Step of the local search.", gt=0, le=1
    )
    choice_noise: float = param(
        0.02,
        "share of care value",
        "logit choice (McFadden 1974)",
        "Logit temperature relative to the value of the provider's care.",
        gt=0,
        le=10,
    )
    learning_rate: float = param(
        0.3,
        "share per step",
        "adaptive expectations",
        "Weight of new data in a provider's beliefs.",
        gt=0,
        le=1,
    )
    horizon_years: float = param(
        3.0, "years", "Cattel et al. 2018, Section 4.2.3.2", "Planning horizon for lagged gains.", gt=0, le=50
    )
    data_lag_months: int = param(
        1,
        "months",
        "Seed case: limited real-time data",
        "Delay before providers see own data.",
        ge=0,
        le=24,
    )
    change_cost: float = param(
        20.0,
        "share of stake per squared unit of change",
        "partial adjustment of practice style (habits, staff and capacity commitments); calibration/targets.toml",
        "Yearly cost of practising away from one's habit: change_cost x stake x (decision - habit)^2, "
        "with the stake of each decision dimension as in its choice noise (0 = no inertia).",
        ge=0,
        le=200,
    )
    habit_rate: float = param(
        1.0,
        "1/year",
        "ASSUMPTION: habits reflect about the last year of practice (not separately identified from change_cost)",
        "Rate at which a provider's habit follows its actual practice (1/rate = memory in years).",
        gt=0,
        le=12,
    )


class MechanismParams(Section):
    """Switches for the behavioural mechanisms; with all off the model is the core model."""

    multitasking: bool = param(
        True,
        "on/off",
        "Cattel et al. 2018, Section 3.2",
        "Effort split across measured and unmeasured quality.",
    )
    risk_selection: bool = param(
        True, "on/off", "Cattel et al. 2018, Section 4.2.4", "GPs may steer away unprofitable patients."
    )
    coordination: bool = param(
        True, "on/off", "Cattel et al. 2018, Section 4.2.1", "Coordination effort cuts hand-off failures."
    )
    prevention: bool = param(
        True,
        "on/off",
        "Cattel et al. 2018, Section 4.2.2",
        "GP prevention effort lowers stroke risk with a lag.",
    )
    innovation: bool = param(
        True, "on/off", "Cattel et al. 2018, Sections 2 and 4.2.3.2", "Innovations arrive and may be adopted."
    )
    care_shifting: bool = param(
        True,
        "on/off",
        "Cattel et al. 2018, Sections 3.3 and 4.2.2",
        "Rehabilitation may be shifted to home care, across a bundle's border.",
    )
    patient_choice: bool = param(
        True, "on/off", "SPEC: patients choose and switch", "Patients switch GP by experienced quality."
    )
    need_classes: bool = param(
        False,
        "on/off",
        "issue 12 (treatment by need)",
        "Providers choose how much more care high-need patients get than low-need ones (need tilt).",
    )
    discretionary_admissions: bool = param(
        True,
        "on/off",
        "issue 12 (admissions are decisions); Cattel et al. 2018, Sections 3.3 and 4.2.4",
        "Planned and ambulatory-care-sensitive admissions whose threshold hospitals choose; "
        "hospitals may redirect planned episodes of patients they expect to lose money on.",
    )


class EffortParams(Section):
    """Effort tasks of the multitasking problem: quality (measured, unmeasured), coordination, prevention."""

    effort_cost: float = param(
        0.3,
        "share of value of care",
        "convex effort cost (Holmstrom & Milgrom 1991)",
        "Time budget B of each quality task as a share of yearly guideline care cost; "
        "effort disutility is (sum_t B_t e_t)^2 / (2 sum_t B_t).",
        ge=0,
        le=10,
    )
    initial_effort: float = param(0.3, "0-1", ASSUMPTION, "Starting level of every effort task.", ge=0, le=1)
    effort_step: float = param(0.05, "0-1", "local search", "Step of the effort local search.", gt=0, le=1)
    measured_share: float = param(
        0.4,
        "share",
        "Cattel et al. 2018, Section 3.2 (incomplete contracts)",
        "Share of care quality that indicators measure.",
        ge=0,
        le=1,
    )
    quality_weight: float = param(
        0.3,
        "share of benefit",
        ASSUMPTION,
        "Share of the benefit of care lost with no quality effort.",
        ge=0,
        le=1,
    )
    coordination_effect: float = param(
        0.8,
        "share",
        ASSUMPTION,
        "Share of hand-off failures avoided at full coordination effort.",
        ge=0,
        le=1,
    )
    readmission_elsewhere: float = param(
        0.3,
        "share",
        ASSUMPTION,
        "Share of readmissions admitted by another region's hospital, which keeps the follow-up.",
        ge=0,
        le=1,
    )
    prevention_efficacy: float = param(
        0.3,
        "relative hazard",
        "secondary prevention of stroke (order of magnitude)",
        "Stroke hazard reduction at a full prevention stock.",
        ge=0,
        le=1,
    )
    coordination_cost: float = param(
        150.0,
        "EUR per hand-off",
        "about 2 hours of a case manager; ASSUMPTION",
        "Time cost of fully coordinating one hand-off.",
        ge=0,
        le=100_000,
    )
    prevention_cost: float = param(
        50.0,
        "EUR per patient-year",
        ASSUMPTION,
        "Time cost of full prevention for one patient at risk.",
        ge=0,
        le=100_000,
    )
    data_half_life_months: float = param(
        12.0,
        "months",
        "stroke-care case: limited access to real-time data for improving care",
        "Data lag at which quality and coordination efforts lose half their effect.",
        gt=0,
        le=1200,
    )
    prevention_buildup: float = param(
        0.5, "1/year", ASSUMPTION, "Rate at which a patient's prevention stock follows GP effort.", gt=0, le=12
    )


class SelectionParams(Section):
    """Risk selection: who may be steered away, bounded by ethics and patients' choice."""

    ethics_mean: float = param(
        0.7,
        "0-1",
        "Cattel et al. 2018, Section 4.2.4 (professional ethics)",
        "Mean ethics: a provider steers at most a share 1-ethics of unprofitable patients.",
        ge=0,
        le=1,
    )
    ethics_sd: float = param(0.1, "0-1", ASSUMPTION, "Heterogeneity of ethics.", ge=0, le=0.5)
    steer_rate: float = param(
        0.5, "1/year", ASSUMPTION, "Yearly rate of steering at full selection effort.", ge=0, le=12
    )
    steering_cost: float = param(
        200.0, "EUR per patient", ASSUMPTION, "Time cost of steering one patient away at full effort.", ge=0, le=100_000
    )
    steering_harm: float = param(
        0.25,
        "share of a year's care value",
        ASSUMPTION,
        "Harm to a steered patient (lost continuity) as the provider's altruism sees it.",
        ge=0,
        le=1,
    )
    redirect_harm: float = param(
        0.05,
        "share of an admission's health gain",
        "ASSUMPTION: the patient is still admitted, elsewhere and later; a few weeks' delay and travel "
        "cost little of an elective admission's gain",
        "[discretionary_admissions] Health a patient loses when a hospital redirects its planned "
        "episode to another hospital (delay, travel, lost continuity), as a share of the admission's gain.",
        ge=0,
        le=1,
    )
    steer_success: float = param(
        0.5, "probability", "SPEC: patients choose", "Chance a steered patient actually leaves.", ge=0, le=1
    )


class GroupParams(Section):
    """Who contracts: solo providers, GP groups, or whole regional care chains (Section 4.2.1)."""

    composition: Literal["solo", "gp_groups", "hospital_rehab", "chain"] = param(
        "solo",
        "solo | gp_groups | hospital_rehab | chain",
        "Cattel et al. 2018, Section 4.2.1",
        "Solo contracts; groups of GPs; each region's hospital with its rehab centre (a bundle holder); "
        "or each region's whole chain (GPs, hospital, rehab, nursing) as one group.",
    )
    group_size: int = param(1, "GPs", "Cattel et al. 2018, Section 5.1", "GPs per group (gp_groups).", ge=1, le=10_000)
    distribution: Literal["equal", "panel", "contribution"] = param(
        "equal",
        "equal | panel | contribution",
        "Cattel et al. 2018, Section 4.2.1",
        "How a group splits its surplus among members.",
    )


class InnovationParams(Section):
    """Innovations: arrivals, up-front cost, the four types of Section 2 and how adoption is chosen.

    ``cost_saving``: fewer service units, same health; ``cost_effective``: more units and
    more health, worth its cost; ``low_value``: more units, a little health, not worth its
    cost; ``new_service``: a new billable service (more units of the discipline, billed at
    its fee) with a modest health gain, not worth its cost at the default valuation.
    """

    arrival_rate: float = param(1.0, "1/year", ASSUMPTION, "Innovations arriving per year.", ge=0, le=24)
    upfront_months: float = param(
        2.0,
        "months of care value",
        ASSUMPTION,
        "Up-front cost of adopting, in months of guideline care.",
        ge=0,
        le=120,
    )
    shares: dict[str, float] = param(
        {"cost_saving": 0.3, "cost_effective": 0.3, "low_value": 0.2, "new_service": 0.2},
        "share of arrivals",
        "Cattel et al. 2018, Section 2 (dimension 4); ASSUMPTION",
        "Proportions of the innovation types among arrivals (normalised to sum to 1).",
    )
    need_change: dict[str, float] = param(
        {"cost_saving": -0.10, "cost_effective": 0.15, "low_value": 0.10, "new_service": 0.20},
        "relative units of care",
        "Cattel et al. 2018, Section 2 (dimension 4)",
        "Change in service units per patient by innovation type.",
    )
    health_gain: dict[str, float] = param(
        {"cost_saving": 0.0, "cost_effective": 0.10, "low_value": 0.02, "new_service": 0.05},
        "benefit units",
        "Cattel et al. 2018, Section 2 (dimension 4)",
        "Gain in the benefit of care by innovation type.",
    )
    adoption_noise: float = param(
        0.25,
        "share of the stakes",
        "logit choice (McFadden 1974); ASSUMPTION",
        "Logit temperature of an adoption decision relative to what is at stake in it (money, health, up-front).",
        gt=0,
        le=10,
    )


class ShiftingParams(Section):
    """Where care is delivered: rehabilitation may be replaced by home care across a border."""

    shift_health_penalty: float = param(
        0.3,
        "share of benefit",
        ASSUMPTION,
        "Benefit lost for rehabilitation delivered as home care.",
        ge=0,
        le=1,
    )
    shift_inefficiency: float = param(
        0.1, "share of cost", ASSUMPTION, "Extra cost of shifted care over the care it replaces.", ge=0, le=10
    )
    max_shift: float = param(0.8, "share", ASSUMPTION, "Largest share of rehab that can be shifted.", ge=0, le=1)


class ContextParams(Section):
    """Levers from the Rotterdam stroke-care case study (seed 000): what helps and what blocks VBP."""

    trust: float = param(
        1.0,
        "share",
        "stroke-care case: pre-existing trust-based relations",
        "Share of yearly settlements (bonuses, shared savings) providers count on when deciding.",
        ge=0,
        le=1,
    )
    short_term_weight: float = param(
        0.0,
        "share",
        "stroke-care case: friction between short- and long-term goals",
        "Shrinks the planning horizon: effective horizon = horizon x (1 - weight).",
        ge=0,
        le=1,
    )
    cohesion: float = param(
        0.0,
        "share",
        "stroke-care case: unwillingness to forgo autonomy; Cattel et al. 2018, Section 5.1",
        "How far group members weigh the group's whole surplus beyond their own share.",
        ge=0,
        le=1,
    )
    trusted_data_party: bool = param(
        False,
        "on/off",
        "stroke-care case: a trusted third party for data management",
        "Providers see their data after trusted_party_lag_months and quality is measured with half the noise.",
    )
    trusted_party_lag_months: int = param(
        0, "months", "stroke-care case: timely data", "Data lag with a trusted data party.", ge=0, le=24
    )


class PurchaserParams(Section):
    """The purchaser: what it can see of risk and quality."""

    risk_adjustment: Literal["none", "demographic", "prospective", "concurrent", "full"] | float = param(
        "prospective",
        "level name or R^2 (0-1)",
        "R^2 levels: Van de Ven & Ellis 2000 (Handbook of Health Economics, ch. 14); Pope et al. 2004 "
        "(CMS-HCC); Ash et al. 2000; Cattel et al. 2018, Section 4.2.4",
        "Explanatory power of the purchaser's risk score: R^2 of the score against each patient's true "
        "expected cost; a named level (none 0, demographic 0.015, prospective 0.11, concurrent 0.4, full 1) "
        "or a number in [0, 1].",
    )

    @field_validator("risk_adjustment", mode="before")
    @classmethod
    def _level_not_bool(cls, value: Any) -> Any:
        if isinstance(value, bool | bytes):
            raise ValueError(f"one of {list(RISK_ADJUSTMENT_LEVELS)} or an R^2 in [0, 1]")
        return value

    outlier_threshold: float = param(
        3.0,
        "x mean cost per case",
        "outlier risk sharing (Cattel et al. 2018, Section 4.2.5.1)",
        "A patient's monthly cost in a discipline above this multiple of the mean case cost is outlier cost.",
        gt=0,
        le=1000,
    )
    stop_loss_attachment: float = param(
        20_000.0,
        "EUR per patient-year",
        "reinsurance / stop-loss (Cattel et al. 2018, Section 4.2.5.1)",
        "A patient's yearly cost with one provider above this is stop-loss excess.",
        gt=0,
        le=10_000_000,
    )
    quality_measurement_noise: float = param(
        0.03, "indicator units", ASSUMPTION, "SD of noise in measured quality indicators.", ge=0, le=1
    )


class ContractParams(Section):
    """The payment contract: a registered scheme name and its keyword parameters."""

    scheme: str = param("ffs", "name", "vbpsim.list_schemes()", "Payment scheme in force.")
    params: dict[str, Any] = param({}, "-", "scheme docstrings", "Keyword arguments of the scheme.")
    attribution: Literal["retrospective", "prospective"] = param(
        "retrospective",
        "retrospective | prospective",
        "Cattel et al. 2018, Section 4.2.2",
        "Whose normative cost counts: the current panel, or the panel at the start of each contract year.",
    )
    length_years: int = param(
        0,
        "years",
        "Cattel et al. 2018, Section 4.2.3.2",
        "Contract length; gains after its end are not the provider's (0 = the whole run).",
        ge=0,
        le=100,
    )
    status_quo: str = param(
        "ffs",
        "name",
        "SPEC, 'Credible magnitudes': every contract is a switch from the status quo",
        "Contract in force during the history, before the switch; also every comparison's counterfactual.",
    )
    status_quo_params: dict[str, Any] = param(
        {"fee_to_cost": {"gp": 1.10, "hospital": 1.04, "rehab": 1.15, "nursing": 1.15}},
        "-",
        "fee levels from published margins: calibration/targets.toml",
        "Keyword arguments of the status-quo scheme (default: FFS fees by discipline).",
    )


class SimulationParams(Section):
    """The horizon and the time step."""

    years: int = param(10, "years", ASSUMPTION, "Simulated years after the switch to the contract.", ge=1, le=100)
    history_years: int = param(
        5,
        "years",
        "SPEC, 'Credible magnitudes'; long enough for practice to settle under the status quo",
        "Years lived under the status-quo contract before the switch (0 = start under the contract).",
        ge=0,
        le=50,
    )
    warmup_years: int = param(
        2,
        "years",
        "model burn-in (ODD 'Initialisation')",
        "First years of the history in which practice moves without inertia, so the status quo settles.",
        ge=0,
        le=50,
    )
    steps_per_year: int = param(12, "steps", "SPEC: one month", "Time steps per year.", ge=1, le=52)


class Scenario(Section):
    """A complete, validated scenario."""

    name: str = "default"
    description: str = ""
    population: PopulationParams = PopulationParams()
    clinical: ClinicalParams = ClinicalParams()
    providers: ProviderParams = ProviderParams()
    purchaser: PurchaserParams = PurchaserParams()
    context: ContextParams = ContextParams()
    mechanisms: MechanismParams = MechanismParams()
    effort: EffortParams = EffortParams()
    selection: SelectionParams = SelectionParams()
    groups: GroupParams = GroupParams()
    innovation: InnovationParams = InnovationParams()
    shifting: ShiftingParams = ShiftingParams()
    contract: ContractParams = ContractParams()
    simulation: SimulationParams = SimulationParams()

    def with_overrides(self, **overrides: Any) -> Scenario:
        """Return a copy with fields replaced; keys are a field name or `section.field`."""
        data = self.model_dump()
        for key, value in overrides.items():
            section, field = locate(key, value)
            data[section][field] = value
        return build_scenario(data)


SECTIONS: dict[str, type[Section]] = {
    name: info.annotation  # type: ignore[misc]
    for name, info in Scenario.model_fields.items()
    if isinstance(info.annotation, type) and issubclass(info.annotation, Section)
}


def locate(key: str, value: Any = "(override)") -> tuple[str, str]:
    """Find the section of a flat or dotted override key, or raise a clear error."""
    if "." in key:
        section, field = key.split(".", 1)
        if section in SECTIONS and field in SECTIONS[section].model_fields:
            return section, field
    else:
        owners = [s for s, cls in SECTIONS.items() if key in cls.model_fields]
        if len(owners) == 1:
            return owners[0], key
    raise ParameterError(key, value, "not a scenario parameter (see `vbpsim scenarios` and docs/ODD.md)")


NUMBER_ERRORS = ("int_type", "float_type", "int_from_float", "bool_type")


#: Deepest nesting of tables and lists accepted in any input (a scenario needs 5 levels:
#: contract, params, corridors, a band, its numbers).
MAX_NESTING = 8


def check_nesting(name: str, value: Any, limit: int = MAX_NESTING) -> None:
    """Refuse input nested deeper than ``limit`` levels (checked without recursion)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth >= limit:
                raise ParameterError(name, "(deeply nested)", f"nested more than {limit} levels deep")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def build_scenario(data: dict[str, Any]) -> Scenario:
    """Validate a nested dict into a Scenario, turning pydantic errors into one-line ones."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        message = first["msg"]
        if first["type"] in NUMBER_ERRORS and isinstance(first.get("input"), str | bytes | bool):
            message += " (text, bytes and true/false are not read as numbers)"
        elif first["type"] == "int_type" and isinstance(first.get("input"), float):
            message += " (a whole number written without a decimal point or exponent, e.g. 4000 not 4e3)"
        if first["type"] == "extra_forbidden":
            owner = Scenario
            for part in first["loc"][:-1]:
                owner = SECTIONS.get(str(part), owner)
            message = f"unknown key; allowed: {sorted(owner.model_fields)}"
        raise ParameterError(path, first.get("input"), message) from None
    _check_consistency(scenario)
    return scenario


#: Keyed tables: their keys and the allowed range of each value, ``(low, high]`` (``[0, 1]``
#: for utilities); shown in the ODD tables and default.toml.
TABLE_RANGES: dict[str, tuple[tuple[str, ...], float, float]] = {
    "clinical.unit_cost": (DISCIPLINES, 0.0, 1_000_000.0),
    "clinical.stroke_hr": (CONDITIONS, 0.0, 100.0),
    "clinical.qol": (HEALTH_STATES[:-1], 0.0, 1.0),
    "innovation.need_change": (INNOVATION_TYPES, -1.0, 10.0),
    "innovation.health_gain": (INNOVATION_TYPES, -1.0, 10.0),
    "innovation.shares": (INNOVATION_TYPES, 0.0, 1e9),
}


def _check_consistency(scenario: Scenario) -> None:
    """Cross-field rules that single-field constraints cannot express."""
    pop, prov = scenario.population, scenario.providers
    if pop.age_min >= pop.age_max:
        raise ParameterError("population.age_min", pop.age_min, f"must be < age_max={pop.age_max}")
    if not prov.intensity_min < prov.intensity_max:
        raise ParameterError(
            "providers.intensity_min",
            prov.intensity_min,
            f"must be < intensity_max={prov.intensity_max}",
        )
    if not prov.intensity_min <= prov.initial_intensity <= prov.intensity_max:
        raise ParameterError(
            "providers.initial_intensity",
            prov.initial_intensity,
            f"must lie in [{prov.intensity_min}, {prov.intensity_max}]",
        )
    level = scenario.purchaser.risk_adjustment
    if not isinstance(level, str) and (isinstance(level, bool) or not 0.0 <= level <= 1.0):
        raise ParameterError(
            "purchaser.risk_adjustment", level, f"one of {list(RISK_ADJUSTMENT_LEVELS)} or an R^2 in [0, 1]"
        )
    for name, (keys, low, high) in TABLE_RANGES.items():
        section, field = name.split(".")
        _check_table(name, getattr(getattr(scenario, section), field), keys, low, high)
    if sum(scenario.innovation.shares.values()) <= 0:
        raise ParameterError("innovation.shares", scenario.innovation.shares, "at least one share > 0")


def risk_adjustment_r2(scenario: Scenario) -> float:
    """The R^2 the purchaser's risk score is asked to reach: a named level's value or the number given."""
    level = scenario.purchaser.risk_adjustment
    return RISK_ADJUSTMENT_LEVELS[level] if isinstance(level, str) else float(level)


def _check_table(name: str, table: dict[str, float], keys: tuple[str, ...], low: float, high: float) -> None:
    """A keyed table must have exactly the expected keys and finite numbers in ``(low, high]`` (``[0, 1]`` for QoL)."""
    if set(table) != set(keys):
        raise ParameterError(name, table, f"needs exactly the keys {list(keys)}")
    closed = low == 0 and high == 1
    allowed = "a number in [0, 1]" if closed else f"a number > {_num(low)} and <= {_num(high)}"
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
            raise ParameterError(f"{name}.{key}", value, f"a finite number ({allowed})")
        if not (low <= value if closed else low < value) or not value <= high:
            raise ParameterError(f"{name}.{key}", value, allowed)


def _num(value: float) -> str:
    """A bound as people write it: 1000000 rather than 1e+06, 0.5 as 0.5."""
    return str(int(value)) if float(value).is_integer() else repr(value)
