"""Command-line interface: ``vbpsim run | compare | scorecard | schemes | scenarios | app | sweep | ...``.

Each subcommand does one thing and is a thin layer over the Python API
(:func:`vbpsim.run`, :func:`vbpsim.replicate`, :func:`vbpsim.compare`). Results go to
stdout as rich tables; files go where ``--out`` says.

Bad input never shows a traceback: any :class:`~vbpsim.errors.VBPSimError` (its message
names the parameter, the value and what is allowed) and any usage error caught by the
argument parser is printed as one line ``error: <message>`` on stderr, with exit code 2.

Progress bars are drawn on stderr, and only when they help: by default only when stderr
is a terminal *and* the job is projected to take more than about a second (the projection
is updated at every tick, so quick runs stay silent). ``--progress`` forces the bar,
``--no-progress`` suppresses it; piped or captured output stays clean.

Heavy modules (the model, Mesa, pandas) are imported inside the commands that need them,
so ``vbpsim --help``, ``vbpsim schemes`` and ``vbpsim scenarios`` answer quickly.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from typer.core import TyperGroup

from .errors import ParameterError, VBPSimError

#: Schemes compared by default: the four base methods of Cattel et al. (2018, Section 3.3),
#: a 50/50 FFS-capitation blend, and the paper's preferred direction, a risk-adjusted
#: population-based base payment plus a small P4P bonus.
DEFAULT_COMPARE = ("ffs", "per_case", "capitation", "per_period", "mixed", "capitation+p4p")

#: Indicators shown next to the value dimensions.
RUN_INDICATORS = (
    "intensity_ratio",
    "overprovision",
    "underprovision",
    "measured_quality",
    "true_quality",
    "strokes_per_1000",
    "spending_per_capita",
    "provider_margin",
    "insolvent_providers",
    "net_monetary_benefit",
)
#: Columns of the comparison table with short headers, so it fits an 80-column terminal.
COMPARE_COLUMNS = {
    "quality": "quality",
    "cost_consciousness": "cost-\nconsc.",
    "coordination": "coord.",
    "innovation": "innov-\nation",
    "prevention": "prev.",
    "intensity_ratio": "inten-\nsity",
    "spending_change_pct": "spend\nvs sq",
    "net_monetary_benefit": "NMB",
}
COMPARE_CAPTION = (
    "Value dimensions: higher is better. intensity: delivered / guideline care. "
    "spend vs sq: % change in spending per capita against the status quo continued (status_quo row, "
    "same history and seeds). NMB (net monetary benefit): EUR per capita per year."
)

#: Names that are arguments of ``vbpsim.run`` itself and so cannot be ``--set``.
RESERVED_KEYS = {
    "scheme": "--scheme",
    "scenario": "--scenario",
    "years": "--years",
    "seed": "--seed",
    "progress": "--progress",
}

SCENARIO_HELP = "Built-in scenario name or path to a scenario .toml file; see `vbpsim scenarios`."

SHOW_AFTER_SECONDS = 1.0
EXIT_BAD_INPUT = 2


class _Group(TyperGroup):
    """Turns every user error into one ``error: ...`` line on stderr, exit code 2."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # usage errors of the argument parser
            if not standalone_mode:
                raise
            _fail(exc.format_message(), getattr(exc, "exit_code", EXIT_BAD_INPUT))
        except VBPSimError as exc:
            if not standalone_mode:
                raise
            _fail(str(exc), EXIT_BAD_INPUT)
        except typer.Abort:
            if not standalone_mode:
                raise
            _fail("aborted", 1)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


def _fail(message: str, code: int) -> NoReturn:
    """Print a one-line error on stderr and exit."""
    line = " ".join(plain(str(message)).split())
    typer.echo(f"error: {line}", err=True)
    sys.exit(code)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(text: str) -> str:
    """User text made inert for a terminal: control characters (escape sequences) shown as ``\\x1b``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def safe(text: str) -> str:
    """User text for rich output: control characters shown escaped, markup such as ``[/bold]`` shown as typed."""
    return escape(plain(text))


app = typer.Typer(
    cls=_Group,
    name="vbpsim",
    help="Agent-based model of health-care provider behaviour under payment incentives.",
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context) -> None:
    """Agent-based model of health-care provider behaviour under payment incentives."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


class _Ticker:
    """A progress bar on stderr that appears only once the job looks slow enough to need it.

    Call it with ``(done, total)``; ``show`` is True (always), False (never) or None (auto:
    stderr is a terminal and the projected duration exceeds ``SHOW_AFTER_SECONDS``).
    """

    def __init__(self, description: str, show: bool | None) -> None:
        self.description = description
        self.console = Console(stderr=True)
        self.enabled = self.console.is_terminal if show is None else show
        self.always = show is True
        self.start = time.perf_counter()
        self.progress: Progress | None = None
        self.task: Any = None

    def __enter__(self) -> _Ticker:
        from .kernels import compiled_on_disk

        if self.console.is_terminal and not compiled_on_disk():  # a note for people, not for pipes and logs
            self.console.print(
                "[dim]first run after install: compiling the patient passes (once, about 10 s)[/dim]", highlight=False
            )
        self.start = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.progress is None:
            elapsed = time.perf_counter() - self.start
            projected = elapsed * total / max(done, 1)
            if not self.always and (done >= total or projected < SHOW_AFTER_SECONDS):
                return
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=self.console.is_terminal,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.description, total=total, completed=done)
        self.progress.update(self.task, completed=done, total=total)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings to a dict; values are JSON if they parse, else strings."""
    from .parameters import MAX_NESTING, check_nesting

    out: dict[str, Any] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ParameterError("--set", item, "KEY=VALUE, e.g. --set fee_to_cost=1.4")
        if key in RESERVED_KEYS:
            raise ParameterError("--set", item, f"use the option {RESERVED_KEYS[key]} instead")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        except RecursionError:
            raise ParameterError(key, "(deeply nested)", f"nested more than {MAX_NESTING} levels deep") from None
        check_nesting(key, value)
        out[key] = value
    return out


def _fmt(value: float) -> str:
    """Compact number: thousands separators for big values, three decimals otherwise."""
    if value != value:  # NaN
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}"


def _label(metric: str) -> str:
    return metric.replace("_", " ")


ShowProgress = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Progress bar on stderr. Default: only on a terminal, for jobs over about a second.",
        show_default=False,
    ),
]

Years = Annotated[int | None, typer.Option(help="Horizon in years (default: the scenario's).", show_default=False)]
Seeds = Annotated[int, typer.Option(help="Number of replications: seeds 0..N-1.")]


@app.command()
def run(
    scheme: Annotated[
        str | None,
        typer.Option(
            help="Payment scheme; see `vbpsim schemes`. Default: the scenario's contract (ffs).", show_default=False
        ),
    ] = None,
    scenario: Annotated[str, typer.Option(help=SCENARIO_HELP)] = "default",
    years: Years = None,
    seed: Annotated[int, typer.Option(help="Random seed (a non-negative integer).")] = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="Write summary.json and timeseries.csv into this folder.", show_default=False),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Override a scheme or scenario parameter (repeatable), e.g. --set fee_to_cost=1.4 "
            "--set providers.altruism_mean=0.2. Values are read as JSON if possible, else as text.",
            show_default=False,
        ),
    ] = None,
    progress: ShowProgress = None,
) -> None:
    """Run one scenario under one payment scheme and show its value dimensions."""
    from .experiments import run as run_model
    from .metrics import DIMENSIONS
    from .scenarios import load_scenario

    overrides = parse_overrides(set_ or [])
    loaded = load_scenario(scenario)  # a bad name or file fails here, before any run
    with _Ticker(safe(f"{scheme or loaded.contract.scheme} on {loaded.name}"), progress) as ticker:
        result = run_model(scheme, loaded, years, seed, progress=ticker, **overrides)
    table = Table(
        title=safe(f"{result.scheme} on '{result.scenario}', {result.years} year{'s' * (result.years != 1)}, ")
        + f"seed {result.seed}",
        title_justify="left",
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in DIMENSIONS:
        table.add_row(_label(name), _fmt(result.value_dimensions[name]))
    table.add_section()
    for name in RUN_INDICATORS:
        table.add_row(_label(name), _fmt(result.indicators[name]))
    console = Console()
    console.print(table)
    if out is not None:
        try:
            folder = result.save(out)
        except OSError as exc:
            _fail(f"cannot write to {out}: {exc.strerror or exc}", 1)
        console.print(safe(f"wrote {folder / 'summary.json'} and {folder / 'timeseries.csv'}"), highlight=False)


@app.command()
def schemes() -> None:
    """List the registered payment schemes and their parameters."""
    from .schemes import SCHEMES

    table = Table(title="Payment schemes", title_justify="left")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("description")
    table.add_column("parameters (--set KEY=VALUE)")
    for name in sorted(SCHEMES):
        cls = SCHEMES[name]
        sig = inspect.signature(cls.__init__)
        params = ", ".join(
            f"{p.name}={p.default!r}"
            for p in sig.parameters.values()
            if p.name != "self" and p.default is not inspect.Parameter.empty
        )
        table.add_row(name, cls.description, params)
    console = Console()
    console.print(table)
    console.print(
        "NAME+p4p adds the yearly P4P bonus on measured quality to any base scheme "
        "(e.g. capitation+p4p); set its parameters with a p4p_ prefix (--set p4p_bonus_share=0.1).",
        highlight=False,
    )


@app.command()
def scenarios(
    show: Annotated[
        str | None,
        typer.Option(
            "--show",
            metavar="NAME",
            help="Print a scenario's TOML file (a built-in name or a path), e.g. to copy: "
            "vbpsim scenarios --show default > my.toml",
            show_default=False,
        ),
    ] = None,
    resolved: Annotated[
        bool,
        typer.Option(
            "--resolved",
            help="With --show: validate the scenario and print every value in effect, with comments.",
        ),
    ] = False,
) -> None:
    """List the built-in scenarios, or print one as TOML to start your own."""
    from .scenarios import list_scenarios, load_scenario, scenario_dir, scenario_text, scenario_to_toml

    if show is not None:
        text = scenario_to_toml(load_scenario(show)) if resolved else scenario_text(show)
        typer.echo(text, nl=False)  # plain text: rich would read [sections] as markup
        return
    if resolved:
        raise ParameterError("--resolved", True, "only together with --show NAME")
    table = Table(title="Scenarios", title_justify="left")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("description")
    for name, description in list_scenarios().items():
        table.add_row(safe(name), safe(description))
    console = Console()
    console.print(table)
    console.print(
        f"Files: {safe(str(scenario_dir()))}\n"
        "Start your own: vbpsim scenarios --show default > my.toml, edit it (keep only what you change, "
        'or write extends = "small" and your changes), then vbpsim run --scenario my.toml',
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def compare(
    scenario: Annotated[str, typer.Option(help=SCENARIO_HELP)] = "default",
    seeds: Seeds = 5,
    years: Years = None,
    schemes: Annotated[str, typer.Option("--schemes", help="Comma-separated scheme names to compare.")] = ",".join(
        DEFAULT_COMPARE
    ),
    out: Annotated[
        Path | None,
        typer.Option(help="Write runs.csv and comparison.csv into this folder.", show_default=False),
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Runs in parallel on this many local processes (1: in this process).")
    ] = 1,
    progress: ShowProgress = None,
) -> None:
    """Compare payment schemes on the same seeds (common random numbers); mean over seeds."""
    import pandas as pd

    from .experiments import STATUS_QUO, write_atomic
    from .experiments import compare as compare_table
    from .scenarios import load_scenario
    from .schemes import make_scheme
    from .sweep import ArmsJob, map_runs, run_arms_job

    loaded = load_scenario(scenario)  # a bad name or file fails here, before any run
    names = [s.strip() for s in schemes.split(",") if s.strip()]
    if not names:
        raise ParameterError("schemes", schemes, "a comma-separated list of scheme names")
    for name in names:
        if name != STATUS_QUO:
            make_scheme(name)  # fail fast on an unknown name, before any run
    if isinstance(seeds, bool) or seeds < 1:
        raise ParameterError("seeds", seeds, "a whole number of replications >= 1")
    if years is not None and years < 1:
        raise ParameterError("years", years, "a whole number of years > 0")
    if STATUS_QUO not in names:  # every contract is read against the status quo continued
        names.insert(0, STATUS_QUO)
    jobs = [ArmsJob(f"seed{seed}", tuple(names), loaded, years, seed) for seed in range(seeds)]
    total = seeds * len(names)
    with _Ticker(safe(f"{total} runs on {loaded.name} (one shared history per seed)"), progress) as ticker:
        results = map_runs(
            jobs, workers=workers, fn=run_arms_job, on_row=lambda done, _: ticker(done * len(names), total)
        )
    for job, result in zip(jobs, results, strict=True):
        if result["status"] != "ok":
            raise VBPSimError(f"the runs with seed {job.seed} failed: {result['error']}")
    runs = pd.DataFrame([row for result in results for row in result["rows"]])
    runs["spending_change_pct"] = runs.groupby("seed")["spending_per_capita"].transform(
        lambda column: 100 * (column / column.iloc[0] - 1)
    )
    summary = compare_table(runs)

    horizon = years if years is not None else loaded.simulation.years
    span = f"{horizon} year{'s' * (horizon != 1)}"
    table = Table(
        title=safe(f"Scenario '{loaded.name}', {span}, mean over {seeds} seed{'s' * (seeds != 1)}"),
        title_justify="left",
        caption=COMPARE_CAPTION,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("scheme", style="bold", no_wrap=True)
    for header in COMPARE_COLUMNS.values():
        table.add_column(header, justify="right", no_wrap=True)
    for name in names:
        row = summary.loc[name, "mean"]
        cells = [
            f"{float(row[m]):+.1f}%" if m == "spending_change_pct" else _fmt(float(row[m])) for m in COMPARE_COLUMNS
        ]
        table.add_row(safe(name), *cells)
    console = Console()
    console.print(table)

    if out is not None:
        tidy = (
            summary.stack(level=1, future_stack=True)
            .rename_axis(["scheme", "metric"])
            .reset_index()
            .assign(n_seeds=seeds)
        )
        try:
            folder = Path(out)
            folder.mkdir(parents=True, exist_ok=True)
            write_atomic(folder / "runs.csv", runs.to_csv(index=False))
            write_atomic(folder / "comparison.csv", tidy.to_csv(index=False))
        except OSError as exc:
            _fail(f"cannot write to {out}: {exc.strerror or exc}", 1)
        console.print(safe(f"wrote {folder / 'runs.csv'} and {folder / 'comparison.csv'}"), highlight=False)


@app.command()
def calibrate(
    seeds: Annotated[int, typer.Option(help="Replications per parameter vector (common random numbers).")] = 3,
    max_evaluations: Annotated[int, typer.Option(help="Simulated-moments evaluations (0: only report).")] = 40,
    out: Annotated[Path, typer.Option(help="Folder for calibration.csv, trace.csv and report.md.")] = Path(
        "calibration-report"
    ),
    progress: ShowProgress = None,
) -> None:
    """Fit the free behavioural parameters to calibration/targets.toml and report every target."""
    import pandas as pd

    from .calibration import FREE_PARAMETERS, load_targets, markdown_table, measure, report
    from .calibration import calibrate as fit
    from .experiments import write_atomic

    if isinstance(seeds, bool) or seeds < 2:
        raise ParameterError("seeds", seeds, "a whole number >= 2 (a confidence interval needs two)")
    if isinstance(max_evaluations, bool) or max_evaluations < 0:
        raise ParameterError("max_evaluations", max_evaluations, "a whole number >= 0")
    targets = load_targets()
    seed_list = list(range(seeds))
    console = Console()
    if max_evaluations == 0:
        with _Ticker("measuring the default scenario", progress) as ticker:
            table = report(targets, measure(seed_list, progress=ticker))
        fitted: dict[str, float] = {}
        trace = pd.DataFrame()
    else:
        with _Ticker(f"fitting {', '.join(FREE_PARAMETERS)}", progress) as ticker:
            out.mkdir(parents=True, exist_ok=True)
            result = fit(
                seed_list, max_evaluations=max_evaluations, targets=targets, progress=ticker, log=out / "trace.csv"
            )
        table, fitted, trace = result.table, result.parameters, result.trace
    console.print(markdown_table(table), highlight=False, soft_wrap=True)
    for name, value in fitted.items():
        console.print(f"fitted {name} = {value:.4g}", highlight=False)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "calibration.csv", table.to_csv(index=False))
    write_atomic(out / "trace.csv", trace.to_csv(index=False))
    fitted_lines = "\n".join(f"- `{k}` = {v:.4g}" for k, v in fitted.items()) or "- (report only)"
    write_atomic(out / "report.md", f"# Calibration report\n\n{fitted_lines}\n\n{markdown_table(table)}\n")
    written = f"wrote {out / 'calibration.csv'}, {out / 'trace.csv'} and {out / 'report.md'}"
    console.print(safe(written), highlight=False)


@app.command("app")
def serve_app(
    host: Annotated[str, typer.Option(help="Address to serve on; the default keeps it on this machine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on (0 picks a free one).")] = 8765,
    scenario: Annotated[str, typer.Option(help="Scenario or preset the page opens with.")] = "default",
) -> None:
    """Serve the interactive app (Solara, offline) at http://HOST:PORT; stop it with Ctrl+C."""
    from .scenarios import list_scenarios

    if not 0 <= port <= 65535:
        raise ParameterError("port", port, "a port number in [0, 65535]")
    if scenario not in list_scenarios():
        raise ParameterError("scenario", scenario, f"one of {list(list_scenarios())}")
    import os

    os.environ["VBPSIM_APP_SCENARIO"] = scenario  # read by vbpsim.app.page in the server process
    os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")  # no calls home: the app works offline
    command = [sys.executable, "-m", "solara", "run", "vbpsim.app.page", "--host", host, "--port", str(port)]
    command += ["--production", "--no-open"]
    Console(stderr=True).print(f"vbpsim app: http://{host}:{port} (Ctrl+C stops it)", highlight=False)
    os.execv(sys.executable, command)


OutputsOption = Annotated[
    str | None,
    typer.Option(
        "--outputs",
        help="Comma-separated outcomes (value dimensions or indicators). "
        "Default: the five value dimensions, intensity_ratio, spending_per_capita, net_monetary_benefit.",
        show_default=False,
    ),
]


def _outputs(text: str | None) -> list[str] | None:
    """Split a comma-separated list of outcomes; None means the default set."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ParameterError("--outputs", text, "a comma-separated list of outcome names")
    return names


@app.command()
def sweep(
    spec: Annotated[Path, typer.Argument(help="Sweep spec (.toml): scenario, arms, parameters, design, seeds.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the results (DIR/results/*.parquet, one file per run).", show_default=False),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Local worker processes (1: in this process). Default: the number of cores.", show_default=False
        ),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(help="'local': run on a dask LocalCluster with --workers workers.", show_default=False),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Run on a dask cluster: a scheduler address (tcp://host:8786) or a scheduler file.",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Run only the runs missing from --out.")] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="With --resume: run the failed runs again too.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the number of runs and an estimated time (times one run).")
    ] = False,
    progress: ShowProgress = None,
) -> None:
    """Run a parameter sweep; every finished run is saved at once, so --resume finishes an interrupted one."""
    import os
    from contextlib import nullcontext

    from .sweep import estimate_seconds, load_spec, make_executor, run_sweep

    loaded = load_spec(spec)  # a bad spec fails here, before any run
    executor = make_executor(workers, cluster, scheduler)
    console = Console(stderr=True)
    plan = (
        f"{loaded.n_runs} runs = {loaded.n_points} design points ({loaded.design.kind}) x "
        f"{loaded.replications} replication{'s' * (loaded.replications != 1)} x {len(loaded.arms)} arm"
        f"{'s' * (len(loaded.arms) != 1)} ({', '.join(a.name for a in loaded.arms)})"
    )
    if dry_run:
        n = executor.workers if scheduler is None else (workers or os.cpu_count() or 1)
        per_run, total = estimate_seconds(loaded, n)
        typer.echo(plan)
        typer.echo(
            f"one run took {per_run:.2f} s here; estimated {_duration(total)} on {n} worker{'s' * (n != 1)}"
            " (assuming every run takes as long and workers scale perfectly)"
        )
        return
    if out is None:
        raise ParameterError("--out", None, "a folder for the results, e.g. --out runs/my_sweep")
    if retry_failed and not resume:
        raise ParameterError("--retry-failed", True, "only together with --resume")
    show = console.is_terminal if progress is None else progress
    bar = _SweepBar(console, loaded.n_runs) if show else None
    try:
        with bar if bar is not None else nullcontext():
            outcome = run_sweep(
                loaded, out, resume=resume, retry_failed=retry_failed, executor=executor, on_progress=bar
            )
    except KeyboardInterrupt:
        _fail(
            f"interrupted; every finished run is saved in {out}. Finish with: vbpsim sweep {spec} --out {out} --resume",
            130,
        )
    console.print(
        f"{outcome.finished} run{'s' * (outcome.finished != 1)} finished in {_duration(outcome.seconds)}"
        f" ({outcome.failed} failed), {outcome.skipped} already done; {plan}.\n"
        f"Results: {escape(str(Path(out) / 'results'))} (pandas.read_parquet reads the folder)",
        highlight=False,
        soft_wrap=True,
    )


def _duration(seconds: float) -> str:
    """Seconds as a short human duration."""
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class _SweepBar:
    """A progress bar on stderr: runs done, failed, running, rate and time left."""

    def __init__(self, console: Console, total: int) -> None:
        self.progress = Progress(
            TextColumn("sweep"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed, {task.fields[running]} running, {task.fields[rate]}"),
            TimeRemainingColumn(),
            console=console,
        )
        self.task = self.progress.add_task("sweep", total=total, failed=0, running=0, rate="")
        self.first = True

    def __enter__(self) -> _SweepBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, state: Any) -> None:
        if self.first:  # runs already done (--resume) must not count as speed
            self.progress.reset(self.task, completed=state.skipped)
            self.first = False
        rate = f"{state.rate * 60:.1f} runs/min" if state.done else ""
        self.progress.update(
            self.task,
            completed=state.skipped + state.done,
            failed=state.failed,
            running=state.running,
            rate=rate,
        )


@app.command()
def sensitivity(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Folder of a finished sweep (its --out).")],
    outputs: OutputsOption = None,
) -> None:
    """Sensitivity indices per arm and outcome (Sobol S1/ST or Morris mu*/sigma), ranked, with a plot."""
    from .sensitivity import RANK_BY, analyse, plot

    table = analyse(folder, _outputs(outputs))
    target = Path(folder) / "sensitivity"
    target.mkdir(exist_ok=True)
    table.to_csv(target / "sensitivity.csv", index=False)
    figure = plot(table, target / "sensitivity.png")
    method = str(table["method"].iloc[0])
    key = RANK_BY[method]
    shown = [c for c in (key, f"{key}_conf", "S1", "S1_conf", "sigma") if c in table.columns]
    shown = list(dict.fromkeys(shown))
    view = Table(title=f"Sensitivity ({method}), ranked by {key}", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("arm", "output", "rank", "parameter", *shown):
        left = column in ("arm", "output", "parameter")
        view.add_column(column, justify="left" if left else "right", overflow="fold", min_width=len(column))
    for _, row in table.iterrows():
        name = row["parameter"] if row["applies"] else f"{row['parameter']} (n/a)"
        view.add_row(row["arm"], row["output"], str(row["rank"]), escape(name), *(_fmt(float(row[c])) for c in shown))
    console = Console()
    console.print(view)
    console.print(f"wrote {target / 'sensitivity.csv'} and {figure}", highlight=False, soft_wrap=True)


@app.command()
def report(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Folder of a finished sweep (its --out).")],
    outputs: OutputsOption = None,
) -> None:
    """Plots of each outcome against each swept parameter per arm, the arms side by side, and report.md."""
    from .report import build_report

    path = build_report(folder, _outputs(outputs))
    Console().print(f"wrote {path} and its figures", highlight=False, soft_wrap=True)


@app.command()
def scorecard(
    scenario: Annotated[str, typer.Option(help=SCENARIO_HELP)] = "default",
    seeds: Seeds = 10,
    years: Years = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write scorecard.csv, runs.csv, scorecard.png and scorecard.md into this folder.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Processes running seeds in parallel (same results).")] = 1,
    progress: ShowProgress = None,
) -> None:
    """Five value dimensions in EUR per capita-year against the cost-reimbursement reference."""
    from .metrics import DIMENSIONS
    from .scenarios import load_scenario
    from .scorecard import ARMS, REFERENCE, run_scorecard

    loaded = load_scenario(scenario)  # a bad name or file fails here, before any run
    if isinstance(seeds, bool) or seeds < 1:
        raise ParameterError("seeds", seeds, "a whole number of replications >= 1")
    if workers < 1:
        raise ParameterError("workers", workers, "a whole number of processes >= 1")
    with _Ticker(f"{len(ARMS) + 1} arms x {seeds} seeds on {loaded.name} (by world)", progress) as ticker:
        card = run_scorecard(loaded, seeds=seeds, years=years, workers=workers, progress=ticker)
    rows = card.table[card.table.measure == "score"]
    table = Table(
        title=f"Scorecard '{card.scenario}', {card.years} years, {seeds} seed{'s' * (seeds != 1)}: "
        f"EUR per capita-year vs {REFERENCE}",
        title_justify="left",
        caption="Each cell: mean, sign by its 95% CI (+, 0, -) | sign expected from Cattel et al. "
        "(2018), Table 1. nmb = the five + a remainder (see scorecard.md with --out).",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("scheme", style="bold", no_wrap=True)
    columns = (*DIMENSIONS, "nmb")
    for name in columns:
        table.add_column(COMPARE_COLUMNS.get(name, name).replace("NMB", "nmb"), justify="right", no_wrap=True)
    for scheme in card.schemes():
        if scheme == REFERENCE:
            continue
        cells = []
        for name in columns:
            row = rows[(rows.scheme == scheme) & (rows.dimension == name)].iloc[0]
            value = row["mean"]
            number = f"{value:+,.0f}" if abs(value) >= 10 else f"{value:+.1f}"
            expected = f"|{row['expected_sign']}" if row["expected_sign"] not in ("", "n/a") else ""
            cells.append(f"{number} {row['sign']}{expected}")
        table.add_row(scheme, *cells)
    console = Console(width=max(Console().width, 110))  # the table needs ~105 columns
    console.print(table)
    if out is not None:
        try:
            paths = card.write(out)
        except OSError as exc:
            _fail(f"cannot write to {out}: {exc.strerror or exc}", 1)
        console.print("wrote " + ", ".join(str(p) for p in paths), highlight=False)


def main() -> None:
    """Entry point of the ``vbpsim`` console script."""
    app()
