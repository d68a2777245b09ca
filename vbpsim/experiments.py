"""Running the model: one run, replications with common random numbers, comparisons.

``run`` is the public entry point: a scheme, a scenario, a horizon, a seed and any
parameter overrides in; a :class:`Result` with the five value dimensions, indicators, a
per-step time series and a JSON-serialisable summary out. ``replicate`` runs several
schemes on the same seeds (common random numbers: the same patients, the same random
streams), so differences between schemes are the schemes' doing, and ``compare`` turns
paired replications into means with confidence intervals.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import ParameterError
from .metrics import equity_table, indicators, natural_indicators, nmb_accounts, value_dimensions
from .model import VBPModel, check_seed
from .parameters import SECTIONS, Scenario, locate
from .scenarios import load_scenario
from .schemes import PaymentScheme

ProgressCallback = Callable[[int, int], None]
STATUS_QUO = "status_quo"  # the scheme name of a scenario's status-quo contract continued after the switch


@dataclass
class Result:
    """Outcome of one run."""

    scheme: str
    scenario: str
    seed: int
    years: int
    value_dimensions: dict[str, float]
    indicators: dict[str, float]
    timeseries: pd.DataFrame
    parameters: dict[str, Any] = field(default_factory=dict)
    history: pd.DataFrame = field(default_factory=pd.DataFrame)  # the status-quo years before the switch
    equity: pd.DataFrame = field(default_factory=pd.DataFrame)  # who gains and who loses (metrics.equity_table)

    def summary(self) -> dict[str, Any]:
        """Everything but the time series, as plain JSON-serialisable values."""
        return {
            "scheme": self.scheme,
            "scenario": self.scenario,
            "seed": self.seed,
            "years": self.years,
            "value_dimensions": self.value_dimensions,
            "indicators": self.indicators,
            "parameters": self.parameters,
        }

    def save(self, out_dir: str | Path) -> Path:
        """Write ``summary.json`` and ``timeseries.csv`` into ``out_dir`` (atomically)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / "summary.json", json.dumps(self.summary(), indent=2, default=_jsonable))
        write_atomic(out / "timeseries.csv", self.timeseries.to_csv(index=False))
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, PaymentScheme):
        return repr(value)
    return str(value)


def write_atomic(path: Path, text: str) -> None:
    """Write a file whole or not at all, never through a link.

    The text goes to a new, uniquely named temporary file in the same folder (created
    exclusively, so a planted link or file there is never followed or overwritten) and is
    then renamed over ``path``. A ``path`` that is a symbolic link is refused.
    """
    if path.is_symlink():
        raise ParameterError("out_dir", str(path), "a folder whose result files are not symbolic links")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def split_overrides(overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate scenario parameters from scheme parameters among keyword overrides."""
    scenario_keys = {f for cls in SECTIONS.values() for f in cls.model_fields}
    scenario_part, scheme_part = {}, {}
    for key, value in overrides.items():
        section = key.split(".", 1)[0]
        if key in scenario_keys or section in SECTIONS:
            scenario_part[key] = value
        else:
            scheme_part[key] = value
    return scenario_part, scheme_part


def _refuse_shadowed(scheme: Any, years: Any, scenario_over: dict[str, Any], scheme_params: dict[str, Any]) -> None:
    """An override that another argument would silently replace is an error, not ignored."""
    located = {locate(key, value): key for key, value in scenario_over.items()}
    shadows = {
        ("simulation", "years"): ("years", years, years is not None),
        ("contract", "scheme"): ("scheme", scheme, scheme is not None),
        ("contract", "params"): (
            "scheme" if scheme is not None else next(iter(scheme_params), ""),
            scheme if scheme is not None else scheme_params.get(next(iter(scheme_params), "")),
            scheme is not None or bool(scheme_params),
        ),
    }
    if isinstance(scheme, str) and scheme == STATUS_QUO:  # continues the scenario's own status quo, open-ended
        for name in ("length_years", "status_quo", "status_quo_params"):
            shadows[("contract", name)] = ("scheme", scheme, True)
    for target, (argument, value, given) in shadows.items():
        if given and target in located:
            key = located[target]
            raise ParameterError(
                key,
                scenario_over[key],
                f"shadowed by {argument}={value!r}, which sets {'.'.join(target)}; give only one of them",
            )


def build_model(
    scheme: str | PaymentScheme | None = None,
    scenario: str | Scenario = "default",
    years: int | None = None,
    seed: int = 0,
    **overrides: Any,
) -> VBPModel:
    """A ready-to-step model from the same arguments as :func:`run`.

    The model first lives through the scenario's status-quo history
    (``simulation.history_years`` under ``contract.status_quo``), then switches to the
    contract under study; ``scheme="status_quo"`` continues the status quo instead.
    """
    check_seed(seed)
    sc, contract = _scenario_and_contract(scheme, scenario, years, **overrides)
    return VBPModel(sc, scheme=contract, seed=seed)


def _scenario_and_contract(
    scheme: str | PaymentScheme | None,
    scenario: str | Scenario,
    years: int | None,
    **overrides: Any,
) -> tuple[Scenario, PaymentScheme | None]:
    """The validated scenario of a run and, when given as an object, its contract."""
    base = load_scenario(scenario)
    scenario_over, scheme_params = split_overrides(overrides)
    _refuse_shadowed(scheme, years, scenario_over, scheme_params)
    if years is not None:
        if isinstance(years, bool) or not isinstance(years, int) or years <= 0:
            raise ParameterError("years", years, "a whole number of years > 0")
        scenario_over["simulation.years"] = years
    if scheme is not None:
        if isinstance(scheme, PaymentScheme):
            if scheme_params:
                key = next(iter(scheme_params))
                raise ParameterError(
                    key,
                    scheme_params[key],
                    "not a scenario parameter; a scheme object takes no extra parameters",
                )
        elif scheme == STATUS_QUO:
            scenario_over["contract.scheme"] = base.contract.status_quo
            scenario_over["contract.params"] = {**base.contract.status_quo_params, **scheme_params}
            scenario_over["contract.length_years"] = 0
        else:
            scenario_over["contract.scheme"] = scheme
            scenario_over["contract.params"] = scheme_params  # the model adds the world's terms (with_world_defaults)
    elif scheme_params:
        params = {**base.contract.params, **scheme_params}
        scenario_over["contract.params"] = params
    sc = base.with_overrides(**scenario_over) if scenario_over else base
    return sc, scheme if isinstance(scheme, PaymentScheme) else None


def run(
    scheme: str | PaymentScheme | None = None,
    scenario: str | Scenario = "default",
    years: int | None = None,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    **overrides: Any,
) -> Result:
    """Run one scenario under one payment scheme and summarise it.

    ``overrides`` are scenario parameters (``n_patients=5000``, ``providers.altruism_mean=0.2``)
    or parameters of the scheme (``fee_to_cost=1.4``); bad ones raise a ParameterError.
    """
    model = build_model(scheme, scenario, years, seed, **overrides)
    _advance(model, model.n_steps, progress)
    return result_of(model)


def _advance(model: VBPModel, until: int, progress: ProgressCallback | None = None) -> None:
    """Step a model up to step ``until`` (exclusive), reporting progress."""
    while model.step_index < until:
        model.step()
        if progress is not None:
            progress(model.step_index, model.n_steps)


def result_of(model: VBPModel) -> Result:
    """Summarise a model that has been stepped."""
    ts = pd.DataFrame.from_records(model.records)
    history = pd.DataFrame.from_records(model.history_records)
    sc = model.config
    years = len(ts) / model.steps_per_year
    dims = value_dimensions(ts, model.initial_patients, years)
    ind = indicators(
        ts,
        model.initial_patients,
        years,
        model.steps_per_year,
        model.income_total,
        model.cost_total,
        model.providers.insolvent_steps,
        sc.clinical.willingness_to_pay,
    )
    ind["insolvent_groups"] = float((model.insolvent_group_steps > 0).sum())
    margins = np.array(model.yearly_margins)
    ind["margin_volatility"] = float(margins.std(axis=0, ddof=1).mean()) if len(margins) > 1 else 0.0
    ind["contracting_groups"] = float(model.n_payees)
    ind["risk_score_r2"] = float(np.mean(model.risk_model.achieved)) if model.risk_model.achieved else 0.0
    ind["risk_score_r2_realised"] = float(np.mean(model.realised_r2)) if model.realised_r2 else float("nan")
    ind.update(natural_indicators(ts, model.steps_per_year, model.innovation_value))
    accounts = nmb_accounts(ts, model.initial_patients, years, sc.clinical.willingness_to_pay)
    ind.update({f"account_{name}": value for name, value in accounts.items()})
    return Result(
        scheme=scheme_label(model.contract),
        scenario=sc.name,
        seed=model.seed_value,
        years=sc.simulation.years,
        value_dimensions=dims,
        indicators=ind,
        timeseries=ts,
        parameters={"contract": repr(model.contract), "scenario": sc.model_dump()},
        history=history,
        equity=equity_table(model.patient_groups, model.patient_tally),
    )


def scheme_label(contract: PaymentScheme) -> str:
    """A readable name for a contract: its registered name, or its parts joined by '+'."""
    name = getattr(contract, "name", "")
    if name and name != "blend":
        return name
    return "+".join(scheme_label(leaf) for _, leaf in getattr(contract, "parts", [])) or type(contract).__name__


def _row(label: str, result: Result) -> dict[str, Any]:
    return {"scheme": label, "seed": result.seed, **result.value_dimensions, **result.indicators}


def _label(scheme: str | PaymentScheme) -> str:
    return scheme if isinstance(scheme, str) else repr(scheme)


def run_arms(
    schemes: Sequence[str | PaymentScheme],
    seed: int,
    scenario: str | Scenario = "default",
    years: int | None = None,
    **overrides: Any,
) -> list[Result]:
    """Run several contracts on one seed from one shared status-quo history (common random numbers).

    The history is simulated once; at the switch the model is copied and each copy
    continues under its own contract, so arms differ only by what happens after the
    switch. Identical, run by run, to calling :func:`run` for each scheme.
    """
    setups = [_scenario_and_contract(s, scenario, years, **overrides) for s in schemes]
    base_model = VBPModel(setups[0][0], scheme=setups[0][1], seed=check_seed(seed))
    _advance(base_model, base_model.history_steps)
    results = []
    for (sc, contract), scheme in zip(setups, schemes, strict=True):
        _check_same_world(setups[0][0], sc, scheme)
        arm = copy.deepcopy(base_model)
        arm.config = sc
        if contract is None:
            arm.set_contract_under_study(sc.contract.scheme, sc.contract.params, sc.contract.length_years)
        else:
            arm.set_contract_under_study(contract, length_years=sc.contract.length_years)
        _advance(arm, arm.n_steps)
        results.append(result_of(arm))
    return results


def _check_same_world(first: Scenario, other: Scenario, scheme: str | PaymentScheme) -> None:
    """Arms forked from one history may differ only in their contract."""
    a, b = first.model_dump(), other.model_dump()
    for section in (a, b):
        for key in ("scheme", "params", "length_years"):
            section["contract"].pop(key)
    if a != b:
        raise ParameterError(
            "scheme", _label(scheme), "arms of one comparison must share the scenario (only the contract may differ)"
        )


def _run_seed(args: tuple[Any, ...]) -> list[dict[str, Any]]:
    schemes, scenario, years, seed, overrides = args
    results = run_arms(schemes, seed, scenario, years, **overrides)
    return [_row(_label(s), r) for s, r in zip(schemes, results, strict=True)]


def replicate(
    schemes: Sequence[str | PaymentScheme],
    seeds: Iterable[int],
    scenario: str | Scenario = "default",
    years: int | None = None,
    workers: int = 1,
    **overrides: Any,
) -> pd.DataFrame:
    """Run every scheme on every seed (common random numbers); one row per run.

    Each seed's status-quo history is simulated once and forked into every arm at the
    switch. Results do not depend on ``workers``: each run is seeded by its own seed only.
    """
    jobs = [(list(schemes), scenario, years, check_seed(seed), overrides) for seed in seeds]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_run_seed, jobs))
    else:
        parts = [_run_seed(job) for job in jobs]
    return pd.DataFrame([row for part in parts for row in part])


def paired_difference(
    table: pd.DataFrame, metric: str, treatment: str, control: str, z: float = 1.96
) -> tuple[float, float, float]:
    """Mean paired difference treatment - control over seeds, with a normal 95% CI."""
    wide = table.pivot(index="seed", columns="scheme", values=metric)
    diff = (wide[treatment] - wide[control]).to_numpy()
    mean = float(diff.mean())
    half = z * float(diff.std(ddof=1)) / np.sqrt(len(diff)) if len(diff) > 1 else float("inf")
    return mean, mean - half, mean + half


def compare(table: pd.DataFrame, metrics: Sequence[str] | None = None, z: float = 1.96) -> pd.DataFrame:
    """Mean and 95% confidence interval of each metric by scheme."""
    metrics = list(metrics or [c for c in table.columns if c not in ("scheme", "seed")])
    grouped = table.groupby("scheme", sort=False)[metrics]
    mean, sd, n = grouped.mean(), grouped.std(ddof=1), grouped.count()
    half = z * sd / np.sqrt(n)
    return pd.concat({"mean": mean, "ci_low": mean - half, "ci_high": mean + half}, axis=1)


def teaching_to_test(result: Result, counterfactual: Result) -> float:
    """Change in measured quality minus change in unmeasured quality against a run without P4P.

    Positive when a bonus raises what indicators see more than (or at the expense of) what
    they do not see (Holmstrom & Milgrom 1991; Cattel et al. 2018, Section 3.2). Run both
    on the same scenario and seed (common random numbers).
    """
    measured = result.indicators["measured_quality"] - counterfactual.indicators["measured_quality"]
    unmeasured = result.indicators["unmeasured_quality"] - counterfactual.indicators["unmeasured_quality"]
    return measured - unmeasured


def cost_saving_effort(result: Result, discipline: str = "gp") -> float:
    """How far providers of a discipline cut care below FFS-like levels: 1 - delivered intensity."""
    return 1.0 - result.indicators[f"intensity_{discipline}"]


def free_riding(group: Result, solo: Result, discipline: str = "gp") -> float:
    """1 - cost-saving effort per group member / that of solo providers under the same contract.

    0 means no free-riding; 1 means members make no cost-saving effort at all
    (Cattel et al. 2018, Section 5.1). Run both on the same scenario and seed.
    """
    solo_effort = cost_saving_effort(solo, discipline)
    if solo_effort <= 0:
        return 0.0
    return 1.0 - cost_saving_effort(group, discipline) / solo_effort
