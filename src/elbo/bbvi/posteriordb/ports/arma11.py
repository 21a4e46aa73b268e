"""arma11.stan: an ARMA(1, 1) model, err_t = y_t - (mu + phi y_{t-1} + theta err_{t-1}) ~ N(0, sigma) with
y_0 = mu and err_0 = 0, mu ~ N(0, 10), phi ~ N(0, 2), theta ~ N(0, 2), sigma ~ Cauchy⁺(0, 2.5).

The errors are linear in err_{t-1}, ``err_t = c_t - theta err_{t-1}``: a scan of ⌈log₂ T⌉ vectorized steps
(``ops.linear_recurrence``)."""

from .. import Spec, lower

POSTERIORS = ("arma-arma11",)


def params(data):
    return {"mu": Spec(), "phi": Spec(), "theta": Spec(), "sigma": lower(0.0)}


def log_density(ops, p, data):
    y, mu, phi = data["y"], p["mu"], p["phi"]
    first = y[0] - (mu + phi * mu)
    err = ops.linear_recurrence(ops.concatenate([first[None], y[1:] - (mu + phi * y[:-1])]), -p["theta"])
    return (ops.normal(mu, 0.0, 10.0) + ops.normal(phi, 0.0, 2.0) + ops.normal(p["theta"], 0.0, 2.0)
            + ops.cauchy(p["sigma"], 0.0, 2.5) + ops.normal(err, 0.0, p["sigma"]).sum())
