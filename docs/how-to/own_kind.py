# # A model kind of your own
#
# A kind is a config dataclass, a model built from it, a data set loader, and two registry entries. This one is a
# linear-Gaussian latent model on vectors, `z ~ N(0, I_2)`, `x | z ~ N(W z + b, σ² I_3)`, with a linear encoder;
# everything the package does for its own kinds (training, checkpoints, resume, evaluation, the report, the command
# line's `--data vectors` once registered) then works for it. `tests/test_kinds.py` does the same from the
# command line.
#
# Run it: `python docs/how-to/own_kind.py [OUT]` (`ELBO_TUTORIAL_QUICK=1` trains for fewer epochs).

import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.distributions import Independent, Normal

from elbo import evaluate, registry, train
from elbo.configs import TrainConfig
from elbo.kinds import Dataset, Kind

QUICK = os.environ.get("ELBO_TUTORIAL_QUICK") == "1"
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/how-to-own-kind")

# ## 1. The config: a frozen dataclass, importable without torch, with `from_dict` (the inverse of `asdict`)
#
# Defaults make a model; the fields that come from the data (`data_dim`) are `None` until `configure` fills them.


@dataclass(frozen=True)
class LinearConfig:
    latent_dim: int = 2
    data_dim: int | None = None

    @classmethod
    def from_dict(cls, values):
        return cls(**values)


# ## 2. The model: `prior()`, `likelihood(z)` and `guide(x)` (or `log_prob(x, z)` in place of the first two)
#
# Shapes as everywhere in `elbo`: `z: (K, B, D)`, `x: (B, D_x)`; `guide(x)` has batch shape `(B,)`.


class LinearGaussian(nn.Module):
    def __init__(self, config: LinearConfig):
        super().__init__()
        self.decoder = nn.Linear(config.latent_dim, config.data_dim)
        self.encoder = nn.Linear(config.data_dim, config.latent_dim)
        self.log_sigma = nn.Parameter(torch.zeros(()))
        self.log_s = nn.Parameter(torch.zeros(config.latent_dim))

    def prior(self):
        zeros = self.log_s.new_zeros(self.log_s.shape)
        return Independent(Normal(zeros, torch.ones_like(zeros)), 1)

    def likelihood(self, z):
        return Independent(Normal(self.decoder(z), self.log_sigma.exp()), 1)

    def guide(self, x):
        return Independent(Normal(self.encoder(x), self.log_s.exp().expand(len(x), -1)), 1)


# ## 3. A data set: a loader with the keywords every loader takes, returning `name`, `train`, `val`, `test`,
# `scored(split)` (the points and their labels, or None) and `resample(batch, generator)` (the batch as the model
# sees it this epoch: itself, when there is nothing to redraw).


@dataclass(eq=False)
class Vectors:
    name: str
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor

    def scored(self, split):
        return getattr(self, split), None

    def resample(self, batch, generator):
        return batch


def load_vectors(*, data_dir=None, val_size=None, download=True):
    generator = torch.Generator().manual_seed(0)
    weight, bias = torch.tensor([[1.0, 0.5], [0.0, 1.0], [-0.5, 0.3]]), torch.tensor([0.2, -0.1, 0.4])
    z = torch.randn(600, 2, generator=generator)
    x = z @ weight.T + bias + 0.5 * torch.randn(600, 3, generator=generator)
    return Vectors("vectors", x[:400], x[400:500], x[500:])


# ## 4. The registry entries: the kind (`unit` names one data point) and its data set
#
# `configure(config, data)` fills in the data-dependent fields; `build(config)` makes the model. The optional hooks
# (`metrics`, `figures`, `sections`, `add_arguments`, ...) add the kind's own measures, report and options.

registry.KINDS.register("linear", Kind(
    name="linear", config=LinearConfig, unit="vector", build=LinearGaussian,
    configure=lambda config, data: dataclasses.replace(config, data_dim=data.train.shape[1]),
    metrics=lambda run, test, per_point: {"decoder σ": float(run.model.log_sigma.exp())}), replace=True)
registry.DATASETS.register("vectors", Dataset("linear", load_vectors), replace=True)

# ## 5. Train and measure it like any other kind

config = TrainConfig(data="vectors", objective="iwae", num_samples=5, epochs=10 if QUICK else 50, lr=0.01)
train.train(config, OUT, force=True, progress=False)
result = evaluate.evaluate_run(OUT, num_samples=500, iwae_samples=())
print(f"linear kind: test log p(x) {result['log_likelihood']['mean']:.3f} nats per {result['unit']}, "
      f"decoder σ {result['metrics']['decoder σ']:.3f} (the data's: 0.5)")
