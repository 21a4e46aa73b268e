"""Models whose posterior and evidence have closed forms, for checking bounds, estimators and fits.

``LinearGaussian``: ``z ~ N(0, I_D)``, ``x | z ~ N(W z + b, σ² I)``. Then

- ``p(x) = N(x; b, W Wᵀ + σ² I)``;
- ``p(z | x) = N(m, S)`` with ``S = (I + WᵀW / σ²)⁻¹`` and ``m = S Wᵀ (x - b) / σ²``.

It follows the model interface of ``elbo.bounds``: ``prior()`` and ``likelihood(z)``; ``W`` and ``b`` are
parameters (``θ``), so gradients of the bounds with respect to the model can be checked too.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution, Independent, MultivariateNormal, Normal, kl_divergence

from ._checks import check_positive_float
from .errors import InputError

__all__ = ["LinearGaussian", "exact_elbo", "as_multivariate_normal"]


class LinearGaussian(nn.Module):
    """``z ~ N(0, I_D)``, ``x | z ~ N(W z + b, σ² I)`` with ``W: (D_x, D)``, ``b: (D_x,)``, ``σ > 0`` fixed.

    ``W: (B, D_x, D)`` and ``b: (B, D_x)`` give each data point its own copy of the parameters, so that
    ``likelihood`` gives per-replicate gradients (the closed forms below take unbatched ``W`` and ``b``).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, noise_scale: float):
        super().__init__()
        if weight.dim() < 2:
            raise InputError(f"weight must have shape (..., D_x, D), got {tuple(weight.shape)}", argument="weight")
        if tuple(bias.shape) != tuple(weight.shape[:-1]):
            raise InputError(f"bias must have shape {tuple(weight.shape[:-1])} to match weight, "
                             f"got {tuple(bias.shape)}", argument="bias")
        check_positive_float(noise_scale=noise_scale)
        self.weight = nn.Parameter(weight.clone())
        self.bias = nn.Parameter(bias.clone())
        self.noise_scale = float(noise_scale)

    @property
    def latent_dim(self) -> int:
        return self.weight.shape[-1]

    def prior(self) -> Distribution:
        zeros = self.weight.new_zeros(self.latent_dim)
        return Independent(Normal(zeros, torch.ones_like(zeros)), 1)

    def likelihood(self, z: torch.Tensor) -> Distribution:
        """``p(x | z)`` with batch shape ``z.shape[:-1]`` and event shape ``(D_x,)``."""
        loc = (self.weight @ z.unsqueeze(-1)).squeeze(-1) + self.bias  # (..., D_x, D) @ (K, B, D, 1)
        return Independent(Normal(loc, self.noise_scale), 1)

    def marginal(self) -> MultivariateNormal:
        """``p(x) = N(b, W Wᵀ + σ² I)``."""
        eye = torch.eye(self.weight.shape[0], dtype=self.weight.dtype, device=self.weight.device)
        return MultivariateNormal(self.bias, self.weight @ self.weight.T + self.noise_scale**2 * eye)

    def log_evidence(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x)``, shape ``(B,)`` for ``x: (B, D_x)``."""
        return self.marginal().log_prob(x)

    def posterior(self, x: torch.Tensor) -> MultivariateNormal:
        """``p(z | x) = N(S Wᵀ (x - b) / σ², S)``, ``S = (I + WᵀW/σ²)⁻¹``; batch shape ``(B,)``."""
        W, var = self.weight, self.noise_scale**2
        eye = torch.eye(self.latent_dim, dtype=W.dtype, device=W.device)
        covariance = torch.linalg.inv(eye + W.T @ W / var)
        covariance = (covariance + covariance.T) / 2
        loc = (x - self.bias) @ W @ covariance / var  # S symmetric, so (S Wᵀ (x-b))ᵀ = (x-b)ᵀ W S
        return MultivariateNormal(loc, covariance_matrix=covariance.expand(x.shape[0], -1, -1))


def as_multivariate_normal(q: Distribution) -> MultivariateNormal:
    """A Gaussian ``q`` (diagonal, low-rank or full-rank) as a ``MultivariateNormal``."""
    if isinstance(q, MultivariateNormal):
        return q
    if isinstance(q, Independent) and isinstance(q.base_dist, Normal) and q.reinterpreted_batch_ndims == 1:
        return MultivariateNormal(q.base_dist.loc, scale_tril=torch.diag_embed(q.base_dist.scale))
    if hasattr(q, "covariance_matrix"):
        return MultivariateNormal(q.mean, covariance_matrix=q.covariance_matrix)
    raise InputError(f"expected a Gaussian distribution, got {type(q).__name__}")


def exact_elbo(model: LinearGaussian, q: Distribution, x: torch.Tensor) -> torch.Tensor:
    """The exact ELBO of a Gaussian ``q`` under ``model``: ``log p(x) - KL(q ‖ p(z|x))``, shape ``(B,)``.

    Differentiable in q's and the model's parameters, so its gradient is the exact gradient of the ELBO.
    """
    return model.log_evidence(x) - kl_divergence(as_multivariate_normal(q), model.posterior(x))
