"""A fit that repairs itself (``elbo.fit(model, repair=True)``, issue 27): either a VI answer k̂ vouches for, or an
MCMC answer its own diagnostics vouch for, never a warning alone.

1. The fit as asked (by default the Gaussian of Pathfinder and batch and match). Where k̂ < 0.7 it stands.
2. Else a RealNVP flow on top of that Gaussian (``elbo.bbvi.flows.flow_on``). Where its k̂ < 0.7 it stands.
3. Else NUTS in the space the flow warps (NeuTra; Hoffman et al. 2019): with the flow ``z = T(ε)``, ``ε ~ N(0, I)``,
   NUTS samples ``ε`` from ``p(T(ε)) |det ∂T/∂ε|``, a density the flow has made nearly standard normal where it
   fitted, so that a funnel's neck or a banana's bend is a plain Gaussian to the sampler. ``NEUTRA_CHAINS`` chains
   from draws of ``N(0, I)``, each ``NEUTRA_WARMUP`` adaptation steps and ``NEUTRA_DRAWS`` draws; the draws
   ``z = T(ε)`` are returned as a ``MCMCFit`` with R̂, bulk and tail ESS and the divergences (``Fit.mcmc``).

``Fit.reason`` names the method that produced the numbers it reports.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass, field

import torch

from . import flows, hints, mcmc, multistart, psis
from .methods import Start
from .result import Fit

__all__ = ["finish", "repair", "cover_modes", "neutra", "MCMCFit", "NEUTRA_CHAINS", "NEUTRA_DRAWS", "NEUTRA_WARMUP"]

NEUTRA_CHAINS, NEUTRA_DRAWS, NEUTRA_WARMUP = 4, 300, 300
NEUTRA_TREE_DEPTH = 8  # at most 2^8 leapfrog steps a draw (Pyro's default, 10, let a poor warp cost 4 times more)
MIN_ESS_PER_CHAIN = 100  # bulk and tail ESS below 100 per chain, or R̂ above 1.01, warn (Vehtari et al. 2021)
MAX_RHAT = 1.01


def finish(fit: Fit, start: Start) -> Fit:
    """After ``fit``'s own method: the modes it missed (``cover_modes``: with ``repair=True`` their mixture where its
    k̂ < 0.7, else a warning); where k̂ ≥ 0.7, what to change in the model if the diagnostics see it
    (``hints.funnel_hint``, a warning); then, with ``repair=True``, ``repair``."""
    covered = cover_modes(fit, start)
    if covered is not fit:
        return covered  # the mixture, which k̂ vouches for
    if not fit.khat < psis.KHAT_THRESHOLD:
        hint = hints.funnel_hint(fit.model, fit.z.mean(0))
        if hint is not None:
            warnings.warn(f"elbo.fit: {hint}", stacklevel=3)
            fit.reason = f"{fit.reason}; {hint}"
    return repair(fit, start) if fit.config.repair else fit


def cover_modes(fit: Fit, start: Start) -> Fit:
    """``fit``, or where Pathfinder from dispersed points finds modes its q misses (``multistart.missed_modes``):
    with ``repair=True`` the mixture of q and their Gaussians, weighted by importance sampling, as a new ``Fit``
    where its k̂ < 0.7; else a warning naming them (and ``fit``, which ``repair`` goes on with)."""
    num_paths = fit.config.paths_for(fit.model.dim, fit.model.num_data)
    if num_paths == 0:
        return fit
    modes, weights = multistart.missed_modes(fit, start.log_density, num_paths)
    if not modes:
        return fit
    line = multistart.modes_line(fit, modes, weights)
    fit.num_grad_evals = start.log_density.num_grad  # the paths' gradients too
    if fit.config.repair:
        guide = multistart.mixture_guide(fit, modes, weights)
        mixture = Fit(fit.model, guide, config=fit.config, elbo_trace=fit.elbo_trace, converged=fit.converged,
                      seconds=fit.seconds, reason=f"repair: a mixture of q and the Gaussians of the modes it missed, "
                                                  f"weighted by importance sampling ({line}); {fit.reason}",
                      num_grad_evals=start.log_density.num_grad, num_dropped=fit.num_dropped)
        if mixture.khat < psis.KHAT_THRESHOLD:
            return mixture
        line = f"{line}; their mixture's k̂ is {mixture.khat:.2f} ≥ 0.7"
    warnings.warn(f"elbo.fit: {line}" + ("" if fit.config.repair else "; fit(..., repair=True) covers them"),
                  stacklevel=4)
    return _with_reason(fit, f"{fit.reason}; {line}")


def repair(fit: Fit, start: Start) -> Fit:
    """``fit`` where its k̂ < 0.7; else the flow on its Gaussian where the flow's k̂ < 0.7; else NeuTra's draws."""
    if fit.khat < psis.KHAT_THRESHOLD:
        return _with_reason(fit, f"{fit.reason}; repair not needed: k̂ = {fit.khat:.2f} < 0.7")
    clock = time.perf_counter()
    if fit.config.family == "flow":
        flow_fit = fit
    else:
        flowed = flows.flow_on(start, fit.guide)
        config = dataclasses.replace(fit.config, family="flow", method="flow")
        flow_fit = Fit(fit.model, flowed.guide, config=config, elbo_trace=fit.elbo_trace + flowed.elbo_trace,
                       converged=flowed.converged, seconds=fit.seconds + time.perf_counter() - clock,
                       reason=f"repair: k̂ = {fit.khat:.2f} ≥ 0.7 for {fit.config.family} ({fit.reason}), so "
                              f"{flowed.reason}",
                       num_grad_evals=start.log_density.num_grad, num_dropped=fit.num_dropped + flowed.num_dropped)
        if flow_fit.khat < psis.KHAT_THRESHOLD:
            return _with_reason(flow_fit, f"{flow_fit.reason}; the flow's k̂ = {flow_fit.khat:.2f} < 0.7")
    return neutra(flow_fit, start, gaussian_khat=fit.khat)


def _with_reason(fit: Fit, reason: str) -> Fit:
    fit.reason = reason
    return fit


def neutra(flow_fit: Fit, start: Start, *, gaussian_khat: float = math.nan, num_chains: int = NEUTRA_CHAINS,
           num_draws: int = NEUTRA_DRAWS, warmup_steps: int = NEUTRA_WARMUP) -> MCMCFit:
    """NUTS on ``ε`` with the flow of ``flow_fit`` as the warp ``z = T(ε)`` (module docstring): ``num_chains``
    chains from draws of ``N(0, I)``; the draws ``T(ε)`` as an ``MCMCFit``."""
    clock = time.perf_counter()
    warp = _warp(flow_fit.q)
    log_density = start.log_density

    def potential_energy(eps: torch.Tensor) -> torch.Tensor:
        z, log_det = warp(eps[None])
        return -(log_density(z) + log_det)[0]

    inits = torch.randn(num_chains, flow_fit.model.dim, dtype=flow_fit.z.dtype)
    eps, divergent = mcmc.nuts_chains(potential_energy, inits, num_draws=num_draws, warmup_steps=warmup_steps,
                                      max_tree_depth=NEUTRA_TREE_DEPTH, progress=flow_fit.config.progress)
    with torch.no_grad():
        chains = warp(eps.reshape(-1, eps.shape[-1]))[0].reshape(eps.shape)  # (C, S, D)
    diagnostics = mcmc.chain_diagnostics(chains) | {"num_chains": num_chains, "num_draws": num_draws,
                                                     "warmup_steps": warmup_steps, "divergences": sum(divergent),
                                                     "seconds": time.perf_counter() - clock}
    reason = (f"NeuTra: NUTS in the flow's warped space, {num_chains} chains × {num_draws} draws after "
              f"{warmup_steps} warmup steps: R̂ {diagnostics['rhat']:.3f}, bulk ESS {diagnostics['ess_bulk']:.0f}, "
              f"tail ESS {diagnostics['ess_tail']:.0f}, {diagnostics['divergences']} divergences; the numbers are "
              f"these MCMC draws (the Gaussian's k̂ {gaussian_khat:.2f} and the flow's {flow_fit.khat:.2f} were "
              f"≥ 0.7: {flow_fit.reason})")
    return MCMCFit(flow_fit.model, flow_fit.guide, config=flow_fit.config, elbo_trace=flow_fit.elbo_trace,
                   converged=diagnostics["rhat"] <= MAX_RHAT, seconds=flow_fit.seconds + diagnostics["seconds"],
                   reason=reason, num_grad_evals=log_density.num_grad, num_dropped=flow_fit.num_dropped,
                   vi=flow_fit, chains=chains, mcmc=diagnostics)


def _warp(q):
    """``ε ↦ (z, log |det ∂z/∂ε|)`` for ``q`` a flow over z (a ``TransformedDistribution``, nested or not, of a
    diagonal Gaussian), with q's parameters cut from the graph: only ε's gradient is wanted."""
    from .. import estimators

    q = estimators.stop_gradient(q)
    transforms = []
    while isinstance(q, torch.distributions.TransformedDistribution):
        transforms, q = list(q.transforms) + transforms, q.base_dist
    loc, scale = q.base_dist.loc[0], q.base_dist.scale[0]  # the base N(loc, diag(scale²)), batch (1,)

    def warp(eps: torch.Tensor):
        x = loc + scale * eps
        log_det = scale.log().sum().expand(eps.shape[0])
        for transform in transforms:
            y = transform(x)
            log_det = log_det + transform.log_abs_det_jacobian(x, y)
            x = y
        return x, log_det

    return warp


@dataclass(eq=False)
class MCMCFit(Fit):
    """A ``Fit`` whose draws are MCMC's (NeuTra's chains, ``chains (C, S, D)`` over z), equally weighted: its
    summaries, ``draws`` and ``sample`` are the chains'; ``mcmc`` holds R̂, bulk and tail ESS, divergences and the
    sampler's wall time; ``khat``, ``elbo`` and ``log_evidence`` are those of the flow ``vi`` the chains were warped
    by, which k̂ did not vouch for (so neither are they)."""

    vi: Fit | None = field(default=None, repr=False)
    chains: torch.Tensor | None = field(default=None, repr=False)
    mcmc: dict = field(default_factory=dict)

    def __post_init__(self):
        self.z = self.chains.reshape(-1, self.chains.shape[-1])
        self.log_weights = torch.zeros(len(self.z), dtype=self.z.dtype)
        self.diagnostics_seconds = 0.0

    @property
    def khat(self) -> float:
        return self.vi.khat

    @property
    def khat_stderr(self) -> float:
        return self.vi.khat_stderr

    @property
    def elbo(self) -> float:
        return self.vi.elbo

    @property
    def log_evidence(self) -> float:
        return self.vi.log_evidence

    def evidence(self, method: str = "is", **settings) -> dict:
        """The evidence of the flow the chains were warped by (``vi.evidence``): MCMC's draws carry no weights."""
        return self.vi.evidence(method, **settings)

    @property
    def log_evidence_stderr(self) -> float:
        return self.vi.log_evidence_stderr

    @property
    def psis_log_weights(self) -> torch.Tensor:
        """Equal weights: MCMC draws are not reweighted."""
        return torch.full_like(self.log_weights, -math.log(len(self.log_weights)))

    def sample(self, n: int) -> dict:
        """``n`` of the chains' draws, chosen uniformly with replacement, constrained."""
        index = torch.randint(len(self.z), (n,))
        return self.model.constrain(self.z[index])

    def diagnostics(self) -> dict:
        return super().diagnostics() | {"method": "neutra", "mcmc": self.mcmc}

    def warn(self) -> None:
        """The chains' own warnings: R̂ above 1.01, bulk or tail ESS below 100 a chain, divergences."""
        report = self.mcmc
        few = MIN_ESS_PER_CHAIN * report["num_chains"]
        problems = [f"R̂ {report['rhat']:.3f} > {MAX_RHAT}" if report["rhat"] > MAX_RHAT else "",
                    f"bulk ESS {report['ess_bulk']:.0f} < {few}" if report["ess_bulk"] < few else "",
                    f"tail ESS {report['ess_tail']:.0f} < {few}" if report["ess_tail"] < few else "",
                    f"{report['divergences']} divergent transitions" if report["divergences"] else ""]
        problems = [p for p in problems if p]
        if problems:
            warnings.warn(f"elbo.fit(repair=True) could not vouch for its answer: NeuTra's chains have "
                          f"{', '.join(problems)}; run more draws (elbo.bbvi.repair.neutra) or reparameterize the "
                          f"model", stacklevel=3)
