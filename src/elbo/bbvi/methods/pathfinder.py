"""The method ``pathfinder``: Pathfinder's best Gaussian (the start itself), full rank, no further steps."""

from __future__ import annotations

from ..gaussians import make_guide
from . import MethodResult, Start

__all__ = ["run"]


def run(start: Start) -> MethodResult:
    guide = make_guide(start.config, start.model.dim, start.loc, start.scale_of(start.config.family))
    return MethodResult(guide, [], True, "Pathfinder's best Gaussian")
