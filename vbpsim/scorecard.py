"""The five-dimension scorecard: payment schemes against an incentive-neutral reference.

Every arm runs on the same world and seeds (common random numbers) as the reference
contract ``cost_reimbursement``, which pays each provider exactly its cost (up-front
investments included), so every decision is profit-neutral and providers act on
altruism and effort cost alone. A scheme's score on a dimension is the paired difference
of its run's NMB account for that dimension from the reference run's
(:func:`vbpsim.metrics.nmb_accounts`), in EUR per capita-year; the five scores and the
remainder add up to the difference in net monetary benefit exactly. Each dimension also
keeps its natural-unit indicator (:data:`vbpsim.metrics.NATURAL_INDICATORS`).

The expected signs reconstruct Table 1 of Cattel et al. (2018) (an image missing from our
copy) from the paper's text and the literature it cites (issue 8).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .errors import ParameterError
from .experiments import ProgressCallback, replicate
from .metrics import DIMENSIONS, NATURAL_INDICATORS, REMAINDER_PARTS
from .parameters import Scenario
from .scenarios import load_scenario
from .schemes import PaymentScheme

REFERENCE = "cost_reimbursement"

#: The arms: a label, the scheme (None: the scenario's own contract) and scenario overrides.
Arm = tuple[str | PaymentScheme | None, dict[str, Any]]
ARMS: dict[str, Arm] = {
    "ffs": ("ffs", {}),
    "per_case": ("per_case", {}),
    "capitation": ("capitation", {}),
    "per_period": ("per_period", {}),
    "mixed": ("mixed", {}),
    "bundle": ("bundle", {"groups.composition": "hospital_rehab"}),
    "capitation+p4p": ("capitation+p4p", {}),
    "cattel_vbp": (None, {"preset": "cattel_vbp"}),
}

#: Signs expected from the paper's Table 1 (quality, cost-consciousness, coordination,
#: innovation, prevention), reconstructed in issue 8; "+/-" means it depends on the design,
#: "n/a" that the arm is not in Table 1.
EXPECTED_SIGNS: dict[str, tuple[str, ...]] = {
    REFERENCE: ("0", "0", "0", "0", "0"),
    "ffs": ("+", "-", "0", "-", "-"),
    "per_case": ("-", "+", "0", "+", "-"),
    "capitation": ("-", "+", "0", "+", "+"),
    "per_period": ("0/-", "+", "0", "0", "0"),
    "mixed": ("+/-", "+/-", "0", "+/-", "+/-"),
    "bundle": ("+/-", "+", "+", "+/-", "+/-"),
    "capitation+p4p": ("n/a",) * 5,
    "cattel_vbp": ("n/a",) * 5,
}

SCORE_UNIT = "EUR per capita-year vs reference"


def arm_scenario(base: Scenario, overrides: dict[str, Any]) -> Scenario:
    """The base world with an arm's contracting set-up (a preset lends its groups, purchaser and contract)."""
    changes = {k: v for k, v in overrides.items() if k != "preset"}
    if "preset" in overrides:
        preset = load_scenario(overrides["preset"])
        for section in ("groups", "purchaser", "contract"):
            for name, value in getattr(preset, section).model_dump().items():
                changes[f"{section}.{name}"] = value
    return base.with_overrides(**changes) if changes else base


def _same_world(a: Scenario, b: Scenario) -> bool:
    """Whether two arms' scenarios differ only in their contract (so they can share a history)."""
    first, second = a.model_dump(), b.model_dump()
    for dump in (first, second):
        for key in ("scheme", "params", "length_years"):
            dump["contract"].pop(key)
    return first == second


def sign_of(low: float, high: float) -> str:
    """'+' if the whole 95% CI is above zero, '-' if below, '0' if it straddles zero."""
    if low > 0:
        return "+"
    if high < 0:
        return "-"
    return "0"


def agrees(observed: str, expected: str) -> bool | None:
    """Whether an observed sign is one the expected sign allows (None when nothing is expected)."""
    if expected == "n/a":
        return None
    if expected == "+/-":
        return True
    return observed in expected.split("/")


def _interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and t-based 95% CI over replications (a zero-width CI for a constant)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("-inf"), float("inf")
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - half, mean + half


@dataclass
class Scorecard:
    """Runs and table of a scorecard (see :func:`run_scorecard`)."""

    scenario: str
    seeds: list[int]
    years: int
    runs: pd.DataFrame  # one row per arm and seed, accounts and indicators
    table: pd.DataFrame  # tidy: scheme, dimension, measure, unit, mean, ci_low, ci_high, sign, expected_sign

    def scores(self) -> pd.DataFrame:
        """Monetised scores of the five dimensions, schemes x dimensions (means)."""
        rows = self.table[(self.table.measure == "score") & self.table.dimension.isin(DIMENSIONS)]
        return rows.pivot(index="scheme", columns="dimension", values="mean").loc[self.schemes(), list(DIMENSIONS)]

    def schemes(self) -> list[str]:
        """Arms in table order."""
        return list(dict.fromkeys(self.table.scheme))

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write scorecard.csv, runs.csv, scorecard.png and scorecard.md into ``out_dir``."""
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / "scorecard.csv", folder / "runs.csv", folder / "scorecard.png", folder / "scorecard.md"]
        self.table.to_csv(paths[0], index=False)
        self.runs.to_csv(paths[1], index=False)
        self.heatmap(paths[2])
        paths[3].write_text(self.markdown(), encoding="utf-8")
        return paths

    def heatmap(self, path: str | Path) -> Path:
        """Schemes x dimensions coloured by the monetised score, each cell with observed / expected sign."""
        from matplotlib.colors import SymLogNorm
        from matplotlib.figure import Figure

        scores = self.scores().drop(index=REFERENCE, errors="ignore")
        signs = self.table[(self.table.measure == "score") & self.table.dimension.isin(DIMENSIONS)]
        fig = Figure(figsize=(9, 0.6 * len(scores) + 2))
        ax = fig.add_subplot()
        limit = max(float(np.abs(scores.to_numpy()).max()), 1.0)
        norm = SymLogNorm(linthresh=1.0, vmin=-limit, vmax=limit)
        image = ax.imshow(scores.to_numpy(), cmap="RdBu", norm=norm, aspect="auto")
        ax.set_xticks(range(len(DIMENSIONS)), [d.replace("_", "-") for d in DIMENSIONS])
        ax.set_yticks(range(len(scores)), list(scores.index))
        for i, scheme in enumerate(scores.index):
            for j, dim in enumerate(DIMENSIONS):
                row = signs[(signs.scheme == scheme) & (signs.dimension == dim)].iloc[0]
                text = f"{row['mean']:+.1f}\n{row['sign']} (paper {row['expected_sign']})"
                dark = norm(abs(row["mean"])) > 0.85 or norm(-abs(row["mean"])) < 0.15
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")
        fig.colorbar(image, ax=ax, label=f"{SCORE_UNIT} (symmetric log scale)")
        ax.set_title(f"Scorecard vs {REFERENCE}: '{self.scenario}', {self.years} years, {len(self.seeds)} seeds")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        return Path(path)

    def markdown(self) -> str:
        """The scorecard as markdown, with every disagreement with the paper explained from mechanisms."""
        return render_markdown(self)


def run_scorecard(
    scenario: str | Scenario = "default",
    seeds: int = 10,
    years: int | None = None,
    arms: dict[str, Arm] | None = None,
    workers: int = 1,
    progress: ProgressCallback | None = None,
    **overrides: Any,
) -> Scorecard:
    """Run the reference and every arm on seeds 0..seeds-1 and build the scorecard table.

    ``overrides`` are scenario parameters applied to every arm (e.g. to switch a
    mechanism off); arms come from :data:`ARMS` unless given.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ParameterError("seeds", seeds, "a whole number of replications >= 1")
    base = load_scenario(scenario)
    if overrides:
        base = base.with_overrides(**overrides)
    arms = dict(ARMS if arms is None else arms)
    plan: list[tuple[str, str | PaymentScheme | None, Scenario]] = [(REFERENCE, REFERENCE, base)]
    plan += [(label, scheme, arm_scenario(base, extra)) for label, (scheme, extra) in arms.items()]
    seed_list = list(range(seeds))
    # arms on the same world share one status-quo history per seed (forked at the switch)
    worlds: list[tuple[Scenario, list[tuple[str, str | PaymentScheme | None]]]] = []
    for label, scheme, world in plan:
        for known, members in worlds:
            if _same_world(known, world):
                members.append((label, scheme))
                break
        else:
            worlds.append((world, [(label, scheme)]))
    parts = []
    for i, (world, members) in enumerate(worlds):
        schemes = [scheme for _, scheme in members]
        table = replicate(schemes, seed_list, scenario=world, years=years, workers=workers)  # type: ignore[arg-type]
        parts.append(table.assign(scheme=np.tile([label for label, _ in members], len(seed_list))))
        if progress is not None:
            progress(i + 1, len(worlds))
    runs = pd.concat(parts, ignore_index=True)
    horizon = years if years is not None else base.simulation.years
    return Scorecard(base.name, seed_list, horizon, runs, score_table(runs, [label for label, _, _ in plan]))


def score_table(runs: pd.DataFrame, schemes: list[str]) -> pd.DataFrame:
    """Tidy scorecard table from replicated runs (paired by seed with the reference)."""
    reference = runs[runs.scheme == REFERENCE].set_index("seed")
    rows = []
    accounts = [*DIMENSIONS, "remainder", *REMAINDER_PARTS, "nmb"]
    for scheme in schemes:
        arm = runs[runs.scheme == scheme].set_index("seed").loc[reference.index]
        expected = dict(zip(DIMENSIONS, EXPECTED_SIGNS.get(scheme, ("n/a",) * 5), strict=True))
        for name in accounts:
            diff = (arm[f"account_{name}"] - reference[f"account_{name}"]).to_numpy()
            mean, low, high = _interval(diff)
            sign = sign_of(low, high)
            exp = expected.get(name, "")
            rows.append(
                {
                    "scheme": scheme,
                    "dimension": name,
                    "measure": "score",
                    "unit": SCORE_UNIT,
                    "mean": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "sign": sign,
                    "expected_sign": exp,
                    "agrees": agrees(sign, exp) if exp else None,
                }
            )
        for dim in DIMENSIONS:
            indicator, unit = NATURAL_INDICATORS[dim]
            mean, low, high = _interval(arm[indicator].to_numpy())
            rows.append(
                {
                    "scheme": scheme,
                    "dimension": dim,
                    "measure": indicator,
                    "unit": unit,
                    "mean": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "sign": "",
                    "expected_sign": "",
                    "agrees": None,
                }
            )
    return pd.DataFrame(rows)


# -- the markdown report -----------------------------------------------------------------------------

Explainer = Callable[[str, str, "Scorecard"], str]


def _mean(card: Scorecard, scheme: str, column: str) -> float:
    return float(card.runs.loc[card.runs.scheme == scheme, column].mean())


def _compare(card: Scorecard, scheme: str, column: str, fmt: str = ".3f") -> str:
    return f"{_mean(card, scheme, column):{fmt}} (reference {_mean(card, REFERENCE, column):{fmt}})"


def _intensities(card: Scorecard, scheme: str) -> str:
    names = ("gp", "hospital", "rehab", "nursing")
    arm = "/".join(f"{_mean(card, scheme, f'intensity_{d}'):.2f}" for d in names)
    ref = "/".join(f"{_mean(card, REFERENCE, f'intensity_{d}'):.2f}" for d in names)
    return f"Delivered/guideline intensity by discipline (GP/hospital/rehab/nursing) is {arm} (reference {ref})"


def _explain_quality(scheme: str, sign: str, card: Scorecard) -> str:
    text = (
        f"{_intensities(card, scheme)}. {_efforts(card, scheme)}. "
        "Quality is the health lost to care away from the patient optimum. Under the reference "
        "money neither rewards nor punishes care, so providers move from the status-quo (FFS) "
        "practice toward the optimum as fast as altruism and practice inertia allow; money that "
        "rewards more care (a fee above cost) holds intensity past the optimum, where the "
        "benefit curve falls (overtreatment harm), and money that rewards less care pushes it "
        "below, where health is lost faster. The paper's '+' for FFS compares FFS with payment "
        "that rewards skimping; against a neutral contract more care is not more health."
    )
    return text


def _explain_cost(scheme: str, sign: str, card: Scorecard) -> str:
    share = _compare(card, scheme, "low_value_cost_share")
    shifting = _compare(card, scheme, "cost_shifting", ".2f")
    return (
        f"{_intensities(card, scheme)}. Share of care cost beyond its value is {share}; share of rehab "
        f"shifted to home care {shifting}. Disciplines a contract pays by the service (all of them "
        "under FFS, those outside the border under a bundle) overtreat. Cost-consciousness counts "
        "care beyond the optimum (chosen intensity and "
        "delivery noise) and the extra cost of shifted care, against the reference, where "
        "providers gain nothing from extra care but also lose nothing from it, so they sit at "
        "the optimum plus noise. A contract that makes care a cost to the provider can only "
        "cut the overtreatment that noise produces; the rest of its saving is care withheld "
        "below the optimum, which is counted as withheld care (remainder) and as lost health "
        "(quality), not as cost-consciousness."
    )


def _efforts(card: Scorecard, scheme: str) -> str:
    names = ("measured", "unmeasured", "coordination", "prevention")
    arm = "/".join(f"{_mean(card, scheme, f'effort_{t}'):.2f}" for t in names)
    ref = "/".join(f"{_mean(card, REFERENCE, f'effort_{t}'):.2f}" for t in names)
    tasks = "measured quality/unmeasured quality/coordination/prevention"
    return f"Final-year effort on {tasks} is {arm} (reference {ref})"


SHARED_EFFORT = (
    "Second, the effort tasks share one convex effort cost (7.9.5): a contract that changes the "
    "payoff of one task (intensity, measured quality) changes the marginal cost of every other, "
    "so effort on a task nobody pays for still moves."
)


def _explain_coordination(scheme: str, sign: str, card: Scorecard) -> str:
    failures = _compare(card, scheme, "handoff_failure_share")
    return (
        f"{_efforts(card, scheme)}; share of hand-offs failing {failures}. A failed hand-off "
        "duplicates work at the receiving provider and may end in a readmission, which returns to "
        "the sender's own regional hospital in most cases (7.5). So, first, even a single "
        "provider's contract prices part of coordination: a hospital whose pay is fixed per person "
        "or period bears the cost of its own readmissions (more effort pays), one paid per service "
        "or per case is paid for them as new cases (less effort pays), and a rehab centre never "
        "bears the readmissions it causes. " + SHARED_EFFORT + " The paper's '0' holds for the part "
        "of a failed hand-off that lands on other providers; the model's sign is the net of both."
    )


def _explain_innovation(scheme: str, sign: str, card: Scorecard) -> str:
    share = _compare(card, scheme, "innovation_value_share", ".2f")
    return (
        f"Share of the ideal adoption value realised is {share}. A provider adopts with a "
        "probability smooth in its gain relative to the stakes (7.13). The contract moves the "
        "money part of the gain: under fees a cost-increasing innovation (cost-effective, low "
        "value, new service) brings billing and a cost-saving one loses it; under fixed payment "
        "it is the reverse; under a blend both shrink. Under the reference the money part is zero "
        "(running and up-front costs are repaid), so providers adopt on health alone: anything "
        "with a health gain more often than not, a cost-saving innovation by a coin toss. "
        "Arrivals are few (about one a year for the whole world, each to one discipline), so the "
        "innovation score is noisy and its sign rests on few decisions."
    )


def _explain_prevention(scheme: str, sign: str, card: Scorecard) -> str:
    averted = _compare(card, scheme, "strokes_prevented_per_1000", ".2f")
    return (
        f"{_efforts(card, scheme)}; strokes averted by the prevention stock per 1,000 person-years "
        f"{averted}. The prevention score counts only strokes averted by prevention effort, valued "
        "at guideline GP care (care adequacy belongs to quality). First, on a solo GP contract "
        "most of an averted stroke's care would have fallen on the hospital, rehab and nursing, "
        "so only the GP's own care of stroke survivors is at stake: a payment that does not grow "
        "with that care (per person, per period, and per case as far as a survivor's extra GP "
        "care is not a new case) makes averting it a small saving, FFS a small loss of billing. " + SHARED_EFFORT
    )


#: Mechanisms specific to one arm and dimension, added to the dimension's explanation.
ARM_NOTES: dict[tuple[str, str], str] = {
    ("bundle", "coordination"): (
        "For the bundle, the hospital and its rehab centre share one payee, so the duplicated rehab "
        "work and the readmissions of a failed hospital-to-rehab hand-off fall on the payee (the "
        "paper's '+'); but the bundle pays each month of a covered case, a readmission included, "
        "which pulls the other way, and the rehab-to-home-care hand-off still crosses the border."
    ),
    ("bundle", "cost_consciousness"): (
        "For the bundle, GP and home care stay on fee-for-service: their overtreatment, and home "
        "care's extra cost of the rehab shifted across the border, count against the bundle's "
        "cost-consciousness, while the paper's '+' speaks of the services inside the bundle."
    ),
}


EXPLAIN: dict[str, Explainer] = {
    "quality": _explain_quality,
    "cost_consciousness": _explain_cost,
    "coordination": _explain_coordination,
    "innovation": _explain_innovation,
    "prevention": _explain_prevention,
}


def _cell(row: pd.Series) -> str:
    return f"{row['mean']:+.1f} [{row['ci_low']:+.1f}, {row['ci_high']:+.1f}] **{row['sign']}**"


def _not_significant(row: pd.Series, replications: int) -> str:
    if row["sign"] != "0":
        return ""
    direction = "above" if row["mean"] > 0 else "below"
    return (
        f"The mean is {direction} zero but the 95% CI includes it with {replications} replications: "
        "a weak or absent effect, not necessarily a contradiction. "
    )


def render_markdown(card: Scorecard) -> str:
    """Markdown report: scores, indicators, the NMB identity and the disagreements explained."""
    t = card.table
    scores = t[t.measure == "score"]
    lines = [
        f"# Scorecard: scenario '{card.scenario}', {card.years} years, {len(card.seeds)} replications",
        "",
        f"Every arm runs on seeds {card.seeds[0]}..{card.seeds[-1]} of the same world as the reference "
        f"`{REFERENCE}` (pays each provider exactly its cost, up-front investments included). "
        f"Scores are paired differences from the reference in {SCORE_UNIT}, mean with a t-based 95% CI; "
        "the sign is '+' or '-' when the CI excludes 0. 'paper' is the sign expected from Cattel et al. "
        "(2018), Table 1, as reconstructed in issue 8. Definitions and formulas: docs/ODD.md, "
        "section 7.17.",
        "",
        "## Monetised scores (EUR per capita-year vs reference)",
        "",
        "| scheme | " + " | ".join(DIMENSIONS) + " |",
        "|---" * (len(DIMENSIONS) + 1) + "|",
    ]
    for scheme in card.schemes():
        cells = []
        for dim in DIMENSIONS:
            row = scores[(scores.scheme == scheme) & (scores.dimension == dim)].iloc[0]
            cells.append(f"{_cell(row)} (paper {row['expected_sign']})")
        lines.append(f"| {scheme} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## The scores add up to the NMB difference",
        "",
        "NMB = 50,000 EUR x QALYs - provider cost (care and up-front investments), per capita-year "
        "(the willingness to pay is the scenario's). The five scores plus the remainder equal the NMB "
        "difference exactly; the remainder is shown in its parts: cost saved by withholding care below "
        "the optimum, the overtime premium, and what the event valuations leave unattributed (chance, "
        "risk selection, the innovations' QALY effect beyond their valuation, approximations).",
        "",
        "| scheme | sum of five | withheld care | overtime | unattributed | NMB difference |",
        "|---|---|---|---|---|---|",
    ]
    for scheme in card.schemes():
        row = scores[scores.scheme == scheme].set_index("dimension")
        five = float(row.loc[list(DIMENSIONS), "mean"].sum())
        parts = " | ".join(_cell(row.loc[name]) for name in (*REMAINDER_PARTS, "nmb"))
        lines.append(f"| {scheme} | {five:+.1f} | {parts} |")
    lines += [
        "",
        "## Natural-unit indicators (level of each arm, mean [95% CI])",
        "",
        "| scheme | " + " | ".join(f"{name} ({unit})" for name, unit in NATURAL_INDICATORS.values()) + " |",
        "|---" * (len(DIMENSIONS) + 1) + "|",
    ]
    natural = t[t.measure != "score"]
    for scheme in card.schemes():
        cells = []
        for dim in DIMENSIONS:
            row = natural[(natural.scheme == scheme) & (natural.dimension == dim)].iloc[0]
            cells.append(f"{row['mean']:.4g} [{row['ci_low']:.4g}, {row['ci_high']:.4g}]")
        lines.append(f"| {scheme} | " + " | ".join(cells) + " |")
    lines += ["", "## Disagreements with the paper, explained from the model's mechanisms", ""]
    disagreements = scores[(scores.agrees == False) & scores.dimension.isin(DIMENSIONS)]  # noqa: E712
    if disagreements.empty:
        lines.append("None: every observed sign is one the paper's Table 1 allows.")
    for _, row in disagreements.iterrows():
        scheme, dim = row["scheme"], row["dimension"]
        lines += [
            f"### {scheme}, {dim}: observed {row['sign']}, paper {row['expected_sign']}",
            "",
            f"Score {_cell(row)} EUR per capita-year. "
            + _not_significant(row, len(card.seeds))
            + EXPLAIN[dim](scheme, row["sign"], card)
            + (" " + ARM_NOTES[(scheme, dim)] if (scheme, dim) in ARM_NOTES else ""),
            "",
        ]
    agreed = scores[(scores.agrees == True) & scores.dimension.isin(DIMENSIONS)]  # noqa: E712
    compared = scores[scores.agrees.notna() & scores.dimension.isin(DIMENSIONS) & (scores.scheme != REFERENCE)]
    lines += [
        "",
        f"Agreement: {int((agreed.scheme != REFERENCE).sum())} of {len(compared)} cells with an expected sign. "
        "Nothing was tuned to make a disagreement vanish.",
        "",
    ]
    return "\n".join(lines)
