"""The driver of black-box VI, ``elbo.fit``: settings checked, the initial point, q's starting Gaussian (Pathfinder's
by default), then the method's steps from the table ``METHODS`` (``config.py``), then the diagnostics (``Fit``).

VI happens in the model's unconstrained space (``elbo.bbvi.model``): q is a family from ``elbo.families`` over
``z``, fitted by maximising the ELBO ``E_q[log p(x, z) - log q(z)]``.
"""

from __future__ import annotations

import dataclasses
import math
import time

import torch

from .. import distributed
from ..errors import InputError
from ..registry import resolve
from . import guards, pathfinder, repair
from .config import METHODS, FitConfig
from .context import default_dtype, seeded
from .methods import CountedDensity, Start
from .model import Model
from .result import Fit

__all__ = ["fit", "initial_point"]


def fit(model: Model, **settings) -> Fit:
    """Fit q to the model's posterior in the unconstrained space; ``settings`` are the fields of ``FitConfig``
    (keyword only), e.g. ``fit(model)`` (Pathfinder, then batch and match, full rank) or ``fit(model,
    family="meanfield", method="advi")``.

    Returns a ``Fit``: q, the trace of ELBO estimates, why it stopped, the numbers of log-density evaluations, and
    the diagnostics (k̂, log evidence, PSIS-reweighted summaries) from ``num_draws`` draws of q. Warns when it did
    not converge, when k̂ ≥ 0.7, and when log p was not finite at more than 1% of the draws."""
    try:
        config = FitConfig(**settings)
    except TypeError as error:
        raise InputError(f"fit: {error}; the settings are the fields of elbo.bbvi.FitConfig") from None
    if not isinstance(model, Model):
        raise InputError(f"model must be an elbo.Model, got {type(model).__name__}", argument="model")
    if config.batch_size is not None and model.log_joint is not None:
        raise InputError("batch_size needs a model given with log_prior, log_likelihood and data; this one has "
                         "a single log_joint", argument="batch_size")
    config, chosen = config.for_model(model.dim)
    # under torchrun (or elbo fit --nproc) each process sums the log-likelihood over its block of rows
    with distributed.joined("cpu"), seeded(config.seed), default_dtype(config.dtype):
        clock = time.perf_counter()
        log_density = CountedDensity(model)
        start = _start(model, config, log_density)
        fitted = resolve(METHODS[config.method].run)(start)
        fitted = guards.check_converged(fitted, start, config.steps_per_window())
        seconds = time.perf_counter() - clock
        reason = "; ".join(filter(None, [f"{fitted.reason} (started from {start.origin})", chosen]))
        result = Fit(model, fitted.guide, config=config, elbo_trace=fitted.elbo_trace, converged=fitted.converged,
                     seconds=seconds, reason=reason, num_grad_evals=log_density.num_grad,
                     num_dropped=fitted.num_dropped)
        result = repair.finish(result, start)  # the modes q missed; with repair=True, q repaired
    result.warn()
    return result


def initial_point(model: Model, init) -> torch.Tensor:
    """The point q starts from: ``Model.initial_point``, with the constrained values of ``init`` (a dict) put in."""
    z = model.initial_point()
    if isinstance(init, dict):
        unknown = set(init) - set(model.params)
        if unknown:
            raise InputError(f"init names unknown parameters {sorted(unknown)}; the model's are {list(model.params)}",
                             argument="init")
        values = model.constrain(z[None])
        for name, value in init.items():
            value = torch.as_tensor(value, dtype=z.dtype)
            param = model.params[name]
            if tuple(value.shape) != param.shape or not bool(param.constraint.check(value).all()):
                raise InputError(f"init[{name!r}] must have shape {param.shape} and satisfy {param.constraint}, "
                                 f"got {value.tolist()}")
            values[name] = value[None]
        z = model.unconstrain(values)[0]
        if not math.isfinite(model.log_density(z[None]).item()):
            raise InputError("the log density is not finite at init: check the values and the model")
    return z


START_ROWS = 2**16  # the rows a minibatch fit's start sees, at most


def _start(model: Model, config: FitConfig, log_density: CountedDensity) -> Start:
    """q's starting Gaussian, and a line saying where it came from. A fit on minibatches of a data set of more than
    ``START_ROWS`` rows finds it on a random ``START_ROWS`` of them (``Model.subsample``), held in memory, so that
    the start costs no pass over the data; its gradients count in ``log_density``'s."""
    z0 = initial_point(model, config.init)
    scale = torch.full_like(z0, config.init_scale)
    density, rows = log_density, ""
    if config.batch_size is not None and model.num_data > START_ROWS and config.init in ("pathfinder", "map"):
        density, rows = CountedDensity(model.subsample(START_ROWS)), f", on {START_ROWS:,} of the rows"
    try:
        if config.init == "pathfinder" or config.method == "pathfinder":
            result = pathfinder.pathfinder(density, z0, progress=config.progress)  # counts gradients, ELBO draws
            covariance = None if result.gaussian is None else result.gaussian.covariance
            # the initial point's Gaussian where it is better, both scored on the density Pathfinder saw
            chosen = guards.prefer_point(Start(
                model, config, density, result.loc, result.variance.sqrt(), covariance,
                f"Pathfinder{rows}: best of {result.path.num_iterates} L-BFGS iterates, ELBO {result.elbo:.4g}; "
                f"{result.path.reason}"), z0, result.elbo)
            return dataclasses.replace(chosen, log_density=log_density)
        if config.init == "map":
            path = pathfinder.lbfgs(density, z0, progress=config.progress)
            if path.pairs:  # the curvature at the mode, from L-BFGS's last pairs, scales q (never init_scale alone)
                scale = pathfinder.compact_variance(path.pairs[-6:], model.dim).sqrt()
            return Start(model, config, log_density, path.z[-1], scale, None,
                         f"the mode by L-BFGS{rows}, scaled by its inverse-Hessian estimate: {path.reason}")
        return Start(model, config, log_density, z0, scale, None, "the initial point")
    finally:
        if density is not log_density:
            log_density.num_grad += density.num_grad
            log_density.num_density += density.num_density
