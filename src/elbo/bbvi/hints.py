"""What to change in the model, where the diagnostics can see it (issue 27): the funnel of a centred hierarchy.

In a centred hierarchy, ``theta_j ~ N(mu, tau)``, the curvature of ``log p`` along each ``theta_j`` is about
``1 / tau²``: the scale of ``theta`` follows ``tau``, and the posterior is a funnel no Gaussian fits (Neal's funnel is
the same with ``v = 2 log tau``). Its non-centred twin, ``theta = mu + tau · eta`` with ``eta ~ N(0, 1)``, has a
curvature along ``eta`` that does not fall as ``tau`` grows. So where k̂ ≥ 0.7, ``funnel_hint`` takes, at q's mean,
the Hessian of ``log p`` (by autograd) with one scalar parameter's coordinate ``u`` moved by ``±STEP``, and the slope
of the mean log-curvature of every other parameter with at least 2 coordinates: ``d log(-∂²log p / ∂θ_j²) / du``.
A slope below ``MAX_SLOPE`` (-2 for ``log tau``, -1 for the funnel's ``v``; 0 or above for the non-centred forms)
names the pair and suggests the non-centred form.
"""

from __future__ import annotations

import math

import torch

__all__ = ["funnel_hint", "MAX_SLOPE", "MAX_DIM"]

MAX_SLOPE = -0.5
STEP = 0.5
MAX_DIM = 200  # the hint takes a D × D Hessian twice per scalar parameter: only for small models
MAX_SCALARS = 20


def funnel_hint(model, loc: torch.Tensor) -> str | None:
    """One line naming a scalar parameter whose value sets the scale of another parameter's coordinates (the slope
    of their log-curvature below ``MAX_SLOPE``), with the non-centred form to write instead; ``None`` where there is
    none, or the model has more than ``MAX_DIM`` coordinates or ``MAX_SCALARS`` scalar parameters."""
    if model.dim > MAX_DIM or sum(len(model.coordinates(name)) == 1 for name in model.params) > MAX_SCALARS:
        return None
    blocks = {name: model.coordinates(name) for name in model.params}
    scalars = [name for name, index in blocks.items() if len(index) == 1]
    vectors = [name for name, index in blocks.items() if len(index) >= 2]
    found = []
    for scale_name in scalars:
        c = blocks[scale_name][0]
        curvature = [_log_curvature(model, loc + sign * STEP * _unit(loc, c)) for sign in (-1, 1)]
        for name in vectors:
            index = blocks[name]
            slope = ((curvature[1][index] - curvature[0][index]) / (2 * STEP))
            slope = slope[torch.isfinite(slope)]
            if len(slope) and slope.mean().item() < MAX_SLOPE:
                found.append((slope.mean().item(), scale_name, name))
    if not found:
        return None
    slope, scale_name, name = min(found)
    return (f"the scale of {name} follows {scale_name} (its log-curvature falls by {-slope:.2g} per unit of "
            f"{scale_name}'s unconstrained coordinate): the funnel of a centred hierarchy, which no Gaussian fits; "
            f"write {name} = loc + scale · {name}_raw with {name}_raw ~ N(0, 1), its scale set by {scale_name} "
            f"(the non-centred form)")


def _unit(loc: torch.Tensor, c: int) -> torch.Tensor:
    unit = torch.zeros_like(loc)
    unit[c] = 1.0
    return unit


def _log_curvature(model, z: torch.Tensor) -> torch.Tensor:
    """``log(-∂²log p/∂z_j²)`` at ``z`` for every coordinate (NaN where the curvature is not negative)."""
    hessian = torch.autograd.functional.hessian(lambda point: model.log_density(point[None])[0], z.detach(),
                                                vectorize=True)
    curvature = -torch.diagonal(hessian)
    return torch.where(curvature > 0, curvature.clamp_min(1e-300).log(), torch.full_like(curvature, math.nan))
