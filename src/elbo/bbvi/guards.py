"""Guards on where a fit starts and on what it reports: a start never worse than the plain initial point, and no
"converged" with an ELBO far below the start's (issue 27).

The reference is the Gaussian ``N(z0, init_scale² I)`` at the initial point, the start of ``init="point"``: every
Gaussian family contains it, so a fitted q's ELBO must not be far below its ELBO. Where Pathfinder's best Gaussian is
worse than it, Pathfinder has run off to a degenerate mode. Neal's funnel is the case: its joint density rises without
bound into the neck (``log p`` has its maximum at the log-scale ``v ≈ -40.5`` with every ``x = 0``), so L-BFGS ends
there, and from a Gaussian with sds of 1e-10 batch and match "converged" at an ELBO of -4e17 where the reference's is
about -12. The fit then starts from the reference instead (``prefer_point``), and ``check_converged`` refuses the word
"converged" to any fit whose ELBO ends far below its start's.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from .methods import MethodResult, Start

__all__ = ["elbo_estimate", "gaussian_elbo", "prefer_point", "check_converged", "NUM_REFERENCE_DRAWS"]

NUM_REFERENCE_DRAWS = 32  # draws of the reference Gaussian, each a pass over all data


def elbo_estimate(log_density, q, num_draws: int) -> tuple[float, float]:
    """The ELBO of ``q`` (a distribution of batch shape ``(1,)`` over z) estimated from ``num_draws`` draws, and its
    standard error; where ``log p`` is not finite at a draw, the estimate is ``-inf``."""
    with torch.no_grad():
        z = q.sample((num_draws,))[:, 0]
        log_w = log_density(z) - q.log_prob(z[:, None])[:, 0]
    if not bool(torch.isfinite(log_w).all()):
        return -math.inf, math.inf
    return log_w.mean().item(), (log_w.std() / math.sqrt(num_draws)).item()


def gaussian_elbo(log_density, loc: torch.Tensor, scale: torch.Tensor, num_draws: int = NUM_REFERENCE_DRAWS):
    """``elbo_estimate`` of ``N(loc, diag(scale²))``."""
    q = torch.distributions.Independent(torch.distributions.Normal(loc[None], scale[None]), 1)
    return elbo_estimate(log_density, q, num_draws)


def prefer_point(start: Start, z0: torch.Tensor, start_elbo: float) -> Start:
    """``start`` (Pathfinder's, with ELBO estimate ``start_elbo``), or the initial point's Gaussian ``N(z0,
    init_scale² I)`` where that one's ELBO is higher by more than 3 standard errors. Either way the start carries the
    reference's ELBO (``reference_elbo``) for ``check_converged``. Method ``"pathfinder"`` keeps Pathfinder's."""
    scale = torch.full_like(z0, start.config.init_scale)
    reference, stderr = gaussian_elbo(start.log_density, z0, scale)
    keep = start.config.method == "pathfinder" or not reference - 3 * stderr > start_elbo
    chosen = start if keep else dataclasses.replace(
        start, loc=z0, scale=scale, covariance=None,
        origin=f"the initial point with scale {start.config.init_scale:g} (ELBO {reference:.4g}), not "
               f"Pathfinder's Gaussian, whose ELBO was {start_elbo:.4g}: {start.origin}")
    chosen.elbo, chosen.reference_elbo = (start_elbo, reference) if keep else (reference, reference)
    return chosen


def check_converged(fitted: MethodResult, start: Start, window: int) -> MethodResult:
    """``fitted``, not converged, where its ELBO (the mean of the last ``window`` estimates) ends far below the
    reference: by more than the size of the reference itself and 10 times the estimates' spread (an ELBO of -4e17
    against -12). The methods climb the ELBO, so that is a collapse, not convergence. A method with no steps
    (``"pathfinder"``) is judged by its start's ELBO."""
    reference, trace = start.reference_elbo, fitted.elbo_trace[-window:] or [start.elbo]
    if reference is None or not math.isfinite(reference) or None in trace or not fitted.converged:
        return fitted
    trace = torch.tensor(trace, dtype=torch.float64)
    final = trace.mean().item()
    spread = trace.std().item() if len(trace) > 1 else 0.0
    if not final < reference - abs(reference) - 10 * spread - 10:
        return fitted
    reason = (f"not converged: its ELBO ended at {final:.4g}, far below the {reference:.4g} of the start "
              f"(q collapsed; {fitted.reason})")
    return dataclasses.replace(fitted, converged=False, reason=reason)
