"""blr.stan: y ~ N(X beta, sigma), beta ~ N(0, 10), sigma ~ N⁺(0, 10) (``target += normal_lpdf``: no truncation
term)."""

from . import _regression as regression

POSTERIORS = ("sblrc-blr", "sblri-blr")

params = regression.params


def transform_data(data):
    return regression.design(data["y"], *data["X"].T, intercept=False)


def log_density(ops, p, data):
    return (ops.normal(p["beta"], 0.0, 10.0).sum() + ops.normal(p["sigma"], 0.0, 10.0)
            + regression.log_likelihood(ops, p, data))
