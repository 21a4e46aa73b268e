"""Annealed importance sampling (AIS, Neal 2001) and bidirectional Monte Carlo (BDMC, Grosse, Ghahramani & Adams
2015): ``log p(x)`` bounded from below and, on data with exact posterior samples, from above.

The path from a normalised start ``q₀(z)`` (``q(z|x)`` or the prior) to the posterior is geometric,
``log γ_β(z) = log q₀(z) + β (log p(x, z) − log q₀(z))``, ``0 = β_0 < β_1 < ... < β_T = 1`` (``schedule``: the
sigmoid schedule of Grosse et al. 2015, dense at both ends). Each chain carries a log-weight

    forward:  ``z_0 ~ q₀``,          ``log w = Σ_{t=1..T} (β_t − β_{t−1}) f(z_{t−1})``,  ``E[w] = p(x)``;
    reverse:  ``z_T ~ p(z|x)``,      ``log w = Σ_{t=T..1} (β_{t−1} − β_t) f(z_t)``,     ``E[w] = 1 / p(x)``;

with ``f = log p(x, z) − log q₀(z)`` and ``z_t`` from ``z_{t±1}`` by HMC transitions that leave ``γ_{β_t}``
invariant (``log_joint``: a function, differentiated by autograd, or a ``WithGradient``). By Jensen,
``log (1/C) Σ_c w_c`` of C forward chains is a stochastic lower bound on ``log p(x)`` (it is
the log of an unbiased estimate of p(x)), and ``−log (1/C) Σ_c w_c`` of reverse chains a stochastic upper bound
(Grosse et al. 2016); the gap between the two bounds the error of either, and closes as T grows.

HMC: ``num_leapfrog`` leapfrog steps in q₀'s whitened coordinates (the mass matrix is q₀'s precision: a full-rank
Gaussian's, a ``Colors`` start's own, else the diagonal of q₀'s standard deviations), the step size of each data
point adapted after every transition toward an acceptance rate of 0.65 over its chains (Wu et al. 2017's
adaptation): each temperature gets its own step size, set by the transitions before it. Every transition leaves its
``γ_β`` invariant whatever its step size, but the step size depends on the chains' past moves, which the proof that
``E[w] = p(x)`` does not allow for; the tests against exact evidence find no bias from it at their precision (a
schedule of step sizes fixed by a pilot run would remove the question, at twice the cost).

Shapes: ``z: (C, B, *event)`` for C chains of B data points; ``log_joint(z) -> (C, B)``; log-weights ``(C, B)``.
"""

from __future__ import annotations

import functools
import math
from typing import Protocol, runtime_checkable

import torch
from torch.distributions import Distribution, MultivariateNormal, constraints
from tqdm.auto import tqdm

from . import bounds
from ._checks import check_positive, check_positive_float, one_of
from .data import batches, check_data, slices
from .errors import InputError
from .protocols import LatentModel, check_capability

__all__ = ["schedule", "hmc_step", "anneal", "ais", "bdmc", "log_mean_weight", "summary", "ais_per_point",
           "bdmc_per_point", "simulate", "certify", "WithGradient", "Colors", "START", "TARGET_ACCEPT"]

TARGET_ACCEPT = 0.65  # Neal (2011): the optimal acceptance of HMC is about 0.65
ADAPT_FACTOR = 1.1  # the step size is multiplied or divided by this after each transition
STEP_SIZE_RANGE = (1e-4, 10.0)


def schedule(num_steps: int, *, sharpness: float = 4.0, dtype=torch.float64) -> torch.Tensor:
    """``β_0 = 0 < ... < β_T = 1``, shape ``(T + 1,)``: ``σ(δ (2t/T − 1))`` rescaled onto [0, 1] (Grosse et al.
    2015, §6), ``δ = sharpness``; steps are small near both ends, where ``log γ_β`` changes fastest."""
    check_positive(num_steps=num_steps)
    check_positive_float(sharpness=sharpness)
    s = torch.sigmoid(sharpness * (2 * torch.arange(num_steps + 1, dtype=dtype) / num_steps - 1))
    return (s - s[0]) / (s[-1] - s[0])


class WithGradient:
    """A log joint given with its own gradient: ``value_and_grad(z) -> (log p(x, z) (C, B), its gradient in z)``, for
    a model that computes them better than autograd over one graph (``elbo.Model.value_and_grad`` sums its
    log-likelihood a chunk of rows at a time, each chunk's graph freed before the next). ``anneal`` takes it where it
    takes a ``log_joint``."""

    def __init__(self, value_and_grad):
        self.value_and_grad = value_and_grad


class _State:
    """A point of the chains with what the transitions need of it: ``log q₀(z)``, ``log p(x, z)`` and their
    gradients in ``z``."""

    def __init__(self, z, log_q, log_p, grad_q, grad_p):
        self.z, self.log_q, self.log_p, self.grad_q, self.grad_p = z, log_q, log_p, grad_q, grad_p

    def log_gamma(self, beta: float) -> torch.Tensor:
        return self.log_q + beta * (self.log_p - self.log_q)

    def grad(self, beta: float) -> torch.Tensor:
        return self.grad_q + beta * (self.grad_p - self.grad_q)

    def where(self, keep: torch.Tensor, other: _State, event_dims: int) -> _State:
        """This state where ``keep`` (shape ``(C, B)``), ``other`` elsewhere."""
        wide = keep.reshape(keep.shape + (1,) * event_dims)
        return _State(*(torch.where(k, a, b) for k, a, b in
                        zip((wide, keep, keep, wide, wide), self._fields(), other._fields())))

    def _fields(self):
        return self.z, self.log_q, self.log_p, self.grad_q, self.grad_p


def _evaluate(log_joint, initial: Distribution, z: torch.Tensor) -> _State:
    """The ``_State`` at ``z``: one pass of the model forward and back (the start's gradient apart, cheap)."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        if isinstance(log_joint, WithGradient):
            log_p, grad_p = log_joint.value_and_grad(z.detach())
        else:
            log_p = log_joint(z)
            grad_p, = torch.autograd.grad(log_p.sum(), z)
        log_q = initial.log_prob(z)
        grad_q, = torch.autograd.grad(log_q.sum(), z)
    # non-finite values (a proposal far in a tail) are rejected by the Metropolis step below
    return _State(z.detach(), log_q.detach(), log_p.detach(), grad_q, grad_p)


@runtime_checkable
class Colors(Protocol):
    """A Gaussian start ``q₀ = N(μ, L Lᵀ)`` that applies its factor: ``color(v) = L v`` (a standard normal ``v`` to a
    draw less its mean) and ``color_transpose(g) = Lᵀ g``, with ``L`` structured (a Markov Gaussian's is the inverse
    of a bidiagonal matrix, applied in ``O(T)``). HMC then moves in q₀'s whitened coordinates: the mass matrix is
    q₀'s precision, not only its diagonal, which a posterior correlated as q₀ is (a trajectory) needs."""

    def color(self, v: torch.Tensor) -> torch.Tensor: ...

    def color_transpose(self, g: torch.Tensor) -> torch.Tensor: ...


class _Metric:
    """HMC's mass matrix ``(L Lᵀ)⁻¹`` through ``L``: ``color(v) = L v``, ``color_transpose(g) = Lᵀ g``."""

    def __init__(self, color, color_transpose):
        self.color, self.color_transpose = color, color_transpose


def _metric(initial: Distribution, like: torch.Tensor) -> _Metric:
    """q₀'s factor ``L``: its own (``Colors``), a full-rank Gaussian's ``scale_tril``, else its standard deviations
    (ones where it has none in closed form, e.g. a chain of Gaussians, a hierarchical VAE's q)."""
    if isinstance(initial, Colors):
        return _Metric(initial.color, initial.color_transpose)
    if isinstance(initial, MultivariateNormal):
        factor = initial.scale_tril.detach().to(like.dtype)
        return _Metric(lambda v: (factor @ v.unsqueeze(-1)).squeeze(-1),
                       lambda g: (factor.transpose(-1, -2) @ g.unsqueeze(-1)).squeeze(-1))
    try:
        scale = initial.stddev.detach().to(like.dtype).expand_as(like[0])
    except NotImplementedError:
        scale = torch.ones_like(like[0])
    return _Metric(lambda v: scale * v, lambda g: scale * g)


def hmc_step(log_joint, initial: Distribution, state: _State, beta: float, step_size: torch.Tensor,
             metric: _Metric, num_leapfrog: int) -> tuple[_State, torch.Tensor]:
    """One HMC transition leaving ``γ_β`` invariant, in q₀'s whitened coordinates ``z = μ + L u`` (``metric``):
    momentum ``p ~ N(0, I)``, ``num_leapfrog`` leapfrog steps of size ``step_size`` (shape ``(B,)``, one per data
    point; ``u += ε p`` is ``z += ε L p``, the gradient in u is ``Lᵀ ∇_z``), a Metropolis correction per chain.
    Returns the new state and the acceptance probability of each chain, ``(C, B)``."""
    event_dims = state.z.dim() - state.log_p.dim()
    eps = step_size.reshape(step_size.shape + (1,) * event_dims)
    kinetic = lambda p: 0.5 * p.square().reshape(*p.shape[:2], -1).sum(-1)  # noqa: E731  (C, B)
    momentum = torch.randn_like(state.z)
    h0 = kinetic(momentum) - state.log_gamma(beta)
    new, p = state, momentum + 0.5 * eps * metric.color_transpose(state.grad(beta))
    for i in range(num_leapfrog):
        new = _evaluate(log_joint, initial, new.z + eps * metric.color(p))
        p = p + (eps if i < num_leapfrog - 1 else 0.5 * eps) * metric.color_transpose(new.grad(beta))
    log_accept = (h0 - kinetic(p) + new.log_gamma(beta)).clamp(max=0.0)
    accept_prob = torch.nan_to_num(log_accept.exp(), nan=0.0)  # a NaN energy: a rejected proposal
    accepted = torch.rand_like(accept_prob) < accept_prob
    return new.where(accepted, state, event_dims), accept_prob


@torch.no_grad()  # the chains' moves build no graph (each evaluation differentiates by itself)
def anneal(log_joint, initial: Distribution, z: torch.Tensor, betas: torch.Tensor, *, num_leapfrog: int = 10,
           step_size: float = 0.05, progress: bool = False, what: str = "AIS") -> torch.Tensor:
    """The log-weights ``(C, B)`` of chains started at ``z: (C, B, *event)`` and moved along ``betas`` (increasing:
    forward AIS from ``z ~ q₀``; decreasing: reverse AIS from exact posterior samples, as ``ais`` and ``bdmc``
    call it). ``initial``: q₀, batch shape ``(B,)``; ``log_joint(z) -> (C, B)``. The weights accumulate in float64."""
    check_positive(num_leapfrog=num_leapfrog)
    check_positive_float(step_size=step_size)
    if z.dim() < 2 or tuple(z.shape[2:]) != tuple(initial.event_shape):
        raise InputError(f"z must have shape (C, B, {', '.join(map(str, initial.event_shape))}) to match q₀'s "
                         f"event shape, got {tuple(z.shape)}", argument="z")
    support = initial.support
    while isinstance(support, constraints.independent):
        support = support.base_constraint
    if support is not constraints.real:
        raise InputError(f"AIS moves z by HMC on the real line; q₀ ({type(initial).__name__}) has support "
                         f"{initial.support}", argument="initial")
    metric = _metric(initial, z)
    step = torch.full(z.shape[1:2], step_size, dtype=z.dtype, device=z.device)
    state = _evaluate(log_joint, initial, z)
    log_w = torch.zeros(z.shape[:2], dtype=torch.float64, device=z.device)
    betas = betas.tolist()
    for t in tqdm(range(1, len(betas)), desc=what, disable=not progress, leave=False):
        log_w += (betas[t] - betas[t - 1]) * torch.nan_to_num(state.log_p - state.log_q, nan=-math.inf).double()
        if t < len(betas) - 1:  # the last weight is taken at the end point: no transition after it
            state, accept_prob = hmc_step(log_joint, initial, state, betas[t], step, metric, num_leapfrog)
            factor = torch.where(accept_prob.mean(0) > TARGET_ACCEPT, ADAPT_FACTOR, 1 / ADAPT_FACTOR)
            step = (step * factor).clamp(*STEP_SIZE_RANGE)
    return log_w


def _batched(initial: Distribution, batch_size: int) -> Distribution:
    """``initial`` with batch shape ``(B,)``: a prior (batch shape ``()``) expanded to every point."""
    return initial if tuple(initial.batch_shape) == (batch_size,) else initial.expand((batch_size,))


def ais(log_joint, initial: Distribution, num_steps: int, *, num_chains: int = 16, **options) -> torch.Tensor:
    """Forward AIS: the log-weights ``(C, B)`` of ``num_chains`` chains per data point from ``z_0 ~ q₀``
    (``initial``, batch shape ``(B,)``) to ``γ_1(z) = p(x, z)`` in ``num_steps`` steps; ``E[w] = p(x)``.
    ``options``: those of ``anneal`` (``num_leapfrog``, ``step_size``, ``progress``)."""
    check_positive(num_chains=num_chains)
    z = initial.sample((num_chains,))
    return anneal(log_joint, initial, z, schedule(num_steps), **options)


def bdmc(log_joint, initial: Distribution, z_posterior: torch.Tensor, num_steps: int, *, num_chains: int = 16,
         **options) -> torch.Tensor:
    """Reverse AIS from exact posterior samples ``z_posterior: (B, *event)`` (one per data point: ``z ~ p(z)`` that
    simulated ``x ~ p(x|z)``): the log-weights ``(C, B)`` of ``num_chains`` chains from each, ``E[w] = 1 / p(x)``; so
    ``−log_mean_weight`` is a stochastic upper bound on ``log p(x)``."""
    check_positive(num_chains=num_chains)
    z = z_posterior.detach().expand(num_chains, *z_posterior.shape).clone()
    return anneal(log_joint, initial, z, schedule(num_steps).flip(0), what="BDMC", **options)


def log_mean_weight(log_w: torch.Tensor) -> torch.Tensor:
    """``log (1/C) Σ_c w_c`` of log-weights ``(C, B)``, shape ``(B,)``."""
    return torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])


def summary(log_w: torch.Tensor) -> dict:
    """Per data point, from log-weights ``(C, B)``: ``log_mean_weight``; its Monte Carlo standard error by the delta
    method, ``sd(w) / (mean(w) √C) = √((C/ESS − 1) / (C − 1))`` (NaN for one chain); and the effective sample size
    of the weights, ``ESS = (Σ w)² / Σ w²``, between 1 and C."""
    num_chains = log_w.shape[0]
    normalized = torch.softmax(log_w.double(), 0)
    ess = 1 / normalized.square().sum(0)
    mc_stderr = ((num_chains / ess - 1).clamp(min=0) / (num_chains - 1)).sqrt() if num_chains > 1 \
        else torch.full_like(ess, math.nan)
    return {"log_mean_weight": log_mean_weight(log_w.double()), "mc_stderr": mc_stderr, "ess": ess}


START = ("guide", "prior")  # q₀ of an amortized model: its q(z|x) or its prior p(z)


def _start(model, x: torch.Tensor, start: str) -> Distribution:
    if start == "prior":
        check_capability(model, LatentModel, "AIS from the prior")
        return _batched(model.prior(), len(x))
    return _batched(model.guide(x), len(x))


def ais_per_point(model, data: torch.Tensor, num_steps: int, *, start: str = "guide", num_chains: int = 16,
                  batch_size: int = 100, progress: bool = False, **options) -> dict:
    """Forward AIS for each point of ``data: (N, ...)`` under a model with ``guide(x)`` (and ``prior()`` /
    ``likelihood(z)`` or ``log_prob(x, z)``): ``summary`` of each point's ``num_chains`` log-weights, tensors of shape
    ``(N,)``. ``start``: q₀ is ``q(z|x)`` (``"guide"``) or ``p(z)`` (``"prior"``). The points go ``batch_size`` at a
    time, all their chains together. ``options``: those of ``anneal``."""
    one_of("start", start, START)
    check_positive(num_steps=num_steps, num_chains=num_chains, batch_size=batch_size)
    check_data(model, data)
    parts = []
    for x in batches(data, batch_size, progress and len(data) > batch_size, f"AIS-{num_steps}"):
        initial = _start(model, x, start)
        log_joint = functools.partial(bounds.log_joint, model, x)
        parts.append(summary(ais(log_joint, initial, num_steps, num_chains=num_chains, progress=progress,
                                 **options)))
    return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}


def simulate(model, num_points: int, *, sample=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, z)`` with ``z ~ p(z)`` and ``x ~ p(x|z)``, ``num_points`` of each: ``z`` is an exact sample of the
    posterior ``p(z|x)`` of its ``x``. ``sample(likelihood) -> x``: how to draw from ``p(x|z)`` where its
    ``sample()`` will not do (a likelihood over documents of any length needs their lengths)."""
    check_capability(model, LatentModel, "simulating data for BDMC")
    check_positive(num_points=num_points)
    with torch.no_grad():
        z = model.prior().sample((num_points,))
        likelihood = model.likelihood(z)
        return (likelihood.sample() if sample is None else sample(likelihood)), z


def bdmc_per_point(model, x: torch.Tensor, z: torch.Tensor, num_steps: int, *, start: str = "guide",
                   num_chains: int = 16, batch_size: int = 100, progress: bool = False, **options) -> dict:
    """BDMC on simulated ``x: (N, ...)`` with their exact posterior samples ``z: (N, *event)`` (``simulate``): forward
    AIS's ``summary`` (``"lower"``: ``log_mean_weight``, with ``mc_stderr`` and ``ess``) and the reverse chains'
    stochastic upper bound ``"upper"`` (``−log_mean_weight`` of ``num_chains`` reverse chains from each ``z``, with
    ``"upper_mc_stderr"``), tensors of shape ``(N,)``; ``upper − lower`` bounds the error of both."""
    if len(x) != len(z):
        raise InputError(f"x and z must hold the same number of points, got {len(x)} and {len(z)}", argument="z")
    lower = ais_per_point(model, x, num_steps, start=start, num_chains=num_chains, batch_size=batch_size,
                          progress=progress, **options)
    upper = []
    for rows in slices(len(x), batch_size, progress=progress and len(x) > batch_size, what=f"BDMC-{num_steps}"):
        initial = _start(model, x[rows], start)
        log_joint = functools.partial(bounds.log_joint, model, x[rows])
        upper.append(summary(bdmc(log_joint, initial, z[rows], num_steps, num_chains=num_chains,
                                  progress=progress, **options)))
    return {"lower": lower["log_mean_weight"], "mc_stderr": lower["mc_stderr"], "ess": lower["ess"],
            "upper": -torch.cat([part["log_mean_weight"] for part in upper]),
            "upper_mc_stderr": torch.cat([part["mc_stderr"] for part in upper])}


def certify(model, x: torch.Tensor, z: torch.Tensor, tolerance: float, *, num_steps: int = 10,
            max_steps: int = 10_000, **options) -> dict:
    """The shortest schedule of ``num_steps · 2^k`` steps (at most ``max_steps``) whose BDMC gap on simulated ``x``
    with exact posterior samples ``z`` (``simulate``), averaged over the points, is below ``tolerance`` nats:
    ``{"num_steps", "gap", "certified", "tried": [(steps, gap), ...]}`` with the last ``bdmc_per_point`` result as
    ``"bounds"``; ``certified`` is false when ``max_steps`` was reached first. ``options``: those of
    ``bdmc_per_point``."""
    check_positive_float(tolerance=tolerance)
    check_positive(num_steps=num_steps, max_steps=max_steps)
    tried = []
    while True:
        bounds_ = bdmc_per_point(model, x, z, num_steps, **options)
        gap = float((bounds_["upper"] - bounds_["lower"]).mean())
        tried.append((num_steps, gap))
        if gap < tolerance or 2 * num_steps > max_steps:
            return {"num_steps": num_steps, "gap": gap, "certified": gap < tolerance, "tried": tried,
                    "bounds": bounds_}
        num_steps *= 2
