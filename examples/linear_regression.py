"""Bayesian linear regression with a conjugate prior on scikit-learn's diabetes data (442 patients, 10 features).

Features and target are standardized; the noise scale is known (0.7, about the residual sd of least squares):

    w ~ N(0, s² I),  y_n | w ~ N(x_n · w, σ²),  s = 1, σ = 0.7.

The posterior of w is Gaussian and the evidence closed-form: with w = s z this is ``elbo.exact.LinearGaussian``
with weight s X and bias 0, whose ``posterior`` and ``log_evidence`` give the exact answers (``exact_posterior``
below). Features s1 and s2 correlate at 0.9, so the posterior is strongly correlated: a full-rank q can match it
exactly, a mean-field one cannot.
"""

import torch
from sklearn.datasets import load_diabetes
from torch.distributions import MultivariateNormal, Normal

import elbo

PRIOR_SCALE, NOISE_SCALE = 1.0, 0.7

features, target = load_diabetes(return_X_y=True)
X = torch.as_tensor((features - features.mean(0)) / features.std(0), dtype=torch.get_default_dtype())  # (N, 10)
y = torch.as_tensor((target - target.mean()) / target.std(), dtype=torch.get_default_dtype())  # (N,)


def log_prior(p):
    return Normal(0.0, PRIOR_SCALE).log_prob(p["w"]).sum(-1)  # (S,)


def log_likelihood(p, batch):
    X, y = batch  # (B, 10), (B,)
    return Normal(p["w"] @ X.T, NOISE_SCALE).log_prob(y)  # (S, B)


model = elbo.Model(params={"w": elbo.Param((X.shape[1],))}, log_prior=log_prior, log_likelihood=log_likelihood,
                   data=(X, y))


def exact_posterior() -> tuple[MultivariateNormal, float]:
    """The exact posterior of w and ``log p(y)``, from ``elbo.exact.LinearGaussian`` (z = w / s)."""
    conjugate = elbo.exact.LinearGaussian(PRIOR_SCALE * X, torch.zeros(len(y)), NOISE_SCALE)
    with torch.no_grad():
        posterior_z = conjugate.posterior(y.unsqueeze(0))  # batch (1,)
        log_evidence = conjugate.log_evidence(y.unsqueeze(0)).item()
    posterior_w = MultivariateNormal(PRIOR_SCALE * posterior_z.loc[0],
                                     covariance_matrix=PRIOR_SCALE**2 * posterior_z.covariance_matrix[0])
    return posterior_w, log_evidence
