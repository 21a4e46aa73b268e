"""low_dim_gauss_mix.stan: a two-component normal mixture, y_n ~ theta N(mu_1, sigma_1) + (1 - theta) N(mu_2,
sigma_2) with mu ordered, mu ~ N(0, 2), sigma ~ N⁺(0, 2), theta ~ Beta(5, 5)."""

from .. import Spec, lower

POSTERIORS = ("low_dim_gauss_mix-low_dim_gauss_mix",)


def params(data):
    return {"mu": Spec((2,), "ordered"), "sigma": lower(0.0, (2,)), "theta": Spec((), "interval", lower=0.0, upper=1.0)}


def log_density(ops, p, data):
    y, mu, sigma, theta = data["y"], p["mu"], p["sigma"], p["theta"]
    mixture = ops.logaddexp(ops.log(theta) + ops.normal(y, mu[0], sigma[0]),
                            ops.log1p(-theta) + ops.normal(y, mu[1], sigma[1]))
    return (ops.normal(sigma, 0.0, 2.0).sum() + ops.normal(mu, 0.0, 2.0).sum() + ops.beta(theta, 5.0, 5.0)
            + mixture.sum())
