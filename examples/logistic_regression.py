"""Bayesian logistic regression on scikit-learn's breast cancer data (569 tumours, 30 standardized features).

    b ~ N(0, 5²),  w_j ~ N(0, 1),  y_n | b, w ~ Bernoulli(sigmoid(b + x_n · w)).

Given as a prior plus a per-datapoint log-likelihood, so ``elbo fit --batch-size B`` can subsample the data.
"""

import torch
from sklearn.datasets import load_breast_cancer
from torch.distributions import Bernoulli, Normal

import elbo

features, labels = load_breast_cancer(return_X_y=True)
X = torch.as_tensor((features - features.mean(0)) / features.std(0), dtype=torch.get_default_dtype())  # (N, 30)
y = torch.as_tensor(labels, dtype=torch.get_default_dtype())  # (N,), 1 = benign


def log_prior(p):
    return Normal(0.0, 5.0).log_prob(p["b"]) + Normal(0.0, 1.0).log_prob(p["w"]).sum(-1)  # (S,)


def log_likelihood(p, batch):
    X, y = batch  # (B, 30), (B,)
    logits = p["b"].unsqueeze(-1) + p["w"] @ X.T  # (S, B)
    return Bernoulli(logits=logits).log_prob(y)


model = elbo.Model(params={"b": elbo.Param(()), "w": elbo.Param((X.shape[1],))},
                   log_prior=log_prior, log_likelihood=log_likelihood, data=(X, y))
