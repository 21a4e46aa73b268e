"""``log p(x)`` of an ``elbo.fit`` model by annealed importance sampling from the fitted q (``elbo.ais``): what
``Fit.evidence(method="ais")`` computes. The path runs from q to the posterior in the unconstrained space, where the
log density carries the transforms' log-Jacobians, so its normalizer is the model's evidence (up to whatever
constants ``log_joint`` leaves out), as for ``Fit.log_evidence``."""

from __future__ import annotations

import time

import torch

from .. import ais
from .context import default_dtype

__all__ = ["ais_evidence"]


def ais_evidence(fit, *, num_steps: int, num_chains: int, num_leapfrog: int, progress: bool) -> dict:
    """AIS from ``fit.q`` to the posterior of ``fit.model`` in ``num_steps`` steps, ``num_chains`` chains: the log of
    the unbiased estimate of p(x) (a stochastic lower bound on ``log p(x)``), its Monte Carlo standard error (delta
    method) and the ESS of the final weights. The log density and its gradient are the model's ``value_and_grad``
    (a chunk of rows at a time; shared across a process group)."""
    started = time.perf_counter()

    def value_and_grad(z):  # z: (C, 1, D), q's one "data point"
        value, grad = fit.model.value_and_grad(z[:, 0])
        return value[:, None], grad[:, None]

    with torch.no_grad(), default_dtype(fit.config.dtype):
        log_w = ais.ais(ais.WithGradient(value_and_grad), fit.q, num_steps, num_chains=num_chains,
                        num_leapfrog=num_leapfrog, progress=progress)
    result = ais.summary(log_w)
    return {"method": "ais", "log_evidence": float(result["log_mean_weight"][0]),
            "stderr": float(result["mc_stderr"][0]), "ess": float(result["ess"][0]), "num_steps": num_steps,
            "num_chains": num_chains, "seconds": time.perf_counter() - started}
