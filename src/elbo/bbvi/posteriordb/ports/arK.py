"""arK.stan: an AR(K) model, y_t ~ N(alpha + Σ_k beta_k y_{t-k}, sigma) for t > K, alpha ~ N(0, 10),
beta ~ N(0, 10), sigma ~ Cauchy⁺(0, 2.5); the lagged values are a (T - K, K) matrix, built once."""

import numpy as np

from .. import Spec, lower

POSTERIORS = ("arK-arK",)


def params(data):
    return {"alpha": Spec(), "beta": Spec((int(data["K"]),)), "sigma": lower(0.0)}


def transform_data(data):
    K, T, y = int(data["K"]), int(data["T"]), np.asarray(data["y"], dtype=np.float64)
    lags = np.stack([y[K - k:T - k] for k in range(1, K + 1)], -1)  # lags[t - K, k - 1] = y[t - k]
    return dict(data, y_next=y[K:], lags=lags)


def log_density(ops, p, data):
    mu = p["alpha"] + data["lags"] @ p["beta"]
    return (ops.normal(p["alpha"], 0.0, 10.0) + ops.normal(p["beta"], 0.0, 10.0).sum()
            + ops.cauchy(p["sigma"], 0.0, 2.5) + ops.normal(data["y_next"], mu, p["sigma"]).sum())
