"""Bad input is refused where it enters, with a message naming parameter, value and what is allowed.

Every refusal is a :class:`vbpsim.ParameterError` (a ``ValueError``), never a bare
``TypeError``, a pydantic ``ValidationError`` or a failure deep inside a run.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import VALID, invalid_scheme_params

import vbpsim
from vbpsim import ParameterError, build_model, make_scheme
from vbpsim.parameters import Scenario, build_scenario
from vbpsim.scenarios import load_scenario
from vbpsim.schemes import FeeForService

SMALL: dict[str, Any] = {"scenario": "small", "years": 1}


def refused(call, *args: Any, **kwargs: Any) -> ParameterError:
    """Call and return the ParameterError it must raise."""
    with pytest.raises(ParameterError) as info:
        call(*args, **kwargs)
    return info.value


def test_parameter_error_is_a_value_error() -> None:
    assert issubclass(ParameterError, ValueError)
    assert issubclass(ParameterError, vbpsim.VBPSimError)
    err = ParameterError("a.b", 3, "a number < 2")
    assert (err.name, err.value, err.allowed) == ("a.b", 3, "a number < 2")
    assert str(err) == "a.b=3 is not allowed: a number < 2"


# (keyword arguments of `vbpsim.run`, parameter named, value shown, fragment of what is allowed)
RUN_CASES = [
    ({"scheme": "foo"}, "scheme", "'foo'", "ffs"),
    ({"scheme": "ffs+bonus"}, "scheme", "'ffs+bonus'", "+p4p"),
    ({"fee_to_cost": -1}, "fee_to_cost", "-1", ">= 0"),
    ({"fee_to_cost": math.nan}, "fee_to_cost", "nan", "finite"),
    ({"fees": {"gp": -5}}, "fees.gp", "-5", ">= 0"),
    ({"fees": {"dentist": 5}}, "fees.dentist", "5", "gp"),
    ({"scheme": "mixed", "ffs_share": 1.5}, "ffs_share", "1.5", "[0, 1]"),
    ({"scheme": "p4p", "threshold": 1.2}, "threshold", "1.2", "[0, 1)"),
    ({"scheme": "p4p", "threshold": 1.0}, "threshold", "1.0", "[0, 1)"),
    ({"scheme": "ffs+p4p", "p4p_threshold": 1.2}, "threshold", "1.2", "[0, 1)"),
    ({"scheme": "capitation", "risk_adjusted": "yes"}, "risk_adjusted", "'yes'", "true or false"),
    ({"private_risk_share": 2}, "population.private_risk_share", "2", "less than or equal to 1"),
    ({"altruism_mean": -0.1}, "providers.altruism_mean", "-0.1", "greater than or equal to 0"),
    ({"providers.altruism_mean": 1.1}, "providers.altruism_mean", "1.1", "less than or equal to 1"),
    ({"years": 0}, "years", "0", "> 0"),
    ({"years": -3}, "years", "-3", "> 0"),
    ({"years": 2.5}, "years", "2.5", "whole number"),
    ({"years": True}, "years", "True", "whole number"),
    ({"seed": 1.5}, "seed", "1.5", "non-negative integer"),
    ({"seed": "a"}, "seed", "'a'", "non-negative integer"),
    ({"seed": -1}, "seed", "-1", "non-negative integer"),
    ({"seed": None}, "seed", "None", "non-negative integer"),
    ({"foo": 1}, "foo", "1", "fee_to_cost"),  # neither scenario nor scheme parameter
    ({"scheme": "per_case", "fee_to_cost": 1.2}, "fee_to_cost", "1.2", "price_to_cost"),
    ({"n_patients": "many"}, "population.n_patients", "'many'", "integer"),
    ({"n_patients": "300"}, "population.n_patients", "'300'", "not read as numbers"),
    ({"altruism_mean": b"0.3"}, "providers.altruism_mean", "b'0.3'", "not read as numbers"),
    ({"altruism_mean": True}, "providers.altruism_mean", "True", "not read as numbers"),
    ({"fee_to_cost": "1.2"}, "fee_to_cost", "'1.2'", "finite number"),
    ({"fee_to_cost": 1e300}, "fee_to_cost", "1e+300", "<= 10"),
    ({"n_patients": 5}, "population.n_patients", "5", "greater than or equal to 10"),
    ({"steps_per_year": 0}, "simulation.steps_per_year", "0", "greater than or equal to 1"),
    ({"age_min": 90, "age_max": 80}, "population.age_min", "90", "age_max"),
    ({"intensity_min": 2.0, "intensity_max": 1.0}, "providers.intensity_min", "2.0", "intensity_max"),
    ({"unit_cost": {"gp": 50}}, "clinical.unit_cost", "gp", "keys"),
    (
        {"unit_cost": {"gp": -1, "hospital": 1, "rehab": 1, "nursing": 1}},
        "clinical.unit_cost.gp",
        "-1",
        "> 0",
    ),
    ({"scenario": "huge"}, "scenario", "'huge'", "small"),
]


@pytest.mark.parametrize(("kwargs", "name", "value", "allowed"), RUN_CASES, ids=lambda v: str(v)[:40])
def test_run_refuses_bad_input(kwargs: dict[str, Any], name: str, value: str, allowed: str) -> None:
    args = {**SMALL, **kwargs}
    err = refused(vbpsim.run, **args)
    assert err.name == name
    message = str(err)
    assert message.startswith(f"{name}="), message
    assert value in message, message
    assert allowed in message, message
    # the same refusal before any stepping, from build_model
    assert str(refused(build_model, **args)) == message


def test_scheme_object_with_params_is_refused() -> None:
    err = refused(vbpsim.run, FeeForService(), fee_to_cost=1.2, **SMALL)
    assert err.name == "fee_to_cost"


def test_scheme_object_with_params_names_the_value() -> None:
    err = refused(vbpsim.run, FeeForService(), fee_to_cost=1.2, **SMALL)
    assert "1.2" in str(err)


def test_stray_p4p_parameter_is_refused() -> None:
    err = refused(vbpsim.run, "ffs", p4p_bonus_share=0.1, **SMALL)
    assert "ffs+p4p" in str(err)


def test_stray_p4p_parameter_names_key_and_value() -> None:
    err = refused(make_scheme, "ffs", {"p4p_bonus_share": 0.1})
    assert err.name == "p4p_bonus_share"
    assert "0.1" in str(err)


def test_unknown_dotted_override_names_the_value() -> None:
    err = refused(vbpsim.run, **SMALL, **{"population.colour": "blue"})
    assert err.name == "population.colour"
    assert "blue" in str(err)


def test_unknown_dotted_override_names_the_key() -> None:
    err = refused(vbpsim.run, **SMALL, **{"population.colour": "blue"})
    assert err.name == "population.colour"
    assert "not a scenario parameter" in str(err)


def test_with_overrides_refuses_unknown_keys() -> None:
    base = load_scenario("small")
    assert refused(base.with_overrides, colour=1).name == "colour"
    assert refused(base.with_overrides, **{"nosection.years": 1}).name == "nosection.years"
    assert base.with_overrides(n_patients=50).population.n_patients == 50
    assert base.with_overrides(**{"simulation.years": 2}).simulation.years == 2
    assert base.population.n_patients == 2_000  # the base is not modified


# -- build_scenario: the nested dict --------------------------------------------------------
SCENARIO_CASES = [
    ({"colour": "blue"}, "colour", "'blue'"),
    ({"population": {"colour": 1}}, "population.colour", "1"),
    ({"population": {"n_patients": "many"}}, "population.n_patients", "'many'"),
    ({"population": {"n_patients": 12.5}}, "population.n_patients", "12.5"),
    ({"population": 5}, "population", "5"),
    ({"simulation": {"years": 2.5}}, "simulation.years", "2.5"),
    ({"simulation": {"years": 0}}, "simulation.years", "0"),
    ({"providers": {"altruism_mean": -0.1}}, "providers.altruism_mean", "-0.1"),
    ({"population": {"private_risk_share": 2}}, "population.private_risk_share", "2"),
    ({"clinical": {"qol": {"healthy": 1.5}}}, "clinical.qol", "healthy"),
]


@pytest.mark.parametrize(("data", "name", "value"), SCENARIO_CASES, ids=lambda v: str(v)[:40])
def test_build_scenario_refuses_bad_dicts(data: dict[str, Any], name: str, value: str) -> None:
    err = refused(build_scenario, data)
    assert err.name == name
    assert str(err).startswith(f"{name}=")
    assert value in str(err)
    assert err.allowed


def test_unknown_scenario_key_lists_allowed_keys() -> None:
    err = refused(build_scenario, {"population": {"n_patient": 100}})
    assert "n_patients" in str(err)


@pytest.mark.parametrize(
    "data",
    [
        {"providers": {"benefit_to_cost": math.inf}},
        {"purchaser": {"quality_measurement_noise": math.inf}},
        {"clinical": {"willingness_to_pay": math.inf}},
        {"clinical": {"unit_cost": {"gp": math.inf, "hospital": 1, "rehab": 1, "nursing": 1}}},
    ],
    ids=lambda d: str(d)[:50],
)
def test_build_scenario_refuses_infinite_numbers(data: dict[str, Any]) -> None:
    refused(build_scenario, data)


def test_valid_scenarios_build() -> None:
    assert isinstance(build_scenario({}), Scenario)
    for name in vbpsim.list_scenarios():
        assert load_scenario(name).name == name
    scenario = build_scenario({"contract": {"scheme": "capitation", "params": {"rate_to_cost": 1.0}}})
    assert scenario.contract.params == {"rate_to_cost": 1.0}


# -- schemes directly ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: make_scheme("foo"), "scheme"),
        (lambda: make_scheme(3), "scheme"),
        (lambda: make_scheme("ffs", {"fee_to_cost": -1}), "fee_to_cost"),
        (lambda: make_scheme("ffs", {"fees": {"gp": -5}}), "fees.gp"),
        (lambda: make_scheme("mixed", {"ffs_share": 1.5}), "ffs_share"),
        (lambda: make_scheme("p4p", {"threshold": 1.2}), "threshold"),
        (lambda: make_scheme("p4p", {"bonus_share": -0.1}), "bonus_share"),
        (lambda: make_scheme("ffs", {"rate_to_cost": 1.0}), "rate_to_cost"),
        (lambda: make_scheme("ffs+capitation"), "scheme"),
    ],
)
def test_make_scheme_refuses(call, name: str) -> None:
    assert refused(call).name == name


def test_p4p_plus_p4p_is_refused() -> None:
    refused(make_scheme, "p4p+p4p")


@pytest.mark.parametrize("covered", [5, None, "hospice", ["hospital", "dentist"]])
def test_bundle_covered_must_be_a_list_of_disciplines(covered: Any) -> None:
    err = refused(make_scheme, "bundle", {"covered": covered})
    assert err.name == "covered"


def test_bundle_covered_accepts_a_single_discipline_name() -> None:
    assert make_scheme("bundle", {"covered": "hospital"}).covered == ("hospital",)


@pytest.mark.parametrize("fees", ["abc", 5, [1, 2], 1.5])
def test_fees_must_be_a_mapping(fees: Any) -> None:
    assert refused(make_scheme, "ffs", {"fees": fees}).name == "fees"


@pytest.mark.parametrize("scheme", sorted(VALID))
@given(data=st.data())
def test_invalid_scheme_params_always_raise_parameter_error(scheme: str, data: st.DataObject) -> None:
    params, bad = data.draw(invalid_scheme_params(scheme))
    try:
        make_scheme(scheme, params)
    except ParameterError as err:
        assert err.name.split(".")[0] == bad, (err.name, bad)
        assert str(err).startswith(f"{err.name}=")
    else:
        raise AssertionError(f"{scheme}{params} was accepted")


@given(data=st.data())
def test_invalid_addon_params_always_raise_parameter_error(data: st.DataObject) -> None:
    add_ons = sorted(n for n in VALID if vbpsim.SCHEMES[n].add_on)
    base = data.draw(st.sampled_from(sorted(set(VALID) - set(add_ons))))
    addon = data.draw(st.sampled_from(add_ons))
    params, bad = data.draw(invalid_scheme_params(addon))
    prefixed = {f"{addon}_{k}": v for k, v in params.items()}
    with pytest.raises(ParameterError) as info:
        make_scheme(f"{base}+{addon}", prefixed)
    assert info.value.name in (bad, f"{addon}_{bad}")


@pytest.mark.parametrize(
    "call",
    [
        lambda: make_scheme("capitation+p4p", {"p4p_colour": 1.0}),
        lambda: vbpsim.run("ffs+p4p", p4p_treshold=0.6, **SMALL),
    ],
)
def test_unknown_addon_parameter_raises_parameter_error(call) -> None:
    assert refused(call).name in ("p4p_colour", "colour", "p4p_treshold", "treshold")


@given(name=st.text(max_size=12))
def test_unknown_scheme_names_raise_parameter_error(name: str) -> None:
    assume(not all(part in vbpsim.SCHEMES for part in name.split("+")))  # some part is unknown
    err = refused(make_scheme, name)
    assert err.name == "scheme"
    assert err.value == name
