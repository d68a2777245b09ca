"""Oracle mixin: the numpy delivery methods of VBPModel before compilation (commit 1bcaa63)."""

from __future__ import annotations


class DeliveryOracle:
    """Numpy delivery methods (verbatim from commit 1bcaa63) that override the compiled ones."""
