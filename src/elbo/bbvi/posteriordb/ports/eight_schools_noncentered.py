"""eight_schools_noncentered.stan: theta = mu + tau * theta_trans, theta_trans ~ N(0, 1), y ~ N(theta, sigma),
mu ~ N(0, 5), tau ~ Cauchy⁺(0, 5)."""

import numpy as np

from .. import Spec, lower

POSTERIORS = ("eight_schools-eight_schools_noncentered",)


def params(data):
    return {"theta_trans": Spec((int(data["J"]),)), "mu": Spec(), "tau": lower(0.0)}


def log_density(ops, p, data):
    theta = p["mu"] + p["tau"] * p["theta_trans"]
    return (ops.normal(p["theta_trans"], 0.0, 1.0).sum() + ops.normal(data["y"], theta, data["sigma"]).sum()
            + ops.normal(p["mu"], 0.0, 5.0) + ops.cauchy(p["tau"], 0.0, 5.0))


def generated(ops, p, data):
    return {"theta": p["mu"] + p["tau"] * p["theta_trans"]}


def from_reference(draws, data):
    theta = np.stack([draws[f"theta[{j + 1}]"] for j in range(int(data["J"]))], -1)
    return {"theta_trans": (theta - draws["mu"][:, None]) / draws["tau"][:, None], "mu": draws["mu"],
            "tau": draws["tau"]}
