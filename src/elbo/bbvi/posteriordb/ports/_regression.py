"""Shared code of the linear-regression ports, ``y ~ normal(X beta, sigma)``: the design matrix (Stan's transformed
data) and the likelihood. A helper, not a port: it serves no posterior."""

import numpy as np

from .. import Spec, lower

POSTERIORS = ()


def design(y, *columns, intercept=True) -> dict:
    """Stan's data as float64: ``y`` and ``X``, whose columns are a column of ones (``beta[1]``, the intercept,
    unless ``intercept=False``) and then ``columns``, in ``beta``'s order."""
    n = len(y)
    columns = ([np.ones(n)] if intercept else []) + [np.broadcast_to(np.asarray(c, dtype=np.float64), (n,))
                                                      for c in columns]
    return {"y": np.asarray(y, dtype=np.float64), "X": np.stack(columns, -1)}


def params(data):
    """``vector[K] beta; real<lower=0> sigma;``, with ``K`` the columns of ``X``."""
    return {"beta": Spec((data["X"].shape[-1],)), "sigma": lower(0.0)}


def log_likelihood(ops, p, data):
    """``y ~ normal(X beta, sigma)``."""
    return ops.normal(data["y"], data["X"] @ p["beta"], p["sigma"]).sum()


def one_predictor(outcome: str, predictor: str, *, transform=None, sigma_cauchy_scale: float | None = None):
    """``(transform_data, log_density)`` of a port ``y ~ normal(beta[1] + beta[2] x, sigma)`` with ``y`` the data's
    ``outcome`` (through ``transform``, e.g. ``np.log``, if given) and ``x`` its ``predictor``; ``beta`` flat and
    ``sigma ~ cauchy(0, sigma_cauchy_scale)`` (half-Cauchy, by its constraint), or flat when that is ``None``."""

    def transform_data(data):
        y = data[outcome] if transform is None else transform(data[outcome])
        return design(y, data[predictor])

    def log_density(ops, p, data):
        if sigma_cauchy_scale is None:
            return log_likelihood(ops, p, data)
        return ops.cauchy(p["sigma"], 0.0, sigma_cauchy_scale) + log_likelihood(ops, p, data)

    return transform_data, log_density
