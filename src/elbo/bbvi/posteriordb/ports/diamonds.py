"""diamonds.stan (brms): with Xc the columns 2..K of X centered, Y ~ N(Intercept + Xc b, sigma), b ~ N(0, 1),
Intercept ~ t_3(8, 10), sigma ~ t⁺_3(0, 10) (with brms's truncation term, ``- student_t_lccdf(0 | 3, 0, 10)``)."""

from .. import Spec, lower

POSTERIORS = ("diamonds-diamonds",)


def transform_data(data):
    X = data["X"][:, 1:]
    return {"Y": data["Y"], "Xc": X - X.mean(0)}


def params(data):
    return {"b": Spec((data["Xc"].shape[-1],)), "Intercept": Spec(), "sigma": lower(0.0)}


def log_density(ops, p, data):
    return (ops.normal(p["b"], 0.0, 1.0).sum() + ops.student_t(p["Intercept"], 3.0, 8.0, 10.0)
            + ops.student_t(p["sigma"], 3.0, 0.0, 10.0) - ops.std_normal_lccdf0()
            + ops.normal(data["Y"], p["Intercept"] + data["Xc"] @ p["b"], p["sigma"]).sum())
