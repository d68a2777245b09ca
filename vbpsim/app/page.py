"""The app's page: Mesa's SolaraViz around a per-session model, with vbpsim's own controls.

``Page`` is what ``solara run vbpsim.app.page`` serves. Each browser session renders its
own ``Page`` and so builds its own :class:`~vbpsim.app.session.AppModel` (``use_memo``
inside the component, never a module-level model), which is why one student's steps never
show up in another's tab. SolaraViz supplies Step, Play/Pause, Reset and the speed
(play interval); its Reset rebuilds ``AppModel(settings=box)`` from the session's
:class:`~vbpsim.app.session.SettingsBox`, which the control panel keeps current. A
control change rebuilds the run from month 0; a bad value shows a message and keeps the
current run.
"""

from __future__ import annotations

import os
from typing import Any

import solara
from mesa.visualization import SolaraViz

from ..scenarios import list_scenarios, load_scenario
from .session import AppModel, SettingsBox
from .settings import (
    CONTRACTS,
    LARGE_WORLD,
    Control,
    Settings,
    contract_controls,
    lever_controls,
    run_controls,
    settings_from,
)
from .views import DifferenceView, ValuesView, view

#: SolaraViz pages (tabs "Page 0" to "Page 4") and the views on each: at most two charts
#: per page, because only the open page redraws at each step.
COMPONENTS: list[tuple[Any, int]] = [
    (ValuesView, 0),
    (view("spending"), 0),
    (DifferenceView, 0),
    (view("care"), 1),
    (view("quality"), 1),
    (view("selection"), 2),
    (view("freeriding"), 2),
    (view("shifting"), 3),
    (view("money"), 3),
    (view("providers"), 4),
]

#: What a new session opens with: the default world, or ``vbpsim app --scenario NAME``.
INITIAL = Settings(scenario=os.environ.get("VBPSIM_APP_SCENARIO", "default"), years=5)


@solara.component
def ControlInput(control: Control, value: Any, on_value: Any) -> None:
    """One control: a slider for shares, a checkbox, a menu, or a text field that is cast."""
    label = f"{control.label} [{control.unit}]" if control.unit and control.kind != "bool" else control.label
    if control.kind == "bool":
        solara.Checkbox(label=label, value=bool(value), on_value=on_value)
    elif control.kind == "choice":
        solara.Select(label=label, value=value, values=list(control.choices), on_value=on_value)
    elif control.kind == "float" and control.low == 0.0 and control.high == 1.0 and not isinstance(value, str):
        solara.SliderFloat(label=label, value=float(value), min=0.0, max=1.0, step=0.01, on_value=on_value)
    else:
        solara.InputText(label=label, value=str(value), on_value=on_value)
    if control.help:
        solara.Text(control.help, style={"font-size": "0.75em", "color": "grey"})


@solara.component
def ControlGroup(title: str, controls: list[Control], values: dict[str, Any], on_change: Any) -> None:
    """A titled, collapsible group of controls."""
    with solara.Details(title, expand=False):
        for control in controls:

            def set_value(value: Any, key: str = control.key) -> None:
                on_change(key, value)

            ControlInput(control, values.get(control.key, control.default), set_value).key(f"{title}:{control.key}")


@solara.component
def ControlPanel(model: solara.Reactive[AppModel], box: SettingsBox) -> None:
    """Scenario, contracts (A and B), their parameters and the levers; rebuilds the run on change."""
    settings = box.value
    scenario = solara.use_reactive(settings.scenario)
    contract = solara.use_reactive(settings.contract)
    contract_b = solara.use_reactive(settings.contract_b)
    compare = solara.use_reactive(settings.compare)
    values = solara.use_reactive({"A": {}, "B": {}, "levers": {}, "run": {}})
    error = solara.use_reactive(None)

    def rebuild(**changes: Any) -> None:
        state = {
            "scenario": scenario.value,
            "contract": contract.value,
            "compare": compare.value,
            "contract_b": contract_b.value,
            "values": values.value,
            **changes,
        }
        try:
            new_settings = settings_from(**state)
            new_model = AppModel(new_settings)
        except Exception as exc:  # any bad input becomes a message in the page, never a traceback
            error.set(f"{exc}" if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}")
            return
        scenario.set(state["scenario"])
        contract.set(state["contract"])
        compare.set(state["compare"])
        contract_b.set(state["contract_b"])
        values.set(state["values"])
        error.set(None)
        box.value = new_settings
        model.set(new_model)

    def set_value(group: str) -> Any:
        def on_change(key: str, value: Any) -> None:
            new = {**values.value, group: {**values.value[group], key: value}}
            rebuild(values=new)

        return on_change

    def choose_contract(arm: str, name: str) -> None:
        new = {**values.value, arm: {}}  # a new contract starts from its own defaults
        rebuild(values=new, **({"contract": name} if arm == "A" else {"contract_b": name}))

    with solara.Sidebar(), solara.Card("Scenario and contract"):
        solara.Select(
            label="scenario or preset",
            value=scenario.value,
            values=list(list_scenarios()),
            on_value=lambda name: rebuild(scenario=name, values={"A": {}, "B": {}, "levers": {}, "run": {}}),
        )
        n_patients = load_scenario(scenario.value).population.n_patients
        if n_patients > LARGE_WORLD:
            solara.Warning(
                f"'{scenario.value}' is a large world ({n_patients:,} patients): each step takes long "
                "and the page will feel slow."
            )
            solara.Button(
                "Use the small world",
                on_click=lambda: rebuild(scenario="small", values={"A": {}, "B": {}, "levers": {}, "run": {}}),
            )
        solara.Select(
            label="contract A",
            value=contract.value,
            values=list(CONTRACTS),
            on_value=lambda name: choose_contract("A", name),
        )
        solara.Checkbox(
            label="A/B mode: compare with contract B", value=compare.value, on_value=lambda on: rebuild(compare=on)
        )
        if compare.value:
            solara.Select(
                label="contract B",
                value=contract_b.value,
                values=list(CONTRACTS),
                on_value=lambda name: choose_contract("B", name),
            )
        if error.value:
            solara.Error(f"Not applied: {error.value}", classes=["vbpsim-error"])
        solara.Text(f"Running: {', '.join(model.value.labels.values())}", style={"font-size": "0.8em"})
        for control in run_controls():
            value = values.value["run"].get(control.key, control.default)
            ControlInput(control, value, _bind(set_value("run"), control)).key(f"run:{control.key}")
        # Keys tie each control to its parameter, so controls appearing above (an error, contract B)
        # never hand one control's widget to another.
        ControlGroup(
            "Contract A parameters",
            contract_controls(scenario.value, contract.value),
            values.value["A"],
            set_value("A"),
        ).key(f"A:{scenario.value}:{contract.value}")
        if compare.value:
            ControlGroup(
                "Contract B parameters",
                contract_controls(scenario.value, contract_b.value),
                values.value["B"],
                set_value("B"),
            ).key(f"B:{scenario.value}:{contract_b.value}")
        levers = lever_controls(scenario.value)
        ControlGroup("Scenario levers", levers, values.value["levers"], set_value("levers")).key(
            f"levers:{scenario.value}"
        )


def _bind(on_change: Any, control: Control) -> Any:
    def set_value(value: Any) -> None:
        on_change(control.key, value)

    return set_value


@solara.component
def Page() -> None:
    """The app: one model per browser session, SolaraViz controls, vbpsim's controls and views."""
    box = solara.use_memo(lambda: SettingsBox(INITIAL), [])
    initial = solara.use_memo(lambda: AppModel(box), [])
    model = solara.use_reactive(initial)
    ControlPanel(model, box)
    SolaraViz(
        model,
        components=COMPONENTS,
        model_params={"settings": box},
        name="vbpsim: provider payment incentives",
        play_interval=200,
    )
