"""logmesquite_logvas.stan: log(weight) ~ N(beta[1] + beta[2] log(diam1 diam2 canopy_height) + beta[3] log(diam1
diam2) + beta[4] log(diam1 / diam2) + beta[5] log(total_height) + beta[6] log(density) + beta[7] group, sigma)
(canopy volume, area and shape); beta and sigma > 0 flat."""

import numpy as np

from . import _regression as regression

POSTERIORS = ("mesquite-logmesquite_logvas",)

params = regression.params


def transform_data(data):
    diam1, diam2 = data["diam1"], data["diam2"]
    return regression.design(np.log(data["weight"]), np.log(diam1 * diam2 * data["canopy_height"]),
                             np.log(diam1 * diam2), np.log(diam1 / diam2), np.log(data["total_height"]),
                             np.log(data["density"]), data["group"])


def log_density(ops, p, data):
    return regression.log_likelihood(ops, p, data)
