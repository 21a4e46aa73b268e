"""When a fit stops: the window rule on the trace of ELBO estimates, shared by the methods."""

from __future__ import annotations

import math

import torch

__all__ = ["has_converged"]


def has_converged(elbo_trace, window: int, *, num_se: float = 2.0) -> bool:
    """True when, at each of the last two checks (``window`` steps apart), the mean ELBO estimate of the last
    ``window`` steps was not above that of the window before by ``num_se`` standard errors of the difference.

    The standard error comes from the spread of the estimates within each window, so the rule is scale-free: a
    model with ELBO ≈ -1 and one with ELBO ≈ -1e4 stop when their progress drowns in their own Monte Carlo noise,
    where a relative change (Stan's ADVI rule) never fires on the first and fires early on the second."""
    def improving(trace):
        if len(trace) < 2 * window:
            return True
        before = torch.tensor(trace[-2 * window:-window], dtype=torch.float64)
        last = torch.tensor(trace[-window:], dtype=torch.float64)
        stderr = math.sqrt((before.var() + last.var()).item() / window)
        return (last.mean() - before.mean()).item() > num_se * stderr

    return len(elbo_trace) >= 3 * window and not improving(elbo_trace) and not improving(elbo_trace[:-window])
