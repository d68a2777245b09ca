"""The app without a browser: controls from metadata, per-session models, every view renders.

Rendered with ``solara.render`` inside an ``AppLayout`` (where SolaraViz puts its sidebar),
on the small world for speed; buttons are clicked as ipyvuetify widgets.
"""

from __future__ import annotations

import ipyvuetify as v
import ipywidgets as widgets
import numpy as np
import pytest
import solara

from vbpsim import list_scenarios
from vbpsim.app import page as app_page
from vbpsim.app import views
from vbpsim.app.session import AppModel, SettingsBox, rolling_dimensions
from vbpsim.app.settings import (
    CONTRACTS,
    SCENARIO_CONTRACT,
    Settings,
    contract_controls,
    lever_controls,
    settings_from,
)
from vbpsim.errors import ParameterError
from vbpsim.metrics import value_dimensions

NO_HISTORY = {"simulation.history_years": 0}  # start at the switch: fast tests of what is drawn
SMALL = Settings(scenario="small", years=1, levers=NO_HISTORY)


@pytest.fixture
def small_page(monkeypatch: pytest.MonkeyPatch):
    """The page starting on the small world (the served app starts on the default world)."""
    monkeypatch.setattr(app_page, "INITIAL", SMALL)
    box, rc = solara.render(solara.AppLayout(children=[app_page.Page()]), handle_error=False)
    yield rc
    rc.close()  # a page left open would redraw at every later test's steps (one update counter)


def button(rc, label: str) -> v.Btn:
    return rc.find(v.Btn, children=[label]).widget


def texts(rc) -> str:
    """All text in the rendered page: widget children, labels, and Markdown templates."""
    parts: list[str] = []
    seen: set[int] = set()

    def walk(widget: widgets.Widget) -> None:
        if id(widget) in seen:
            return
        seen.add(id(widget))
        for attr in ("label", "value", "unsafe_innerHTML"):
            if isinstance(getattr(widget, attr, None), str):
                parts.append(getattr(widget, attr))
        template = getattr(widget, "template", None)
        if template is not None:
            parts.append(str(getattr(template, "template", template)))
        for key in widget.keys:
            value = getattr(widget, key, None)
            items = value if isinstance(value, list | tuple) else [value]
            for item in items:
                if isinstance(item, str) and key == "children":
                    parts.append(item)
                elif isinstance(item, widgets.Widget):
                    walk(item)
                elif isinstance(item, dict) and isinstance(item.get("children"), widgets.Widget):
                    walk(item["children"])

    walk(rc.container)
    return "\n".join(parts)


_models: list[AppModel] = []


@pytest.fixture(autouse=True)
def track_models(monkeypatch: pytest.MonkeyPatch):
    """Record every AppModel built, so a test can look at the one the page is showing."""
    _models.clear()
    original = AppModel.__init__

    def init(self, settings=None):
        original(self, settings)
        _models.append(self)

    monkeypatch.setattr(AppModel, "__init__", init)
    yield


# -- controls come from the parameter metadata ----------------------------------------------
@pytest.mark.parametrize("scenario", list(list_scenarios()))
def test_every_scenario_and_preset_has_contract_and_lever_controls(scenario: str) -> None:
    controls = contract_controls(scenario, SCENARIO_CONTRACT)
    assert controls, scenario
    assert all(c.unit and c.help for c in controls if c.key != "fees"), [c.key for c in controls if not c.help]
    levers = {c.key: c for c in lever_controls(scenario)}
    assert levers["groups.composition"].choices == ("solo", "gp_groups", "hospital_rehab", "chain")
    assert levers["context.trust"].unit and levers["context.trust"].help
    assert (levers["providers.altruism_mean"].low, levers["providers.altruism_mean"].high) == (0.0, 1.0)


def test_issue_levers_are_all_offered() -> None:
    keys = {c.key for c in contract_controls("cattel_vbp", SCENARIO_CONTRACT)}
    keys |= {c.key for c in contract_controls("small", "mixed")} | {c.key for c in contract_controls("small", "ffs")}
    keys |= {c.key for c in contract_controls("small", "capitation+p4p")}
    keys |= {c.key for c in lever_controls("small")}
    wanted = {
        "fee_to_cost",
        "rate_to_cost",
        "ffs_share",
        "p4p_bonus_share",
        "purchaser.risk_adjustment",
        "shared_savings_savings_rate",
        "shared_savings_loss_rate",
        "shared_savings_min_savings_rate",
        "shared_savings_corridors",
        "stop_loss_share",
        "groups.composition",
        "groups.group_size",
        "groups.distribution",
        "providers.altruism_mean",
        "selection.ethics_mean",
        "context.trust",
        "providers.data_lag_months",
        "providers.horizon_years",
    }
    assert wanted <= keys, wanted - keys


def test_untouched_controls_change_nothing_and_touched_ones_reach_the_model() -> None:
    same = settings_from("cattel_vbp", SCENARIO_CONTRACT, {"A": {"shared_savings_loss_rate": "0.5"}})
    assert same.params == {}  # 0.5 is the preset's own value
    settings = settings_from(
        "small",
        "capitation+p4p",
        {"A": {"p4p_bonus_share": "0.3"}, "levers": {"providers.altruism_mean": 0.2}, "run": {"seed": "7"}},
    )
    assert settings.params == {"p4p_bonus_share": 0.3}
    assert settings.seed == 7
    model = AppModel(settings.with_(years=1)).arms["A"]
    assert model.config.providers.altruism_mean == 0.2
    assert model.seed_value == 7
    assert "bonus_share=0.3" in repr(model.contract_under_study)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"run": {"seed": "abc"}}, "seed='abc'"),
        ({"run": {"years": "0"}}, "years='0'"),
        ({"A": {"fee_to_cost": "-1"}}, "fee_to_cost=-1"),
        ({"A": {"fees": "{'gp': "}}, "fees="),
        ({"levers": {"groups.group_size": "2.5"}}, "groups.group_size='2.5'"),
    ],
)
def test_bad_values_raise_a_parameter_error_naming_the_control(values: dict, fragment: str) -> None:
    with pytest.raises(ParameterError) as info:
        AppModel(settings_from("small", "ffs", values))  # what the page does: parse, then build
    assert fragment in str(info.value)


def test_rolling_dimensions_match_value_dimensions_of_the_last_year() -> None:
    model = AppModel(Settings(scenario="small", years=2, levers=NO_HISTORY))
    for _ in range(18):
        model.step()
    arm = model.arms["A"]
    ts = model.frames()["A"]
    rolled = rolling_dimensions(ts, arm.initial_patients, arm.steps_per_year).iloc[-1]
    expected = value_dimensions(ts.tail(12).reset_index(drop=True), arm.initial_patients, 1.0)
    for name, value in expected.items():
        assert rolled[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_ab_mode_forks_two_models_from_one_status_quo_history() -> None:
    settings = Settings(scenario="small", years=1, seed=3, compare=True, contract="ffs", contract_b="capitation")
    model = AppModel(settings.with_(levers={"simulation.history_years": 1}))
    a, b = model.arms["A"], model.arms["B"]
    assert a is not b and a.seed_value == b.seed_value == 3
    assert a.step_index == b.step_index == a.history_steps == 12  # both at the switch, after the same history
    assert model.step_index == 0 and model.frames()["A"].empty
    np.testing.assert_array_equal(a.population.frailty, b.population.frailty)
    np.testing.assert_array_equal(a.population.state, b.population.state)
    np.testing.assert_array_equal(a.providers.reserves, b.providers.reserves)
    assert repr(a.contract) == repr(b.contract)  # both still under the status quo
    model.step()
    assert b.contract is b.contract_under_study and type(b.contract).__name__ == "Capitation"
    assert a.records[-1]["spending"] != b.records[-1]["spending"]  # the contracts differ, the world does not


def test_the_model_stops_at_the_end_of_the_horizon() -> None:
    model = AppModel(SMALL)
    for _ in range(model.n_steps + 2):
        model.step()
    assert model.step_index == model.n_steps and not model.running


# -- rendering ------------------------------------------------------------------------------
@pytest.mark.parametrize("contract", CONTRACTS)
def test_every_view_renders_for_every_contract(contract: str) -> None:
    model = AppModel(SMALL.with_(contract=contract, compare=True, contract_b="ffs"))
    for _ in range(2):
        model.step()
    for key, draw in views.VIEWS.items():
        fig = draw(model)
        assert fig.axes, key
    for element in (
        views.ValuesView(model),
        views.DifferenceView(model),
        views.ViewCard("care", views.draw_care, model),
    ):
        _, rc = solara.render(element, handle_error=False)
        rc.close()


@pytest.mark.parametrize("scenario", [s for s in list_scenarios() if s != "large"])
def test_every_scenario_and_preset_renders_after_a_step(scenario: str) -> None:
    model = AppModel(Settings(scenario=scenario, years=1, levers=NO_HISTORY))
    model.step()
    for key, draw in views.VIEWS.items():
        assert draw(model).axes, (scenario, key)
    _, rc = solara.render(views.ValuesView(model), handle_error=False)
    rc.close()


def test_step_play_and_reset_work_in_the_page(small_page) -> None:
    rc = small_page
    model = _models[-1]
    assert model.step_index == 0
    assert "Press Step or Play" in texts(rc)
    button(rc, "Step").click()
    button(rc, "Step").click()
    assert model.step_index == 2
    assert "Press Step or Play" not in texts(rc)  # the charts replaced the hint
    button(rc, "Reset").click()
    fresh = _models[-1]
    assert fresh is not model and fresh.step_index == 0
    assert fresh.settings == model.settings  # Reset rebuilds from the session's settings
    button(rc, "▶").click()  # play steps in a background task until paused
    for _ in range(100):
        if fresh.step_index >= 2:
            break
        import time

        time.sleep(0.05)
    rc.find(v.Btn, children=["❚❚"]).widget.click()
    assert fresh.step_index >= 2


def test_choosing_a_contract_and_ab_mode_in_the_page(small_page) -> None:
    rc = small_page
    contract = rc.find(v.Select, label="contract A").widget
    contract.v_model = "capitation"
    assert _models[-1].settings.contract == "capitation"
    rc.find(v.Checkbox, label="A/B mode: compare with contract B").widget.v_model = True
    ab = _models[-1]
    assert set(ab.arms) == {"A", "B"} and ab.arms["A"].seed_value == ab.arms["B"].seed_value
    button(rc, "Step").click()
    page_text = texts(rc)
    assert "B - A" in page_text and "A: capitation" in page_text and "B: capitation" in page_text


def test_a_bad_control_value_shows_a_message_and_keeps_the_run(small_page) -> None:
    rc = small_page
    before = _models[-1]
    seed = rc.find(v.TextField, label="seed").widget
    seed.v_model = "minus one"
    seed.fire_event("keyup.enter")  # a text field applies its value on Enter or leaving it
    assert _models[-1] is before  # nothing was rebuilt
    assert "Not applied: seed='minus one' is not allowed" in texts(rc)
    seed.v_model = "4"
    seed.fire_event("keyup.enter")
    assert _models[-1].settings.seed == 4
    assert "Not applied" not in texts(rc)


def test_a_large_world_is_flagged_and_the_small_one_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_page, "INITIAL", Settings(scenario="default", years=1, levers=NO_HISTORY))
    monkeypatch.setattr(app_page, "LARGE_WORLD", 5_000)  # 'default' (10,000 patients) counts as large here
    box, rc = solara.render(solara.AppLayout(children=[app_page.Page()]), handle_error=False)
    assert "is a large world" in texts(rc)
    button(rc, "Use the small world").click()
    assert _models[-1].settings.scenario == "small"
    assert "is a large world" not in texts(rc)
    rc.close()


def test_each_session_builds_its_own_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_page, "INITIAL", SMALL)
    _, first = solara.render(solara.AppLayout(children=[app_page.Page()]), handle_error=False)
    model_one = _models[-1]
    _, second = solara.render(solara.AppLayout(children=[app_page.Page()]), handle_error=False)
    model_two = _models[-1]
    assert model_one is not model_two
    button(first, "Step").click()
    assert model_one.step_index == 1 and model_two.step_index == 0
    first.close()
    second.close()


def test_settings_box_feeds_reset() -> None:
    box = SettingsBox(SMALL)
    box.value = SMALL.with_(seed=9)
    assert AppModel(box).settings.seed == 9


@pytest.mark.parametrize(
    ("option", "fragment"), [("--port=70000", "port=70000"), ("--scenario=nope", "scenario='nope'")]
)
def test_app_command_rejects_bad_options_in_one_line(option: str, fragment: str) -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).with_name("vbpsim")
    done = subprocess.run([str(script), "app", option], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {fragment} is not allowed") and "Traceback" not in done.stderr
