"""logearn_interaction.stan: log(earn) ~ N(beta[1] + beta[2] height + beta[3] male + beta[4] height male, sigma);
beta and sigma > 0 flat."""

import numpy as np

from . import _regression as regression

POSTERIORS = ("earnings-logearn_interaction",)

params = regression.params


def transform_data(data):
    height, male = data["height"], data["male"]
    return regression.design(np.log(data["earn"]), height, male, height * male)


def log_density(ops, p, data):
    return regression.log_likelihood(ops, p, data)
