"""earn_height.stan: earn ~ N(beta[1] + beta[2] height, sigma); beta and sigma > 0 flat."""

from . import _regression as regression

POSTERIORS = ("earnings-earn_height",)

params = regression.params


def transform_data(data):
    return regression.design(data["earn"], data["height"])


def log_density(ops, p, data):
    return regression.log_likelihood(ops, p, data)
