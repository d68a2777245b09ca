"""Headless parameter sweeps: a spec, a design, seeded runs, and a Parquet store that survives.

A sweep is data (EMA workbench's vocabulary): *arms* are the contracts compared (the
policy levers), *parameters* are the uncertainties or levers varied over a *design*
(full grid, Latin hypercube, Sobol'/Saltelli or Morris), and *replications* are seeds.
The spec is a TOML file, validated on load like a scenario file, so a bad spec fails
with one line naming the file, the key and the value, before any run.

Every run goes through the public API (:func:`vbpsim.experiments.run`, one seeded run per
row) and depends only on its own inputs and seed, so results are identical seed for seed
whatever executes them: in this process, on local processes, or on a dask cluster.
Seeds follow common random numbers: at a given design point and replication every arm
gets the same seed (the same patients and random streams), so differences between arms
are the contracts' doing; with ``policy = "common"`` (the default) replication ``r`` also
uses the same seed at every design point, which removes sampling noise from differences
between points (what sensitivity indices and response curves are made of).

Each finished run is written at once as its own Parquet file ``DIR/results/<run_id>.parquet``
(written to a hidden temporary file, then renamed), so an interrupted sweep loses nothing
that finished and ``resume`` runs only what is missing. ``DIR/sweep.json`` fingerprints the
spec: running a changed spec into the same folder is refused.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import signal
import socket
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ParameterError, VBPSimError
from .scenarios import ScenarioFileError, builtin_files, load_scenario

if TYPE_CHECKING:
    import pandas as pd

    from .parameters import Scenario

DESIGNS = ("grid", "lhs", "sobol", "morris")
SEED_POLICIES = ("common", "per_point")
TOP_KEYS = ("name", "description", "scenario", "years", "schemes", "arms", "set", "parameters", "design", "seeds")
ARM_KEYS = ("scheme", "params", "scenario")
PARAMETER_KEYS = ("values", "range", "levels", "integer", "arms", "keys")
DESIGN_KEYS = ("kind", "samples", "levels", "second_order")
SEED_KEYS = ("replications", "base", "policy")
DEFAULT_GRID_LEVELS = 3
DEFAULT_MORRIS_LEVELS = 4
MAX_RUNS = 10_000_000
MAX_RESTARTS = 3

#: Columns every result row carries besides the swept inputs and the outcomes.
META_COLUMNS = (
    "run_id",
    "point",
    "replication",
    "arm",
    "scheme",
    "seed",
    "status",
    "error",
    "run_seconds",
    "cpu_seconds",
    "worker",
    "finished_at",
    "vbpsim_version",
)
RESULTS = "results"
MANIFEST = "sweep.json"
SPEC_COPY = "spec.toml"
DESIGN_FILE = "design.parquet"
_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


class SpecError(ScenarioFileError):
    """A bad sweep spec: names the file, then the key path, the value and what is allowed."""


class SweepDirError(VBPSimError):
    """The output folder holds something this sweep may not overwrite or resume."""


# ----------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class Arm:
    """One contract compared: a scheme (or the scenario's own contract) and its parameters."""

    name: str
    scheme: str | None
    params: dict[str, Any]
    scenario: Scenario


@dataclass(frozen=True)
class Parameter:
    """One swept input: a scenario parameter (dotted path) or a contract parameter.

    ``values`` lists discrete levels; otherwise ``low``/``high`` bound a continuous range
    (``integer`` rounds it). ``keys`` maps each arm it applies to onto the name the value is
    passed under in that arm (usually the path itself; the other arms ignore the parameter).
    """

    path: str
    keys: dict[str, str]
    values: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    levels: int = DEFAULT_GRID_LEVELS
    integer: bool = False

    def from_unit(self, u: float) -> Any:
        """The value at position ``u`` in [0, 1] of the range (or of the list of values)."""
        if self.values is not None:
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        assert self.low is not None and self.high is not None
        value = self.low + float(u) * (self.high - self.low)
        return int(round(value)) if self.integer else float(value)

    def grid(self) -> list[float]:
        """Unit positions of the grid levels (the values themselves for a list)."""
        n = len(self.values) if self.values is not None else self.levels
        return [0.5] if n == 1 else [i / (n - 1) for i in range(n)]

    def corners(self) -> list[Any]:
        """The values checked before any run: every listed value, or both ends of the range."""
        return list(self.values) if self.values is not None else [self.from_unit(0.0), self.from_unit(1.0)]


@dataclass(frozen=True)
class Design:
    """How design points are drawn: kind, sample size and method options."""

    kind: str = "grid"
    samples: int = 0
    levels: int = DEFAULT_MORRIS_LEVELS
    second_order: bool = False


@dataclass(frozen=True)
class Job:
    """One run of the sweep: everything a worker needs, and nothing that depends on where it runs."""

    run_id: str
    point: int
    replication: int
    arm: str
    scheme: str | None
    seed: int
    years: int | None
    scenario: Scenario
    overrides: dict[str, Any]
    inputs: dict[str, Any]

    def identity(self) -> dict[str, Any]:
        """The columns of a result row that say which run it is."""
        return {
            "run_id": self.run_id,
            "point": self.point,
            "replication": self.replication,
            "arm": self.arm,
            "scheme": self.scheme or self.scenario.contract.scheme,
            "seed": self.seed,
            **self.inputs,
        }


@dataclass(frozen=True)
class ArmsJob:
    """Every arm on one seed from one shared status-quo history (:func:`vbpsim.experiments.replicate`)."""

    run_id: str
    schemes: tuple[str, ...]
    scenario: Scenario
    years: int | None
    seed: int

    def identity(self) -> dict[str, Any]:
        """The fields that say which task a result belongs to."""
        return {"run_id": self.run_id, "seed": self.seed}


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: scenario, arms, parameters, design and seed policy."""

    name: str
    source: str
    text: str
    scenario: Scenario
    years: int | None
    arms: tuple[Arm, ...]
    parameters: tuple[Parameter, ...]
    design: Design
    replications: int
    base_seed: int
    policy: str
    settings: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    # -- design -------------------------------------------------------------------

    def unit_points(self) -> list[list[float]]:
        """Design points in the unit cube, one coordinate per parameter, in design order."""
        return _unit_points(self)

    def points(self) -> list[dict[str, Any]]:
        """Design points as parameter values, keyed by parameter path."""
        return [
            {p.path: p.from_unit(u) for p, u in zip(self.parameters, row, strict=True)} for row in self.unit_points()
        ]

    def seed_for(self, point: int, replication: int) -> int:
        """The seed of a run: shared by every arm (common random numbers), see ``policy``."""
        import numpy as np

        entropy = [self.base_seed, replication] if self.policy == "common" else [self.base_seed, point, replication]
        return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0])

    def jobs(self) -> list[Job]:
        """Every run of the sweep, in a fixed order: point, replication, arm."""
        out = []
        for point, values in enumerate(self.points()):
            for rep in range(self.replications):
                seed = self.seed_for(point, rep)
                for arm in self.arms:
                    mine = [p for p in self.parameters if arm.name in p.keys]
                    inputs = {p.path: values[p.path] for p in mine}
                    overrides = {**self.settings, **arm.params, **{p.keys[arm.name]: values[p.path] for p in mine}}
                    out.append(
                        Job(
                            run_id=run_id(point, rep, arm.name),
                            point=point,
                            replication=rep,
                            arm=arm.name,
                            scheme=arm.scheme,
                            seed=seed,
                            years=self.years,
                            scenario=arm.scenario,
                            overrides=overrides,
                            inputs=inputs,
                        )
                    )
        return out

    @property
    def n_points(self) -> int:
        """Number of design points."""
        return _n_points(self)

    @property
    def n_runs(self) -> int:
        """Number of runs: points x replications x arms."""
        return self.n_points * self.replications * len(self.arms)

    def fingerprint(self) -> str:
        """A hash of everything that decides the runs and their results (not of comments)."""
        payload = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def identity(self) -> dict[str, Any]:
        """The spec as plain data: what the fingerprint covers, section by section."""
        return {
            "scenario": self.scenario.model_dump(),
            "years": self.years,
            "arms": {
                a.name: {"scheme": a.scheme, "params": a.params, "scenario": a.scenario.model_dump()} for a in self.arms
            },
            "set": self.settings,
            "parameters": [
                {
                    "path": p.path,
                    "values": p.values,
                    "range": [p.low, p.high],
                    "levels": p.levels,
                    "integer": p.integer,
                    "keys": p.keys,
                }
                for p in self.parameters
            ],
            "design": vars(self.design),
            "seeds": {"replications": self.replications, "base": self.base_seed, "policy": self.policy},
        }


def run_id(point: int, replication: int, arm: str) -> str:
    """Stable name of a run (and of its result file)."""
    return f"p{point:06d}-r{replication:03d}-{arm}"


def load_spec(path: str | os.PathLike[str]) -> SweepSpec:
    """Read and validate a sweep spec (TOML); every problem is a one-line :class:`SpecError`."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError("spec", str(path), f"an existing sweep spec .toml file (no such file: {path.absolute()})")
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(
            path, "file", str(path), "a readable TOML file", message=f"not a valid TOML file: {exc}"
        ) from None
    return parse_spec(data, source=path, text=text)


def parse_spec(data: dict[str, Any], source: str | os.PathLike[str] = "spec", text: str = "") -> SweepSpec:
    """Validate a spec given as a dict (as read from TOML); see :func:`load_spec`."""
    from .experiments import split_overrides

    file = Path(source)

    def fail(key: str, value: Any, allowed: str) -> SpecError:
        return SpecError(file, key, value, allowed)

    _only(data, TOP_KEYS, "", fail)
    name = data.get("name", file.stem)
    if not isinstance(name, str) or not name.strip():
        raise fail("name", name, "a non-empty string")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("description", description, "a string")
    base = _scenario(data.get("scenario", "default"), "scenario", file, fail)

    years = data.get("years")
    if years is not None and (isinstance(years, bool) or not isinstance(years, int) or not 1 <= years <= 200):
        raise fail("years", years, "a whole number of years in [1, 200]")

    settings = data.get("set", {})
    if not isinstance(settings, dict):
        raise fail("set", settings, 'a table of overrides for every arm, e.g. { "providers.altruism_mean" = 0.3 }')

    arms = _arms(data, base, file, fail)
    parameters = _parameters(data.get("parameters", {}), arms, fail)
    design = _design(data.get("design", {}), parameters, fail)

    seeds = data.get("seeds", {})
    if not isinstance(seeds, dict):
        raise fail("seeds", seeds, "a table with replications, base and policy")
    _only(seeds, SEED_KEYS, "seeds.", fail)
    reps = seeds.get("replications", 1)
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise fail("seeds.replications", reps, "a whole number >= 1")
    base_seed = seeds.get("base", 0)
    if isinstance(base_seed, bool) or not isinstance(base_seed, int) or base_seed < 0:
        raise fail("seeds.base", base_seed, "a non-negative integer")
    policy = seeds.get("policy", "common")
    if policy not in SEED_POLICIES:
        raise fail("seeds.policy", policy, f"one of {list(SEED_POLICIES)}")

    spec = SweepSpec(
        name=name,
        source=str(file),
        text=text,
        scenario=base,
        years=years,
        arms=arms,
        parameters=parameters,
        design=design,
        replications=reps,
        base_seed=base_seed,
        policy=policy,
        settings=dict(settings),
        description=description,
    )
    if spec.n_runs > MAX_RUNS:
        raise fail("design", spec.n_runs, f"at most {MAX_RUNS:,} runs")
    _check_runs(spec, split_overrides, fail)
    return spec


def _only(table: dict[str, Any], allowed: Iterable[str], prefix: str, fail: Callable[..., SpecError]) -> None:
    allowed = tuple(allowed)
    for key in table:
        if key not in allowed:
            raise fail(f"{prefix}{key}", table[key], f"unknown key; allowed: {list(allowed)}")


def _scenario(ref: Any, key: str, file: Path, fail: Callable[..., SpecError]) -> Scenario:
    """A built-in scenario name, or a path relative to the spec file."""
    if not isinstance(ref, str) or not ref.strip():
        raise fail(key, ref, "a built-in scenario name or a path to a scenario .toml file")
    if ref not in builtin_files():
        candidate = Path(ref).expanduser()
        if not candidate.is_absolute():
            candidate = file.parent / candidate
        ref = str(candidate)
    try:
        return load_scenario(ref)
    except ParameterError as exc:
        raise fail(key, ref, str(exc)) from None


def _arms(data: dict[str, Any], base: Scenario, file: Path, fail: Callable[..., SpecError]) -> tuple[Arm, ...]:
    if "arms" in data and "schemes" in data:
        raise fail("schemes", data["schemes"], "either schemes = [...] or an [arms] table, not both")
    if "schemes" in data:
        names = data["schemes"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise fail("schemes", names, 'a non-empty list of scheme names, e.g. ["ffs", "capitation"]')
        table: dict[str, Any] = {n: n for n in names}
    else:
        table = data.get("arms", {"base": {}})
        if not isinstance(table, dict) or not table:
            raise fail("arms", table, 'a table of arms, e.g. ffs = "ffs" or vbp = { scheme = "...", params = {...} }')
    arms = []
    for name, entry in table.items():
        if not _NAME.match(name):
            raise fail(f"arms.{name}", name, "an arm name of letters, digits and _ . + -")
        if isinstance(entry, str):
            entry = {"scheme": entry}
        if not isinstance(entry, dict):
            raise fail(f"arms.{name}", entry, "a scheme name or a table with scheme, params and scenario")
        _only(entry, ARM_KEYS, f"arms.{name}.", fail)
        scheme = entry.get("scheme")
        if scheme is not None and (not isinstance(scheme, str) or not scheme.strip()):
            raise fail(f"arms.{name}.scheme", scheme, "a scheme name (see `vbpsim schemes`)")
        params = entry.get("params", {})
        if not isinstance(params, dict):
            raise fail(f"arms.{name}.params", params, "a table of scheme or scenario parameters")
        scenario = _scenario(entry["scenario"], f"arms.{name}.scenario", file, fail) if "scenario" in entry else base
        arms.append(Arm(name=name, scheme=scheme, params=dict(params), scenario=scenario))
    return tuple(arms)


def _parameters(table: Any, arms: tuple[Arm, ...], fail: Callable[..., SpecError]) -> tuple[Parameter, ...]:
    if not isinstance(table, dict):
        raise fail("parameters", table, "a table: parameter path -> { values = [...] } or { range = [low, high] }")
    arm_names = [a.name for a in arms]
    out = []
    for path, entry in table.items():
        where = f"parameters.{path}"
        if path in META_COLUMNS:
            raise fail(where, path, f"a parameter name other than the result columns {list(META_COLUMNS)}")
        if isinstance(entry, list):
            entry = {"values": entry}
        if not isinstance(entry, dict):
            raise fail(where, entry, "a list of values or a table with values or range")
        _only(entry, PARAMETER_KEYS, f"{where}.", fail)
        if ("values" in entry) == ("range" in entry):
            raise fail(where, entry, "exactly one of values = [...] or range = [low, high]")
        if "keys" in entry and "arms" in entry:
            raise fail(f"{where}.arms", entry["arms"], "either arms = [...] or keys = { arm = name }, not both")
        if "keys" in entry:
            keys = entry["keys"]
            if (
                not isinstance(keys, dict)
                or not keys
                or any(a not in arm_names or not isinstance(k, str) or not k for a, k in keys.items())
            ):
                raise fail(f"{where}.keys", keys, f"a table arm -> parameter name, with arms among {arm_names}")
        else:
            applies = entry.get("arms", arm_names)
            if not isinstance(applies, list) or not applies or any(a not in arm_names for a in applies):
                raise fail(f"{where}.arms", applies, f"a non-empty list of arms among {arm_names}")
            keys = {a: path for a in applies}
        keys = {a: k.removeprefix("contract.params.") for a, k in keys.items()}
        integer = entry.get("integer", False)
        if not isinstance(integer, bool):
            raise fail(f"{where}.integer", integer, "true or false")
        levels = entry.get("levels", DEFAULT_GRID_LEVELS)
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
            raise fail(f"{where}.levels", levels, "a whole number of grid levels >= 2")
        common = {"path": path, "keys": keys, "levels": levels, "integer": integer}
        if "values" in entry:
            values = entry["values"]
            if not isinstance(values, list) or not values:
                raise fail(f"{where}.values", values, "a non-empty list of values (an empty list sweeps nothing)")
            if len(set(map(repr, values))) != len(values):
                raise fail(f"{where}.values", values, "distinct values")
            if len({_kind(v) for v in values}) != 1:
                raise fail(f"{where}.values", values, "values of one type (all numbers, all strings or all booleans)")
            out.append(Parameter(values=tuple(values), **common))
        else:
            bounds = entry["range"]
            if (
                not isinstance(bounds, list)
                or len(bounds) != 2
                or not all(isinstance(b, int | float) and not isinstance(b, bool) and math.isfinite(b) for b in bounds)
            ):
                raise fail(f"{where}.range", bounds, "[low, high]: two finite numbers")
            low, high = float(bounds[0]), float(bounds[1])
            if not low < high:
                raise fail(f"{where}.range", bounds, "a non-empty range: low < high")
            out.append(Parameter(low=low, high=high, **common))
    return tuple(out)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _design(table: Any, parameters: tuple[Parameter, ...], fail: Callable[..., SpecError]) -> Design:
    if not isinstance(table, dict):
        raise fail("design", table, f"a table with kind (one of {list(DESIGNS)}) and samples")
    _only(table, DESIGN_KEYS, "design.", fail)
    kind = table.get("kind", "grid")
    if kind not in DESIGNS:
        raise fail("design.kind", kind, f"one of {list(DESIGNS)}")
    samples = table.get("samples", 0)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
        raise fail("design.samples", samples, "a whole number of samples")
    levels = table.get("levels", DEFAULT_MORRIS_LEVELS)
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2 or levels % 2:
        raise fail("design.levels", levels, "an even number of Morris grid levels >= 2")
    second = table.get("second_order", False)
    if not isinstance(second, bool):
        raise fail("design.second_order", second, "true or false")
    if kind != "grid":
        if not parameters:
            raise fail("design.kind", kind, "a grid when no parameter is swept (add [parameters])")
        if samples < 1:
            raise fail("design.samples", samples, f"a sample size >= 1 for a {kind} design")
    if kind == "sobol" and samples & (samples - 1):
        raise fail(
            "design.samples", samples, "a power of 2 for a Sobol' design (Saltelli sampling balances only there)"
        )
    if kind == "sobol" and len(parameters) < 2:
        raise fail("parameters", [p.path for p in parameters], "at least two parameters for a Sobol' design")
    if kind == "grid" and samples:
        raise fail("design.samples", samples, "no sample size for a grid (its size is the product of the levels)")
    return Design(kind=kind, samples=samples, levels=levels, second_order=second)


def _check_runs(spec: SweepSpec, split: Callable[..., Any], fail: Callable[..., SpecError]) -> None:
    """Validate every arm, and each parameter at each listed value or range end, without running.

    The quick check validates the scenario overrides and builds the contract; when it
    objects, :func:`vbpsim.experiments.build_model` (which builds the world but steps
    nothing) has the last word, so anything ``run`` accepts is accepted here.
    """
    from .experiments import build_model
    from .schemes import make_scheme

    def check(arm: Arm, overrides: dict[str, Any], where: str, value: Any) -> None:
        scenario_part, scheme_part = split(overrides)
        if spec.years is not None:
            scenario_part["simulation.years"] = spec.years
        try:
            sc = arm.scenario.with_overrides(**scenario_part) if scenario_part else arm.scenario
            scheme = arm.scheme or sc.contract.scheme
            params = scheme_part if arm.scheme else {**sc.contract.params, **scheme_part}
            make_scheme(scheme, params)
        except ParameterError:
            try:
                build_model(arm.scheme, arm.scenario, spec.years, 0, **overrides)
            except ParameterError as exc:
                raise fail(where, value, f"rejected in arm '{arm.name}': {exc}") from None

    for arm in spec.arms:
        base = {**spec.settings, **arm.params}
        check(arm, base, f"arms.{arm.name}", {"scheme": arm.scheme, "params": arm.params, "set": spec.settings})
        for p in spec.parameters:
            if arm.name not in p.keys:
                continue
            for value in p.corners():
                check(arm, {**base, p.keys[arm.name]: value}, f"parameters.{p.path}", value)


def _n_points(spec: SweepSpec) -> int:
    d = len(spec.parameters)
    kind, n = spec.design.kind, spec.design.samples
    if kind == "grid":
        return math.prod(len(p.grid()) for p in spec.parameters)
    if kind == "lhs":
        return n
    if kind == "sobol":
        return n * (2 * d + 2 if spec.design.second_order else d + 2)
    return n * (d + 1)  # morris: trajectories of d + 1 points


def _unit_points(spec: SweepSpec) -> list[list[float]]:
    import numpy as np

    params = spec.parameters
    kind, n, d = spec.design.kind, spec.design.samples, len(params)
    if kind == "grid":
        return [list(row) for row in itertools.product(*(p.grid() for p in params))]
    rng = np.random.default_rng(np.random.SeedSequence([spec.base_seed, 0x5EED]))
    if kind == "lhs":
        from scipy.stats import qmc

        return qmc.LatinHypercube(d=d, rng=rng).random(n).tolist()
    problem = salib_problem(spec)
    if kind == "sobol":
        from SALib.sample import sobol

        return sobol.sample(problem, n, calc_second_order=spec.design.second_order, seed=rng).tolist()
    from SALib.sample import morris

    return morris.sample(problem, n, num_levels=spec.design.levels, seed=rng).tolist()


def salib_problem(spec: SweepSpec) -> dict[str, Any]:
    """The SALib problem of a spec: one variable per parameter on its unit range [0, 1]."""
    return {
        "num_vars": len(spec.parameters),
        "names": [p.path for p in spec.parameters],
        "bounds": [[0.0, 1.0]] * len(spec.parameters),
    }


# ----------------------------------------------------------------------------- one run


def run_job(job: Job) -> dict[str, Any]:
    """Run one job through :func:`vbpsim.experiments.run`; an exception becomes an error row."""
    from . import __version__
    from .experiments import run

    start, cpu = time.perf_counter(), time.process_time()
    row = job.identity()
    outputs: dict[str, float] = {}
    try:
        result = run(job.scheme, job.scenario, job.years, job.seed, **job.overrides)
    except Exception as exc:  # recorded, and the sweep goes on
        status, error = "error", " ".join(f"{type(exc).__name__}: {exc}".split())[:2000]
    else:
        status, error = "ok", ""
        row["scheme"] = result.scheme
        outputs = {**result.value_dimensions, **result.indicators}
    row.update(
        status=status,
        error=error,
        run_seconds=time.perf_counter() - start,
        cpu_seconds=time.process_time() - cpu,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        finished_at=datetime.now(UTC),
        vbpsim_version=__version__,
        outputs={k: float(v) for k, v in outputs.items()},
    )
    return row


def run_arms_job(job: ArmsJob) -> dict[str, Any]:
    """Run the arms of one seed through :func:`vbpsim.experiments.replicate`; rows under ``rows``."""
    from .experiments import replicate

    try:
        table = replicate(list(job.schemes), [job.seed], scenario=job.scenario, years=job.years)
    except Exception as exc:  # reported by the caller
        return {**job.identity(), "status": "error", "error": f"{type(exc).__name__}: {exc}", "rows": []}
    return {**job.identity(), "status": "ok", "error": "", "rows": table.to_dict("records")}


# ----------------------------------------------------------------------------- executors


class SerialExecutor:
    """Runs jobs one after another in this process."""

    workers = 1

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map_unordered(self, fn: Callable[[Any], dict[str, Any]], jobs: list[Any]) -> Iterator[dict[str, Any]]:
        """Yield each job's row as it finishes."""
        for job in jobs:
            yield fn(job)


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the coordinator, which stops handing out work."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class ProcessExecutor:
    """Runs jobs on a pool of local worker processes (forkserver; one thread each)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: Any = None

    def __enter__(self) -> ProcessExecutor:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")  # one core per worker, no oversubscription
        self._start()
        return self

    def _start(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("forkserver")
        self.pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_ignore_sigint)

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def map_unordered(self, fn: Callable[[Any], dict[str, Any]], jobs: list[Any]) -> Iterator[dict[str, Any]]:
        """Yield rows as runs finish.

        A worker that dies (killed, out of memory) breaks the pool: the runs that finished are
        kept, a new pool is started and the unfinished runs are submitted again (at most
        ``MAX_RESTARTS`` times). On Ctrl-C, runs not yet started are cancelled and the ones
        running are waited for and kept.
        """
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        pending, restarts = list(jobs), 0
        while pending:
            futures = {self.pool.submit(fn, job): job for job in pending}
            done: set[str] = set()
            try:
                for future in as_completed(futures):
                    if isinstance(future.exception(), BrokenProcessPool):
                        break
                    done.add(futures[future].run_id)
                    yield _row_or_failure(future, futures[future])
            except KeyboardInterrupt:
                for future in futures:
                    future.cancel()
                for future, job in futures.items():
                    if job.run_id not in done and not future.cancelled():
                        yield _row_or_failure(future, job)
                raise
            for future, job in futures.items():  # finished before the pool broke
                if job.run_id not in done and future.done() and future.exception() is None:
                    done.add(job.run_id)
                    yield future.result()
            pending = [job for job in pending if job.run_id not in done]
            if pending:
                restarts += 1
                if restarts > MAX_RESTARTS:
                    raise VBPSimError(
                        f"worker processes died {restarts} times; the {len(jobs) - len(pending)} runs that "
                        "finished are saved: rerun with --resume (fewer --workers if memory is short)"
                    )
                self.pool.shutdown(wait=False, cancel_futures=True)
                self._start()


class DaskExecutor:
    """Runs jobs on a dask.distributed cluster: an address, a scheduler file, or a LocalCluster."""

    def __init__(self, scheduler: str | None = None, workers: int = 2, processes: bool = True) -> None:
        self.scheduler = scheduler
        self.workers = workers
        self.processes = processes
        self.cluster: Any = None
        self.client: Any = None

    def __enter__(self) -> DaskExecutor:
        from distributed import Client, LocalCluster

        if self.scheduler in (None, "local"):
            self.cluster = LocalCluster(
                n_workers=self.workers, threads_per_worker=1, processes=self.processes, dashboard_address=None
            )
            self.client = Client(self.cluster)
        elif Path(self.scheduler).is_file():
            self.client = Client(scheduler_file=self.scheduler)
        else:
            self.client = Client(self.scheduler)
        self.workers = (
            max(1, sum(self.client.nthreads().values())) if self.scheduler not in (None, "local") else self.workers
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def map_unordered(self, fn: Callable[[Any], dict[str, Any]], jobs: list[Any]) -> Iterator[dict[str, Any]]:
        """Yield rows as runs finish; a task lost with its workers becomes an error row."""
        from distributed import as_completed

        futures = [self.client.submit(fn, job, pure=False) for job in jobs]
        by_key = {f.key: job for f, job in zip(futures, jobs, strict=True)}
        try:
            for future in as_completed(futures):
                yield _row_or_failure(future, by_key[future.key])
        except KeyboardInterrupt:
            self.client.cancel(futures)
            raise


def _row_or_failure(future: Any, job: Any) -> dict[str, Any]:
    """The worker's row, or an error row when the worker itself was lost."""
    try:
        return future.result()
    except Exception as exc:
        return {
            **job.identity(),
            "status": "error",
            "error": f"worker lost: {type(exc).__name__}: {exc}"[:2000],
            "run_seconds": float("nan"),
            "cpu_seconds": float("nan"),
            "worker": "",
            "finished_at": datetime.now(UTC),
            "vbpsim_version": "",
            "outputs": {},
        }


def make_executor(workers: int | None = None, cluster: str | None = None, scheduler: str | None = None) -> Any:
    """Serial for one worker, local processes for more, dask for ``cluster='local'`` or a scheduler."""
    if cluster is not None and cluster != "local":
        raise ParameterError("--cluster", cluster, "'local' (a dask LocalCluster on this machine)")
    if cluster is not None and scheduler is not None:
        raise ParameterError("--scheduler", scheduler, "either --scheduler or --cluster local, not both")
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise ParameterError("--workers", workers, "a whole number of workers >= 1")
    n = workers or os.cpu_count() or 1
    if scheduler is not None:
        return DaskExecutor(scheduler, n)
    if cluster == "local":
        return DaskExecutor(None, n)
    return SerialExecutor() if n == 1 else ProcessExecutor(n)


# ----------------------------------------------------------------------------- the store


class ResultStore:
    """One Parquet file per finished run under ``DIR/results``, plus the spec's fingerprint."""

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out)
        self.results = self.out / RESULTS
        self.schema: Any = None
        self.outputs: list[str] | None = None
        self.pending: list[dict[str, Any]] = []

    # -- opening ------------------------------------------------------------------

    def open(self, spec: SweepSpec, resume: bool = False) -> set[str]:
        """Prepare the folder for ``spec``; return the run ids already finished (with ``resume``)."""
        manifest = self.out / MANIFEST
        fingerprint = spec.fingerprint()
        if manifest.is_file():
            old = json.loads(manifest.read_text())
            if old.get("fingerprint") != fingerprint:
                changed = [k for k, v in spec.identity().items() if old.get("identity", {}).get(k) != _plain(v)]
                where = ", ".join(changed) or "content"
                raise SweepDirError(
                    f"{self.out} holds results of a different sweep (the spec, or a scenario it resolves to, "
                    f"changed in: {where}); use a new --out folder, or restore the spec it was run with"
                )
            done = self.finished()
            if done and not resume:
                raise SweepDirError(
                    f"{self.out} already holds {len(done)} of {spec.n_runs} runs of this sweep; "
                    "add --resume to run only the missing ones, or use a new --out folder"
                )
            self.outputs = old.get("outputs")
        else:
            if self.results.is_dir() and any(self.results.glob("*.parquet")):
                raise SweepDirError(f"{self.out} holds results but no {MANIFEST}; use a new --out folder")
            done = set()
            self.out.mkdir(parents=True, exist_ok=True)
            _write_text(self.out / SPEC_COPY, spec.text)
            self._write_manifest(spec, fingerprint)
            self._write_design(spec)
        self.results.mkdir(parents=True, exist_ok=True)
        self.spec = spec
        self.fingerprint = fingerprint
        if self.outputs is not None:
            self.schema = _schema(spec, self.outputs)
        return done

    def _write_manifest(self, spec: SweepSpec, fingerprint: str) -> None:
        from . import __version__

        data = {
            "name": spec.name,
            "fingerprint": fingerprint,
            "n_runs": spec.n_runs,
            "n_points": spec.n_points,
            "arms": [a.name for a in spec.arms],
            "parameters": [p.path for p in spec.parameters],
            "design": vars(spec.design),
            "replications": spec.replications,
            "outputs": self.outputs,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "vbpsim_version": __version__,
            "identity": _plain(spec.identity()),
        }
        _write_text(self.out / MANIFEST, json.dumps(data, indent=2, default=str))

    def _write_design(self, spec: SweepSpec) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        units = spec.unit_points()
        columns: dict[str, list[Any]] = {"point": list(range(len(units)))}
        for i, p in enumerate(spec.parameters):
            columns[f"u:{p.path}"] = [row[i] for row in units]
        for i, p in enumerate(spec.parameters):
            columns[p.path] = [p.from_unit(row[i]) for row in units]
        tmp = self.out / f".{DESIGN_FILE}.tmp"
        pq.write_table(pa.table(columns), tmp)
        tmp.replace(self.out / DESIGN_FILE)

    # -- reading ------------------------------------------------------------------

    def finished(self) -> set[str]:
        """Run ids with a result file (ok or error)."""
        return {p.stem for p in self.results.glob("*.parquet")} if self.results.is_dir() else set()

    def failed(self) -> set[str]:
        """Run ids recorded with an error."""
        if not self.finished():
            return set()
        table = load_results(self.out, columns=["run_id", "status"])
        return set(table.loc[table["status"] != "ok", "run_id"])

    # -- writing ------------------------------------------------------------------

    def write(self, row: dict[str, Any]) -> None:
        """Write one finished run; error rows wait until the output columns are known."""
        if self.schema is None:
            if row["status"] != "ok":
                self.pending.append(row)
                return
            self.outputs = list(row["outputs"])
            self.schema = _schema(self.spec, self.outputs)
            self._write_manifest(self.spec, self.fingerprint)
        self._write_row(row)
        while self.pending:
            self._write_row(self.pending.pop())

    def close(self) -> None:
        """Flush error rows still waiting (every run failed): outputs are then the value dimensions."""
        if self.pending:
            from .metrics import DIMENSIONS

            self.outputs = list(DIMENSIONS)
            self.schema = _schema(self.spec, self.outputs)
            self._write_manifest(self.spec, self.fingerprint)
            while self.pending:
                self._write_row(self.pending.pop())

    def _write_row(self, row: dict[str, Any]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        assert self.outputs is not None
        flat = {k: v for k, v in row.items() if k != "outputs"}
        for p in self.spec.parameters:
            value = flat.get(p.path)
            if value is not None and not isinstance(value, bool | int | float | str):
                flat[p.path] = json.dumps(value, sort_keys=True)
        outputs = row.get("outputs", {})
        for name in self.outputs:
            flat[name] = outputs.get(name, float("nan"))
        table = pa.Table.from_pylist([flat], schema=self.schema)
        final = self.results / f"{row['run_id']}.parquet"
        tmp = self.results / f".{row['run_id']}.parquet.tmp"
        pq.write_table(table, tmp)
        tmp.replace(final)


def _schema(spec: SweepSpec, outputs: list[str]) -> Any:
    import pyarrow as pa

    fields = [
        pa.field("run_id", pa.string()),
        pa.field("point", pa.int64()),
        pa.field("replication", pa.int64()),
        pa.field("arm", pa.string()),
        pa.field("scheme", pa.string()),
        pa.field("seed", pa.int64()),
    ]
    for p in spec.parameters:
        fields.append(pa.field(p.path, _arrow_type(p)))
    fields += [
        pa.field("status", pa.string()),
        pa.field("error", pa.string()),
        pa.field("run_seconds", pa.float64()),
        pa.field("cpu_seconds", pa.float64()),
        pa.field("worker", pa.string()),
        pa.field("finished_at", pa.timestamp("us", tz="UTC")),
        pa.field("vbpsim_version", pa.string()),
    ]
    taken = {f.name for f in fields}
    for name in outputs:
        if name in taken:
            raise SweepDirError(f"output '{name}' has the name of an input column; rename the swept parameter")
        fields.append(pa.field(name, pa.float64()))
    return pa.schema(fields)


def _arrow_type(p: Parameter) -> Any:
    import pyarrow as pa

    if p.values is None:
        return pa.int64() if p.integer else pa.float64()
    kind = _kind(p.values[0])
    if kind == "bool":
        return pa.bool_()
    if kind == "number":
        return pa.int64() if all(isinstance(v, int) for v in p.values) else pa.float64()
    return pa.string()  # strings; tables and lists are stored as JSON text


def load_results(out: str | os.PathLike[str], columns: list[str] | None = None) -> pd.DataFrame:
    """Every finished run of a sweep folder as one DataFrame (one row per run, sorted by run id)."""
    import pyarrow.dataset as ds

    folder = Path(out) / RESULTS
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        raise ParameterError("DIR", str(out), f"a sweep folder with results in {RESULTS}/ (none found)")
    # Every file of a sweep shares one schema (fixed by the first successful run), so the
    # first file's schema is the dataset's.
    dataset = ds.dataset([str(f) for f in files], format="parquet")
    table = dataset.to_table(columns=columns).to_pandas()
    return table.sort_values("run_id", ignore_index=True) if "run_id" in table else table


def read_manifest(out: str | os.PathLike[str]) -> dict[str, Any]:
    """The sweep.json of a sweep folder."""
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise ParameterError("DIR", str(out), f"a sweep folder (with {MANIFEST}; none found)")
    return json.loads(path.read_text())


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# ----------------------------------------------------------------------------- the coordinator


@dataclass
class Progress:
    """Counts the coordinator reports after every finished run."""

    total: int
    skipped: int = 0
    done: int = 0
    failed: int = 0
    running: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def rate(self) -> float:
        """Runs finished per second in this session."""
        elapsed = time.perf_counter() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def remaining_seconds(self) -> float:
        """Time left at the current rate (inf before the first run finishes)."""
        left = self.total - self.skipped - self.done
        return left / self.rate if self.rate > 0 else float("inf")


@dataclass
class SweepOutcome:
    """What a sweep did: runs planned, already there, finished now, failed now, and wall time."""

    out: Path
    total: int
    skipped: int
    finished: int
    failed: int
    seconds: float


def run_sweep(
    spec: SweepSpec | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    workers: int | None = 1,
    cluster: str | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    executor: Any = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> SweepOutcome:
    """Run every missing run of a sweep into ``out``; each row is on disk as soon as it finishes.

    ``workers=1`` runs in this process; more uses local processes; ``cluster='local'`` a
    dask LocalCluster and ``scheduler`` (an address or a scheduler file) any dask cluster.
    """
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    store = ResultStore(out)
    done = store.open(spec, resume=resume)
    if retry_failed:
        done -= store.failed()
    jobs = [job for job in spec.jobs() if job.run_id not in done]
    progress = Progress(total=spec.n_runs, skipped=spec.n_runs - len(jobs))
    start = time.perf_counter()
    executor = executor or make_executor(workers, cluster, scheduler)
    try:
        if jobs:
            with executor:
                progress.running = min(executor.workers, len(jobs))
                progress.started = time.perf_counter()
                if on_progress:
                    on_progress(progress)
                for row in executor.map_unordered(run_job, jobs):
                    store.write(row)
                    progress.done += 1
                    progress.failed += row["status"] != "ok"
                    progress.running = min(executor.workers, len(jobs) - progress.done)
                    if on_progress:
                        on_progress(progress)
    finally:
        store.close()
    return SweepOutcome(
        out=Path(out),
        total=spec.n_runs,
        skipped=progress.skipped,
        finished=progress.done,
        failed=progress.failed,
        seconds=time.perf_counter() - start,
    )


def estimate_seconds(spec: SweepSpec, workers: int) -> tuple[float, float]:
    """Time one run of the sweep's first job here; return (seconds per run, estimated total)."""
    job = spec.jobs()[0]
    row = run_job(job)
    per_run = float(row["run_seconds"])
    return per_run, per_run * spec.n_runs / max(workers, 1)


def map_runs(
    jobs: list[Any],
    workers: int | None = 1,
    cluster: str | None = None,
    scheduler: str | None = None,
    fn: Callable[[Any], dict[str, Any]] = run_job,
    on_row: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ad-hoc jobs (each with a ``run_id``) through the sweep executors; results in the jobs' order.

    ``fn`` runs one job (default: :func:`run_job`; :func:`run_arms_job` for an :class:`ArmsJob`);
    ``on_row(done, total)`` is called after each finished job (e.g. a progress bar).
    """
    rows: dict[str, dict[str, Any]] = {}
    if jobs:
        with make_executor(workers, cluster, scheduler) as executor:
            for row in executor.map_unordered(fn, jobs):
                rows[row["run_id"]] = row
                if on_row is not None:
                    on_row(len(rows), len(jobs))
    return [rows[job.run_id] for job in jobs]
