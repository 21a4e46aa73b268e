"""logmesquite.stan: log(weight) ~ N(beta[1] + beta[2] log(diam1) + beta[3] log(diam2) + beta[4] log(canopy_height)
+ beta[5] log(total_height) + beta[6] log(density) + beta[7] group, sigma); beta and sigma > 0 flat."""

import numpy as np

from . import _regression as regression

POSTERIORS = ("mesquite-logmesquite",)

params = regression.params


def transform_data(data):
    logs = (np.log(data[key]) for key in ("diam1", "diam2", "canopy_height", "total_height", "density"))
    return regression.design(np.log(data["weight"]), *logs, data["group"])


def log_density(ops, p, data):
    return regression.log_likelihood(ops, p, data)
