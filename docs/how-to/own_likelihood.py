# # A likelihood head of your own: the continuous Bernoulli
#
# The Bernoulli likelihood of a VAE on grey-level images is not a density over [0, 1]; the continuous Bernoulli
# (Loaiza-Ganem & Cunningham 2019) is, with the same logits. A head maps the decoder's output `h` to `p(x|z)`, a
# torch Distribution with event shape `(D,)`; registered in `elbo.registry.LIKELIHOODS`, its name is a value of
# `VAEConfig.likelihood` (and of `elbo train --likelihood`, for a head registered in the package).
#
# Run it: `python docs/how-to/own_likelihood.py [OUT]` (`ELBO_TUTORIAL_QUICK=1` trains for 2 epochs).

import os
import sys
from pathlib import Path

import torch
from torch import nn
from torch.distributions import ContinuousBernoulli, Independent

from elbo import evaluate, registry, train
from elbo.configs import TrainConfig
from elbo.errors import InputError
from elbo.models.images import VAEConfig

QUICK = os.environ.get("ELBO_TUTORIAL_QUICK") == "1"
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/how-to-own-likelihood")


class ContinuousBernoulliLikelihood(nn.Module):
    """`p(x|z) = Π_i CB(x_i; λ_i)`, `λ = sigmoid(h)`: a density over `[0, 1]^D`."""

    @classmethod
    def from_config(cls, dim: int, config):  # dim: D; config: the kind's config (VAEConfig), for settings
        return cls()

    def forward(self, logits: torch.Tensor):  # (K, B, D) -> a Distribution with batch (K, B), event (D,)
        return Independent(ContinuousBernoulli(logits=logits, validate_args=False), 1)

    def output_bias(self, mean_x: torch.Tensor) -> torch.Tensor:  # where the decoder's output bias starts
        return torch.logit(mean_x.clamp(1e-3, 1 - 1e-3))

    def check(self, x: torch.Tensor) -> None:  # called once on the data set, before training
        if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise InputError("a continuous Bernoulli likelihood needs values in [0, 1]")


registry.LIKELIHOODS.register("continuous_bernoulli", ContinuousBernoulliLikelihood, replace=True)

config = TrainConfig(data="digits", epochs=2 if QUICK else 100, batch_size=100,
                     model=VAEConfig(latent_dims=(8,), hidden_dims=((64,),), likelihood="continuous_bernoulli"))
train.train(config, OUT, force=True, progress=False)
result = evaluate.evaluate_run(OUT, num_samples=100, iwae_samples=())
print(f"continuous Bernoulli VAE: test ELBO {result['elbo']['mean']:.2f}, "
      f"log p(x) {result['log_likelihood']['mean']:.2f} nats per image")
