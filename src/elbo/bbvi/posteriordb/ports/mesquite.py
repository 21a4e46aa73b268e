"""mesquite.stan: weight ~ N(beta[1] + beta[2] diam1 + beta[3] diam2 + beta[4] canopy_height + beta[5] total_height
+ beta[6] density + beta[7] group, sigma); beta and sigma > 0 flat."""

from . import _regression as regression

POSTERIORS = ("mesquite-mesquite",)

params = regression.params


def transform_data(data):
    return regression.design(data["weight"], *(data[key] for key in ("diam1", "diam2", "canopy_height",
                                                                     "total_height", "density", "group")))


def log_density(ops, p, data):
    return regression.log_likelihood(ops, p, data)
