"""Reference MCMC for an ``elbo.Model``: Pyro's NUTS (Hoffman & Gelman 2014) on the same log density as ``fit``.

NUTS samples the unconstrained ``z`` with potential energy ``U(z) = -log p(x, z)``, the log density of
``Model.log_density`` with its log-Jacobian and all data, so VI and MCMC target exactly the same distribution.
Pyro is an optional dependency (``pip install 'elbo[mcmc]'``), imported only here when a sampler runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .._checks import check_int_at_least, check_positive
from .._optional import require
from ..errors import InputError
from .context import seeded
from .model import Model
from .result import summarize

__all__ = ["NUTSResult", "nuts", "compare"]


@dataclass(eq=False)
class NUTSResult:
    """Draws of NUTS, constrained (``{name: (num_chains * num_draws, *shape)}``), and what the run cost."""

    draws: dict = field(repr=False)
    seconds: float
    num_chains: int
    num_draws: int
    warmup_steps: int
    num_divergent: int

    def summary(self, *, quantiles=(0.05, 0.5, 0.95)) -> dict:
        """Mean, sd and quantiles per scalar component, as ``Fit.summary``."""
        return summarize(self.draws, quantiles=quantiles)


def nuts(model: Model, *, num_draws: int = 1000, warmup_steps: int = 1000, num_chains: int = 1,
         target_accept_prob: float = 0.8, init: torch.Tensor | None = None, seed: int | None = None,
         progress: bool = True) -> NUTSResult:
    """Run ``num_chains`` chains of Pyro's NUTS, one after another, each ``warmup_steps`` adaptation steps (step
    size and diagonal mass matrix) and ``num_draws`` kept draws, on the model's unconstrained log density.

    Each chain starts at ``init`` (shape ``(D,)``) or at ``model.initial_point()``.
    """
    check_positive(num_draws=num_draws)
    check_int_at_least("warmup_steps", warmup_steps, 0)
    check_positive(num_chains=num_chains)
    if not 0 < target_accept_prob < 1:
        raise InputError(f"target_accept_prob must be in (0, 1), got {target_accept_prob!r}",
                         argument="target_accept_prob")
    if init is not None and tuple(init.shape) != (model.dim,):
        raise InputError(f"init must have shape (D,) = ({model.dim},), got {tuple(init.shape)}", argument="init")
    require("pyro", extra="mcmc", feature="the reference NUTS")
    from pyro.infer.mcmc import MCMC, NUTS

    def potential_energy(params):
        return -model.log_density(params["z"].unsqueeze(0))[0]

    chains, num_divergent = [], 0
    with seeded(seed):
        start = time.perf_counter()
        for _ in range(num_chains):
            z = model.initial_point() if init is None else init
            kernel = NUTS(potential_fn=potential_energy, target_accept_prob=target_accept_prob)
            sampler = MCMC(kernel, num_samples=num_draws, warmup_steps=warmup_steps, initial_params={"z": z},
                           disable_progbar=not progress)
            sampler.run()
            chains.append(sampler.get_samples()["z"].detach())
            num_divergent += sum(len(d) for d in sampler.diagnostics()["divergences"].values())
        seconds = time.perf_counter() - start
    return NUTSResult(draws=model.constrain(torch.cat(chains)), seconds=seconds, num_chains=num_chains,
                      num_draws=num_draws, warmup_steps=warmup_steps, num_divergent=num_divergent)


def compare(vi_draws: dict, nuts_draws: dict, *, vi_weights: torch.Tensor | None = None) -> list[dict]:
    """Per scalar component: the VI and NUTS means and sds, and the errors of VI in units of the NUTS sd,
    ``mean_error = (mean_VI - mean_NUTS) / sd_NUTS`` and ``sd_error = (sd_VI - sd_NUTS) / sd_NUTS`` (``None``
    where the NUTS sd is 0: a component fixed by its constraint, such as the diagonal of a correlation
    Cholesky factor's first row). ``vi_weights`` (normalized, shape ``(M,)``, e.g. ``fit.psis_log_weights.exp()``)
    weight VI's draws: the PSIS-reweighted estimates ``elbo.fit`` says to report when k̂ < 0.7."""
    vi, reference = summarize(vi_draws, weights=vi_weights), summarize(nuts_draws)
    rows = []
    for name, row in vi.items():
        ref = reference[name]
        fixed = ref["sd"] == 0
        rows.append({"name": name, "vi_mean": row["mean"], "vi_sd": row["sd"], "nuts_mean": ref["mean"],
                     "nuts_sd": ref["sd"],
                     "mean_error": None if fixed else (row["mean"] - ref["mean"]) / ref["sd"],
                     "sd_error": None if fixed else (row["sd"] - ref["sd"]) / ref["sd"]})
    return rows
