"""Variational families: nn.Modules that hold q's parameters and return a torch Distribution.

Calling a family, ``q = family()`` (or ``family(x)``, which ignores ``x``), gives a distribution over
``z`` with ``batch_shape == batch_shape`` and ``event_shape == (dim,)``, with ``rsample`` and ``log_prob``,
and ``entropy`` where it has a closed form.

- ``MeanField``: ``N(loc, diag(scale²))``.
- ``FullRank``: ``N(loc, L Lᵀ)`` with ``L`` lower triangular, positive diagonal.
- ``LowRank``: ``N(loc, F Fᵀ + diag(d))`` with ``F`` of shape ``(dim, rank)``.
- ``Flow``: a learned diagonal Gaussian pushed through RealNVP affine couplings (Dinh et al. 2017).

This module also registers the closed-form ``KL(N(m, S) ‖ N(mu, diag(sigma²)))`` for the full-rank and
low-rank Gaussians against a diagonal Gaussian (the VAE prior), which torch.distributions lacks.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import (
    Distribution,
    Independent,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
    Transform,
    TransformedDistribution,
    constraints,
    register_kl,
)
from torch.func import functional_call

__all__ = ["MeanField", "FullRank", "LowRank", "Flow", "AffineCoupling"]


def _check_dim(dim: int, *, least: int = 1) -> int:
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < least:
        raise ValueError(f"dim must be an integer >= {least}, got {dim!r}")
    return dim


def _check_batch_shape(batch_shape) -> torch.Size:
    try:
        shape = torch.Size(batch_shape)
    except TypeError:
        raise ValueError(f"batch_shape must be a tuple of non-negative integers, got {batch_shape!r}") from None
    return shape


class MeanField(nn.Module):
    """Diagonal Gaussian ``q(z) = Π_j N(z_j; loc_j, scale_j²)``, ``scale = exp(log_scale)``."""

    def __init__(self, dim: int, *, batch_shape=(), init_scale: float = 1.0):
        super().__init__()
        shape = (*_check_batch_shape(batch_shape), _check_dim(dim))
        self.loc = nn.Parameter(torch.zeros(shape))
        self.log_scale = nn.Parameter(torch.full(shape, math.log(init_scale)))

    def forward(self, x=None) -> Distribution:
        return Independent(Normal(self.loc, self.log_scale.exp()), 1)


class FullRank(nn.Module):
    """Gaussian ``q(z) = N(loc, L Lᵀ)``; ``L`` is lower triangular with diagonal ``min_scale + exp(log_diag)``.

    ``min_scale > 0`` floors the diagonal, so that no parameter value reaches a singular factor (``elbo.fit``'s
    ADVI uses 1e-6 in its whitened coordinates, where the posterior's scale is about 1)."""

    def __init__(self, dim: int, *, batch_shape=(), init_scale: float = 1.0, min_scale: float = 0.0):
        super().__init__()
        batch = _check_batch_shape(batch_shape)
        dim = _check_dim(dim)
        if not (isinstance(min_scale, (int, float)) and 0 <= min_scale < init_scale):
            raise ValueError(f"min_scale must be in [0, init_scale = {init_scale}), got {min_scale!r}")
        self.min_scale = float(min_scale)
        self.loc = nn.Parameter(torch.zeros(*batch, dim))
        self.log_diag = nn.Parameter(torch.full((*batch, dim), math.log(init_scale - min_scale)))
        self.off_diag = nn.Parameter(torch.zeros(*batch, dim, dim))  # only the strict lower triangle is used

    @property
    def scale_tril(self) -> torch.Tensor:
        return self.off_diag.tril(-1) + torch.diag_embed(self.min_scale + self.log_diag.exp())

    def forward(self, x=None) -> Distribution:
        return MultivariateNormal(self.loc, scale_tril=self.scale_tril)


class LowRank(nn.Module):
    """Gaussian ``q(z) = N(loc, F Fᵀ + diag(exp(log_diag)))`` with ``F`` of shape ``(dim, rank)``.

    ``F`` starts small and random (a zero ``F`` is a saddle point: its gradient vanishes there).
    """

    def __init__(self, dim: int, rank: int = 2, *, batch_shape=(), init_scale: float = 1.0):
        super().__init__()
        batch = _check_batch_shape(batch_shape)
        dim = _check_dim(dim)
        if not isinstance(rank, int) or not 1 <= rank <= dim:
            raise ValueError(f"rank must be an integer in [1, dim={dim}], got {rank!r}")
        self.loc = nn.Parameter(torch.zeros(*batch, dim))
        self.cov_factor = nn.Parameter(0.01 * torch.randn(*batch, dim, rank))
        self.log_diag = nn.Parameter(torch.full((*batch, dim), 2 * math.log(init_scale)))

    def forward(self, x=None) -> Distribution:
        return LowRankMultivariateNormal(self.loc, self.cov_factor, self.log_diag.exp())


class AffineCoupling(Transform):
    """RealNVP affine coupling: ``y = m⊙x + (1-m)⊙(x⊙exp(s(m⊙x)) + t(m⊙x))``.

    ``net`` maps ``(..., D)`` to ``(..., 2D)`` (``s`` and ``t``); ``s`` passes through ``tanh`` so a step
    cannot scale by more than ``e``. ``log|det ∂y/∂x| = Σ_j (1-m_j) s_j``. The inverse is exact.
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, net, mask: torch.Tensor, cache_size: int = 1):
        super().__init__(cache_size=cache_size)
        self.net = net
        self.mask = mask

    def _shift_and_log_scale(self, x):
        log_scale, shift = self.net(x * self.mask).chunk(2, dim=-1)
        free = 1 - self.mask
        return shift * free, torch.tanh(log_scale) * free

    def _call(self, x):
        shift, log_scale = self._shift_and_log_scale(x)
        return x * log_scale.exp() + shift

    def _inverse(self, y):
        shift, log_scale = self._shift_and_log_scale(y)  # the masked half of y equals that of x
        return (y - shift) * (-log_scale).exp()

    def log_abs_det_jacobian(self, x, y):
        return self._shift_and_log_scale(x)[1].sum(-1)

    def detached(self) -> AffineCoupling:
        """The same map with the network's parameters cut from the graph (for STL and DReG)."""
        params = {name: p.detach() for name, p in self.net.named_parameters()}
        return AffineCoupling(lambda h: functional_call(self.net, params, (h,)), self.mask)


class Flow(nn.Module):
    """RealNVP flow: a learned diagonal Gaussian base pushed through ``num_layers`` affine couplings.

    The couplings alternate which half of ``z`` they condition on. Each coupling's last layer starts at
    zero, so the flow starts as its base distribution. With ``batch_shape``, each batch element has its
    own base Gaussian and all share the couplings. ``entropy`` has no closed form (bounds estimate it).
    """

    def __init__(self, dim: int, *, num_layers: int = 4, hidden: int = 32, batch_shape=(),
                 init_scale: float = 1.0):
        super().__init__()
        dim = _check_dim(dim, least=2)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        self.base = MeanField(dim, batch_shape=batch_shape, init_scale=init_scale)
        self.nets = nn.ModuleList()
        for _ in range(num_layers):
            net = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 2 * dim))
            nn.init.zeros_(net[-1].weight)
            nn.init.zeros_(net[-1].bias)
            self.nets.append(net)
        first_half = (torch.arange(dim) < dim // 2).float()
        self.register_buffer("masks", torch.stack([first_half if i % 2 == 0 else 1 - first_half
                                                   for i in range(num_layers)]))

    def forward(self, x=None) -> Distribution:
        couplings = [AffineCoupling(net, mask.to(self.base.loc.dtype)) for net, mask in zip(self.nets, self.masks)]
        return TransformedDistribution(self.base(), couplings)


def _kl_gaussian_diagonal(q: Distribution, p: Independent) -> torch.Tensor:
    """``KL(q ‖ p)`` for a Gaussian ``q`` and ``p = N(mu, diag(sigma²))``:
    ``-H[q] + Σ_j ½ log(2π sigma_j²) + ((m_j - mu_j)² + S_jj) / (2 sigma_j²)``."""
    if not (isinstance(p.base_dist, Normal) and p.reinterpreted_batch_ndims == 1):
        raise NotImplementedError
    mu, sigma = p.base_dist.loc, p.base_dist.scale
    cross_entropy = (0.5 * torch.log(2 * math.pi * sigma**2) + ((q.mean - mu) ** 2 + q.variance) / (2 * sigma**2))
    return cross_entropy.sum(-1) - q.entropy()


register_kl(MultivariateNormal, Independent)(_kl_gaussian_diagonal)
register_kl(LowRankMultivariateNormal, Independent)(_kl_gaussian_diagonal)
