"""Oracle mixin: the numpy accounts methods of VBPModel before compilation (commit 1bcaa63)."""

from __future__ import annotations


class AccountsOracle:
    """Numpy accounts methods (verbatim from commit 1bcaa63) that override the compiled ones."""
