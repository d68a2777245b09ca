"""What the app's controls are and how their values become models (no Solara here).

The controls are built from metadata the model already declares, so the app never needs
its own list of units or help texts: scenario levers read the pydantic field metadata of
:mod:`vbpsim.parameters`; contract parameters read each scheme's keyword arguments and
``PARAMETER_DOCS`` (:mod:`vbpsim.schemes`, :mod:`vbpsim.contracts`). Values typed in
the page arrive as strings or numbers; :func:`build_arms` turns a :class:`Settings` into
one model (or two for A/B mode, on the same scenario and seed: common random numbers) and
raises :class:`~vbpsim.errors.ParameterError` with a readable message for bad input.
"""

from __future__ import annotations

import ast
import copy
import inspect
import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args, get_origin

import annotated_types

from ..contracts import BASES, BENCHMARKS
from ..contracts import PARAMETER_DOCS as CONTRACT_DOCS
from ..errors import ParameterError
from ..experiments import build_model
from ..model import VBPModel, check_seed
from ..parameters import SECTIONS
from ..scenarios import list_scenarios, load_scenario
from ..schemes import PARAMETER_DOCS as SCHEME_DOCS
from ..schemes import SCHEMES, Blend, PaymentScheme, make_scheme, with_world_defaults

#: The contract menu: "scenario" keeps the scenario file's own contract (a preset's).
SCENARIO_CONTRACT = "(scenario's own)"
CONTRACTS: tuple[str, ...] = (
    SCENARIO_CONTRACT,
    "ffs",
    "per_case",
    "capitation",
    "per_period",
    "mixed",
    "bundle",
    "capitation+p4p",
    "capitation+outlier",
    "ffs+shared_savings",
    "global_budget",
    "global_budget+shared_savings+stop_loss+p4p",
)

#: Scenario levers shown for every contract (Cattel et al. 2018, Sections 4.2.1-4.2.5 and
#: the stroke-care case): section.field paths of :class:`vbpsim.parameters.Scenario`.
LEVERS: tuple[str, ...] = (
    "purchaser.risk_adjustment",
    "groups.composition",
    "groups.group_size",
    "groups.distribution",
    "providers.altruism_mean",
    "selection.ethics_mean",
    "context.trust",
    "providers.data_lag_months",
    "providers.horizon_years",
    "effort.measured_share",
    "simulation.history_years",
)

#: Worlds above this many patients are slow to step; the page says so and offers ``small``.
LARGE_WORLD = 20_000
CHOICES: dict[str, tuple[str, ...]] = {"benchmark": BENCHMARKS, "basis": BASES}


@dataclass(frozen=True)
class Control:
    """One control: key, label, kind, default, bounds, unit and a one-line help."""

    key: str
    label: str
    kind: str  # "float" | "int" | "bool" | "choice" | "literal" (a Python literal typed as text)
    default: Any
    unit: str = ""
    help: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def parse(self, value: Any) -> Any:
        """The typed value of what the page sent (numbers may arrive as text)."""
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            raise ParameterError(self.key, value, "true or false")
        if self.kind == "choice":
            if value in self.choices:
                return value
            raise ParameterError(self.key, value, f"one of {list(self.choices)}")
        if self.kind == "literal":
            if not isinstance(value, str):
                return value
            try:
                return ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                raise ParameterError(self.key, value, "a Python literal, e.g. [0.0, 0.25] or ('gp',)") from None
        return self._number(value)

    def _number(self, value: Any) -> float | int:
        kind = "a whole number" if self.kind == "int" else "a number"
        try:
            number = float(str(value).strip()) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise ParameterError(self.key, value, kind) from None
        if isinstance(value, bool) or not math.isfinite(number):
            raise ParameterError(self.key, value, kind)
        if self.kind == "int":
            if number != int(number):
                raise ParameterError(self.key, value, kind)
            number = int(number)
        if self.low is not None and number < self.low or self.high is not None and number > self.high:
            raise ParameterError(self.key, value, f"{kind} in [{self.low}, {self.high}]")
        return number


@dataclass(frozen=True)
class Settings:
    """Everything a session's run depends on; A/B mode adds a second contract."""

    scenario: str = "small"
    contract: str = SCENARIO_CONTRACT
    params: dict[str, Any] = field(default_factory=dict)  # contract parameters changed from defaults
    levers: dict[str, Any] = field(default_factory=dict)  # scenario levers changed from defaults
    seed: int = 0
    years: int = 5
    compare: bool = False
    contract_b: str = "capitation"
    params_b: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields replaced."""
        return replace(self, **changes)

    def arm_contracts(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Contract and changed parameters of each arm: A, and B in A/B mode."""
        arms = {"A": (self.contract, self.params)}
        if self.compare:
            arms["B"] = (self.contract_b, self.params_b)
        return arms


def _bounds(metadata: list[Any]) -> tuple[float | None, float | None]:
    low = high = None
    for item in metadata:
        if isinstance(item, annotated_types.Ge | annotated_types.Gt):
            low = float(getattr(item, "ge", getattr(item, "gt", 0.0)))
        if isinstance(item, annotated_types.Le | annotated_types.Lt):
            high = float(getattr(item, "le", getattr(item, "lt", 0.0)))
    return low, high


def lever_controls(scenario: str) -> list[Control]:
    """The scenario levers with the scenario's values as defaults (a preset sets its own)."""
    sc = load_scenario(scenario)
    out = []
    for path in LEVERS:
        section, name = path.split(".")
        info = SECTIONS[section].model_fields[name]
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        unit = str(extra.get("unit", ""))
        default = getattr(getattr(sc, section), name)
        low, high = _bounds(info.metadata)
        literal = next(
            (get_args(a) for a in (info.annotation, *get_args(info.annotation)) if get_origin(a) is Literal), ()
        )
        if literal:
            kind, choices = "choice", tuple(str(c) for c in literal)
            unit = "" if "|" in unit else unit
        else:
            kind, choices = ("int" if isinstance(default, int) else "float"), ()
        label = name.replace("_", " ")
        out.append(Control(path, label, kind, default, unit, info.description or "", low, high, choices))
    return out


def run_controls() -> list[Control]:
    """Horizon and seed: they belong to the run, not to the scenario or contract."""
    years_help = SECTIONS["simulation"].model_fields["years"].description or ""
    return [
        Control("years", "years", "int", 5, "years", years_help, 1, 50),
        Control("seed", "seed", "int", 0, "", "The same seed gives the same patients and random numbers.", 0),
    ]


def _parts(scheme: PaymentScheme, name: str) -> list[tuple[str, PaymentScheme]]:
    """The named parts of a ``base+addon`` contract as built by make_scheme."""
    names = name.split("+")
    if len(names) == 1:
        return [(name, scheme)]
    assert isinstance(scheme, Blend)
    return [(n, part) for n, (_, part) in zip(names, scheme.parts, strict=True)]


def contract_of(scenario: str, contract: str) -> tuple[str, dict[str, Any]]:
    """The scheme name and parameters a contract choice means for a scenario."""
    if contract == SCENARIO_CONTRACT:
        sc = load_scenario(scenario).contract
        return sc.scheme, dict(sc.params)
    return contract, {}


def contract_controls(scenario: str, contract: str) -> list[Control]:
    """A control for every parameter of every part of the contract, defaults as in effect.

    Defaults are read back from the scheme as built (a preset's values, and add-on
    defaults that adapt to their base), so leaving a control alone changes nothing.
    """
    name, params = contract_of(scenario, contract)
    built = make_scheme(name, with_world_defaults(name, params, load_scenario(scenario).contract.status_quo_params))
    out = []
    for i, (part_name, part) in enumerate(_parts(built, name)):
        prefix = "" if i == 0 else f"{part_name}_"
        signature = inspect.signature(type(part).__init__).parameters
        for key, value in part.params().items():
            if key not in signature:
                continue
            unit, meaning = {**SCHEME_DOCS, **CONTRACT_DOCS}.get((part_name, key), ("", ""))
            if isinstance(value, bool):
                kind, low, high = "bool", None, None
            elif isinstance(value, int | float):
                kind = "float"
                low, high = (0.0, 1.0) if unit.startswith("share") or unit == "indicator score" else (None, None)
                if low is None and key != "trend":
                    low = 0.0
            elif key in CHOICES:
                kind, low, high = "choice", None, None
            else:
                kind, low, high = "literal", None, None
                value = repr(value)
            label = f"{part_name}: {key.replace('_', ' ')}"
            out.append(Control(prefix + key, label, kind, value, unit, meaning, low, high, CHOICES.get(key, ())))
    return out


def changed(controls: list[Control], values: dict[str, Any]) -> dict[str, Any]:
    """Parse the page's values and keep those that differ from the controls' defaults."""
    by_key = {c.key: c for c in controls}
    out = {}
    for key, raw in values.items():
        control = by_key.get(key)
        if control is None:
            continue
        value = control.parse(raw)
        default = control.parse(control.default) if control.kind == "literal" else control.default
        if value != default:
            out[key] = value
    return out


def build_arms(settings: Settings) -> dict[str, VBPModel]:
    """One model per arm at the switch from the status quo, forked from one shared history.

    Every arm starts from the same scenario, levers and seed (common random numbers): the
    status-quo history is simulated once and copied into each arm, which then switches to
    its own contract at its next step (as :func:`vbpsim.experiments.run_arms` does).
    """
    if settings.scenario not in list_scenarios():
        raise ParameterError("scenario", settings.scenario, f"one of {list(list_scenarios())}")
    seed = check_seed(settings.seed)
    levers = dict(settings.levers)
    built = {}
    for arm, (contract, params) in settings.arm_contracts().items():
        if contract != SCENARIO_CONTRACT and contract.split("+")[0] not in SCHEMES:
            raise ParameterError(f"contract {arm}", contract, f"one of {list(CONTRACTS)}")
        scheme = None if contract == SCENARIO_CONTRACT else contract
        built[arm] = build_model(scheme, settings.scenario, settings.years, seed, **levers, **params)
    first = built["A"]
    while first.step_index < first.history_steps:
        first.step()
    arms = {"A": first}
    for arm, model in built.items():
        if arm != "A":
            fork = copy.deepcopy(first)
            fork.config = model.config
            fork.set_contract_under_study(model.contract_under_study, length_years=model.study_length_years)
            arms[arm] = fork
    return arms


def label_of(settings: Settings, arm: str) -> str:
    """A short readable name of an arm's contract."""
    contract, params = settings.arm_contracts()[arm]
    name = contract_of(settings.scenario, contract)[0]
    text = f"{arm}: {name}"
    if params:
        text += " (" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")"
    return text


def settings_from(
    scenario: str,
    contract: str,
    values: dict[str, dict[str, Any]],
    compare: bool = False,
    contract_b: str = "capitation",
) -> Settings:
    """Settings from what the page's controls hold; a bad value raises ParameterError.

    ``values`` maps ``"A"``, ``"B"`` (contract parameters), ``"levers"`` and ``"run"`` to
    the raw values of the controls the user touched (text or numbers).
    """
    if scenario not in list_scenarios():
        raise ParameterError("scenario", scenario, f"one of {list(list_scenarios())}")
    for arm, name in (("A", contract), ("B", contract_b)):
        if name not in CONTRACTS:
            raise ParameterError(f"contract {arm}", name, f"one of {list(CONTRACTS)}")
    run = {c.key: c.parse(values.get("run", {}).get(c.key, c.default)) for c in run_controls()}
    return Settings(
        scenario=scenario,
        contract=contract,
        params=changed(contract_controls(scenario, contract), values.get("A", {})),
        levers=changed(lever_controls(scenario), values.get("levers", {})),
        seed=run["seed"],
        years=run["years"],
        compare=compare,
        contract_b=contract_b,
        params_b=changed(contract_controls(scenario, contract_b), values.get("B", {})) if compare else {},
    )
