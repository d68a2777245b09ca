"""Oracle mixin: the numpy health methods of VBPModel before compilation (commit 1bcaa63)."""

from __future__ import annotations


class HealthOracle:
    """Numpy health methods (verbatim from commit 1bcaa63) that override the compiled ones."""
