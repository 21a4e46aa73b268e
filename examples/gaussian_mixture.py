"""A mixture of three Gaussians for the petal lengths of scikit-learn's iris flowers (150 flowers, in cm).

The discrete assignment c_n of each flower to a component is summed out of the likelihood, so every parameter
left is continuous:

    π ~ Dirichlet(2, 2, 2),  μ_k ~ N(4, 3²) with μ_1 < μ_2 < μ_3,  σ_k ~ LogNormal(-1, 1),
    p(x_n | π, μ, σ) = Σ_k π_k N(x_n; μ_k, σ_k²)       (log: a logsumexp over k).

Ordering the means removes the K! relabellings of the same fit (label switching). The functions are written for
one draw and vectorized with ``torch.func.vmap`` (``vectorize=True``).
"""

import torch
from sklearn.datasets import load_iris
from torch.distributions import Dirichlet, LogNormal, Normal, constraints

import elbo

x = torch.as_tensor(load_iris().data[:, 2], dtype=torch.get_default_dtype())  # (N,) petal length
K = 3


def log_prior(p):
    return (Dirichlet(torch.full((K,), 2.0)).log_prob(p["weights"]) + Normal(4.0, 3.0).log_prob(p["locs"]).sum()
            + LogNormal(-1.0, 1.0).log_prob(p["scales"]).sum())


def log_likelihood(p, x):
    # log Σ_k π_k N(x_n; μ_k, σ_k²) for each of the B points: (B, K) -> (B,)
    log_components = p["weights"].log() + Normal(p["locs"], p["scales"]).log_prob(x.unsqueeze(-1))
    return torch.logsumexp(log_components, dim=-1)


model = elbo.Model(
    params={"weights": elbo.Param((K,), constraints.simplex), "locs": elbo.Param((K,), elbo.ordered_vector),
            "scales": elbo.Param((K,), constraints.positive)},
    log_prior=log_prior, log_likelihood=log_likelihood, data=x, vectorize=True,
)
