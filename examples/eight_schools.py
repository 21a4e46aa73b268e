"""Eight schools (Rubin 1981; Gelman et al., Bayesian Data Analysis, 5.5), non-centred.

The effect of coaching on SAT scores in eight schools: estimates y_j with known standard errors sigma_j.
A hierarchical model with the school effects written as theta_j = mu + tau * eta_j (non-centred), which
removes the funnel between tau and the effects that defeats both NUTS and VI in the centred form:

    mu ~ N(0, 5²),  tau ~ HalfCauchy(5),  eta_j ~ N(0, 1),  y_j ~ N(mu + tau * eta_j, sigma_j²).

Fit it with ``elbo fit examples/eight_schools.py --family fullrank --compare-nuts``.
"""

import torch
from torch.distributions import Cauchy, Normal, constraints

import elbo

y = torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
sigma = torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def log_joint(p):
    mu, tau, eta = p["mu"], p["tau"], p["eta"]  # (S,), (S,), (S, 8)
    log_prior = (Normal(0.0, 5.0).log_prob(mu) + Cauchy(0.0, 5.0).log_prob(tau) + torch.log(torch.tensor(2.0))
                 + Normal(0.0, 1.0).log_prob(eta).sum(-1))
    theta = mu.unsqueeze(-1) + tau.unsqueeze(-1) * eta  # (S, 8)
    return log_prior + Normal(theta, sigma).log_prob(y).sum(-1)


model = elbo.Model(
    params={"mu": elbo.Param(()), "tau": elbo.Param((), constraints.positive), "eta": elbo.Param((8,))},
    log_joint=log_joint,
)
