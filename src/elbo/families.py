"""Variational families: nn.Modules that hold q's parameters and return a torch Distribution.

Calling a family, ``q = family()`` (or ``family(x)``, which ignores ``x``), gives a distribution over
``z`` with ``batch_shape == batch_shape`` and ``event_shape == (dim,)``, with ``rsample`` and ``log_prob``,
and ``entropy`` where it has a closed form.

- ``MeanField``: ``N(loc, diag(scale²))``.
- ``FullRank``: ``N(loc, L Lᵀ)`` with ``L`` lower triangular, positive diagonal.
- ``LowRank``: ``N(loc, F Fᵀ + diag(d))`` with ``F`` of shape ``(dim, rank)``.
- ``GlobalLocal``: a hierarchical model's globals full rank and its locals independent given them, linear in
  the number of groups.
- ``Flow``: a learned diagonal Gaussian pushed through RealNVP affine couplings (Dinh et al. 2017).

This module also registers the closed-form ``KL(N(m, S) ‖ N(mu, diag(sigma²)))`` for the full-rank and
low-rank Gaussians against a diagonal Gaussian (the VAE prior), which torch.distributions lacks.

- ``SharedNoise``: ``q(z|x)`` of one process's rows of a global batch (``elbo.distributed``), drawing ``z`` as its
  rows of the whole global batch's draw; with every process's random state the same, a run gets the same noise
  from any number of processes.
- ``with_detached_parameters(module)``: ``module`` as a function with its parameters cut from the graph, for a
  ``stop_gradient()`` (STL, DReG) of a distribution computed by a network.
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
    kl_divergence,
    register_kl,
)
from torch.func import functional_call

from . import estimators
from ._checks import check_int_at_least, check_positive, check_positive_float
from .errors import InputError

__all__ = ["MeanField", "FullRank", "LowRank", "GlobalLocal", "GlobalLocalNormal", "Flow", "AffineCoupling",
           "TriangularAffine", "SharedNoise", "with_detached_parameters",
           "diagonal_gaussian"]


def _check_dim(dim: int, *, least: int = 1) -> int:
    check_int_at_least("dim", dim, least)
    return dim


def _check_batch_shape(batch_shape) -> torch.Size:
    try:
        shape = torch.Size(batch_shape)
    except TypeError:
        raise InputError(f"batch_shape must be a tuple of non-negative integers, got {batch_shape!r}",
                         argument="batch_shape") from None
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
            raise InputError(f"min_scale must be in [0, init_scale = {init_scale}), got {min_scale!r}",
                             argument="min_scale")
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
            raise InputError(f"rank must be an integer in [1, dim={dim}], got {rank!r}", argument="rank")
        self.loc = nn.Parameter(torch.zeros(*batch, dim))
        self.cov_factor = nn.Parameter(0.01 * torch.randn(*batch, dim, rank))
        self.log_diag = nn.Parameter(torch.full((*batch, dim), 2 * math.log(init_scale)))

    def forward(self, x=None) -> Distribution:
        return LowRankMultivariateNormal(self.loc, self.cov_factor, self.log_diag.exp())


class GlobalLocalNormal(Distribution):
    """``N(loc, L Lᵀ)`` with ``L = [[L_g, 0], [C, diag(s)]]`` in the order (global coordinates, local ones): the
    globals ``z_g = loc_g + L_g u_g`` full rank, each local ``z_l = loc_l + C u_g + s ⊙ u_l`` linear in the globals'
    noise with its own scale: the locals are independent given the globals. Draws, ``log_prob`` and the entropy
    cost ``O(D · G)`` for G globals; ``global_index``/``local_index`` place the two blocks among z's coordinates."""

    arg_constraints = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, global_tril, cross, local_scale, global_index, local_index, validate_args=None):
        self.loc, self.global_tril, self.cross, self.local_scale = loc, global_tril, cross, local_scale
        self.global_index, self.local_index = global_index, local_index
        super().__init__(loc.shape[:-1], loc.shape[-1:], validate_args=False)

    def _log_det(self) -> torch.Tensor:
        return self.global_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1) + self.local_scale.log().sum(-1)

    def rsample(self, sample_shape=()) -> torch.Tensor:
        u = torch.randn(self._extended_shape(torch.Size(sample_shape)), dtype=self.loc.dtype, device=self.loc.device)
        u_global, u_local = u[..., self.global_index], u[..., self.local_index]
        z = torch.empty_like(u)
        z[..., self.global_index] = (self.global_tril @ u_global.unsqueeze(-1)).squeeze(-1)
        z[..., self.local_index] = (self.cross @ u_global.unsqueeze(-1)).squeeze(-1) + self.local_scale * u_local
        return self.loc + z

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        centred = value - self.loc
        global_tril = self.global_tril.expand(*centred.shape[:-1], *self.global_tril.shape[-2:])
        u_global = torch.linalg.solve_triangular(global_tril, centred[..., self.global_index].unsqueeze(-1),
                                                 upper=False).squeeze(-1)
        u_local = (centred[..., self.local_index] - (self.cross @ u_global.unsqueeze(-1)).squeeze(-1)) / \
            self.local_scale
        squared = (u_global**2).sum(-1) + (u_local**2).sum(-1)
        return -0.5 * (squared + self.loc.shape[-1] * math.log(2 * math.pi)) - self._log_det()

    def entropy(self) -> torch.Tensor:
        return 0.5 * self.loc.shape[-1] * (1 + math.log(2 * math.pi)) + self._log_det()

    def stop_gradient(self) -> GlobalLocalNormal:
        """The same q with its parameters cut from the graph (``protocols.StopGradient``, for STL and DReG)."""
        return GlobalLocalNormal(self.loc.detach(), self.global_tril.detach(), self.cross.detach(),
                                 self.local_scale.detach(), self.global_index, self.local_index)

    @property
    def mean(self) -> torch.Tensor:
        return self.loc

    @property
    def variance(self) -> torch.Tensor:
        variance = torch.empty_like(self.loc)
        variance[..., self.global_index] = (self.global_tril**2).sum(-1)
        variance[..., self.local_index] = (self.cross**2).sum(-1) + self.local_scale**2
        return variance


class GlobalLocal(nn.Module):
    """``GlobalLocalNormal`` over ``dim`` coordinates of which ``global_index`` are global: a hierarchical model's
    shared parameters full rank, each group's parameters independent given them but correlated with them
    (Agrawal & Domke 2021's structure, with a linear map where they amortize a network). The exact posterior of a
    Gaussian hierarchical model with known variances is in the family; its parameters grow linearly with the number
    of groups (``D + G² + L·G`` for G globals and L locals)."""

    def __init__(self, dim: int, global_index, *, batch_shape=(), init_scale: float = 1.0):
        super().__init__()
        batch, dim = _check_batch_shape(batch_shape), _check_dim(dim)
        global_index = torch.as_tensor(global_index, dtype=torch.long).unique()
        if len(global_index) == 0 or len(global_index) == dim or not bool((global_index < dim).all()):
            raise InputError(f"global_index must name some but not all of the {dim} coordinates, got "
                             f"{global_index.tolist()}", argument="global_index")
        local = torch.ones(dim, dtype=torch.bool)
        local[global_index] = False
        self.register_buffer("global_index", global_index)
        self.register_buffer("local_index", local.nonzero()[:, 0])
        num_global, num_local = len(global_index), dim - len(global_index)
        self.loc = nn.Parameter(torch.zeros(*batch, dim))
        self.global_log_diag = nn.Parameter(torch.full((*batch, num_global), math.log(init_scale)))
        self.global_off_diag = nn.Parameter(torch.zeros(*batch, num_global, num_global))  # its strict lower part
        self.cross = nn.Parameter(torch.zeros(*batch, num_local, num_global))
        self.local_log_scale = nn.Parameter(torch.full((*batch, num_local), math.log(init_scale)))

    @property
    def global_tril(self) -> torch.Tensor:
        return self.global_off_diag.tril(-1) + torch.diag_embed(self.global_log_diag.exp())

    def forward(self, x=None) -> Distribution:
        return GlobalLocalNormal(self.loc, self.global_tril, self.cross, self.local_log_scale.exp(),
                                 self.global_index, self.local_index)

    @torch.no_grad()
    def place(self, loc: torch.Tensor, scale: torch.Tensor) -> None:
        """At ``N(loc, diag(scale²))``: the given sds, no correlation yet."""
        self.loc.copy_(loc)
        self.global_log_diag.copy_(scale[..., self.global_index].log())
        self.global_off_diag.zero_()
        self.cross.zero_()
        self.local_log_scale.copy_(scale[..., self.local_index].log())

    @torch.no_grad()
    def scale_(self, loc: torch.Tensor, scale: torch.Tensor) -> None:
        """Map q over ``u`` to q over ``z = loc + scale ⊙ u`` (the same family: the blocks' rows scale)."""
        self.loc.copy_(loc + scale * self.loc)
        global_scale, local_scale = scale[..., self.global_index], scale[..., self.local_index]
        tril = global_scale.unsqueeze(-1) * self.global_tril
        self.global_log_diag.copy_(tril.diagonal(dim1=-2, dim2=-1).log())
        self.global_off_diag.copy_(tril.tril(-1))
        self.cross.mul_(local_scale.unsqueeze(-1))
        self.local_log_scale.add_(local_scale.log())


class AffineCoupling(Transform):
    """RealNVP affine coupling: ``y = m⊙x + (1-m)⊙(x⊙exp(s(m⊙x)) + t(m⊙x))``.

    ``net`` maps ``(..., D)`` to ``(..., 2D)`` (``s`` and ``t``); ``s`` passes through ``clamp · tanh(· / clamp)``
    so a step cannot scale by more than ``e^clamp``. ``log|det ∂y/∂x| = Σ_j (1-m_j) s_j``. The inverse is exact.
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, net, mask: torch.Tensor, cache_size: int = 1, clamp: float = 1.0):
        super().__init__(cache_size=cache_size)
        self.net = net
        self.mask = mask
        self.clamp = clamp

    def _shift_and_log_scale(self, x):
        log_scale, shift = self.net(x * self.mask).chunk(2, dim=-1)
        free = 1 - self.mask
        return shift * free, self.clamp * torch.tanh(log_scale / self.clamp) * free

    def _call(self, x):
        shift, log_scale = self._shift_and_log_scale(x)
        return x * log_scale.exp() + shift

    def _inverse(self, y):
        shift, log_scale = self._shift_and_log_scale(y)  # the masked half of y equals that of x
        return (y - shift) * (-log_scale).exp()

    def log_abs_det_jacobian(self, x, y):
        return self._shift_and_log_scale(x)[1].sum(-1)

    def stop_gradient(self) -> AffineCoupling:
        """The same map with the network's parameters cut from the graph (for STL and DReG; a
        ``protocols.StopGradient``)."""
        return AffineCoupling(with_detached_parameters(self.net), self.mask, clamp=self.clamp)


class TriangularAffine(Transform):
    """``y = loc + L x`` for a lower-triangular ``L (D, D)`` with a positive diagonal, or ``loc + L ⊙ x`` for
    ``L (D,)``; ``log|det ∂y/∂x| = Σ log L_jj``. Its tensors are buffers (no parameters): a flow placed on top of a
    fitted Gaussian."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, loc: torch.Tensor, scale_tril: torch.Tensor, cache_size: int = 1):
        super().__init__(cache_size=cache_size)
        self.loc, self.scale_tril = loc, scale_tril
        self.diagonal = scale_tril.dim() == 1

    def _call(self, x):
        return self.loc + (x * self.scale_tril if self.diagonal else x @ self.scale_tril.T)

    def _inverse(self, y):
        if self.diagonal:
            return (y - self.loc) / self.scale_tril
        centred = (y - self.loc).reshape(-1, len(self.loc)).T
        return torch.linalg.solve_triangular(self.scale_tril, centred, upper=False).T.reshape(y.shape)

    def log_abs_det_jacobian(self, x, y):
        diagonal = self.scale_tril if self.diagonal else torch.diagonal(self.scale_tril)
        return diagonal.log().sum().expand(x.shape[:-1])


def with_detached_parameters(module: nn.Module):
    """``h -> module(h)`` with ``module``'s parameters detached (``torch.func.functional_call``): gradients still
    flow through ``h``, none reach the parameters. For the ``stop_gradient()`` of a distribution computed by a
    network (STL, DReG)."""
    params = {name: p.detach() for name, p in module.named_parameters()}
    return lambda h: functional_call(module, params, (h,))


class Flow(nn.Module):
    """RealNVP flow: a learned diagonal Gaussian base pushed through ``num_layers`` affine couplings.

    Consecutive couplings transform complementary halves of ``z``: the first and the second half, or, with
    ``mask_seed``, the halves of a fixed random permutation drawn from it anew for each pair of couplings (so that
    every coordinate conditions on every other within a few layers). Each coupling's last layer starts at zero, so
    the flow starts as its base distribution; ``clamp`` bounds each coupling's log-scale (``AffineCoupling``). With
    ``batch_shape``, each batch element has its own base Gaussian and all share the couplings. ``entropy`` has no
    closed form (bounds estimate it).
    """

    def __init__(self, dim: int, *, num_layers: int = 4, hidden: int = 32, batch_shape=(),
                 init_scale: float = 1.0, clamp: float = 1.0, mask_seed: int | None = None):
        super().__init__()
        dim = _check_dim(dim, least=2)
        check_positive(num_layers=num_layers, hidden=hidden)
        check_positive_float(clamp=clamp)
        self.base = MeanField(dim, batch_shape=batch_shape, init_scale=init_scale)
        self.clamp = float(clamp)
        self.nets = nn.ModuleList()
        for _ in range(num_layers):
            net = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 2 * dim))
            nn.init.zeros_(net[-1].weight)
            nn.init.zeros_(net[-1].bias)
            self.nets.append(net)
        generator = None if mask_seed is None else torch.Generator().manual_seed(mask_seed)
        masks = []
        for i in range(num_layers):
            if i % 2 == 0:
                order = torch.arange(dim) if generator is None else torch.randperm(dim, generator=generator)
                half = torch.zeros(dim)
                half[order[: dim // 2]] = 1.0
            masks.append(half if i % 2 == 0 else 1 - half)
        self.register_buffer("masks", torch.stack(masks))

    def forward(self, x=None) -> Distribution:
        couplings = [AffineCoupling(net, mask.to(self.base.loc.dtype), clamp=self.clamp)
                     for net, mask in zip(self.nets, self.masks)]
        return TransformedDistribution(self.base(), couplings)

    @torch.no_grad()
    def reset_couplings(self) -> None:
        """Every coupling back to the identity (its last layer zero): the flow is its base Gaussian again."""
        for net in self.nets:
            net[-1].weight.zero_()
            net[-1].bias.zero_()


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


class SharedNoise(Distribution):
    """``q(z|x)`` for this rank's block of a global batch of ``W·b`` rows, drawing ``z`` as block ``rank`` of a draw
    for all ``W·b``: ``q.expand((W, b)).rsample(...)[..., rank, :, :]``.

    Every rank holds the same random state, so each draws the noise ``ε`` of the whole global batch, exactly as
    one process drawing for all ``W·b`` rows would, and keeps its own rows: the rows of different ranks get
    different noise, and a run's noise does not depend on how many processes share it. The expansion is a view of
    q's parameters; only ``ε`` and ``loc + scale·ε`` (for a Gaussian) are computed for the other ranks' rows.
    Everything else (``log_prob``, the KL, the entropy) is ``q``'s, on this rank's rows.
    """

    arg_constraints = {}

    def __init__(self, q: Distribution, rank_: int, world_size_: int):
        self.q, self.rank, self.world_size = q, rank_, world_size_
        self.has_rsample = q.has_rsample
        super().__init__(q.batch_shape, q.event_shape, validate_args=False)

    @property
    def support(self):
        return self.q.support

    def _block_of_global_draw(self, draw, sample_shape) -> torch.Tensor:
        z = draw(self.q.expand((self.world_size, *self.q.batch_shape)), torch.Size(sample_shape))  # (*S, W, b, D)
        return z.select(len(sample_shape), self.rank)

    def rsample(self, sample_shape=()) -> torch.Tensor:
        return self._block_of_global_draw(lambda q, shape: q.rsample(shape), sample_shape)

    def sample(self, sample_shape=()) -> torch.Tensor:
        return self._block_of_global_draw(lambda q, shape: q.sample(shape), sample_shape)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.q.log_prob(z)

    def entropy(self) -> torch.Tensor:
        return self.q.entropy()

    @property
    def mean(self) -> torch.Tensor:
        return self.q.mean

    def stop_gradient(self) -> SharedNoise:
        """For ``elbo.estimators.stop_gradient`` (STL, DReG): the same draws, with q's parameters cut."""
        return SharedNoise(estimators.stop_gradient(self.q), self.rank, self.world_size)


@register_kl(SharedNoise, Distribution)
def _kl_shared_noise(q: SharedNoise, p: Distribution) -> torch.Tensor:
    return kl_divergence(q.q, p)


def diagonal_gaussian(q: Distribution, *, what: str = "q(z|x)") -> tuple[torch.Tensor, torch.Tensor]:
    """``(loc, scale)`` of ``q = Independent(Normal(loc, scale), 1)``, a Gaussian with diagonal covariance."""
    if isinstance(q, Independent) and isinstance(q.base_dist, Normal) and q.reinterpreted_batch_ndims == 1:
        return q.base_dist.loc, q.base_dist.scale
    kind = type(q).__name__ + (f"({type(q.base_dist).__name__})" if isinstance(q, Independent) else "")
    raise InputError(f"{what} must be a diagonal Gaussian, Independent(Normal(loc, scale), 1), got {kind}")
