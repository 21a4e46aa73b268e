"""The Gaussians over latent trajectories of the spikes kind: torch Distributions with event shape ``(T, d)`` (time
first, then latent dimension), independent across the ``d`` dimensions.

- ``GaussianProcess``, the prior: each dimension ``j`` a Gaussian process over the bins' times,
  ``z_{:,j} ~ N(0, K_j)``, with the squared-exponential kernel of GPFA (Yu et al. 2009, eq. 3) built by
  ``squared_exponential``: ``K_j(t, t') = (1 - ε) exp(-(t - t')² / (2 ℓ_j²)) + ε δ_tt'``, unit variance, one
  timescale ``ℓ_j`` per dimension and a jitter ``ε``. Dense Cholesky factors: ``O(T³)`` once, ``O(T²)`` a draw.
- ``MarkovGaussian``, the approximate posterior: each dimension a Gauss–Markov chain whose precision is tridiagonal,
  ``Λ_j = B_j B_jᵀ`` with ``B_j`` lower bidiagonal (diagonal ``a_tj > 0``, sub-diagonal ``B_{t+1,t} = b_tj``), the
  banded q of the GP-VAE (Fortuin et al. 2020) and of Archer et al. 2015. Every tridiagonal precision has such a
  factor. Draws ``z = μ + B⁻ᵀ ε``, ``log q(z) = -½ ‖Bᵀ(z - μ)‖² - (Td/2) log 2π + Σ log a``, the entropy and the
  marginal variances all cost ``O(T)``.
- ``kl_divergence(MarkovGaussian, GaussianProcess)``, registered, in closed form: per dimension
  ``½ [tr(K⁻¹Σ) + μᵀK⁻¹μ - T + log|K| - log|Σ|]`` with ``Σ = Λ⁻¹``, ``log|Σ| = -2 Σ_t log a_t`` and
  ``tr(K⁻¹Σ) = ‖B⁻¹ L⁻ᵀ‖²_F`` (``K = L Lᵀ``), ``O(T²)`` per trajectory by bidiagonal solves.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Distribution, MultivariateNormal, constraints, register_kl

__all__ = ["GaussianProcess", "MarkovGaussian", "squared_exponential"]


def squared_exponential(times: torch.Tensor, timescales: torch.Tensor, *, jitter: float) -> torch.Tensor:
    """``K_j(t, t') = (1 - ε) exp(-(t - t')² / (2 ℓ_j²)) + ε δ_tt'``: ``(d, T, T)`` for ``times: (T,)`` and
    ``timescales: (d,)`` (same units), ``ε = jitter``."""
    squared_distance = (times[:, None] - times[None, :]).square()  # (T, T)
    kernel = torch.exp(-squared_distance / (2 * timescales[:, None, None].square()))  # (d, T, T)
    eye = torch.eye(len(times), dtype=kernel.dtype, device=kernel.device)
    return (1 - jitter) * kernel + jitter * eye


def _time_first(values: torch.Tensor) -> torch.Tensor:
    """``(..., T, d) -> (T, ..., d)``: the bidiagonal recursions step along dimension 0."""
    return values.movedim(-2, 0)


def _solve_lower(diag: torch.Tensor, sub: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """``u`` with ``B u = rhs``, ``B`` lower bidiagonal: ``u_0 = r_0 / a_0``, ``u_t = (r_t - b_{t-1} u_{t-1}) / a_t``.
    Time on dimension 0 of all three (``diag, rhs: (T, ...)``, ``sub: (T - 1, ...)``, broadcasting)."""
    u = [rhs[0] / diag[0]]
    for t in range(1, len(diag)):
        u.append((rhs[t] - sub[t - 1] * u[-1]) / diag[t])
    return torch.stack(u)


def _solve_upper(diag: torch.Tensor, sub: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """``u`` with ``Bᵀ u = rhs``: ``u_{T-1} = r_{T-1} / a_{T-1}``, ``u_t = (r_t - b_t u_{t+1}) / a_t``; time on
    dimension 0 as in ``_solve_lower``."""
    u = [rhs[-1] / diag[-1]]
    for t in range(len(diag) - 2, -1, -1):
        u.append((rhs[t] - sub[t] * u[-1]) / diag[t])
    return torch.stack(u[::-1])


class GaussianProcess(Distribution):
    """``p(z) = Π_j N(z_{:,j} | 0, K_j)`` over trajectories ``z: (..., T, d)``: batch shape ``()``, event ``(T, d)``.

    ``covariance``: ``(d, T, T)``, each dimension's covariance over the ``T`` bins (``squared_exponential``); its
    Cholesky factors are ``scale_tril``. ``log_prob(z)`` of ``z: (K, B, T, d)`` is ``(K, B)``.
    """

    arg_constraints = {}
    support = constraints.independent(constraints.real, 2)
    has_rsample = True

    def __init__(self, covariance: torch.Tensor):
        self.scale_tril = torch.linalg.cholesky(covariance)  # (d, T, T)
        num_dims, num_bins = covariance.shape[0], covariance.shape[-1]
        self._per_dim = MultivariateNormal(covariance.new_zeros(num_dims, num_bins), scale_tril=self.scale_tril,
                                           validate_args=False)  # batch (d,), event (T,)
        super().__init__(batch_shape=torch.Size(), event_shape=(num_bins, num_dims), validate_args=False)

    @property
    def mean(self) -> torch.Tensor:
        return self.scale_tril.new_zeros(self.event_shape)

    @property
    def variance(self) -> torch.Tensor:
        return self.scale_tril.square().sum(-1).T  # diag(L Lᵀ), (T, d)

    def rsample(self, sample_shape=()) -> torch.Tensor:
        return self._per_dim.rsample(sample_shape).transpose(-1, -2)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self._per_dim.log_prob(z.transpose(-1, -2)).sum(-1)

    def entropy(self) -> torch.Tensor:
        return self._per_dim.entropy().sum(-1)


class MarkovGaussian(Distribution):
    """``q(z) = Π_j N(z_{:,j} | μ_j, (B_j B_jᵀ)⁻¹)`` with ``B_j`` lower bidiagonal: batch ``loc.shape[:-2]`` (the
    trials, ``(B,)``), event ``(T, d)``.

    ``loc``, ``diag``: ``(..., T, d)``, the means and the diagonal ``a > 0`` of ``B``; ``sub``: ``(..., T - 1, d)``,
    its sub-diagonal ``b`` (``B_{t+1,t} = b_t``, any real). ``rsample``, ``log_prob`` and ``entropy`` cost ``O(T)``.
    """

    arg_constraints = {"loc": constraints.real, "diag": constraints.positive, "sub": constraints.real}
    support = constraints.independent(constraints.real, 2)
    has_rsample = True

    def __init__(self, loc: torch.Tensor, diag: torch.Tensor, sub: torch.Tensor, *, validate_args: bool = False):
        self.loc, self.diag, self.sub = loc, diag, sub
        super().__init__(batch_shape=loc.shape[:-2], event_shape=loc.shape[-2:], validate_args=validate_args)

    @property
    def mean(self) -> torch.Tensor:
        return self.loc

    @property
    def variance(self) -> torch.Tensor:
        """``Σ_tt = S_t / a_t²`` with ``S_{T-1} = 1``, ``S_t = 1 + (b_t / a_{t+1})² S_{t+1}`` (the column norms of
        ``B⁻¹``), ``(..., T, d)``."""
        diag, sub = _time_first(self.diag), _time_first(self.sub)
        s = [torch.ones_like(diag[-1])]
        for t in range(len(diag) - 2, -1, -1):
            s.append(1 + (sub[t] / diag[t + 1]).square() * s[-1])
        return (torch.stack(s[::-1]) / diag.square()).movedim(0, -2)

    @property
    def precision_matrix(self) -> torch.Tensor:
        """``Λ_j = B_j B_jᵀ``, dense: ``(..., d, T, T)`` (for tests and small ``T``)."""
        factor = torch.diag_embed(self.diag.transpose(-1, -2)) + \
            torch.diag_embed(self.sub.transpose(-1, -2), offset=-1)
        return factor @ factor.transpose(-1, -2)

    def rsample(self, sample_shape=()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        return self.loc + self.color(torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device))

    def color(self, v: torch.Tensor) -> torch.Tensor:
        """``B⁻ᵀ v``, shape ``v.shape``: standard normal ``v`` to a draw of q less its mean (``elbo.ais.Colors``: AIS
        moves in these coordinates)."""
        return _solve_upper(_time_first(self.diag), _time_first(self.sub), _time_first(v)).movedim(0, -2)

    def color_transpose(self, g: torch.Tensor) -> torch.Tensor:
        """``B⁻¹ g``, the transpose of ``color``: a gradient in z to one in ``v``."""
        return _solve_lower(_time_first(self.diag), _time_first(self.sub), _time_first(g)).movedim(0, -2)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        r = z - self.loc
        w = self.diag * r  # Bᵀ r: (Bᵀ r)_t = a_t r_t + b_t r_{t+1}
        w = w + torch.cat([self.sub * r[..., 1:, :], torch.zeros_like(r[..., :1, :])], dim=-2)
        num = self.loc.shape[-2] * self.loc.shape[-1]
        return -0.5 * w.square().sum((-2, -1)) - 0.5 * num * math.log(2 * math.pi) + self.diag.log().sum((-2, -1))

    def entropy(self) -> torch.Tensor:
        num = self.loc.shape[-2] * self.loc.shape[-1]
        return 0.5 * num * (1 + math.log(2 * math.pi)) - self.diag.log().sum((-2, -1))

    def expand(self, batch_shape, _instance=None) -> MarkovGaussian:
        batch_shape = torch.Size(batch_shape)
        new = self._get_checked_instance(MarkovGaussian, _instance)
        new.loc = self.loc.expand(batch_shape + self.loc.shape[-2:])
        new.diag = self.diag.expand(batch_shape + self.diag.shape[-2:])
        new.sub = self.sub.expand(batch_shape + self.sub.shape[-2:])
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        return new

    def stop_gradient(self) -> MarkovGaussian:
        """The same q with its parameters cut from the graph (``elbo.estimators.stop_gradient``, for STL and DReG)."""
        return MarkovGaussian(self.loc.detach(), self.diag.detach(), self.sub.detach())


@register_kl(MarkovGaussian, GaussianProcess)
def _kl_markov_gaussian_process(q: MarkovGaussian, p: GaussianProcess) -> torch.Tensor:
    """``KL(q ‖ p) = Σ_j ½ [‖B_j⁻¹ L_j⁻ᵀ‖²_F + ‖L_j⁻¹ μ_j‖² - T + 2 Σ_t log L_j,tt + 2 Σ_t log a_tj]``, shape
    ``q.batch_shape``."""
    num_bins = q.loc.shape[-2]
    eye = torch.eye(num_bins, dtype=p.scale_tril.dtype, device=p.scale_tril.device)
    inverse = torch.linalg.solve_triangular(p.scale_tril, eye, upper=False)  # L⁻¹, (d, T, T)
    rhs = inverse.permute(2, 0, 1)  # L⁻ᵀ time-first: rhs[t, j, s] = (L_j⁻¹)_{s,t}, (T, d, T)
    diag, sub = _time_first(q.diag).unsqueeze(-1), _time_first(q.sub).unsqueeze(-1)  # (T, ..., d, 1)
    rhs = rhs.reshape(num_bins, *([1] * (q.loc.dim() - 2)), *rhs.shape[1:])
    trace = _solve_lower(diag, sub, rhs).square().sum((0, -1))  # (..., d)
    mahalanobis = torch.einsum("jst,...tj->...sj", inverse, q.loc).square().sum(-2)  # (..., d)
    log_det_k = 2 * p.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # (d,)
    log_det_precision = 2 * q.diag.log().sum(-2)  # (..., d)
    return 0.5 * (trace + mahalanobis - num_bins + log_det_k + log_det_precision).sum(-1)
