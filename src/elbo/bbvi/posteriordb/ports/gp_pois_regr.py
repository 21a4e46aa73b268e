"""gp_pois_regr.stan: a Poisson regression on a latent Gaussian process, non-centred: f = L f_tilde with
L L' = gp_exp_quad_cov(x, alpha, rho) + 1e-10 I, f_tilde ~ N(0, 1), k ~ Poisson(exp(f)), rho ~ Gamma(25, 4),
alpha ~ N⁺(0, 2). The reference draws hold f, not f_tilde: ``from_reference`` solves L f_tilde = f."""

import numpy as np

from .. import Spec, lower

POSTERIORS = ("gp_pois_regr-gp_pois_regr",)
JITTER = 1e-10


def params(data):
    return {"rho": lower(0.0), "alpha": lower(0.0), "f_tilde": Spec((int(data["N"]),))}


def transform_data(data):
    return dict(data, x=np.asarray(data["x"], dtype=np.float64), k=np.asarray(data["k"], dtype=np.float64))


def _f(ops, p, data):
    x = data["x"]
    cov = ops.exp_quad_cov(x, p["alpha"], p["rho"]) + JITTER * ops.eye(x.shape[0], dtype=x.dtype)
    return ops.cholesky(cov) @ p["f_tilde"]


def log_density(ops, p, data):
    return (ops.gamma(p["rho"], 25.0, 4.0) + ops.normal(p["alpha"], 0.0, 2.0)
            + ops.normal(p["f_tilde"], 0.0, 1.0).sum() + ops.poisson_log(data["k"], _f(ops, p, data)).sum())


def generated(ops, p, data):
    return {"f": _f(ops, p, data)}


def from_reference(draws, data):
    x, n = np.asarray(data["x"], dtype=np.float64), int(data["N"])
    alpha, rho = draws["alpha"][:, None, None], draws["rho"][:, None, None]
    cov = alpha ** 2 * np.exp(-0.5 * ((x[:, None] - x[None, :]) / rho) ** 2) + JITTER * np.eye(n)
    L = np.linalg.cholesky(cov)
    f = np.stack([draws[f"f[{i + 1}]"] for i in range(n)], -1)
    f_tilde = np.zeros_like(f)
    for i in range(n):  # forward substitution, all draws at once
        f_tilde[:, i] = (f[:, i] - (L[:, i, :i] * f_tilde[:, :i]).sum(-1)) / L[:, i, i]
    return {"rho": draws["rho"], "alpha": draws["alpha"], "f_tilde": f_tilde}
