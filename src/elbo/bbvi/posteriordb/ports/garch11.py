"""garch11.stan: a GARCH(1, 1) model, y_t ~ N(mu, sigma_t) with sigma_1 given and
sigma_t² = alpha0 + alpha1 (y_{t-1} - mu)² + beta1 sigma_{t-1}², flat priors on mu, alpha0 > 0,
0 < alpha1 < 1 and 0 < beta1 < 1 - alpha1.

beta1's bound depends on alpha1, which a ``Spec`` cannot say: the port's parameter is ``beta1_fraction`` in (0, 1),
``beta1 = (1 - alpha1) beta1_fraction``, and the log density adds that map's Jacobian ``log(1 - alpha1)``; the
unconstrained coordinates are then Stan's (``beta1 = (1 - alpha1) logit⁻¹(u)``). The variance recursion is linear
in sigma_t², a scan of ⌈log₂ T⌉ vectorized steps (``ops.linear_recurrence``) of positive terms only."""

from .. import Spec, lower

POSTERIORS = ("garch-garch11",)


def params(data):
    return {"mu": Spec(), "alpha0": lower(0.0), "alpha1": Spec((), "interval", lower=0.0, upper=1.0),
            "beta1_fraction": Spec((), "interval", lower=0.0, upper=1.0)}


def log_density(ops, p, data):
    y, mu, alpha1 = data["y"], p["mu"], p["alpha1"]
    beta1 = (1 - alpha1) * p["beta1_fraction"]
    innovations = ops.concatenate([(data["sigma1"] ** 2)[None], p["alpha0"] + alpha1 * (y[:-1] - mu) ** 2])
    sigma = ops.sqrt(ops.linear_recurrence(innovations, beta1))
    return ops.normal(y, mu, sigma).sum() + ops.log1p(-alpha1)


def generated(ops, p, data):
    return {"beta1": (1 - p["alpha1"]) * p["beta1_fraction"]}


def from_reference(draws, data):
    return {"mu": draws["mu"], "alpha0": draws["alpha0"], "alpha1": draws["alpha1"],
            "beta1_fraction": draws["beta1"] / (1 - draws["alpha1"])}
