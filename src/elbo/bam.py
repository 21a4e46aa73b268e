"""Batch and match (BaM; Cai, Modi, Pillaud-Vivien, Margossian, Gower, Blei & Saul 2024, ICML): a full-rank
Gaussian q fitted by matching scores, in closed-form proximal steps.

At step t, with ``B`` draws ``z_b ~ q_t = N(μ_t, Σ_t)`` and the scores ``g_b = ∇log p(z_b)``, their means ``z̄,
ḡ`` and covariances ``C = cov(z)``, ``Γ = cov(g)``, and a step size ``λ_t``:

    U = λ Γ + λ/(1+λ) ḡ ḡᵀ,    V = Σ_t + λ C + λ/(1+λ) (μ_t - z̄)(μ_t - z̄)ᵀ,
    Σ_{t+1} = 2 V (I + (I + 4 U V)^{1/2})^{-1},    μ_{t+1} = μ_t / (1+λ) + λ/(1+λ) (Σ_{t+1} ḡ + z̄).

The step minimises the score-based divergence of the batch plus a KL proximity term to q_t; on a Gaussian target
its fixed point is the target itself, which it reaches exponentially fast as B grows (their Theorem 3.1). With
``V = L Lᵀ`` and ``Lᵀ U L = Q diag(e) Qᵀ``, ``Σ_{t+1} = L Q diag(2 / (1 + √(1 + 4e))) Qᵀ Lᵀ``: symmetric and
positive definite by construction, with no square root of a non-symmetric matrix.
"""

from __future__ import annotations

import torch

__all__ = ["bam_step"]


def bam_step(loc: torch.Tensor, cov: torch.Tensor, z: torch.Tensor, grad: torch.Tensor, lam: float):
    """One BaM update of ``q = N(loc (D,), cov (D, D))`` from draws ``z: (B, D)`` of q and scores ``grad: (B, D)``;
    returns the new ``(loc, cov)``."""
    num = z.shape[0]
    z_mean, g_mean = z.mean(0), grad.mean(0)
    z_c, g_c = z - z_mean, grad - g_mean
    c, gamma = z_c.T @ z_c / num, g_c.T @ g_c / num
    shrink = lam / (1 + lam)
    u = lam * gamma + shrink * torch.outer(g_mean, g_mean)
    v = cov + lam * c + shrink * torch.outer(loc - z_mean, loc - z_mean)
    v = 0.5 * (v + v.T)
    chol = torch.linalg.cholesky(v)
    m = chol.T @ u @ chol
    e, q = torch.linalg.eigh(0.5 * (m + m.T))
    factor = chol @ q
    new_cov = factor @ torch.diag(2 / (1 + torch.sqrt(1 + 4 * e.clamp_min(0)))) @ factor.T
    new_cov = 0.5 * (new_cov + new_cov.T)
    new_loc = loc / (1 + lam) + shrink * (new_cov @ g_mean + z_mean)
    return new_loc, new_cov
