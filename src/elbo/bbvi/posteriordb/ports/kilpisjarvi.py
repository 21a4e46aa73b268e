"""kilpisjarvi.stan: y ~ N(alpha + beta x, sigma), alpha ~ N(pmualpha, psalpha), beta ~ N(pmubeta, psbeta)
(prior means and scales from the data); sigma > 0 flat."""

import numpy as np

from .. import Spec, lower

POSTERIORS = ("kilpisjarvi_mod-kilpisjarvi",)


def transform_data(data):
    return {key: np.asarray(data[key], dtype=np.float64) for key in ("x", "y", "pmualpha", "psalpha", "pmubeta",
                                                                       "psbeta")}


def params(data):
    return {"alpha": Spec(), "beta": Spec(), "sigma": lower(0.0)}


def log_density(ops, p, data):
    return (ops.normal(p["alpha"], data["pmualpha"], data["psalpha"])
            + ops.normal(p["beta"], data["pmubeta"], data["psbeta"])
            + ops.normal(data["y"], p["alpha"] + p["beta"] * data["x"], p["sigma"]).sum())
