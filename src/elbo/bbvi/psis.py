"""PSIS k̂: how far q is from the posterior (black-box VI, ``elbo.fit``).

How far is q from the posterior? Pareto-smoothed importance sampling (PSIS) and its k̂ (``psis``, ``khat_meaning``).
With draws ``z_s ~ q`` and log-weights ``log w_s = log p(x, z_s) - log q(z_s)``, PSIS (Vehtari et al. 2024) fits a
generalized Pareto distribution to the largest weights and replaces them by its quantiles. The fitted shape k̂
estimates how heavy the tail of the weights is: the weights have finite moments of order below 1/k. Yao et al.
(2018) read it as a diagnostic of the variational approximation:

- k̂ < 0.5: q is close to the posterior; importance-sampling estimates converge fast;
- 0.5 ≤ k̂ < 0.7: q is not perfect but still useful: the PSIS-reweighted estimates converge, more slowly, and
  they (not q's raw draws) are the ones to report;
- k̂ ≥ 0.7: q misses mass the posterior has; its draws and every importance-sampling estimate from them
  (PSIS means, the log-evidence estimate) are unreliable.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._optional import require
from ..errors import InputError

__all__ = ["KHAT_THRESHOLD", "psis", "khat_meaning"]

KHAT_THRESHOLD = 0.7

def psis(log_w: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Pareto-smoothed, self-normalized log-weights (shape of ``log_w``, ``(M,)``) and k̂, by arviz-stats' ``psislw``
    (Vehtari et al. 2024; the draws are independent, from q, so the relative efficiency is 1).

    k̂ is Zhang and Stephens' generalized-Pareto fit (arviz-stats) checked against Hill's estimator of the same
    tail index (the mean log-excess of the largest weights over the threshold; Hill 1975), the maximum-likelihood
    estimate for a Pareto tail. The two agree to about 0.1 on heavy tails (t and generalized-Pareto weights with k
    from 0.5 to 1, and q too narrow for its target). Where they fall on either side of 0.7, the diagnostic takes
    the side that warns, unless the fit is the one that failed:

    - the largest weights all equal to 1e-9 (q proportional to the posterior, or a constant log density):
      importance sampling is exact; the weights are left as they are and k̂ is ``-inf``;
    - Hill ≥ 0.7 while the fit is below it: k̂ is Hill's. A mean-field q of a correlated regression posterior
      (sds 8% of the posterior's) gave fit 0.61 and Hill 0.85 for seed 0, and 1.01 / 0.90 for seed 1;
    - a spike at the threshold: when q is nearly exact the log-weights are almost constant and pile up at a local
      maximum of ``log w(z)``, with a few draws of q's far tails above it. The fit then returns anything from 0.4
      to 7 for weights that span a factor of two (issue 11's beta-binomial: 3.4 to 7 over seeds at the KL-optimal
      q, 0.38 to 6.5 for mean-field fits in float32), while Hill's estimate stays at 0.04 to 0.09. Where Hill's
      is below 0.5 and the fit exceeds it by more than 0.3 (more than the 0.18 seen on any genuine tail), k̂ is
      Hill's.
    """
    if log_w.dim() != 1 or log_w.shape[0] < 2:
        raise InputError(f"log_w must have shape (M,) with M >= 2 draws, got {tuple(log_w.shape)}")
    if not bool(torch.isfinite(log_w).all()):
        raise InputError(f"log_w must be finite; {int((~torch.isfinite(log_w)).sum())} of {len(log_w)} are not")
    require("arviz_stats", extra="mcmc", feature="PSIS k̂")
    from arviz_stats.base import array_stats

    values = log_w.detach().cpu().double().numpy()
    tail_size = int(min(0.2 * len(values), math.ceil(3 * math.sqrt(len(values)))))
    if tail_size < 5:  # arviz-stats needs 5 tail draws: 9 draws or more
        return log_w - torch.logsumexp(log_w, 0), math.nan
    tail = np.sort(values)[-tail_size - 1:]
    if tail[-1] - tail[0] <= 1e-9:  # equal to round-off: q is the posterior (BaM on a Gaussian: 4e-13)
        return log_w - torch.logsumexp(log_w, 0), -math.inf
    # arviz-stats' psislw takes a log-likelihood (leave-one-out's log-weights are its negative), so -log w
    with np.errstate(divide="ignore", invalid="ignore"):  # its fit on a nearly flat tail; checked below
        log_w_smoothed, khat = array_stats.psislw(-values, r_eff=1.0)
    khat = float(khat)
    hill = float(np.mean(tail[1:] - tail[0]))
    if not math.isfinite(khat):
        khat = hill
    if hill < 0.5 and khat - hill > 0.3:  # a spike at the threshold: the fit failed
        khat = hill
    elif khat < KHAT_THRESHOLD <= hill:
        khat = hill
    return torch.as_tensor(log_w_smoothed, dtype=log_w.dtype, device=log_w.device), khat


def khat_meaning(khat: float) -> str:
    """One line saying what a value of k̂ means for q (thresholds of Yao et al. 2018)."""
    if math.isnan(khat):
        return "k̂ is undefined: too few draws of q (at least 9) for a Pareto tail"
    if khat < 0.5:
        return "k̂ < 0.5: q is close to the posterior; its PSIS-reweighted estimates are reliable"
    if khat < KHAT_THRESHOLD:
        return ("0.5 ≤ k̂ < 0.7: q is not perfect but useful: report the PSIS-reweighted estimates, which converge "
                "slowly")
    return ("k̂ ≥ 0.7: q misses posterior mass; its draws and importance-sampling estimates "
            "(PSIS means, log evidence) are unreliable")
