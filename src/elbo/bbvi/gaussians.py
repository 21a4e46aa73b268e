"""q's families as ``elbo.fit`` builds them: a family's guide placed at a Gaussian (``make_guide``), and the check
that a Gaussian q has not broken down in floating point (``check_gaussian``)."""

from __future__ import annotations

import math

import torch

from .. import families
from .._checks import check_fits
from ..errors import InputError
from .config import FAMILIES, FitConfig

__all__ = ["FAMILY_CLASSES", "make_guide", "global_coordinates", "NumericalError", "check_gaussian"]


def global_coordinates(model, local) -> torch.Tensor:
    """The indices of z's coordinates that belong to the parameters ``local`` does not name."""
    unknown = set(local) - set(model.params)
    if unknown:
        raise InputError(f"local names unknown parameters {sorted(unknown)}; the model's are {list(model.params)}",
                         argument="local")
    return torch.cat([model.coordinates(name) for name in model.params if name not in local])

# config.FAMILIES's names, in its order, to their classes
FAMILY_CLASSES = dict(zip(FAMILIES, (families.MeanField, families.FullRank, families.LowRank, families.Flow,
                                     families.GlobalLocal), strict=True))


def make_guide(config: FitConfig, dim: int, loc: torch.Tensor, scale_tril: torch.Tensor, *, min_scale: float = 0.0,
               model=None):
    """q of ``config.family`` at ``N(loc, scale_tril scale_trilᵀ)`` (its diagonal only, but for full rank);
    ``scale_tril`` may also be ``(D,)``, the sds of a diagonal Gaussian (no ``D × D`` matrix for a large model);
    ``min_scale`` floors a full-rank factor's diagonal; ``model`` says which coordinates are global for the
    hierarchical family."""
    if config.family == "flow" and dim < 2:
        raise InputError(f"family='flow' needs at least 2 unconstrained coordinates; the model has {dim}")
    if config.family != "fullrank":
        scale = scale_tril if scale_tril.dim() == 1 else (scale_tril ** 2).sum(1).sqrt()
        return _diagonal_guide(config, dim, loc, scale, model)
    # its factor, and in ADVI the factor's gradient, Adam's two moments and the whitening factor: six D × D
    check_fits(6 * dim * dim * loc.element_size(), "cpu", what=f"a full-rank q of D = {dim}", argument="family",
               remedy="use family='meanfield' or 'lowrank', or 'hierarchical' with local=")
    if scale_tril.dim() == 1:
        scale_tril = torch.diag(scale_tril)
    scale_tril = scale_tril.tril(-1) + torch.diag_embed(torch.diagonal(scale_tril).clamp_min(2 * min_scale))
    guide = families.FullRank(dim, batch_shape=(1,), init_scale=config.init_scale, min_scale=min_scale)
    with torch.no_grad():
        guide.loc.copy_(loc)
        guide.log_diag.copy_((torch.diagonal(scale_tril) - min_scale).log())
        guide.off_diag.copy_(scale_tril.tril(-1))
    return guide


def _diagonal_guide(config: FitConfig, dim: int, loc: torch.Tensor, scale: torch.Tensor, model=None):
    """q of a family other than full rank at ``N(loc, diag(scale²))``."""
    if config.family == "hierarchical":
        guide = families.GlobalLocal(dim, global_coordinates(model, config.local), batch_shape=(1,))
        guide.place(loc, scale)
        return guide
    kwargs = {"rank": min(2, dim)} if config.family == "lowrank" else {}
    guide = FAMILY_CLASSES[config.family](dim, batch_shape=(1,), init_scale=config.init_scale, **kwargs)
    with torch.no_grad():
        if config.family == "lowrank":
            guide.loc.copy_(loc)
            guide.log_diag.copy_(2 * scale.log())
        else:
            base = guide.base if config.family == "flow" else guide
            base.loc.copy_(loc)
            base.log_scale.copy_(scale.log())
    return guide


class NumericalError(FloatingPointError):
    """q's estimate broke down in floating point (a nearly singular Cholesky factor, an ELBO of round-off)."""


def check_gaussian(guide, step: int, num_draws: int = 64) -> None:
    """For a Gaussian q, ``-log q`` at q's own draws must be what it is in exact arithmetic: ``m² = 2 (-log q -
    H[q]) + D`` is the squared Mahalanobis norm of the draw, χ²_D, whose mean over ``num_draws`` draws is D within
    5 of its known standard errors ``√(2D / num_draws)`` (false alarm about 6e-7 a check). Where the Cholesky
    factor is nearly singular, ``log q`` of q's own draws is round-off and the ELBO estimate runs away (issue 11's
    stochastic volatility model: -log q about 1e70)."""
    with torch.no_grad():
        q = guide()
        if not hasattr(q, "entropy") or isinstance(q, torch.distributions.TransformedDistribution):
            return
        dim = q.event_shape[0]
        squared_norm = 2 * (-q.log_prob(q.sample((num_draws,)))[:, 0] - q.entropy()[0]) + dim  # (num_draws,)
        if not bool(torch.isfinite(squared_norm).all()) or \
                abs(squared_norm.mean().item() - dim) > 5 * math.sqrt(2 * dim / num_draws) + 1e-6 * dim:
            scale = q.scale_tril[0] if hasattr(q, "scale_tril") else None
            detail = "" if scale is None else \
                f"; condition number of its Cholesky factor {torch.linalg.cond(scale):.3g}"
            raise NumericalError(f"q's Gaussian broke down at step {step}: the Mahalanobis norm² of its own draws "
                                 f"averages {squared_norm.mean().item():.4g}, not D = {dim} (log q is round-off)"
                                 f"{detail}")
