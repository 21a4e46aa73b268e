"""A new model kind through the public registries alone: a linear-Gaussian latent model on vectors, trained,
evaluated and reported from the command line without touching any module of the package."""

import dataclasses
import json
import math
from dataclasses import dataclass

import pytest
import torch
from torch import nn
from torch.distributions import Independent, MultivariateNormal, Normal

from elbo import cli, registry
from elbo.kinds import Dataset, Kind
from helpers import NUM_SE, elbo_in_process

pytestmark = pytest.mark.e2e

W = torch.tensor([[1.0, 0.5], [0.0, 1.0], [-0.5, 0.3]])  # x = W z + b + 0.5 ε, z ~ N(0, I_2)
B = torch.tensor([0.2, -0.1, 0.4])


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
    z = torch.randn(600, 2, generator=generator, dtype=torch.float64)
    x = (z @ W.double().T + B.double() + 0.5 * torch.randn(600, 3, generator=generator, dtype=torch.float64))
    x = x.to(torch.get_default_dtype())
    return Vectors("vectors", x[:400], x[400:500], x[500:])


@dataclass(frozen=True)
class LinearConfig:
    latent_dim: int = 2
    data_dim: int | None = None

    @classmethod
    def from_dict(cls, values):
        return cls(**values)


class LinearGaussian(nn.Module):
    """p(z) = N(0, I), p(x|z) = N(W z + b, σ² I), q(z|x) = N(A x + c, diag(s²))."""

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

    def encoder_parameters(self):
        return [*self.encoder.parameters(), self.log_s]


@pytest.fixture
def linear_kind():
    registry.KINDS.register("linear", Kind(
        name="linear", config=LinearConfig, unit="vector", build=LinearGaussian,
        configure=lambda config, data: dataclasses.replace(config, data_dim=data.train.shape[1]),
        metrics=lambda run, test, per_point: {"decoder σ": round(float(run.model.log_sigma.exp()), 3),
                                              "best point": float(per_point["log_likelihood"].max())},
        sections=lambda run, test: [("Loadings", f"<p>W has shape {tuple(run.model.decoder.weight.shape)}.</p>")]))
    registry.DATASETS.register("vectors", Dataset("linear", load_vectors))
    yield
    registry.DATASETS.unregister("vectors")
    registry.KINDS.unregister("linear")


def test_a_kind_registered_from_outside_trains_evaluates_and_reports_from_the_cli(linear_kind, tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "--data", "vectors", "--epochs", "30", "--lr", "0.01", "--objective", "iwae",
                     "--k", "5", "--out", str(run), "--quiet"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == {"kind": "linear", "latent_dim": 2, "data_dim": 3}
    assert cli.main(["evaluate", str(run), "--k", "2000", "--iwae-k", "5", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "100 vectors; nats per vector" in printed
    result = json.loads((run / "evaluation.json").read_text())
    # L_K is a lower bound on log p(x) in expectation, for any q: below the exact mean test log-likelihood
    test = load_vectors().test.double()
    exact = MultivariateNormal(B.double(), W.double() @ W.double().T + 0.25 * torch.eye(3)).log_prob(test)
    likelihood = result["log_likelihood"]
    assert likelihood["mean"] <= float(exact.mean()) + NUM_SE * likelihood["stderr"]
    # the model learned: a fitted linear-Gaussian's log-likelihood is within 0.1 nat of the true one's
    assert abs(likelihood["mean"] - float(exact.mean())) < 0.1 + NUM_SE * float(exact.std() / math.sqrt(len(test)))
    assert result["elbo"]["mean"] <= result["iwae"]["5"]["mean"] <= likelihood["mean"] + NUM_SE * likelihood["stderr"]
    assert result["active_units"] == [2] and result["latent_dims"] == [2]
    assert abs(result["metrics"]["decoder σ"] - 0.5) < 0.1  # the kind's own metric: the noise it was generated with
    assert cli.main(["report", str(run), "--quiet"]) == 0
    document = (run / "report.html").read_text()
    assert "nats per vector" in document and 'alt="training_curves"' in document and 'alt="kl_per_unit"' in document
    assert "<h2>Loadings</h2>\n<p>W has shape (3, 2).</p>" in document and "decoder σ" in document


def test_a_run_of_a_data_set_registered_from_python_names_the_registration_it_needs(linear_kind, tmp_path):
    run = tmp_path / "run"
    assert cli.main(["train", "--data", "vectors", "--epochs", "1", "--out", str(run), "--quiet"]) == 0
    entry = registry.DATASETS._entries.pop("vectors")  # a new process, without the code that registered it
    try:
        for command in ("evaluate", "report"):
            result = elbo_in_process(command, str(run), "--quiet")
            assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
            assert f"{run}: the run was trained on data set 'vectors', which is not registered here: register it as " \
                   "the code that trained it did (elbo.registry.DATASETS.register('vectors', ...))" in result.stderr
            assert "checkpoint.pt" not in result.stderr
    finally:
        registry.DATASETS.register("vectors", entry)


# --- a data set with options of its own ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Noise:
    scale: float = 0.5

    @classmethod
    def from_dict(cls, values):
        return cls(**values)


def add_noise_arguments(group):
    group.add_argument("--noise-scale", type=float)


def noise_from_arguments(args):
    return Noise() if args.noise_scale is None else Noise(args.noise_scale)


SEEN = []  # the options each load of "noisy" was given


def load_noisy(*, data_dir=None, val_size=None, download=True, options):
    SEEN.append(options)
    return load_vectors()


@pytest.fixture
def noisy_data_set(linear_kind):
    registry.DATASETS.register("noisy", Dataset("linear", load_noisy, options=Noise, add_arguments=add_noise_arguments,
                                                options_from_arguments=noise_from_arguments))
    SEEN.clear()
    yield
    registry.DATASETS.unregister("noisy")


def test_a_data_sets_options_reach_its_loader_and_the_run_and_nothing_else(noisy_data_set, tmp_path, capsys):
    from elbo.configs import TrainConfig
    from elbo.errors import InputError
    from elbo.kinds import load_data

    load_data("noisy")
    load_data("noisy", options=Noise(0.1))
    assert SEEN == [Noise(), Noise(0.1)]  # None: the defaults
    load_data("vectors")  # a loader without options is called without them
    with pytest.raises(InputError, match="data set 'vectors' has no options"):
        load_data("vectors", options=Noise())
    assert TrainConfig(data="noisy").data_options == Noise() and TrainConfig(data="vectors").data_options is None
    with pytest.raises(InputError, match="data_options must be None for data set 'vectors'"):
        TrainConfig(data="vectors", data_options=Noise())
    with pytest.raises(InputError, match="data_options must be a Noise .* got dict"):
        TrainConfig(data="noisy", data_options={"scale": 0.1})
    old = TrainConfig(data="noisy").to_dict()
    del old["data_options"]  # a config.json written before data sets had options
    assert TrainConfig.from_dict(json.loads(json.dumps(old))).data_options == Noise()

    run = tmp_path / "run"
    assert cli.main(["train", "--data", "noisy", "--noise-scale", "0.1", "--epochs", "1", "--out", str(run),
                     "--quiet"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["data_options"] == {"scale": 0.1}
    assert cli.main(["evaluate", str(run), "--k", "5", "--iwae-k", "2", "--quiet"]) == 0
    assert SEEN[-1] == Noise(0.1)  # the run's data read back as it was trained on
    capsys.readouterr()
    assert cli.main(["train", "--data", "vectors", "--noise-scale", "0.1", "--out", str(tmp_path / "other"),
                     "--quiet"]) == 2
    assert capsys.readouterr().err == \
        "elbo train: error: --noise-scale: an option of --data noisy only, not of vectors\n"
    config["data_options"] = {"scale": 0.2}  # a run's data options are its checkpoint's, as its other settings
    (run / "config.json").write_text(json.dumps(config))
    assert cli.main(["train", "--resume", str(run), "--quiet"]) == 2
    assert "disagrees with checkpoint.pt on data_options" in capsys.readouterr().err
