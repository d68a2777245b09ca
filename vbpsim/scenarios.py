"""Scenarios as TOML files: named, validated starting points for runs, sweeps and teaching.

A scenario (population, clinical model, providers, groups, contract, mechanisms, horizon)
is a TOML file. The built-in ones ship with the package in ``vbpsim/scenario_files/``:
``default`` is the reference world (about 10,000 patients, 42 providers, 10 years,
monthly) and lists every parameter with its default, unit, allowed range and source;
``small`` is the same world at a fifth of the size, fast enough for tests and classrooms;
``large`` has 100,000 patients for studies. ``vbpsim scenarios`` lists them and
``vbpsim scenarios --show default > my.toml`` starts a scenario of your own.

A file sets only what it changes: every missing key takes the model's default. It may also
start from another scenario with ``extends = "small"`` (a built-in name, or a ``.toml`` file
in the extending file's folder or below it, given relative to the file); the sections of the
two are merged key by key, except that a file which sets ``contract.scheme`` drops the base's
``contract.params`` (they belong to the base's scheme).

Loading is data only: the file is parsed with :mod:`tomllib`, never evaluated or
imported. Everything is validated on load, including the contract (its scheme name and
parameters go through :func:`~vbpsim.schemes.make_scheme`), so a bad file fails before
any run with a one-line :class:`ScenarioFileError` naming the file, the key path, the value
and what is allowed. Only ``.toml`` files are read, at most ``MAX_FILE_BYTES`` long and
``MAX_NESTING`` levels deep, and ``extends`` never leaves the extending file's folder, so a
scenario cannot make vbpsim read, or echo in an error, any other file on the machine.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from .errors import ParameterError
from .parameters import MAX_NESTING, SECTIONS, TABLE_RANGES, Scenario, build_scenario, check_nesting
from .schemes import SCHEMES, make_scheme

#: Folder of the built-in scenario files inside the installed package.
SCENARIO_DIR = "scenario_files"
EXTENSION = ".toml"
MAX_VALUE_CHARS = 80
#: Largest scenario file read (the full default.toml is about 20 kB).
MAX_FILE_BYTES = 1_000_000
#: Longest chain of files that ``extends`` one another.
MAX_EXTENDS = 16


class ScenarioFileError(ParameterError):
    """A bad scenario file: names the file, then the key path, the value and what is allowed."""

    def __init__(
        self, file: str | os.PathLike[str], name: str, value: Any, allowed: str, message: str | None = None
    ) -> None:
        super().__init__(name, value, allowed)
        self.file = str(file)
        shown = repr(value)
        if len(shown) > MAX_VALUE_CHARS:
            shown = shown[: MAX_VALUE_CHARS - 3] + "..."
        text = message or f"{name}={shown} is not allowed: {allowed}"
        self.args = (_one_line(f"{self.file}: {text}"),)


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ----------------------------------------------------------------------------- built-ins


def scenario_dir() -> Path:
    """Where the built-in scenario files live (inside the installed package)."""
    return Path(str(resources.files(__package__ or "vbpsim").joinpath(SCENARIO_DIR)))


def builtin_files() -> dict[str, Path]:
    """Built-in scenario name -> its TOML file; ``default`` first, the rest by name."""
    files = {p.stem: p for p in sorted(scenario_dir().glob(f"*{EXTENSION}"))}
    order = sorted(files, key=lambda name: (name != "default", name))
    return {name: files[name] for name in order}


def list_scenarios() -> dict[str, str]:
    """Names and one-line descriptions of the built-in scenarios (read from their files)."""
    out = {}
    for name, path in builtin_files().items():
        data = _read_toml(path)
        description = data.get("description", "")
        out[name] = _one_line(description) if isinstance(description, str) else ""
    return out


def scenario_text(name: str | os.PathLike[str]) -> str:
    """The TOML text of a built-in scenario (or of a scenario file), to show or copy."""
    path = _resolve(name)
    if path not in builtin_files().values():
        load_scenario_file(path)  # print only a file that is a valid scenario, never other content
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioFileError(path, "file", str(path), f"cannot be read as UTF-8 text ({exc})") from None


# ----------------------------------------------------------------------------- loading


def load_scenario(scenario: str | os.PathLike[str] | Scenario) -> Scenario:
    """A validated Scenario from a built-in name or a path to a ``.toml`` file.

    A :class:`Scenario` is passed through unchanged. The scenario's ``name`` defaults to
    the file's stem. Any problem raises a one-line :class:`~vbpsim.errors.ParameterError`
    (a :class:`ScenarioFileError` for problems inside a file).
    """
    if isinstance(scenario, Scenario):
        return scenario
    return load_scenario_file(_resolve(scenario))


def load_scenario_file(path: str | os.PathLike[str]) -> Scenario:
    """Read, merge (``extends``), validate and check the contract of one scenario file."""
    path = Path(path)
    data = _merged(path, chain=())
    data.setdefault("name", path.stem)
    try:
        scenario = build_scenario(data)
    except ScenarioFileError:
        raise
    except ParameterError as exc:
        allowed = exc.allowed
        if "." not in exc.name and allowed.startswith("unknown key; allowed: "):
            allowed = f"unknown key; allowed: {sorted([*Scenario.model_fields, 'extends'])}"
        raise ScenarioFileError(path, exc.name, exc.value, allowed) from None
    check_contract(scenario, path)
    return scenario


def check_contract(scenario: Scenario, file: str | os.PathLike[str] = "scenario") -> None:
    """Build the scenario's contract once, so an unknown scheme or parameter fails on load."""
    contract = scenario.contract
    try:
        make_scheme(contract.scheme, dict(contract.params))
    except ParameterError as exc:
        path = _contract_path(exc.name, contract.scheme, contract.params)
        allowed = exc.allowed
        addon = path.removeprefix("contract.params.").split("_", 1)[0]
        if path != f"contract.params.{exc.name}" and addon in SCHEMES:
            allowed += f" (written {addon}_<name> in contract.params)"
        raise ScenarioFileError(file, path, exc.value, allowed) from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, ArithmeticError) as exc:
        raise ScenarioFileError(
            file, "contract.params", contract.params, f"rejected by scheme '{contract.scheme}': {exc}"
        ) from None


def _contract_path(name: str, scheme: str, params: dict[str, Any]) -> str:
    """Key path in the file of a parameter a scheme complained about."""
    if name == "scheme":
        return "contract.scheme"
    head = name.split(".", 1)[0]
    if head in params:
        return f"contract.params.{name}"
    for addon in scheme.split("+")[1:]:
        if f"{addon}_{head}" in params:
            return f"contract.params.{addon}_{name}"
    return f"contract.params.{name}"


def _resolve(scenario: Any) -> Path:
    """The file behind a built-in name or a path; a clear error if there is none."""
    builtins = builtin_files()
    allowed = f"a built-in scenario {list(builtins)} or a path to a {EXTENSION} file"
    if isinstance(scenario, str) and scenario in builtins:
        return builtins[scenario]
    if isinstance(scenario, os.PathLike):
        scenario = os.fspath(scenario)
    if not isinstance(scenario, str) or not scenario.strip():
        raise ParameterError("scenario", scenario, allowed)
    path = Path(scenario).expanduser()
    looks_like_path = scenario.endswith(EXTENSION) or os.sep in scenario or "/" in scenario
    if path.is_file():
        if path.suffix != EXTENSION or path.resolve().suffix != EXTENSION:
            raise ParameterError("scenario", scenario, f"not a {EXTENSION} file ({allowed})")
        return path
    if path.exists():
        raise ParameterError("scenario", scenario, f"not a file ({allowed})")
    if looks_like_path:
        raise ParameterError("scenario", scenario, f"no such file: {path.absolute()}")
    close = difflib.get_close_matches(scenario, list(builtins), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ParameterError("scenario", scenario, allowed + hint)


def _read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file as data (never code); errors name the file and the line."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ParameterError("scenario", str(path), f"no such file: {path.absolute()}") from None
    except OSError as exc:
        raise ScenarioFileError(
            path, "file", str(path), "a readable file", message=f"cannot be read ({exc.strerror or exc})"
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioFileError(
            path,
            "file",
            str(path),
            "a scenario file",
            message=f"larger than {MAX_FILE_BYTES:,} bytes: not a scenario file",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioFileError(
            path, "file", str(path), "UTF-8 text", message=f"not UTF-8 text (bad byte at offset {exc.start})"
        ) from None
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise ScenarioFileError(
            path, "file", str(path), "TOML", message=f"not a scenario: nested more than {MAX_NESTING} levels deep"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column \d+\)", message)
        reason = message[: match.start()].strip() if match else message
        if match:
            lines = text.splitlines()
            number = int(match.group(1))
            line = lines[number - 1].strip() if 0 < number <= len(lines) else ""
            raise ScenarioFileError(
                path,
                f"line {number}",
                line,
                reason,
                message=f"line {number} {_excerpt(line)} is not valid TOML: {reason}",
            ) from None
        raise ScenarioFileError(path, "file", str(path), reason, message=f"not valid TOML: {reason}") from None
    try:
        check_nesting("file", data)
    except ParameterError as exc:
        raise ScenarioFileError(
            path, "file", str(path), exc.allowed, message=f"not a scenario: {exc.allowed}"
        ) from None
    return data


def _excerpt(text: str) -> str:
    """A short quoted excerpt of a line of a file, so a huge line is never echoed whole."""
    shown = repr(text)
    return shown if len(shown) <= MAX_VALUE_CHARS else shown[: MAX_VALUE_CHARS - 4] + "...'"


def _merged(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """A file's data with the scenario it ``extends`` merged underneath."""
    data = _read_toml(path)
    if "extends" not in data:
        return data
    base_ref = data.pop("extends")
    base_path = _extended(path, base_ref)
    here = path.resolve()
    seen = (*chain, here)
    if base_path.resolve() in seen:
        raise ScenarioFileError(path, "extends", base_ref, "a scenario that does not extend this one (a cycle)")
    if len(seen) >= MAX_EXTENDS:
        raise ScenarioFileError(
            path, "extends", base_ref, f"a chain of at most {MAX_EXTENDS} files extending each other"
        )
    base = _merged(base_path, seen)
    base.pop("name", None)
    base.pop("description", None)
    return _merge(base, data)


def _extended(path: Path, base_ref: Any) -> Path:
    """The file an ``extends`` names: a built-in, or a .toml file in the extending file's folder or below.

    Nothing else on the machine is read (absolute paths, ``..`` and links out of the
    folder are refused), so a scenario file cannot make vbpsim read or echo other files.
    """
    builtins = builtin_files()
    allowed = f"a built-in scenario {list(builtins)} or a {EXTENSION} file in this file's folder or below it"
    if not isinstance(base_ref, str) or not base_ref.strip():
        raise ScenarioFileError(path, "extends", base_ref, allowed)
    if base_ref in builtins:
        return builtins[base_ref]
    folder = path.parent.resolve()
    candidate = path.parent / base_ref
    target = candidate.resolve()
    inside = not Path(base_ref).is_absolute() and target.is_relative_to(folder)
    if not inside or candidate.suffix != EXTENSION or target.suffix != EXTENSION:
        raise ScenarioFileError(path, "extends", base_ref, allowed)
    if not target.is_file():
        raise ScenarioFileError(path, "extends", base_ref, f"{allowed}; no such file")
    return candidate


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Sections merged key by key; a new ``contract.scheme`` drops the base's params."""
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            section = dict(old)
            if key == "contract" and "scheme" in value and "params" not in value:
                section.pop("params", None)
            for field, item in value.items():
                if isinstance(section.get(field), dict) and isinstance(item, dict) and field != "params":
                    section[field] = {**section[field], **item}
                else:
                    section[field] = item
            out[key] = section
        else:
            out[key] = value
    return out


# ----------------------------------------------------------------------------- writing


def scenario_to_toml(scenario: Scenario | dict[str, Any], *, comments: bool = True) -> str:
    """A scenario as TOML text that loads back to the same scenario.

    With ``comments`` every section carries its docstring and every key its description,
    unit, allowed values and source (as in ``default.toml``). A dict is written as given.
    """
    if isinstance(scenario, Scenario):
        data = scenario.model_dump()
    else:
        data = dict(scenario)
        comments = False
    lines: list[str] = []
    for key, value in data.items():
        if not isinstance(value, dict):
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in data.items():
        if not isinstance(value, dict):
            continue
        cls = SECTIONS.get(key)
        lines.append("")
        if comments and cls is not None and cls.__doc__:
            lines.append(f"# {_one_line(cls.__doc__)}")
        lines.append(f"[{_key(key)}]")
        for field, item in value.items():
            if comments and cls is not None and field in cls.model_fields:
                lines.append(f"# {_describe(cls, field)}")
            lines.append(f"{_key(field)} = {_value(item)}")
    return "\n".join(lines).lstrip("\n") + "\n"


DEFAULT_DESCRIPTION = "Reference population: 10,000 adults, 42 providers, 10 years monthly."
DEFAULT_HEADER = """\
# vbpsim scenario "default": the reference world, with every parameter at its default.
#
# Start your own scenario from this file:
#     vbpsim scenarios --show default > my_scenario.toml
#     vbpsim run --scenario my_scenario.toml
# Every key is optional: a key you delete takes the model's default (the value shown here),
# so a scenario may list only what it changes. It may also start from another scenario:
#     extends = "small"    # a built-in name, or a .toml file in this file's folder or below
# The scenario's name is the file name unless you set name = "...".
# On load, an unknown key, a wrong type, a value out of range or a contract its scheme
# rejects is an error naming the key. Units and sources of every parameter: docs/ODD.md.
# Each key's comment reads: description [unit; allowed values] Source.

"""


def render_default_toml() -> str:
    """The text of the built-in ``default.toml``: every parameter at its default, commented.

    ``scenario_files/default.toml`` is this text; regenerate it after adding or changing a
    parameter (``tests/test_scenario_files.py`` checks that the file matches the code).
    """
    body = scenario_to_toml(Scenario(name="default", description=DEFAULT_DESCRIPTION))
    return DEFAULT_HEADER + "".join(line for line in body.splitlines(keepends=True) if not line.startswith("name = "))


def _describe(cls: type, field: str) -> str:
    info = cls.model_fields[field]  # type: ignore[attr-defined]
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    unit = extra.get("unit", "")
    bounds = []
    for constraint in info.metadata:
        for attr, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            bound = getattr(constraint, attr, None)
            if bound is not None:
                bounds.append(f"{symbol} {bound}")
    section = next((name for name, owner in SECTIONS.items() if owner is cls), "")
    if f"{section}.{field}" in TABLE_RANGES:
        _, low, high = TABLE_RANGES[f"{section}.{field}"]
        bounds.append(f"each value {'>=' if (low, high) == (0, 1) else '>'} {low:g}, <= {high:g}")
    if get_origin(info.annotation) is Literal and "|" not in str(unit):
        bounds.append("one of " + ", ".join(repr(a) for a in get_args(info.annotation)))
    if cls.__name__ == "ContractParams" and field == "scheme":
        bases = [n for n in sorted(SCHEMES) if not SCHEMES[n].add_on]
        addons = [n for n in sorted(SCHEMES) if SCHEMES[n].add_on]
        bounds.append(f"one of {', '.join(bases)}, optionally +{'/+'.join(addons)} (see `vbpsim schemes`)")
    if cls.__name__ == "ContractParams" and field == "params":
        bounds.append("e.g. { fee_to_cost = 1.4 } with ffs; p4p add-on keys take a p4p_ prefix")
    detail = "; ".join(x for x in (str(unit), ", ".join(bounds)) if x and x != "-")
    text = (info.description or "").rstrip(".") + "."
    if detail:
        text += f" [{detail}]"
    source = extra.get("source")
    if source:
        text += f" Source: {source}."
    return _one_line(text)


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: Any) -> str:
    key = str(key)
    return key if _BARE_KEY.match(key) else _string(key)


def _string(text: str) -> str:
    escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}
    out = []
    for ch in text:
        if ch in escapes:
            out.append(escapes[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise ParameterError("value", value, "a TOML value: boolean, number, string, list or table")
