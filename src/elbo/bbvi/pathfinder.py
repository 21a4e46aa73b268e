"""Pathfinder (Zhang, Carpenter, Gelman & Vehtari 2022, JMLR 23(306)): Gaussian approximations along an L-BFGS path.

L-BFGS climbs ``log p(z)`` from an initial point; at each iterate ``z_l`` its inverse-Hessian estimate ``H_l``
(built from the last ``history`` pairs of steps ``s`` and gradient changes ``y``, Nocedal & Wright 2006, 7.2)
defines the Gaussian ``q_l = N(z_l + H_l ∇log p(z_l), H_l)``, a Newton step's mean with the local curvature as
covariance. Each ``q_l`` is scored by a Monte Carlo ELBO with ``num_elbo_draws`` draws, and the best is returned;
on long paths, the scored iterates thin out past the first 64 (``scored``), the last one always scored.
On a Gaussian target with at least ``D`` pairs the estimate is exact and so is the best ``q_l``.

This is single-path Pathfinder with the classic L-BFGS initial scaling ``H_0 = (sᵀy / yᵀy) I`` where the paper uses
a diagonal estimate. ``H_l`` is never formed: it is kept in L-BFGS's compact form ``H = diag(α) + β γ βᵀ`` with
``β`` of ``D × 2m`` and ``γ`` of ``2m × 2m`` for ``m ≤ history`` pairs (Byrd, Nocedal & Schnabel 1994, eq. 2.6), and
its Gaussian is drawn from and scored through a thin QR of ``diag(α)^{-1/2} β`` (Zhang et al. 2022, Algorithm 4):
``O(D m²)`` time and ``O(D m)`` memory per iterate, and only the best Gaussian is kept. The line search backtracks to
the Armijo condition and drops a pair that fails the curvature condition ``sᵀy > ε yᵀy``, so every ``H_l`` stays
positive definite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Protocol, runtime_checkable

import torch
from tqdm.auto import tqdm

from ..errors import InputError

__all__ = ["value_and_grad", "lbfgs", "Path", "inverse_hessian", "compact_inverse_hessian", "compact_variance",
           "LowRankGaussian",
           "pathfinder", "PathfinderResult"]

CURVATURE_EPS = 2.2e-16  # sᵀy must exceed this times yᵀy (Zhang et al. 2022, Algorithm 1)


@runtime_checkable
class Differentiable(Protocol):
    """A log density that computes its own gradient (``elbo.Model``'s, by chunks of rows in bounded memory)."""

    def value_and_grad(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


def value_and_grad(log_density, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``log p(z)`` of shape ``(S,)`` and its gradient ``(S, D)`` for ``z: (S, D)``."""
    if isinstance(log_density, Differentiable):
        return log_density.value_and_grad(z.detach())
    z = z.detach().requires_grad_(True)
    with torch.enable_grad():
        log_p = log_density(z)
        (grad,) = torch.autograd.grad(log_p.sum(), z)
    return log_p.detach(), grad


@dataclass
class Path:
    """The iterates of L-BFGS and what it took: ``z (L+1, D)``, ``log_p (L+1,)``, ``grad (L+1, D)``, the
    accepted pairs ``(s, y)`` in order with the iterate each was accepted at, and evaluation counts; without the
    whole path kept (``lbfgs(keep_path=False)``), ``z`` and ``grad`` hold the last iterate and ``pairs`` the last
    ``history``, and ``num_iterates`` still counts them all."""

    z: torch.Tensor
    log_p: torch.Tensor
    grad: torch.Tensor
    pairs: list = field(repr=False)  # [(iterate index l, s, y)], y = ∇(-log p)(z_l) - ∇(-log p)(z_{l-1})
    num_evals: int = 0
    reason: str = ""
    num_iterates: int = 0


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
          grad_tol: float = 1e-8, progress: bool = False, visit=None, keep_path: bool = True) -> Path:
    """Maximise ``log_density`` (``(S, D) -> (S,)``) from ``z0: (D,)`` by L-BFGS with a backtracking line search.

    Stops when the relative change of ``log p`` over an iteration is below ``rel_tol``, the gradient's largest
    entry is below ``grad_tol``, the line search finds no increase in 40 halvings, or after ``max_iters``.
    ``visit(index, z, grad, pairs)``, if given, is called at each new iterate with the pairs accepted so far; with
    ``keep_path=False`` the path keeps only the last iterate and the last ``history`` pairs (``O(D · history)``
    memory, where the whole path is ``O(D · iterations)``)."""
    log_p, grad = value_and_grad(log_density, z0[None])
    if not bool(torch.isfinite(log_p).all() and torch.isfinite(grad).all()):
        raise InputError(f"the log density or its gradient is not finite at the initial point (log p = "
                         f"{log_p.item()})")
    zs, log_ps, grads, pairs, num_evals, index = [z0], [log_p[0]], [grad[0]], [], 1, 0
    reason = f"reached max_iters = {max_iters}"
    for _ in tqdm(range(max_iters), desc="L-BFGS (at most)", disable=not progress, leave=False):
        z, lp, g = zs[-1], log_ps[-1], grads[-1]
        if g.abs().max() <= grad_tol:
            reason = f"the gradient fell below {grad_tol:g}"
            break
        found, evaluations = _line_search(log_density, z, lp, g, pairs, history)
        num_evals += evaluations
        if found is None:
            reason = "the line search found no increase of log p"
            break
        (z_new, lp_new, g_new), index = found, index + 1
        s, y = z_new - z, -(g_new - g)
        zs, grads = (zs + [z_new], grads + [g_new]) if keep_path else ([z_new], [g_new])
        log_ps.append(lp_new)
        if s @ y > CURVATURE_EPS * (y @ y):
            pairs = pairs + [(index, s, y)] if keep_path else (pairs + [(index, s, y)])[-history:]
        if visit is not None:
            visit(index, z_new, g_new, pairs)
        if abs(lp_new - lp) <= rel_tol * max(abs(lp_new), abs(lp), 1.0):
            reason = f"the relative change of log p fell below {rel_tol:g}"
            break
    return Path(torch.stack(zs), torch.stack(log_ps), torch.stack(grads), pairs, num_evals, reason, index + 1)


def _line_search(log_density, z, lp, g, pairs, history):
    """Backtracking to the Armijo condition along L-BFGS's direction: ``((z, log p, grad) or None, evaluations)``."""
    d = _direction(g, pairs, history)
    slope = g @ d
    if not slope > 0:  # not an ascent direction (round-off): restart from the gradient
        d, slope = g, g @ g
    step = 1.0 if pairs else min(1.0, 1.0 / g.abs().max().item())
    for evaluations in range(1, 41):
        z_new = z + step * d
        lp_new, g_new = value_and_grad(log_density, z_new[None])
        if bool(torch.isfinite(lp_new).all() and torch.isfinite(g_new).all()) and \
                lp_new[0] >= lp + 1e-4 * step * slope:
            return (z_new, lp_new[0], g_new[0]), evaluations
        step /= 2
    return None, 40


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


def compact_inverse_hessian(pairs: list, dim: int):
    """``inverse_hessian(pairs)`` as ``(α (D,), β (D, 2m), γ (2m, 2m))`` with ``H = diag(α) + β γ βᵀ``:
    ``H_0 = θ I``, ``θ = sᵀy / yᵀy`` of the newest pair, ``β = [S, θ Y]`` and
    ``γ = [[R⁻ᵀ (D + θ YᵀY) R⁻¹, -R⁻ᵀ], [-R⁻¹, 0]]``, ``R`` the upper triangle of ``SᵀY`` and ``D`` its diagonal."""
    s_mat = torch.stack([s for _, s, _ in pairs], 1)  # (D, m)
    y_mat = torch.stack([y for _, _, y in pairs], 1)
    theta = (s_mat[:, -1] @ y_mat[:, -1]) / (y_mat[:, -1] @ y_mat[:, -1])
    sy = s_mat.T @ y_mat  # (m, m)
    eye = torch.eye(len(pairs), dtype=sy.dtype)
    r_inv = torch.linalg.solve_triangular(sy.triu(), eye, upper=True)
    top_left = r_inv.T @ (torch.diag(sy.diagonal()) + theta * y_mat.T @ y_mat) @ r_inv
    gamma = torch.cat([torch.cat([top_left, -r_inv.T], 1), torch.cat([-r_inv, torch.zeros_like(r_inv)], 1)], 0)
    return torch.full((dim,), theta.item(), dtype=s_mat.dtype), torch.cat([s_mat, theta * y_mat], 1), gamma


def compact_variance(pairs: list, dim: int) -> torch.Tensor:
    """The diagonal of ``inverse_hessian(pairs)``, ``(D,)``, from the compact form (``O(D m²)``)."""
    return _diagonal(*compact_inverse_hessian(pairs, dim))


def _diagonal(alpha: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """The diagonal of ``diag(α) + β γ βᵀ`` without forming it."""
    return alpha + ((beta @ gamma) * beta).sum(1)


class LowRankGaussian:
    """``N(loc, Σ)`` with ``Σ = diag(α) + β γ βᵀ`` (``compact_inverse_hessian``), without a ``D × D`` matrix.

    With ``diag(α)^{-1/2} β = Q R`` (thin QR) and ``L Lᵀ = I + R γ Rᵀ``, ``Σ = S Sᵀ`` for
    ``S = diag(α)^{1/2} (I + Q (L - I) Qᵀ)``, so ``z = loc + S u``, ``u ~ N(0, I)``, with
    ``log q(z) = -½ (D log 2π + log det Σ + |u|²)`` and ``log det Σ = Σ log α + 2 log det L``.
    ``positive_definite`` is False where ``I + R γ Rᵀ`` has no Cholesky factor (``Σ`` is not positive definite)."""

    def __init__(self, loc: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor):
        self.loc, self.alpha, self.beta, self.gamma = loc, alpha, beta, gamma
        self._q, r = torch.linalg.qr(beta / alpha.sqrt()[:, None])
        middle = torch.eye(r.shape[0], dtype=gamma.dtype) + r @ gamma @ r.T  # k × k, k = min(D, 2m)
        self._chol, info = torch.linalg.cholesky_ex(0.5 * (middle + middle.T))
        self.positive_definite = bool(info == 0)
        self.log_det = alpha.log().sum() + 2 * self._chol.diagonal().log().sum()

    def sample_and_log_prob(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` draws ``(n, D)`` and their ``log q`` ``(n,)``."""
        u = torch.randn(n, len(self.loc), dtype=self.loc.dtype)
        correction = (u @ self._q) @ (self._chol - torch.eye(len(self._chol), dtype=u.dtype)).T @ self._q.T
        z = self.loc + self.alpha.sqrt() * (u + correction)
        return z, -0.5 * (len(self.loc) * math.log(2 * math.pi) + self.log_det + (u**2).sum(1))

    @property
    def variance(self) -> torch.Tensor:
        """The diagonal of ``Σ``, ``(D,)``."""
        return _diagonal(self.alpha, self.beta, self.gamma)

    def covariance(self) -> torch.Tensor:
        """``Σ``, ``(D, D)``: formed only when asked for (a full-rank q's start)."""
        return torch.diag(self.alpha) + self.beta @ self.gamma @ self.beta.T


@dataclass
class PathfinderResult:
    """The best Gaussian of the path (``gaussian``: ``loc (D,)``, ``variance``, and ``scale_tril (D, D)`` formed
    when asked for), its ELBO estimate, which iterate it is at, the path, and the numbers of log-density
    evaluations with and without a gradient."""

    gaussian: LowRankGaussian | None
    elbo: float
    best_iter: int
    path: Path = field(repr=False)
    num_grad_evals: int
    num_density_evals: int

    @property
    def loc(self) -> torch.Tensor:
        return self.path.z[-1] if self.gaussian is None else self.gaussian.loc

    @property
    def variance(self) -> torch.Tensor:
        return torch.ones_like(self.loc) if self.gaussian is None else self.gaussian.variance

    @property
    def scale_tril(self) -> torch.Tensor:
        if self.gaussian is None:
            return torch.eye(len(self.loc), dtype=self.loc.dtype)
        return torch.linalg.cholesky(self.gaussian.covariance())


ALL_SCORED = 64  # iterates scored one and all; beyond, the scored ones thin out as the path doubles


def scored(index: int) -> bool:
    """Whether Pathfinder scores iterate ``index``: every one of the first ``ALL_SCORED``, then every 2nd up to
    ``2 ALL_SCORED``, every 4th up to ``4 ALL_SCORED``, ...: ``ALL_SCORED / 2`` more for each doubling of the path, so
    a path of ``L`` iterates costs ``O(log L)`` ELBO estimates past its start (L-BFGS on MNIST's 785 pixels takes
    about 900 iterates, whose scores cost six times the path itself) and the last iterate is scored all the same."""
    if index < ALL_SCORED:
        return True
    return index % (1 << (index // ALL_SCORED).bit_length()) == 0


def pathfinder(log_density, z0: torch.Tensor, *, num_elbo_draws: int = 10, history: int = 6,
               max_iters: int = 1000, rel_tol: float = 1e-10, progress: bool = False) -> PathfinderResult:
    """Single-path Pathfinder from ``z0: (D,)``: L-BFGS on ``log_density`` (``(S, D) -> (S,)``), a Gaussian at each
    iterate, the one with the highest ELBO estimate (``num_elbo_draws`` draws each). Where no iterate has a pair
    (the start is the mode), the result is ``N(z0, I)`` with an ELBO of -inf."""
    best = SimpleNamespace(q=None, elbo=-math.inf, index=0, num_scored=0, last=-1)

    def score(index: int, z: torch.Tensor, grad: torch.Tensor, pairs: list, every: bool = False) -> None:
        """The Gaussian at iterate ``index``, scored by its ELBO estimate; kept if it is the best so far."""
        if not pairs or not (every or scored(index)):
            return
        best.last = index
        alpha, beta, gamma = compact_inverse_hessian(pairs[-history:], len(z0))
        loc = z + alpha * grad + beta @ (gamma @ (beta.T @ grad))  # z + H ∇log p
        q = LowRankGaussian(loc, alpha, beta, gamma)
        if not q.positive_definite:
            return
        draws, log_q = q.sample_and_log_prob(num_elbo_draws)
        with torch.no_grad():
            log_w = log_density(draws) - log_q
        best.num_scored += num_elbo_draws
        elbo = torch.where(torch.isnan(log_w), -math.inf, log_w).mean().item()
        if best.q is None or elbo > best.elbo:
            best.q, best.elbo, best.index = q, elbo, index

    # each iterate is scored as L-BFGS reaches it, and only the last pairs and the best Gaussian are kept
    path = lbfgs(log_density, z0, max_iters=max_iters, history=history, rel_tol=rel_tol, progress=progress,
                 visit=score, keep_path=False)
    if best.last < path.num_iterates - 1:  # the last iterate, thinned out, is scored all the same
        score(path.num_iterates - 1, path.z[-1], path.grad[-1], path.pairs, every=True)
    best_index = best.index if best.q is not None else path.num_iterates - 1
    return PathfinderResult(best.q, best.elbo, best_index, path, path.num_evals, best.num_scored)
