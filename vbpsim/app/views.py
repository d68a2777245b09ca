"""The app's live views: one Solara component per phenomenon, each with a note for students.

Every view takes the session's :class:`~vbpsim.app.session.AppModel` and draws each arm
(A solid, B dashed in A/B mode) from the arms' per-step records, with a short text on
what it shows and which section of Cattel, Eijkenaar & Schut (2018) it illustrates.
Charts are ``matplotlib.figure.Figure`` objects (never pyplot: sessions render in
threads) drawn small, so one step of the default world re-renders quickly.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

import numpy as np
import pandas as pd
import solara
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from mesa.visualization.utils import update_counter

from ..metrics import DIMENSIONS
from ..parameters import DISCIPLINES
from .session import AppModel, differences, per_capita_year, provider_panels, rolling_dimensions

STYLES = {"A": "-", "B": "--"}
CARD_STYLE = {"height": "100%", "overflow-y": "auto"}  # a view scrolls inside its grid cell
SHORT = {
    "quality": "quality",
    "cost_consciousness": "cost-consc.",
    "coordination": "coordination",
    "innovation": "innovation",
    "prevention": "prevention",
}
DISCIPLINE_COLOURS = {"gp": "tab:blue", "hospital": "tab:red", "rehab": "tab:green", "nursing": "tab:purple"}
DIFF_INDICATORS = (
    "spending_per_capita",
    "qalys_per_capita",
    "net_monetary_benefit",
    "intensity_ratio",
    "overprovision",
    "underprovision",
    "measured_quality",
    "unmeasured_quality",
    "risk_selection",
    "cost_shifting",
    "provider_margin",
    "insolvent_providers",
)

#: What each view shows, for students: (title, two or three sentences with the paper's section).
NOTES: dict[str, tuple[str, str]] = {
    "values": (
        "The five value dimensions",
        "Cattel et al. judge a payment method by five dimensions of value (Section 2): quality, "
        "cost-consciousness, coordination, cost-effective innovation and prevention. The table "
        "shows the last year, the charts each dimension over a trailing year. No base payment "
        "scores well on all five (Section 3.3, Table 1).",
    ),
    "spending": (
        "Spending per capita and health",
        "What the purchaser pays per person per year and the health (QALYs per person per year) "
        "it buys. Fee-for-service raises spending with little extra health; a fixed payment lowers "
        "it but may cost health when care falls below the optimum (Section 3.3).",
    ),
    "care": (
        "Care relative to guideline by discipline",
        "Delivered care divided by the patient-optimal (guideline) amount: above 1 is "
        "overprovision, below 1 underprovision. Under fee-for-service every extra service pays; "
        "under capitation or a budget every service is a cost (Section 3.3).",
    ),
    "quality": (
        "Measured vs unmeasured quality",
        "A pay-for-performance bonus rewards only what indicators measure. Providers shift effort "
        "to the measured task and away from the unmeasured one: teaching to the test "
        "(Section 3.2, multitasking; Section 4.1 on keeping P4P small).",
    ),
    "selection": (
        "Who is steered away, and their risk",
        "Patients steered away per 1,000 patient-years, for the quarter with the highest and the "
        "lowest unpriced risk. When the payment ignores risk a provider knows about, the costly "
        "are shed; risk adjustment, risk sharing and ethics shrink it (Section 4.2.4).",
    ),
    "freeriding": (
        "Group members' effort vs solo",
        "Each dot is a GP: its cost-saving effort (1 - chosen intensity) against the size of its "
        "contracting group. Under a shared payment a member keeps only 1/N of what it saves, so "
        "effort falls with group size (free-riding; Section 5.1).",
    ),
    "shifting": (
        "Care shifted across a bundle's border",
        "Share of rehabilitation that rehab providers leave to home care. When rehab sits inside "
        "a bundle and home care outside it, shifting cuts the bundle's cost and raises spending "
        "just outside it; whole-person payment removes the border (Sections 3.3 and 4.2.2).",
    ),
    "money": (
        "Money flows: purchaser to providers",
        "Payments per person per year by discipline (stacked) against the providers' cost of "
        "care (black). The gap is the providers' margin: the money that carries the incentive "
        "(Section 4.2.5 on how much risk the contract transfers).",
    ),
    "providers": (
        "Providers and their panels",
        "Each marker is a provider (row: discipline), sized by its panel. Left: coloured by the "
        "average risk of its patients; right: by its margin so far. Selection shows as low-risk "
        "panels with high margins (Sections 4.2.4 and 4.2.5).",
    ),
    "ab": (
        "A/B: difference per value dimension and indicator",
        "Both contracts run on the same patients and random numbers (common random numbers), so "
        "B - A is the effect of the contract alone, here for one seed. Section 5 of the paper "
        "weighs such trade-offs between the dimensions.",
    ),
}


def _figure(ncols: int = 1, height: float = 2.4) -> tuple[Figure, list]:
    """A small figure with few ticks: text layout dominates the cost of a redraw."""
    fig = Figure(figsize=(5.2, height), dpi=80)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.15, top=0.9, wspace=0.35)
    for ax in axes:
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_locator(MaxNLocator(3))
    return fig, axes


def _months(ts: pd.DataFrame, model: AppModel, arm: str) -> np.ndarray:
    """Months since the switch from the status quo to the contract."""
    return (np.arange(len(ts)) + 1) * 12 / model.arms[arm].steps_per_year


@solara.component
def ViewCard(key: str, draw: Callable[[AppModel], Figure | None], model: AppModel) -> None:
    """A titled card: the chart (or a hint before the first step) and the note for students."""
    update_counter.get()
    title, note = NOTES[key]
    with solara.Card(title, classes=[f"vbpsim-view-{key}"], style=CARD_STYLE):
        fig = draw(model) if model.step_index > 0 else None
        if fig is None:
            solara.Text("Press Step or Play to run the model.")
        else:
            solara.FigureMatplotlib(fig, format="png", bbox_inches=None)
        Note(note)


def draw_values(model: AppModel) -> Figure:
    """The four dimensions that are shares (left) and innovation in EUR (right), over a trailing year."""
    fig, (left, right) = _figure(2)
    fig.subplots_adjust(left=0.08, wspace=0.25)
    colours = dict(zip(DIMENSIONS, ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"), strict=True))
    for arm, ts in model.frames().items():
        m = model.arms[arm]
        rolled = rolling_dimensions(ts, m.initial_patients, m.steps_per_year)
        for name in DIMENSIONS:
            ax = right if name == "innovation" else left
            label = name.replace("_", " ") if arm == "A" else None
            ax.plot(rolled["month"], rolled[name], STYLES[arm], color=colours[name], lw=1.2, label=label)
    left.set_title("quality (QALYs), cost-consc., coordination, prevention", fontsize=7)
    right.set_title("innovation, EUR per capita-year", fontsize=7)
    left.legend(fontsize=6, loc="lower left")
    return fig


def draw_spending(model: AppModel) -> Figure:
    """Spending per capita-year (left) and QALYs per capita-year (right)."""
    fig, (left, right) = _figure(2)
    for arm, ts in model.frames().items():
        m = model.arms[arm]
        months = _months(ts, model, arm)
        left.plot(months, per_capita_year(ts, "spending", m.initial_patients, m.steps_per_year), STYLES[arm])
        right.plot(months, per_capita_year(ts, "qalys", m.initial_patients, m.steps_per_year), STYLES[arm], label=arm)
    left.set_title("spending, EUR per capita-year", fontsize=8)
    right.set_title("QALYs per capita-year", fontsize=8)
    right.legend(fontsize=7)
    return fig


def draw_care(model: AppModel) -> Figure:
    """Delivered / guideline care per discipline, with the optimum at 1."""
    fig, (ax,) = _figure()
    for arm, ts in model.frames().items():
        months = _months(ts, model, arm)
        for name in DISCIPLINES:
            label = name if arm == "A" else None
            ax.plot(months, ts[f"intensity_{name}"], STYLES[arm], color=DISCIPLINE_COLOURS[name], label=label)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_ylabel("delivered / guideline", fontsize=7)
    ax.legend(fontsize=7, ncol=4)
    return fig


def draw_quality(model: AppModel) -> Figure:
    """Measured and unmeasured quality (left), effort on each task (right)."""
    fig, (left, right) = _figure(2)
    for arm, ts in model.frames().items():
        months = _months(ts, model, arm)
        left.plot(months, ts["measured_quality"], STYLES[arm], color="tab:orange", label=f"{arm} measured")
        left.plot(months, ts["unmeasured_quality"], STYLES[arm], color="tab:cyan", label=f"{arm} unmeasured")
        right.plot(months, ts["effort_measured"], STYLES[arm], color="tab:orange")
        right.plot(months, ts["effort_unmeasured"], STYLES[arm], color="tab:cyan")
    left.set_title("quality", fontsize=8)
    right.set_title("effort per task", fontsize=8)
    left.legend(fontsize=6)
    return fig


def draw_selection(model: AppModel) -> Figure:
    """Steering per 1,000 patient-years in the highest vs lowest unpriced-risk quarter (trailing year)."""
    fig, (ax,) = _figure()
    for arm, ts in model.frames().items():
        m = model.arms[arm]
        months = _months(ts, model, arm)
        window = m.steps_per_year
        for band, colour in (("high", "tab:red"), ("low", "tab:green")):
            steered = ts[f"steered_{band}_risk"].rolling(window, min_periods=1).sum()
            years = ts[f"alive_{band}_risk"].rolling(window, min_periods=1).sum() / m.steps_per_year
            rate = 1000 * steered / years.where(years > 0)
            ax.plot(months, rate, STYLES[arm], color=colour, label=f"{arm} {band} risk")
    ax.set_ylabel("steered per 1,000 py", fontsize=7)
    ax.legend(fontsize=7)
    return fig


def draw_freeriding(model: AppModel) -> Figure:
    """GP cost-saving effort against the size of the GP's contracting group."""
    fig, (ax,) = _figure()
    for i, (arm, m) in enumerate(model.arms.items()):
        panels = provider_panels(m)
        gps = panels[panels.discipline == "gp"]
        effort = 1.0 - gps["intensity"]
        x = gps["group_size"] + (i - 0.5) * 0.15 * (len(model.arms) - 1)
        ax.scatter(x, effort, s=14, marker="o" if arm == "A" else "s", label=arm, alpha=0.7)
        means = effort.groupby(gps["group_size"]).mean()
        ax.plot(means.index, means.to_numpy(), STYLES[arm], color="black", lw=1)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("GPs in the contracting group (or providers in a chain)", fontsize=7)
    ax.set_ylabel("cost-saving effort", fontsize=7)
    ax.legend(fontsize=7)
    return fig


def draw_shifting(model: AppModel) -> Figure:
    """Share of rehab shifted to home care (left); home-care payments per capita-year (right)."""
    fig, (left, right) = _figure(2)
    for arm, ts in model.frames().items():
        m = model.arms[arm]
        months = _months(ts, model, arm)
        base = ts["rehab_guideline_cost"].where(ts["rehab_guideline_cost"] > 0)
        left.plot(months, ts["shifted_cost"] / base, STYLES[arm], label=arm)
        right.plot(months, per_capita_year(ts, "spending_nursing", m.initial_patients, m.steps_per_year), STYLES[arm])
    left.set_title("rehab shifted to home care", fontsize=8)
    right.set_title("home care paid, EUR per capita-year", fontsize=8)
    left.legend(fontsize=7)
    return fig


def draw_money(model: AppModel) -> Figure:
    """Payments by discipline (stacked) and providers' cost, per capita-year, for each arm."""
    fig, axes = _figure(len(model.arms))
    for ax, (arm, ts) in zip(axes, model.frames().items(), strict=True):
        m = model.arms[arm]
        months = _months(ts, model, arm)
        stacks = [per_capita_year(ts, f"spending_{d}", m.initial_patients, m.steps_per_year) for d in DISCIPLINES]
        ax.stackplot(months, stacks, labels=DISCIPLINES, colors=[DISCIPLINE_COLOURS[d] for d in DISCIPLINES])
        cost = per_capita_year(ts, "provider_cost", m.initial_patients, m.steps_per_year)
        ax.plot(months, cost, color="black", lw=1.2, label="cost")
        ax.set_title(f"{arm}: EUR per capita-year", fontsize=8)
    axes[0].legend(fontsize=6, loc="lower left")
    return fig


def draw_providers(model: AppModel) -> Figure:
    """Providers by discipline, sized by panel, coloured by panel risk and by margin."""
    arms = list(model.arms)
    fig = Figure(figsize=(5.2, 1.5 + 1.2 * len(arms)), dpi=80)
    fig.subplots_adjust(left=0.13, right=0.9, bottom=0.08, top=0.9, hspace=0.5, wspace=0.45)
    for row, arm in enumerate(arms):
        panels = provider_panels(model.arms[arm])
        y = panels["discipline"].map({d: i for i, d in enumerate(DISCIPLINES)}).to_numpy()
        x = panels.groupby("discipline").cumcount().to_numpy()
        size = 15 + 120 * panels["panel"] / max(panels["panel"].max(), 1)
        for col, (column, cmap, label) in enumerate(
            (("panel_risk", "viridis", "panel risk"), ("margin", "RdYlGn", "margin"))
        ):
            ax = fig.add_subplot(len(arms), 2, 2 * row + col + 1)
            values = panels[column].to_numpy()
            if column == "margin":
                span = max(float(np.abs(values).max()), 0.05)
                sc = ax.scatter(x, y, s=size, c=values, cmap=cmap, vmin=-span, vmax=span)
            else:
                sc = ax.scatter(x, y, s=size, c=values, cmap=cmap)
            ax.set_yticks(range(len(DISCIPLINES)), DISCIPLINES, fontsize=6)
            ax.tick_params(labelsize=6)
            ax.set_ylim(-0.6, len(DISCIPLINES) - 0.4)
            ax.set_title(f"{arm}: {label}", fontsize=7)
            fig.colorbar(sc, ax=ax, fraction=0.05).ax.tick_params(labelsize=6)
    return fig


VIEWS: dict[str, Callable[[AppModel], Figure]] = {
    "values": draw_values,
    "spending": draw_spending,
    "care": draw_care,
    "quality": draw_quality,
    "selection": draw_selection,
    "freeriding": draw_freeriding,
    "shifting": draw_shifting,
    "money": draw_money,
    "providers": draw_providers,
}


def _table(frame: pd.DataFrame) -> str:
    """A plain HTML table (numbers to 3 decimals); every cell is escaped."""

    def cell(value: object) -> str:
        return escape(value) if isinstance(value, str) else f"{value:,.3f}"

    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in frame.itertuples(index=False)
    )
    return f'<table class="vbpsim-table"><tr>{head}</tr>{rows}</table>'


def Note(text: str) -> None:
    """The note for students under a chart.

    Plain text, not Markdown: solara's Markdown loads its math and diagram plugins from a
    CDN, which the offline app cannot reach.
    """
    solara.Text(text, style={"display": "block", "margin-top": "0.5em", "font-size": "0.9em"})


def Table(frame: pd.DataFrame) -> None:
    """A small table of numbers."""
    solara.HTML(tag="div", unsafe_innerHTML=_table(frame), style="font-size: 0.85em; overflow-x: auto")


@solara.component
def ValuesTable(model: AppModel) -> None:
    """The five value dimensions of each arm over the last year (current values)."""
    update_counter.get()
    if model.step_index == 0:
        return
    rows = []
    for arm, ts in model.frames().items():
        m = model.arms[arm]
        last = rolling_dimensions(ts, m.initial_patients, m.steps_per_year).iloc[-1]
        rows.append({"last year": arm, **{SHORT[name]: float(last[name]) for name in DIMENSIONS}})
    Table(pd.DataFrame(rows))


@solara.component
def ValuesView(model: AppModel) -> None:
    """The value dimensions: current values in a table, their course in small charts."""
    update_counter.get()
    title, note = NOTES["values"]
    with solara.Card(title, classes=["vbpsim-view-values"], style=CARD_STYLE):
        months = 12 // model.arms["A"].steps_per_year
        solara.Text(f"Month {model.step_index * months} of {model.n_steps * months}", classes=["vbpsim-month"])
        if model.step_index == 0:
            solara.Text("Press Step or Play to run the model.")
        else:
            ValuesTable(model)
            solara.FigureMatplotlib(draw_values(model), format="png", bbox_inches=None)
        Note(note)


@solara.component
def DifferenceView(model: AppModel) -> None:
    """A/B mode: each value dimension and indicator for both contracts and B - A."""
    update_counter.get()
    title, note = NOTES["ab"]
    with solara.Card(title, classes=["vbpsim-view-ab"], style=CARD_STYLE):
        results = model.results() if "B" in model.arms else None
        if "B" not in model.arms:
            solara.Text("Switch on A/B mode in the sidebar to compare two contracts.")
        elif results is None:
            solara.Text("Press Step or Play to run both contracts.")
        else:
            for label in model.labels.values():
                solara.Text(label, style={"display": "block", "font-weight": "bold"})
            Table(differences(results, DIFF_INDICATORS))
        Note(note)


def view(key: str) -> Callable[[AppModel], None]:
    """A Solara component drawing one view of the session's model.

    Made once per view at import: SolaraViz wraps plain functions in a new component class
    each time its grid renders, which would redraw the chart again at every step.
    """

    @solara.component
    def View(model: AppModel) -> None:
        ViewCard(key, VIEWS[key], model)

    View.__name__ = View.__qualname__ = f"View_{key}"
    return View
