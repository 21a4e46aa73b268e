"""log10earn_height.stan: log10(earn) ~ N(beta[1] + beta[2] height, sigma); beta and sigma > 0 flat."""

import numpy as np

from . import _regression as regression

POSTERIORS = ("earnings-log10earn_height",)

params = regression.params


def transform_data(data):
    return regression.design(np.log10(data["earn"]), data["height"])


def log_density(ops, p, data):
    return regression.log_likelihood(ops, p, data)
