"""Print the parameter tables of docs/ODD.md from the code, or rewrite them in place.

The tables are built from what the code declares, so they cannot drift from it:

* every field of every section of :class:`vbpsim.parameters.Scenario`, with its default,
  allowed range, unit, source and description (pydantic field metadata);
* the module-level constants that act as parameters (values read from the modules);
* the provider decision vector (``vbpsim.agents.Decision.DIMENSIONS``) and the named
  random streams (``vbpsim.model.STREAMS``), so the lists in the ODD follow the code;
* every registered payment scheme with its constructor parameters, defaults and allowed
  ranges (the scheme's ``ranges``, which its constructor checks); units and meanings of the
  value-based contract pieces come from ``vbpsim.contracts.PARAMETER_DOCS``.

Usage::

    python docs/make_parameter_tables.py            # print the markdown block
    python docs/make_parameter_tables.py --write    # replace the block in docs/ODD.md
    python docs/make_parameter_tables.py --check    # exit 1 if docs/ODD.md is out of date

The block sits between ``<!-- BEGIN PARAMETER TABLES -->`` and
``<!-- END PARAMETER TABLES -->``; ``tests/test_docs.py`` fails when it differs from the
output of this script.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from typing import Any

import annotated_types
import numpy as np

from vbpsim import agents, contracts, model, population, schemes
from vbpsim.parameters import DISCIPLINES, HEALTH_STATES, SECTIONS, TABLE_RANGES, Scenario

BEGIN = "<!-- BEGIN PARAMETER TABLES -->"
END = "<!-- END PARAMETER TABLES -->"
ODD_PATH = Path(__file__).resolve().parent / "ODD.md"

# Module-level constants that act as parameters: (module, name, unit, meaning).
# Values are read from the modules at run time; only the words live here.
CONSTANTS: tuple[tuple[Any, str, str, str], ...] = (
    (
        agents,
        "QUALITY_STANDARD",
        "x optimum",
        "A patient counts as 'met' for the adherence part of the measured indicator when delivered/guideline >= this.",
    ),
    (
        agents,
        "HANDOFF_FAILURE",
        "probability",
        "Share of hand-offs (acute to post-acute, post-acute to disabled) that fail with no coordination effort.",
    ),
    (
        agents,
        "DUPLICATE_SHARE",
        "share of a step's need",
        "Work duplicated in the receiving setting after a failed hand-off, delivered next step.",
    ),
    (
        agents,
        "READMISSION_AFTER_FAILURE",
        "probability",
        "Share of failed hand-offs that send the patient back to the acute state.",
    ),
)

# Meaning of each decision dimension, keyed by its name in Decision.DIMENSIONS:
# (who controls it, range, meaning). A new dimension is still listed, flagged as such.
DECISION_DIMENSIONS: dict[str, tuple[str, str, str]] = {
    "intensity": (
        "every provider",
        "[intensity_min, intensity_max]",
        "Care relative to the patient optimum, applied to all the provider's patients.",
    ),
    "measured": (
        "every provider (mechanisms.multitasking)",
        "[0, 1]",
        "Effort on the quality task the indicator sees.",
    ),
    "unmeasured": (
        "every provider (mechanisms.multitasking)",
        "[0, 1]",
        "Effort on the quality task no indicator sees.",
    ),
    "coordination": (
        "hospitals, rehab (mechanisms.coordination)",
        "[0, 1]",
        "Effort on the hand-offs the provider sends on.",
    ),
    "prevention": (
        "GPs (mechanisms.prevention)",
        "[0, 1]",
        "Effort on stroke prevention for the GP's patients at risk.",
    ),
    "selection": (
        "GPs (mechanisms.risk_selection); hospitals too with mechanisms.discretionary_admissions",
        "[0, 1 - ethics]",
        "Share of perceived-unprofitable patients the GP tries to steer away; a hospital's share of "
        "planned episodes of perceived-unprofitable patients it redirects to another hospital.",
    ),
    "shift": (
        "rehab (mechanisms.care_shifting)",
        "[0, shifting.max_shift]",
        "Share of rehabilitation left to the region's home care.",
    ),
    "need_tilt": (
        "every provider (mechanisms.need_classes)",
        "[-MAX_NEED_TILT, MAX_NEED_TILT] = [-0.5, 0.5]",
        "Care for high-need patients x (1 + tilt), for low-need ones x (1 - tilt), relative to the optimum.",
    ),
    "admission": (
        "hospitals (mechanisms.discretionary_admissions)",
        "[0, 1]",
        "Admission threshold: share of discretionary admission candidates, ranked by appropriateness, admitted.",
    ),
}

# What each named random stream draws (vbpsim.model.STREAMS, spawned from one seed).
STREAM_USES: dict[str, str] = {
    "population": "ages, conditions, risks, the provider's view of private risk, GP chain, delivery noise, "
    "initial post-acute/disabled states",
    "providers": "altruism",
    "health": "one uniform per patient per step for the transition, one for the hand-off, one per patient "
    "and condition for onset",
    "choice": "switching (one uniform per patient per step) and the new GP of each switcher or steered patient",
    "decisions": "the random trial intensity and one logit draw per decision dimension and provider",
    "measurement": "noise of the measured quality indicator",
    "selection": "ethics at start; one uniform per patient per step for steering (only with risk selection on)",
    "innovation": "arrivals, type and discipline of each innovation, and one adoption draw per provider",
    "risk": "the purchaser's risk model: each patient's persistent signal noise, and the sample it is re-estimated on",
    "outcomes": "noise of the patient-reported outcome (PROM) in the observation, one draw per provider per step",
    "admissions": "[discretionary_admissions] four uniforms per patient per step: planned and ACS candidacy, "
    "appropriateness rank, redirect",
}

# Meaning and unit of each scheme parameter, keyed by (scheme, parameter): base schemes
# document theirs in vbpsim.schemes, the value-based contract pieces in vbpsim.contracts.
# A parameter missing there is still listed (name and default come from the code), flagged.
SCHEME_PARAMETERS: dict[tuple[str, str], tuple[str, str]] = {**schemes.PARAMETER_DOCS, **contracts.PARAMETER_DOCS}


def _cell(text: Any) -> str:
    """One markdown table cell: no pipes or line breaks inside."""
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def format_value(value: Any) -> str:
    """A default as it appears in the tables (dicts as `key: value` lists)."""
    if isinstance(value, dict):
        if not value:
            return "`{}`"
        return "`{" + ", ".join(f"{k}: {format_value(v).strip('`')}" for k, v in value.items()) + "}`"
    if isinstance(value, bool) or value is None:
        return f"`{value}`"
    if isinstance(value, float):
        return f"`{value:g}`" if abs(value) < 1e6 else f"`{value:.6g}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value}`"


def allowed_range(metadata: list[Any], table: str | None = None) -> str:
    """Constraints of a field (ge, gt, le, lt) as a short interval text; a keyed table's value range."""
    if table in TABLE_RANGES:
        _, low_value, high_value = TABLE_RANGES[table]
        low_sign = "≥" if (low_value, high_value) == (0, 1) else ">"
        return f"each value {low_sign} {low_value:g}, ≤ {high_value:g}"
    low = high = ""
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            low = f"≥ {item.ge:g}"
        elif isinstance(item, annotated_types.Gt):
            low = f"> {item.gt:g}"
        elif isinstance(item, annotated_types.Le):
            high = f"≤ {item.le:g}"
        elif isinstance(item, annotated_types.Lt):
            high = f"< {item.lt:g}"
    return ", ".join(part for part in (low, high) if part) or "-"


def scenario_tables() -> list[str]:
    """One table per scenario section, rows `section.field`."""
    lines = ["### Scenario parameters (`vbpsim.parameters.Scenario`)", ""]
    lines += [
        "Set any of them with `vbpsim.run(..., **{'section.field': value})` or a flat field name.",
        "Keyed tables (`unit_cost`, `stroke_hr`, `qol`, `need_change`, `health_gain`) keep exactly the keys shown.",
        "",
    ]
    for section, cls in SECTIONS.items():
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        lines += [f"#### `{section}`: {_cell(doc)}", ""]
        lines += [
            "| Parameter | Default | Allowed | Unit | Source | Description |",
            "|---|---|---|---|---|---|",
        ]
        for name, info in cls.model_fields.items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            lines.append(
                "| "
                + " | ".join(
                    [
                        f"`{section}.{name}`",
                        format_value(info.get_default(call_default_factory=True)),
                        _cell(allowed_range(info.metadata, f"{section}.{name}")),
                        _cell(extra.get("unit", "-")),
                        _cell(extra.get("source", "-")),
                        _cell(info.description or "-"),
                    ]
                )
                + " |"
            )
        lines.append("")
    top = [n for n, info in Scenario.model_fields.items() if n not in SECTIONS]
    lines += ["Top-level scenario fields (labels, no effect on the dynamics):", ""]
    lines += ["| Field | Default |", "|---|---|"]
    lines += [f"| `{n}` | {format_value(Scenario.model_fields[n].default)} |" for n in top]
    lines.append("")
    return lines


def constant_tables() -> list[str]:
    """The module-level constants that act as parameters."""
    lines = ["### Constants in the code that act as parameters", ""]
    lines += [
        "Not part of `Scenario` (they cannot be overridden per run); change them in the module.",
        "",
        "| Constant | Value | Unit | Meaning |",
        "|---|---|---|---|",
    ]
    for module, name, unit, meaning in CONSTANTS:
        owner = next((m for m in (module, agents, model, population) if hasattr(m, name)), None)
        value = format_value(getattr(owner, name)) if owner is not None else "(no longer in the code)"
        where = f"{owner.__name__}.{name}" if owner is not None else name
        lines.append(f"| `{where}` | {value} | {_cell(unit)} | {_cell(meaning)} |")
    lines.append("")
    need = np.asarray(population.NEED_PER_MONTH)
    lines += [
        "`vbpsim.population.NEED_PER_MONTH`: guideline service units per month for an average-risk",
        "patient (frailty 1), by health state and discipline; the `chronic` row is combined with",
        "the `healthy` row and the number of conditions as in Section 7.1. Multiplied by the",
        "patient's frailty and priced at `clinical.unit_cost`.",
        "",
        "| State | " + " | ".join(DISCIPLINES) + " |",
        "|---|" + "---|" * len(DISCIPLINES),
    ]
    for i, state in enumerate(HEALTH_STATES):
        label = "chronic (per condition)" if state == "chronic" else state
        lines.append(f"| {label} | " + " | ".join(f"{v:g}" for v in need[i]) + " |")
    lead = np.asarray(population.LEAD_DISCIPLINE)
    lines += [
        "",
        "`vbpsim.population.LEAD_DISCIPLINE`: the discipline whose care drives health (QoL and",
        "transitions) in each state.",
        "",
        "| State | " + " | ".join(HEALTH_STATES) + " |",
        "|---|" + "---|" * len(HEALTH_STATES),
        "| Lead discipline | " + " | ".join(DISCIPLINES[int(d)] for d in lead) + " |",
        "",
    ]
    return lines


def structure_tables() -> list[str]:
    """The provider decision vector and the named random streams, as declared in the code."""
    lines = ["### Decision vector and random streams", ""]
    lines += [
        "`vbpsim.agents.Decision.DIMENSIONS`: what every provider chooses each step, under every scheme",
        "(Sections 2.2 and 7.9). A dimension whose mechanism is switched off, or that a discipline does",
        "not control, stays at its initial value and is not searched.",
        "",
        "| Dimension | Controlled by | Range | Meaning |",
        "|---|---|---|---|",
    ]
    for name in agents.Decision.DIMENSIONS:
        who, span, meaning = DECISION_DIMENSIONS.get(name, ("-", "-", "not yet described here; see vbpsim.agents"))
        lines.append(f"| `{name}` | {_cell(who)} | {_cell(span)} | {_cell(meaning)} |")
    lines += [
        "",
        "`vbpsim.model.STREAMS`: independent random streams spawned from the run's seed with",
        "`numpy.random.SeedSequence(seed).spawn(len(STREAMS))`, in this order (Section 4, Stochasticity).",
        "",
        "| Stream | Draws |",
        "|---|---|",
    ]
    for name in model.STREAMS:
        lines.append(f"| `{name}` | {_cell(STREAM_USES.get(name, 'not yet described here; see vbpsim.model'))} |")
    lines.append("")
    return lines


def scheme_tables() -> list[str]:
    """Every registered payment scheme and its constructor parameters with defaults."""
    registered = sorted(schemes.SCHEMES.items())
    add_ons = [name for name, cls in registered if cls.add_on]
    example = "a prefix"
    for a in add_ons:
        first = [n for n in inspect.signature(schemes.SCHEMES[a].__init__).parameters if n != "self"]
        if first:
            example = f"e.g. `{a}_{first[0]}`"
            break
    lines = ["### Payment schemes (`vbpsim.schemes.SCHEMES`)", ""]
    lines += [
        "A base scheme can be combined with add-ons as `base+addon` (add-ons: "
        + (", ".join(f"`{a}`" for a in add_ons) or "none")
        + f"); add-on parameters carry the add-on's name as a prefix ({example}).",
        "",
        "| Scheme | Class | Settled every | Prospective | Risk-bearing | Add-on | Description |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, cls in registered:
        lines.append(
            f"| `{name}` | `{cls.__name__}` | {cls.settlement_months} month(s) | {cls.prospective} | "
            f"{cls.risk_bearing} | {cls.add_on} | {_cell(cls.description)} |"
        )
    lines += [
        "",
        "| Scheme | Parameter | Default | Allowed | Unit | Meaning |",
        "|---|---|---|---|---|---|",
    ]
    for name, cls in registered:
        params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
        if not params:
            lines.append(f"| `{name}` | (none) | - | - | - | - |")
        for p in params:
            default = "(required)" if p.default is inspect.Parameter.empty else format_value(p.default)
            unit, meaning = SCHEME_PARAMETERS.get(
                (name, p.name), ("-", "not yet described here; see the scheme's docstring")
            )
            allowed = cls.ranges[p.name].bounds() if p.name in cls.ranges else "-"
            scalar = isinstance(p.default, int | float) and not isinstance(p.default, bool)
            if p.name in cls.ranges and not scalar:
                allowed = f"each value {allowed}"
            lines.append(f"| `{name}` | `{p.name}` | {default} | {_cell(allowed)} | {_cell(unit)} | {_cell(meaning)} |")
    lines.append("")
    return lines


def render() -> str:
    """The whole generated block (without the markers)."""
    lines = [
        "<!-- Generated by docs/make_parameter_tables.py; do not edit by hand. -->",
        "",
        *scenario_tables(),
        *constant_tables(),
        *structure_tables(),
        *scheme_tables(),
    ]
    return "\n".join(lines).rstrip() + "\n"


def current_block(text: str) -> str:
    """The text between the markers of an ODD document."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"markers {BEGIN!r} ... {END!r} not found")
    return text[start + len(BEGIN) : end].strip("\n") + "\n"


def replace_block(text: str, block: str) -> str:
    """The document with the block between the markers replaced."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"markers {BEGIN!r} ... {END!r} not found")
    return text[: start + len(BEGIN)] + "\n" + block + text[end:]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="rewrite the block in ODD.md in place")
    group.add_argument("--check", action="store_true", help="exit 1 if ODD.md is out of date")
    parser.add_argument("--odd", type=Path, default=ODD_PATH, help="path of ODD.md")
    args = parser.parse_args(argv)
    block = render()
    if args.write:
        text = args.odd.read_text(encoding="utf-8")
        args.odd.write_text(replace_block(text, block), encoding="utf-8")
        return 0
    if args.check:
        if current_block(args.odd.read_text(encoding="utf-8")) != block:
            print(f"{args.odd} is out of date: run python docs/make_parameter_tables.py --write")
            return 1
        return 0
    sys.stdout.write(block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
