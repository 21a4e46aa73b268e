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

The method ``bam`` of ``elbo.fit`` runs these steps from the start's Gaussian (``run``).
"""

from __future__ import annotations

import time

import torch
from tqdm.auto import tqdm

from ..._checks import check_fits
from ...errors import InputError
from ..gaussians import NumericalError, make_guide
from ..pathfinder import value_and_grad
from ..stopping import has_converged
from . import MethodResult, Start, announce_cost

__all__ = ["bam_step", "run", "memory_bytes"]


def memory_bytes(dim: int, num_samples: int, element_size: int = 8) -> int:
    """What a step holds: about ten D × D matrices (Σ, V, U, C, Γ, their factors and eigenvectors) and the draws, the
    scores and their centred copies (``num_samples × D`` each)."""
    return element_size * (10 * dim * dim + 4 * num_samples * dim)


def _check_memory(start: Start, num_samples: int) -> None:
    """Refuse a run that cannot fit in memory."""
    dim = start.model.dim
    check_fits(memory_bytes(dim, num_samples, start.loc.element_size()), "cpu",
               what=f"batch and match on D = {dim} ({num_samples} draws a step)", argument="family",
               remedy="use family='meanfield' or 'lowrank' (method 'advi'), or method='pathfinder'")



def _announce(config, seconds: float, num_samples: int, dim: int) -> None:
    """After the first step, timed: what at least three windows of steps will cost (``CostWarning`` when long)."""
    steps = 3 * config.steps_per_window()
    announce_cost("batch and match", (steps - 1) * seconds,
                  f"{seconds:.2g} s a step, timed: {num_samples} draws' gradients on all data and a D = {dim} "
                  f"eigendecomposition; at least {steps} steps")


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


def run(start: Start) -> MethodResult:
    """Batch and match from the start's Gaussian: ``bam_step`` with ``λ_t = B D / (t + 1)`` (Cai et al. 2024's
    schedule); a step that breaks (a covariance that is not positive definite, or not finite) is taken again from
    the state before it with λ halved from then on, until λ has been halved 10 times; q is the average of the last
    window's iterates."""
    config, log_density, dim, window = start.config, start.log_density, start.model.dim, start.config.steps_per_window()
    num_samples = config.num_samples or 2 * dim + 2
    _check_memory(start, num_samples)
    loc, scale_tril = start.loc, start.scale_tril
    cov = scale_tril @ scale_tril.T
    trace, iterates, num_dropped, converged, reason, shrink = [], [], 0, False, f"reached max_steps = " \
        f"{config.max_steps}", 1.0
    clock = time.perf_counter()
    with tqdm(total=config.max_steps, desc="fit fullrank (BaM)", disable=not config.progress, leave=False) as bar:
        for step in range(config.max_steps):
            if step == 1:
                _announce(config, time.perf_counter() - clock, num_samples, dim)
            q = torch.distributions.MultivariateNormal(loc, covariance_matrix=cov, validate_args=False)
            z = q.sample((num_samples,))
            log_p, grad = value_and_grad(log_density, z)
            finite = torch.isfinite(log_p) & torch.isfinite(grad).all(1)
            num_dropped += int((~finite).sum())
            if not bool(finite.any()):
                raise InputError(f"the log density is NaN or inf at all {num_samples} draws of q at step {step}: "
                                 f"check log_joint and the constraints")
            trace.append((log_p[finite] - q.log_prob(z[finite])).mean().item())
            previous = (loc, cov)
            try:
                loc, cov = bam_step(loc, cov, z[finite], grad[finite], shrink * num_samples * dim / (step + 1))
                if not bool(torch.isfinite(loc).all() and torch.isfinite(cov).all()):
                    raise torch.linalg.LinAlgError("the step gave a mean or covariance that is not finite")
                torch.linalg.cholesky(cov)  # the next step's draws need it
            except torch.linalg.LinAlgError as error:
                if shrink < 1e-3:
                    raise NumericalError(f"batch and match broke down at step {step}: {error}") from None
                shrink /= 2
                loc, cov = previous
                continue
            iterates = (iterates + [(loc, cov)])[-window:]
            bar.update()
            if (step + 1) % window == 0:
                bar.set_postfix(elbo=f"{sum(trace[-window:]) / window:.4g}")
                if has_converged(trace, window):
                    converged, reason = True, f"converged at step {step + 1}: the ELBO estimate stopped improving"
                    break
    iterates = iterates or [(loc, cov)]  # max_steps reached before any step succeeded
    loc = torch.stack([it[0] for it in iterates]).mean(0)
    cov = torch.stack([it[1] for it in iterates]).mean(0)
    return MethodResult(make_guide(config, dim, loc, torch.linalg.cholesky(cov)), trace, converged, reason,
                        num_dropped)
