"""gp_regr.stan: a Gaussian process regression, y ~ N(0, K + sigma I) with K = gp_exp_quad_cov(x, alpha, rho)
(note: sigma, not sigma², on the diagonal, as in the Stan model), rho ~ Gamma(25, 4), alpha ~ N⁺(0, 2),
sigma ~ N⁺(0, 1)."""

import numpy as np

from .. import lower

POSTERIORS = ("gp_pois_regr-gp_regr",)


def params(data):
    return {"rho": lower(0.0), "alpha": lower(0.0), "sigma": lower(0.0)}


def transform_data(data):
    return dict(data, x=np.asarray(data["x"], dtype=np.float64))


def log_density(ops, p, data):
    x, y = data["x"], data["y"]
    cov = ops.exp_quad_cov(x, p["alpha"], p["rho"]) + p["sigma"] * ops.eye(x.shape[0], dtype=x.dtype)
    return (ops.gamma(p["rho"], 25.0, 4.0) + ops.normal(p["alpha"], 0.0, 2.0) + ops.normal(p["sigma"], 0.0, 1.0)
            + ops.multi_normal_cholesky(y, 0.0, ops.cholesky(cov)))
