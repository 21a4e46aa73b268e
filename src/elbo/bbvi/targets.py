"""Posteriors no Gaussian can represent, with exact draws: the targets of ``elbo.fit``'s repair (issue 27), for the
tests and ``benchmarks/flows.py``.

Each function returns a ``Target``: an ``elbo.Model`` over one real parameter (or two for the funnel) and
``sample(n)``, exact draws ``{name: (n, *shape)}`` of its posterior, from which any moment, quantile or mode weight
is known to Monte Carlo error; ``mode_weights`` gives a mixture's.

- ``funnel(d)``: Neal's funnel, ``v ~ N(0, 3²)``, ``x_i | v ~ N(0, e^v)`` for ``d - 1`` coordinates
  (``sd(x_i) = e^{9/4}``);
- ``mixture(d, weights, separation)``: Gaussians with identity covariance at ``±separation`` along the first
  axis (more than two: spaced ``2 · separation`` apart), weights ``weights``;
- ``student_t(d, df)``: the standard multivariate Student-t, ``sd = √(df / (df - 2))``;
- ``banana(curvature)``: ``z_1 ~ N(0, 1)``, ``z_2 | z_1 ~ N(curvature · (z_1² - 1), 1)`` (a twisted Gaussian,
  Haario et al. 1999), mean 0;
- ``gaussian(d)``: a correlated Gaussian, where the Gaussian fit is exact;
- ``eight_schools_centered(data_dir)``: the centred eight schools, ``theta_j ~ N(mu, tau)``, a funnel between ``tau``
  and the ``theta``; its draws are posteriordb's 10,000 reference draws of the non-centred form (the same posterior
  over ``mu``, ``tau``, ``theta``), resampled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.distributions import Cauchy, Chi2, MultivariateNormal, Normal, constraints

from .model import Model, Param

__all__ = ["Target", "funnel", "mixture", "student_t", "banana", "gaussian", "eight_schools_centered", "mode_weights"]


@dataclass(frozen=True)
class Target:
    """A model, exact draws of its posterior (``sample(n) -> {name: (n, *shape)}``), and for a mixture the weight
    and centre of each mode along the first coordinate of ``z`` (``None`` otherwise)."""

    name: str
    model: Model
    sample: Callable[[int], dict]
    mode_weights: tuple | None = None
    mode_centres: tuple | None = None


def funnel(d: int = 10) -> Target:
    def log_joint(p):
        v, x = p["v"], p["x"]
        return Normal(0.0, 3.0).log_prob(v) + Normal(0.0, (v / 2).exp()[:, None]).log_prob(x).sum(-1)

    def sample(n):
        v = 3 * torch.randn(n)
        return {"v": v, "x": torch.randn(n, d - 1) * (v / 2).exp()[:, None]}

    model = Model(params={"v": Param((), constraints.real), "x": Param((d - 1,), constraints.real)},
                  log_joint=log_joint)
    return Target(f"funnel{d}", model, sample)


def mixture(d: int = 2, weights=(0.3, 0.7), separation: float = 4.0) -> Target:
    weights = torch.tensor(weights, dtype=torch.get_default_dtype())
    centres = separation * (2 * torch.arange(len(weights)) - (len(weights) - 1)).to(weights.dtype)  # ±4, ...

    def log_joint(p):
        z = p["z"]
        rest = Normal(0.0, 1.0).log_prob(z[:, 1:]).sum(-1)
        first = Normal(centres, 1.0).log_prob(z[:, :1])  # (S, K)
        return torch.logsumexp(weights.log() + first, -1) + rest

    def sample(n):
        z = torch.randn(n, d)
        z[:, 0] += centres[torch.multinomial(weights, n, replacement=True)]
        return {"z": z}

    model = Model(params={"z": Param((d,), constraints.real)}, log_joint=log_joint)
    return Target(f"mixture{len(weights)}_d{d}", model, sample, tuple(weights.tolist()), tuple(centres.tolist()))


def student_t(d: int = 10, df: float = 3.0) -> Target:
    def log_joint(p):
        return -(df + d) / 2 * torch.log1p((p["z"] ** 2).sum(-1) / df)

    def sample(n):
        return {"z": torch.randn(n, d) / (Chi2(torch.tensor(df)).sample((n, 1)) / df).sqrt()}

    model = Model(params={"z": Param((d,), constraints.real)}, log_joint=log_joint)
    return Target(f"student_t{d}", model, sample)


def banana(curvature: float = 1.0) -> Target:
    def log_joint(p):
        z = p["z"]
        return Normal(0.0, 1.0).log_prob(z[:, 0]) + Normal(curvature * (z[:, 0] ** 2 - 1), 1.0).log_prob(z[:, 1])

    def sample(n):
        first = torch.randn(n)
        return {"z": torch.stack([first, curvature * (first**2 - 1) + torch.randn(n)], 1)}

    model = Model(params={"z": Param((2,), constraints.real)}, log_joint=log_joint)
    return Target("banana", model, sample)


def gaussian(d: int = 4, correlation: float = 0.6) -> Target:
    scales = torch.linspace(0.5, 3.0, d)
    covariance = scales[:, None] * scales * (correlation + (1 - correlation) * torch.eye(d))
    target = MultivariateNormal(torch.arange(d, dtype=covariance.dtype) - 1.0, covariance)
    model = Model(params={"z": Param((d,), constraints.real)}, log_joint=lambda p: target.log_prob(p["z"]))
    return Target(f"gaussian{d}", model, lambda n: {"z": target.sample((n,))})


EIGHT_SCHOOLS_Y = (28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0)
EIGHT_SCHOOLS_SIGMA = (15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0)


def eight_schools_centered(data_dir) -> Target:
    from .posteriordb import reference_draws

    y, sigma = torch.tensor(EIGHT_SCHOOLS_Y), torch.tensor(EIGHT_SCHOOLS_SIGMA)

    def log_joint(p):
        mu, tau, theta = p["mu"], p["tau"], p["theta"]
        return (Normal(0.0, 5.0).log_prob(mu) + Cauchy(0.0, 5.0).log_prob(tau)
                + Normal(mu[:, None], tau[:, None]).log_prob(theta).sum(-1) + Normal(theta, sigma).log_prob(y).sum(-1))

    reference = reference_draws("eight_schools-eight_schools_noncentered", data_dir)
    draws = {"mu": torch.as_tensor(reference["mu"]), "tau": torch.as_tensor(reference["tau"]),
             "theta": torch.stack([torch.as_tensor(reference[f"theta[{j + 1}]"]) for j in range(8)], 1)}

    def sample(n):
        index = torch.randint(len(draws["mu"]), (n,))
        return {name: values[index].to(torch.get_default_dtype()) for name, values in draws.items()}

    model = Model(params={"mu": Param(()), "tau": Param((), constraints.positive), "theta": Param((8,))},
                  log_joint=log_joint)
    return Target("eight_schools_centered", model, sample)


def mode_weights(z_first: torch.Tensor, centres, weights: torch.Tensor | None = None) -> list[float]:
    """The weight of each mode: the (weighted) share of draws nearest its centre along the first coordinate."""
    nearest = (z_first[:, None] - torch.tensor(centres, dtype=z_first.dtype)).abs().argmin(1)
    weights = torch.full_like(z_first, 1 / len(z_first)) if weights is None else weights
    return [weights[nearest == k].sum().item() for k in range(len(centres))]
