"""A minibatch log density with a control variate: the log-likelihood's first-order Taylor expansion at a point ẑ
(Baker, Fearnhead, Fox & Nemeth 2019, "Control variates for stochastic gradient MCMC"; here for ADVI's minibatches).

With ``ℓ(z) = Σ_n ℓ_n(z)`` over all N rows, its value ``ℓ(ẑ)`` and gradient ``∇ℓ(ẑ)`` at ẑ (one pass over the data,
by chunks of rows), and a minibatch I of B rows drawn uniformly without replacement,

    ℓ̂(z) = ℓ(ẑ) + ∇ℓ(ẑ)·(z - ẑ) + (N/B) Σ_{n∈I} [ℓ_n(z) - ℓ_n(ẑ) - ∇ℓ_n(ẑ)·(z - ẑ)]

is unbiased for ``ℓ(z)`` (the bracket's expectation over I is ``ℓ(z) - ℓ(ẑ) - ∇ℓ(ẑ)·(z - ẑ)``), and so is its
gradient for ``∇ℓ(z)``. The bracket is the remainder of the expansion, second order in ``z - ẑ``: near ẑ (the start
from L-BFGS, at the mode's scale of a tall data set's posterior) its minibatch noise is that of a curvature, not
of a sum of N log-likelihood terms scaled by N/B, which is what makes a plain minibatch ELBO estimate too noisy for
the stopping rule to see progress. A step costs the batch at the S draws and once at ẑ.
"""

from __future__ import annotations

import torch

from .methods import CountedDensity

__all__ = ["ControlVariate"]


class ControlVariate:
    """``density``'s model on minibatches, with the Taylor expansion of its log-likelihood at ``z_hat`` ``(D,)``
    as control variate; on all rows (``indices`` None), the density itself."""

    def __init__(self, density: CountedDensity, z_hat: torch.Tensor):
        self.density, self.model, self.z_hat = density, density.model, z_hat.detach()
        value, grad = self.model.value_and_grad(self.z_hat[None], part="likelihood")  # one pass over all rows
        self.density.num_grad += 1
        self.value, self.grad = value[0], grad[0]

    def __call__(self, z: torch.Tensor, indices: torch.Tensor | None = None) -> torch.Tensor:
        return self.value_and_grad(z, indices)[0]

    def value_and_grad(self, z: torch.Tensor, indices: torch.Tensor | None = None):
        """The estimate ``log prior + log-Jacobian + ℓ̂(z)`` ``(S,)`` and its gradient ``(S, D)``."""
        if indices is None or indices.shape[0] == self.model.num_data:
            return self.density.value_and_grad(z)
        scale = self.model.num_data / indices.shape[0]
        prior, prior_grad = self.model.value_and_grad(z, part="prior")
        batch, batch_grad = self.model.value_and_grad(z, indices, part="likelihood")
        at_hat, at_hat_grad = self.model.value_and_grad(self.z_hat[None], indices, part="likelihood")
        self.density.num_grad += z.shape[0] + 1
        step = z - self.z_hat
        value = prior + self.value + step @ self.grad + scale * (batch - at_hat - step @ at_hat_grad[0])
        return value, prior_grad + self.grad + scale * (batch_grad - at_hat_grad)
