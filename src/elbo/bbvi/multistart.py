"""The modes q missed: Pathfinder from several dispersed points (multi-path Pathfinder, Zhang et al. 2022), each
path's Gaussian weighed by importance sampling, compared with the fitted q (issue 27).

k̂ cannot see a mode that q never visits: a Gaussian on the heavier mode of a 0.3/0.7 mixture reports k̂ ≈ 0 with a
weight of 1 for it. So after a fit, ``missed_modes`` runs Pathfinder from points drawn uniformly in ``[-2, 2]^D``
(Stan's initial points) and on the surfaces of wide boxes about q and about each mode found, and keeps the paths'
Gaussians ``q_k`` whose mean lies outside the fitted q's bulk (``log q(mean_k)`` below that of every one of q's own
draws) and outside each other's, with a valley between (``log p`` falls by ``MIN_VALLEY`` nats on the segment between
the two means, below the lower end: in a funnel, Gaussians at different heights of the neck are one mode). Each kept
Gaussian and q are weighed by their importance-sampling estimates of the mass they cover, ``Ẑ_k = mean(p(z) / q_k(z))``
over ``NUM_WEIGHT_DRAWS`` draws of ``q_k`` (and q's own ``log_evidence``): for separated modes, ``Ẑ_k / Σ Ẑ`` is the
weight of mode k. A missed mode of at least ``MIN_WEIGHT`` is reported: ``fit`` warns in one line, and ``repair=True``
replaces q by the mixture ``Σ_k (Ẑ_k / Σ Ẑ) q_k`` (``Mixture``), whose k̂ then says whether it covers the posterior."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.distributions import Distribution, MultivariateNormal, constraints

from . import pathfinder

__all__ = ["Mode", "missed_modes", "mixture_guide", "modes_line", "Mixture", "NUM_PATHS"]

from .config import NUM_PATHS  # noqa: E402  extra Pathfinder paths after a fit (FitConfig.paths_for)

NUM_WEIGHT_DRAWS = 256
PATH_ITERS = 50  # L-BFGS iterations of each extra path at most (into a funnel's neck it takes a thousand)
MIN_WEIGHT = 0.01
WIDE = 10.0  # half the side of the box, in sds, that paths start from about a mode
MIN_VALLEY = 3.0  # nats log p must fall between two modes (at ±4, a unit mixture's falls by 6.8; a funnel's by none)


@dataclass
class Mode:
    """A Gaussian ``q (batch (1,))`` at a mode and the log of the mass it covers, ``log_mass`` (``log Ẑ``)."""

    q: Distribution
    log_mass: float

    @property
    def loc(self) -> torch.Tensor:
        return self.q.mean[0]


def missed_modes(fit, log_density, num_paths: int = NUM_PATHS) -> tuple[list[Mode], list[float]]:
    """The modes Pathfinder found from dispersed points that ``fit``'s q misses, and the weights of q's mode and of
    each of them (``Ẑ / Σ Ẑ``), q's first; modes of weight below ``MIN_WEIGHT`` are dropped.

    ``num_paths`` paths start uniformly in Stan's ``[-2, 2]^D`` and ``num_paths`` in the box of ``± WIDE`` sds of q
    about its mean; each new mode sends ``num_paths`` more from its own box, ``4 num_paths`` paths at most (a chain
    of modes is followed outwards)."""
    with torch.no_grad():
        own = fit.q.log_prob(fit.z[:, None])[:, 0]
    # a component, the lowest log density of its own draws, and its centre (a flow has no closed-form mean)
    kept = [(fit.q, own.min().item(), fit.z.mean(0))]
    starts = [4 * torch.rand(fit.model.dim, dtype=fit.z.dtype) - 2 for _ in range(num_paths)]
    starts += [_around(fit.z.mean(0), fit.z.std(0)) for _ in range(num_paths)]
    modes, budget = [], 4 * num_paths
    while starts and budget > 0:
        budget -= 1
        mode = _path(log_density, starts.pop(0))
        if mode is None or not all(_outside(q, floor, mode.loc) and
                                   _valley(log_density, centre, mode.loc) > MIN_VALLEY for q, floor, centre in kept):
            continue
        with torch.no_grad():
            draws = mode.q.sample((NUM_WEIGHT_DRAWS,))
            kept.append((mode.q, mode.q.log_prob(draws)[:, 0].min().item(), mode.loc))
        modes.append(mode)
        starts += [_around(mode.loc, mode.q.variance[0].sqrt()) for _ in range(num_paths)]
    log_masses = torch.tensor([fit.log_evidence] + [m.log_mass for m in modes], dtype=torch.float64)
    if not bool(torch.isfinite(log_masses).all()):
        return [], [1.0]
    weights = torch.softmax(log_masses, 0).tolist()
    modes = [m for m, w in zip(modes, weights[1:]) if w >= MIN_WEIGHT]
    weights = [weights[0]] + [w for w in weights[1:] if w >= MIN_WEIGHT]
    return modes, [w / sum(weights) for w in weights]


def _around(loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """A point on the surface of the box ``loc ± WIDE · scale`` (a uniform point of the box pushed out along its
    largest coordinate): far from ``loc`` in every draw, so that the paths look outwards, not back at its mode."""
    u = 2 * torch.rand_like(loc) - 1
    return loc + WIDE * scale * u / u.abs().max()


def _path(log_density, z0: torch.Tensor) -> Mode | None:
    """Pathfinder's best Gaussian from ``z0``, weighed (``_weighed``); ``None`` where it has none, or no finite
    weight, or the log density is not finite at ``z0``."""
    try:
        result = pathfinder.pathfinder(log_density, z0, max_iters=PATH_ITERS)
    except ValueError:  # the log density is not finite at this point
        return None
    if result.gaussian is None or not math.isfinite(result.elbo):
        return None
    mode = _weighed(result.gaussian, log_density)
    return mode if math.isfinite(mode.log_mass) else None


def _weighed(gaussian, log_density) -> Mode:
    """A path's Gaussian as a ``MultivariateNormal`` of batch ``(1,)``, with ``log Ẑ`` from ``NUM_WEIGHT_DRAWS``."""
    cov = gaussian.covariance()
    q = MultivariateNormal(gaussian.loc[None], covariance_matrix=0.5 * (cov + cov.T)[None])
    with torch.no_grad():
        z = q.sample((NUM_WEIGHT_DRAWS,))[:, 0]
        log_w = log_density(z) - q.log_prob(z[:, None])[:, 0]
    log_w = torch.where(torch.isnan(log_w), -math.inf, log_w)
    return Mode(q, (torch.logsumexp(log_w, 0) - math.log(len(log_w))).item())


def _valley(log_density, a: torch.Tensor, b: torch.Tensor, num_points: int = 19) -> float:
    """How far ``log p`` falls between ``a`` and ``b`` below the lower of the two: ``min(log p(a), log p(b)) - min_t
    log p(a + t (b - a))`` over ``num_points`` points of the open segment (negative where it does not fall)."""
    t = torch.linspace(0, 1, num_points + 2, dtype=a.dtype)[:, None]
    with torch.no_grad():
        log_p = log_density(a + t * (b - a))
    log_p = torch.where(torch.isnan(log_p), -math.inf, log_p)
    return (torch.minimum(log_p[0], log_p[-1]) - log_p[1:-1].min()).item()


def _outside(q, floor: float, point: torch.Tensor) -> bool:
    """Whether ``point`` is less probable under ``q`` than every one of q's own draws (``floor``): outside its bulk."""
    with torch.no_grad():
        return q.log_prob(point[None, None])[0, 0].item() < floor


def modes_line(fit, modes: list[Mode], weights: list[float]) -> str:
    """One line: the posterior has several modes (or mass q's family cannot reach), where q is and where the
    regions it misses are, with their weights by importance sampling."""
    where = lambda loc: "(" + ", ".join(f"{v:.3g}" for v in loc[:3].tolist()) + (", ..." if len(loc) > 3 else "") + ")"  # noqa: E731
    others = "; ".join(f"z ≈ {where(m.loc)}, weight {w:.2f}" for m, w in zip(modes, weights[1:]))
    return (f"the posterior has several modes, or mass that q's family cannot reach (as a funnel's): q covers the "
            f"region at z ≈ {where(fit.z.mean(0))} (weight {weights[0]:.2f} by importance sampling) and misses "
            f"{len(modes)} that Pathfinder found from dispersed points: {others}")


class Mixture(Distribution):
    """``Σ_k w_k q_k`` for distributions ``q_k`` of batch ``(1,)`` over the same ``z (D,)``: draws by component
    (counts from the weights, then each q_k's draws, shuffled), ``log_prob = logsumexp_k(log w_k + log q_k)``."""

    arg_constraints = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, components: list, weights: torch.Tensor):
        self.components, self.log_weights = components, weights.log()
        super().__init__(components[0].batch_shape, components[0].event_shape, validate_args=False)

    def rsample(self, sample_shape=()) -> torch.Tensor:
        n = math.prod(sample_shape)
        counts = torch.distributions.Multinomial(n, logits=self.log_weights).sample().long().tolist()
        z = torch.cat([q.rsample((count,)) for q, count in zip(self.components, counts)])
        return z[torch.randperm(n)].reshape(*sample_shape, *z.shape[1:])

    def sample(self, sample_shape=()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(torch.stack([w + q.log_prob(value) for w, q in zip(self.log_weights,
                                                                                   self.components)]), 0)

    @property
    def mean(self) -> torch.Tensor:
        return sum(w.exp() * q.mean for w, q in zip(self.log_weights, self.components))


class _MixtureGuide(torch.nn.Module):
    def __init__(self, components: list, weights: torch.Tensor):
        super().__init__()
        self.components, self.weights = components, weights

    def forward(self, x=None) -> Mixture:
        return Mixture(self.components, self.weights)


def mixture_guide(fit, modes: list[Mode], weights: list[float]) -> torch.nn.Module:
    """A guide of the mixture of the fitted q and the missed modes' Gaussians, with their importance weights."""
    with torch.no_grad():
        q = fit.q
    return _MixtureGuide([q] + [m.q for m in modes], torch.tensor(weights, dtype=fit.z.dtype))
