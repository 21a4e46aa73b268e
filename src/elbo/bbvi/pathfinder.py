"""Pathfinder (Zhang, Carpenter, Gelman & Vehtari 2022, JMLR 23(306)): Gaussian approximations along an L-BFGS path.

L-BFGS climbs ``log p(z)`` from an initial point; at each iterate ``z_l`` its inverse-Hessian estimate ``H_l``
(built from the last ``history`` pairs of steps ``s`` and gradient changes ``y``, Nocedal & Wright 2006, 7.2)
defines the Gaussian ``q_l = N(z_l + H_l ∇log p(z_l), H_l)``, a Newton step's mean with the local curvature as
covariance. Each ``q_l`` is scored by a Monte Carlo ELBO with ``num_elbo_draws`` draws, and the best is returned.
On a Gaussian target with at least ``D`` pairs the estimate is exact and so is the best ``q_l``.

This is single-path Pathfinder with a dense ``H_l`` (``O(D²)`` memory per iterate, kept one at a time) and the
classic L-BFGS initial scaling ``H_0 = (sᵀy / yᵀy) I`` where the paper uses a diagonal estimate. The line search
backtracks to the Armijo condition and drops a pair that fails the curvature condition ``sᵀy > ε yᵀy``, so every
``H_l`` stays positive definite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..errors import InputError

__all__ = ["value_and_grad", "lbfgs", "Path", "pathfinder", "PathfinderResult"]

CURVATURE_EPS = 2.2e-16  # sᵀy must exceed this times yᵀy (Zhang et al. 2022, Algorithm 1)


def value_and_grad(log_density, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``log p(z)`` of shape ``(S,)`` and its gradient ``(S, D)`` for ``z: (S, D)``."""
    z = z.detach().requires_grad_(True)
    with torch.enable_grad():
        log_p = log_density(z)
        (grad,) = torch.autograd.grad(log_p.sum(), z)
    return log_p.detach(), grad


@dataclass
class Path:
    """The iterates of L-BFGS and what it took: ``z (L+1, D)``, ``log_p (L+1,)``, ``grad (L+1, D)``, the
    accepted pairs ``(s, y)`` in order with the iterate each was accepted at, and evaluation counts."""

    z: torch.Tensor
    log_p: torch.Tensor
    grad: torch.Tensor
    pairs: list = field(repr=False)  # [(iterate index l, s, y)], y = ∇(-log p)(z_l) - ∇(-log p)(z_{l-1})
    num_evals: int = 0
    reason: str = ""


def _direction(grad: torch.Tensor, pairs: list, history: int) -> torch.Tensor:
    """``H g`` by the L-BFGS two-loop recursion over the last ``history`` pairs; ``g = ∇log p`` (ascent)."""
    recent = pairs[-history:]
    q, alphas = grad.clone(), []
    for _, s, y in reversed(recent):
        alpha = (s @ q) / (y @ s)
        q = q - alpha * y
        alphas.append(alpha)
    if recent:
        _, s, y = recent[-1]
        q = q * (s @ y) / (y @ y)
    for (_, s, y), alpha in zip(recent, reversed(alphas)):
        beta = (y @ q) / (y @ s)
        q = q + (alpha - beta) * s
    return q


def lbfgs(log_density, z0: torch.Tensor, *, max_iters: int = 1000, history: int = 6, rel_tol: float = 1e-10,
          grad_tol: float = 1e-8) -> Path:
    """Maximise ``log_density`` (``(S, D) -> (S,)``) from ``z0: (D,)`` by L-BFGS with a backtracking line search.

    Stops when the relative change of ``log p`` over an iteration is below ``rel_tol``, the gradient's largest
    entry is below ``grad_tol``, the line search finds no increase in 40 halvings, or after ``max_iters``."""
    log_p, grad = value_and_grad(log_density, z0[None])
    if not bool(torch.isfinite(log_p).all() and torch.isfinite(grad).all()):
        raise InputError(f"the log density or its gradient is not finite at the initial point (log p = "
                         f"{log_p.item()})")
    zs, log_ps, grads, pairs, num_evals = [z0], [log_p[0]], [grad[0]], [], 1
    reason = f"reached max_iters = {max_iters}"
    for _ in range(max_iters):
        z, lp, g = zs[-1], log_ps[-1], grads[-1]
        if g.abs().max() <= grad_tol:
            reason = f"the gradient fell below {grad_tol:g}"
            break
        d = _direction(g, pairs, history)
        slope = g @ d
        if not slope > 0:  # not an ascent direction (round-off): restart from the gradient
            d, slope = g, g @ g
        step = 1.0 if pairs else min(1.0, 1.0 / g.abs().max().item())
        for _ in range(40):
            z_new = z + step * d
            lp_new, g_new = value_and_grad(log_density, z_new[None])
            num_evals += 1
            if bool(torch.isfinite(lp_new).all() and torch.isfinite(g_new).all()) and \
                    lp_new[0] >= lp + 1e-4 * step * slope:
                break
            step /= 2
        else:
            reason = "the line search found no increase of log p"
            break
        lp_new, g_new = lp_new[0], g_new[0]
        s, y = z_new - z, -(g_new - g)
        zs.append(z_new)
        log_ps.append(lp_new)
        grads.append(g_new)
        if s @ y > CURVATURE_EPS * (y @ y):
            pairs.append((len(zs) - 1, s, y))
        if abs(lp_new - lp) <= rel_tol * max(abs(lp_new), abs(lp), 1.0):
            reason = f"the relative change of log p fell below {rel_tol:g}"
            break
    return Path(torch.stack(zs), torch.stack(log_ps), torch.stack(grads), pairs, num_evals, reason)


def inverse_hessian(pairs: list, dim: int, *, dtype=None) -> torch.Tensor:
    """The dense BFGS inverse-Hessian estimate from ``pairs`` (oldest first), started at ``(sᵀy / yᵀy) I`` of the
    newest pair: ``H ← (I - ρ s yᵀ) H (I - ρ y sᵀ) + ρ s sᵀ``, ``ρ = 1 / yᵀs``."""
    eye = torch.eye(dim, dtype=dtype)
    if not pairs:
        return eye
    _, s, y = pairs[-1]
    h = eye * (s @ y) / (y @ y)
    for _, s, y in pairs:
        rho = 1 / (y @ s)
        left = eye - rho * torch.outer(s, y)
        h = left @ h @ left.T + rho * torch.outer(s, s)
    return 0.5 * (h + h.T)


@dataclass
class PathfinderResult:
    """The best Gaussian of the path: ``loc (D,)``, ``scale_tril (D, D)``, its ELBO estimate, which iterate it
    is at, the path, and the numbers of log-density evaluations with and without a gradient."""

    loc: torch.Tensor
    scale_tril: torch.Tensor
    elbo: float
    best_iter: int
    path: Path = field(repr=False)
    num_grad_evals: int
    num_density_evals: int


def pathfinder(log_density, z0: torch.Tensor, *, num_elbo_draws: int = 10, history: int = 6,
               max_iters: int = 1000, rel_tol: float = 1e-10) -> PathfinderResult:
    """Single-path Pathfinder from ``z0: (D,)``: L-BFGS on ``log_density`` (``(S, D) -> (S,)``), a Gaussian at each
    iterate, the one with the highest ELBO estimate (``num_elbo_draws`` draws each, all evaluated in one call)."""
    path = lbfgs(log_density, z0, max_iters=max_iters, history=history, rel_tol=rel_tol)
    dim = z0.shape[0]
    candidates, draws, log_q = [], [], []
    for index in range(1, len(path.z)):
        pairs = [pair for pair in path.pairs if pair[0] <= index][-history:]
        if not pairs:
            continue
        cov = inverse_hessian(pairs, dim, dtype=z0.dtype)
        scale_tril, info = torch.linalg.cholesky_ex(cov)
        if info != 0:
            continue
        loc = path.z[index] + cov @ path.grad[index]
        q = torch.distributions.MultivariateNormal(loc, scale_tril=scale_tril, validate_args=False)
        z = q.sample((num_elbo_draws,))
        candidates.append((index, loc, scale_tril))
        draws.append(z)
        log_q.append(q.log_prob(z))
    if not candidates:  # a path without one accepted pair: the initial point with unit scale
        return PathfinderResult(path.z[-1], torch.eye(dim, dtype=z0.dtype), -math.inf, len(path.z) - 1, path,
                                path.num_evals, 0)
    with torch.no_grad():
        log_p = torch.cat([log_density(z) for z in torch.cat(draws).split(4096)])
    log_w = (log_p.reshape(len(candidates), num_elbo_draws) - torch.stack(log_q))
    log_w = torch.where(torch.isnan(log_w), -math.inf, log_w)
    elbos = log_w.mean(1)
    best = int(elbos.argmax())
    index, loc, scale_tril = candidates[best]
    return PathfinderResult(loc, scale_tril, elbos[best].item(), index, path, path.num_evals,
                            len(candidates) * num_elbo_draws)

