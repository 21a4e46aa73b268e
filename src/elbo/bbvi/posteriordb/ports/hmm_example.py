"""hmm_example.stan: a two-state hidden Markov model with unit-variance normal emissions, y_t ~ N(mu_{z_t}, 1),
transition rows theta1, theta2 (simplexes, flat priors), mu positive-ordered with mu_1 ~ N(3, 1), mu_2 ~ N(10, 1);
the states are summed out by the forward algorithm in log space (``ops.scan`` over time), starting from Stan's
``gamma_1k = log N(y_1; mu_k, 1)`` (no initial distribution).

A ``Spec`` has no positive-ordered constraint: the port's parameter is ``mu_gaps`` > 0, ``mu = cumsum(mu_gaps)``
(``mu_1``, then the gaps), a map of unit Jacobian whose log coordinates are Stan's positive_ordered ones
(``log mu_1``, ``log(mu_k - mu_{k-1})``). The reference draws hold no generated quantities (z_star)."""

import functools

import numpy as np

from .. import Spec, lower

POSTERIORS = ("hmm_example-hmm_example",)


def params(data):
    K = int(data["K"])
    return {"theta1": Spec((K,), "simplex"), "theta2": Spec((K,), "simplex"), "mu_gaps": lower(0.0, (K,))}


def log_density(ops, p, data):
    mu = p["mu_gaps"].cumsum(-1)
    log_theta = ops.log(ops.stack([p["theta1"], p["theta2"]]))  # [j, k]: from state j to state k
    emissions = ops.normal(data["y"][:, None], mu, 1.0)  # (N, K)

    def forward(gamma, emission):  # gamma_tk = log Σ_j exp(gamma_{t-1,j} + log theta_jk) + log N(y_t; mu_k, 1)
        # the sum over the K source states as K - 1 logaddexps: the same values as ops.logsumexp(gamma[:, None] +
        # log_theta, axis=0), in a third of the time in torch (one kernel each, against logsumexp's several)
        gamma = functools.reduce(ops.logaddexp, [gamma[j] + log_theta[j] for j in range(len(log_theta))]) + emission
        return gamma, gamma  # (torch's scan stacks the ys)

    gamma, _ = ops.scan(forward, emissions[0], emissions[1:])
    return ops.normal(mu[0], 3.0, 1.0) + ops.normal(mu[1], 10.0, 1.0) + ops.logsumexp(gamma, axis=-1)


def generated(ops, p, data):
    return {"mu": p["mu_gaps"].cumsum(-1)}


def from_reference(draws, data):
    K = int(data["K"])
    mu = np.stack([draws[f"mu[{k + 1}]"] for k in range(K)], -1)
    return {"theta1": np.stack([draws[f"theta1[{k + 1}]"] for k in range(K)], -1),
            "theta2": np.stack([draws[f"theta2[{k + 1}]"] for k in range(K)], -1),
            "mu_gaps": np.concatenate([mu[:, :1], np.diff(mu, axis=-1)], -1)}
