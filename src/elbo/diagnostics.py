"""How far is q from the posterior? Pareto-smoothed importance sampling (PSIS) and its k̂.

With draws ``z_s ~ q`` and log-weights ``log w_s = log p(x, z_s) - log q(z_s)``, PSIS (Vehtari et al. 2024) fits a
generalized Pareto distribution to the largest weights and replaces them by its quantiles. The fitted shape k̂
estimates how heavy the tail of the weights is: the weights have finite moments of order below 1/k. Yao et al.
(2018) read it as a diagnostic of the variational approximation:

- k̂ < 0.5: q is close to the posterior; importance-sampling estimates converge fast;
- 0.5 ≤ k̂ < 0.7: the draws are usable, PSIS estimates converge, more slowly;
- k̂ ≥ 0.7: q misses mass the posterior has; its draws and every importance-sampling estimate from them
  (PSIS means, the log-evidence estimate) are unreliable.
"""

from __future__ import annotations

import torch

from ._optional import require

__all__ = ["KHAT_THRESHOLD", "psis", "khat_meaning"]

KHAT_THRESHOLD = 0.7


def psis(log_w: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Pareto-smoothed, self-normalized log-weights (shape of ``log_w``, ``(M,)``) and k̂, by ArviZ's ``psislw``.

    The draws are independent (from q, not a Markov chain), so the relative efficiency ``reff`` is 1.
    """
    if log_w.dim() != 1 or log_w.shape[0] < 2:
        raise ValueError(f"log_w must have shape (M,) with M >= 2 draws, got {tuple(log_w.shape)}")
    arviz = require("arviz", extra="mcmc", feature="PSIS k̂")
    log_w_smoothed, khat = arviz.psislw(log_w.detach().cpu().double().numpy(), reff=1.0)
    return torch.as_tensor(log_w_smoothed, dtype=log_w.dtype, device=log_w.device), float(khat)


def khat_meaning(khat: float) -> str:
    """One line saying what a value of k̂ means for q (thresholds of Yao et al. 2018)."""
    if khat < 0.5:
        return "k̂ < 0.5: q is close to the posterior; importance-sampling estimates are reliable"
    if khat < KHAT_THRESHOLD:
        return "0.5 ≤ k̂ < 0.7: the draws are usable; importance-sampling estimates converge slowly"
    return ("k̂ ≥ 0.7: q misses posterior mass; its draws and importance-sampling estimates "
            "(PSIS means, log evidence) are unreliable")
