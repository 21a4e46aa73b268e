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

__all__ = ["NUTSResult", "nuts", "nuts_chains", "chain_diagnostics", "compare"]


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

    def potential_energy(z):
        return -model.log_density(z.unsqueeze(0))[0]

    with seeded(seed):
        start = time.perf_counter()
        inits = (model.initial_point() if init is None else init).expand(num_chains, model.dim)
        chains, divergent = nuts_chains(potential_energy, inits, num_draws=num_draws, warmup_steps=warmup_steps,
                                        target_accept_prob=target_accept_prob, progress=progress)
        seconds = time.perf_counter() - start
    return NUTSResult(draws=model.constrain(chains.reshape(-1, model.dim)), seconds=seconds, num_chains=num_chains,
                      num_draws=num_draws, warmup_steps=warmup_steps, num_divergent=sum(divergent))


def nuts_chains(potential_energy, inits: torch.Tensor, *, num_draws: int, warmup_steps: int,
                target_accept_prob: float = 0.8, max_tree_depth: int = 10,
                progress: bool = False) -> tuple[torch.Tensor, list[int]]:
    """Pyro's NUTS on ``potential_energy`` (``(D,) -> ()``, ``U = -log density``), one chain from each row of
    ``inits (C, D)``, one after another: ``warmup_steps`` adaptation steps (step size, diagonal mass matrix) and
    ``num_draws`` kept draws each, at most ``2^max_tree_depth`` leapfrog steps a draw. Returns the draws ``(C,
    num_draws, D)`` and each chain's divergent transitions."""
    require("pyro", extra="mcmc", feature="NUTS")
    from pyro.infer.mcmc import MCMC, NUTS

    chains, divergent = [], []
    for init in inits:
        kernel = NUTS(potential_fn=lambda params: potential_energy(params["z"]),
                      target_accept_prob=target_accept_prob, max_tree_depth=max_tree_depth)
        sampler = MCMC(kernel, num_samples=num_draws, warmup_steps=warmup_steps, initial_params={"z": init},
                       disable_progbar=not progress)
        sampler.run()
        chains.append(sampler.get_samples()["z"].detach())
        divergent.append(sum(len(d) for d in sampler.diagnostics()["divergences"].values()))
    return torch.stack(chains), divergent


def chain_diagnostics(chains: torch.Tensor) -> dict:
    """The convergence diagnostics of chains ``(C, S, D)`` by ArviZ (Vehtari et al. 2021), over the D coordinates:
    the largest rank-normalized split R̂, and the smallest bulk and tail effective sample sizes."""
    arviz = require("arviz", extra="mcmc", feature="R̂ and ESS")
    values = chains.detach().double().numpy()
    rhat = [float(arviz.rhat(values[:, :, j])) for j in range(values.shape[2])]
    bulk = [float(arviz.ess(values[:, :, j], method="bulk")) for j in range(values.shape[2])]
    tail = [float(arviz.ess(values[:, :, j], method="tail")) for j in range(values.shape[2])]
    return {"rhat": max(rhat), "ess_bulk": min(bulk), "ess_tail": min(tail)}


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
