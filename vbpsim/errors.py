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
        super().__init__(f"{name}={value!r} is not allowed: {allowed}")
