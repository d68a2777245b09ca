"""Errors raised for bad input: each names the parameter, the value and what is allowed."""

from __future__ import annotations

from typing import Any


class VBPSimError(ValueError):
    """Base class for every user-facing error of vbpsim."""


class ParameterError(VBPSimError):
    """A parameter has a value outside what the model allows."""

    def __init__(self, name: str, value: Any, allowed: str) -> None:
        self.name = name
        self.value = value
        self.allowed = allowed
        super().__init__(f"{name}={shown(value)} is not allowed: {allowed}")


#: Longest value shown in an error message; longer ones are cut (a message stays one short line).
MAX_SHOWN = 200


def shown(value: Any, limit: int = MAX_SHOWN) -> str:
    """``repr(value)`` cut to ``limit`` characters, safe for any input (huge or deeply nested)."""
    try:
        text = repr(value)
    except RecursionError:
        return "(deeply nested value)"
    return text if len(text) <= limit else text[: limit - 3] + "..."
