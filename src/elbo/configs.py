"""The settings of the application layer's commands, as config dataclasses validated on construction, and the tables
of their choices. Nothing here imports torch, so that the command line reads its choices and defaults from here
(``elbo train --help``) without the cost of it.

- ``TrainConfig``: a training run (``elbo.train``), saved as the run's ``config.json``; ``model`` holds the config of
  the run's model kind (``elbo.registry.KINDS``), written tagged by kind;
- ``EvaluateConfig``, ``SurgeryConfig``, ``DiagnoseConfig``: measurements of a run (``elbo.evaluate``,
  ``elbo.surgery``, ``elbo.diagnostics``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ._checks import check_positive, check_positive_float, check_seed, one_of, parse_device
from ._files import tuples_from_json
from .errors import InputError
from .kinds import SPLITS, kind_of
from .registry import DATASETS, KINDS

__all__ = ["TrainConfig", "EvaluateConfig", "SurgeryConfig", "DiagnoseConfig", "OBJECTIVES", "SCHEDULES", "SPLITS",
           "IWAE_ESTIMATORS", "IWAE_SCHEDULE_EPOCHS", "AIS_STARTS", "AIS_CHAINS"]

OBJECTIVES = ("elbo", "iwae")
IWAE_ESTIMATORS = ("reparam", "stl", "dreg")  # the IWAE bound's gradient estimators (elbo.estimators)
SCHEDULES = ("constant", "iwae", "cosine")
IWAE_SCHEDULE_EPOCHS = sum(3**i for i in range(8))  # 3280
AIS_CHAINS = 16  # AIS and BDMC chains per point by default
# AIS's q₀: q(z|x) or p(z) (elbo.ais.START, which imports torch; a test holds the two equal)
AIS_STARTS = ("guide", "prior")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; saved in ``config.json`` and in every checkpoint.

    ``data``: a data set of ``elbo.registry.DATASETS``; ``data_options``: its settings, an instance of its
    ``Dataset.options`` (``None``: their defaults; always ``None`` for a data set without options); ``model``: the
    config of a model kind (``None``: the default config of the data set's kind); ``objective``: ``"elbo"`` or
    ``"iwae"``; ``num_samples`` is K, samples of ``z`` per data point (for ``"elbo"`` they average the ELBO's
    estimate). Adam's defaults are the IWAE paper's (``β = (0.9, 0.999)``, ``ε = 1e-4``). ``batch_size`` is the
    global batch, split evenly over the processes of a data-parallel run. ``log_every``: steps between updates of the
    progress bar, the only host synchronisation inside an epoch. ``compile``: run the objective through
    ``torch.compile`` (needs a C++ compiler on a CPU; without one training goes on uncompiled, with a warning).
    """

    data: str = "digits"
    data_dir: str | None = None
    val_size: int | None = None
    data_options: object = None
    model: object = None
    objective: str = "elbo"
    num_samples: int = 1
    estimator: str = "reparam"
    epochs: int = 10
    lr: float = 1e-3
    schedule: str = "constant"
    batch_size: int = 20
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-4
    seed: int = 0
    device: str = "cpu"
    log_every: int = 50
    compile: bool = False

    def __post_init__(self):
        dataset = DATASETS[DATASETS.check(self.data)]
        kind = KINDS[dataset.kind]
        self._check_data_options(dataset)
        if self.model is None:
            object.__setattr__(self, "model", kind.config())
        if not isinstance(self.model, kind.config):
            raise InputError(f"model must be a {kind.config.__name__} (the config of kind {kind.name!r}, data set "
                             f"{self.data!r}'s), got {type(self.model).__name__}", argument="model")
        one_of("objective", self.objective, OBJECTIVES)
        one_of("schedule", self.schedule, SCHEDULES)
        one_of("estimator", self.estimator, ("reparam",) if self.objective == "elbo" else IWAE_ESTIMATORS,
               context=f"for objective {self.objective!r}")
        check_positive(num_samples=self.num_samples, epochs=self.epochs, batch_size=self.batch_size,
                       log_every=self.log_every)
        check_positive_float(lr=self.lr, adam_eps=self.adam_eps)
        check_seed(self.seed)
        if not (len(self.adam_betas) == 2 and all(0 <= b < 1 for b in self.adam_betas)):
            raise InputError(f"adam_betas must be two numbers in [0, 1), got {self.adam_betas!r}",
                             argument="adam_betas")
        if not isinstance(self.compile, bool):
            raise InputError(f"compile must be True or False, got {self.compile!r}", argument="compile")
        parse_device(self.device)

    def _check_data_options(self, dataset) -> None:
        """``data_options``: the data set's defaults for ``None``; refused when not of its ``options`` type."""
        if dataset.options is None:
            if self.data_options is not None:
                raise InputError(f"data_options must be None for data set {self.data!r} (it has no options), got "
                                 f"{self.data_options!r}", argument="data_options")
            return
        if self.data_options is None:
            object.__setattr__(self, "data_options", dataset.options())
        if not isinstance(self.data_options, dataset.options):
            raise InputError(f"data_options must be a {dataset.options.__name__} (the options of data set "
                             f"{self.data!r}), got {type(self.data_options).__name__}", argument="data_options")

    def to_dict(self) -> dict:
        """JSON-ready; ``model`` tagged with its kind, ``data_options`` a plain dict (or ``None``)."""
        return {**dataclasses.asdict(self), "model": {"kind": kind_of(self.model).name,
                                                       **dataclasses.asdict(self.model)}}

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Inverse of ``to_dict`` after a JSON round trip; a ``config.json`` without ``data_options`` (an older run)
        has the data set's defaults."""
        values = {key: tuples_from_json(value) for key, value in values.items()}
        options, dataset = values.get("data_options"), DATASETS[values.get("data", cls.data)]
        if options is not None and dataset.options is not None:  # without them, __post_init__ refuses the dict
            values["data_options"] = dataset.options.from_dict(options)
        model = dict(values["model"])
        return cls(**{**values, "model": KINDS[model.pop("kind")].config.from_dict(model)})


@dataclass(frozen=True)
class EvaluateConfig:
    """``elbo.evaluate.evaluate_run``: ``log p(x)`` by IWAE with ``num_samples`` (K) importance samples (``None``:
    the run's kind's ``num_samples``, 5000 for images and 1000 for documents), the IWAE
    bound for each K of ``iwae_samples``, on the first ``max_points`` test points (``None``: all), ``batch_size``
    points at a time and the K samples ``chunk_size`` at a time; ``compile``: the log joint through
    ``torch.compile``; ``seed``: the samples'. ``ais_steps``: also AIS with that many steps (``elbo.ais``;
    ``None``: none); ``bdmc_steps``: also BDMC with that many steps on as many points simulated from the model as
    are evaluated; both with ``ais_chains`` chains a point (``None``: ``AIS_CHAINS``), started at ``ais_start`` (one of
    ``AIS_STARTS``; ``None``: the first, ``q(z|x)``); those two only with one of the others."""

    num_samples: int | None = None
    iwae_samples: tuple[int, ...] = (5, 50)
    max_points: int | None = None
    batch_size: int = 100
    chunk_size: int = 20
    compile: bool = False
    seed: int = 0
    ais_steps: int | None = None
    bdmc_steps: int | None = None
    ais_chains: int | None = None
    ais_start: str | None = None

    def __post_init__(self):
        check_positive(batch_size=self.batch_size, chunk_size=self.chunk_size)
        if self.ais_start is not None:
            one_of("ais_start", self.ais_start, AIS_STARTS)
        for name in ("ais_chains", "ais_start"):
            if getattr(self, name) is not None and self.ais_steps is None and self.bdmc_steps is None:
                raise InputError(f"{name} is a setting of AIS and BDMC: give ais_steps or bdmc_steps too",
                                 argument=name)
        for name in ("num_samples", "ais_steps", "bdmc_steps", "ais_chains"):
            if getattr(self, name) is not None:
                check_positive(**{name: getattr(self, name)})
        check_seed(self.seed)
        check_positive(**{f"iwae_samples[{i}]": k for i, k in enumerate(self.iwae_samples)})
        if self.max_points is not None:
            check_positive(max_points=self.max_points)


@dataclass(frozen=True)
class SurgeryConfig:
    """``elbo.surgery.surgery_run``: the ELBO taken apart over the first ``max_points`` points of ``split`` with
    ``num_samples`` draws of z each; ``dimension_samples`` draws estimate the total correlation and dimension-wise KL;
    densities in blocks of ``block_size`` draws by ``block_size`` mixture components."""

    split: str = "train"
    max_points: int | None = 60000
    num_samples: int = 1
    dimension_samples: int = 5000
    batch_size: int = 100
    block_size: int = 512  # 2 MiB of float64 a block (larger blocks ran slower)
    seed: int = 0

    def __post_init__(self):
        one_of("split", self.split, SPLITS)
        check_seed(self.seed)
        check_positive(num_samples=self.num_samples, dimension_samples=self.dimension_samples,
                       batch_size=self.batch_size, block_size=self.block_size)
        if self.max_points is not None:
            check_positive(max_points=self.max_points)


@dataclass(frozen=True)
class DiagnoseConfig:
    """``elbo.diagnostics.diagnose_run``: the gradient signal-to-noise ratio of the IWAE bound for each K of
    ``num_samples`` and each of ``estimators``, over ``num_draws`` draws on the first ``batch_size`` training
    points, with the per-unit KL and activity on the test set."""

    num_samples: tuple[int, ...] = (1, 5, 50)
    estimators: tuple[str, ...] = ("reparam", "dreg")
    num_draws: int = 100
    batch_size: int = 100
    seed: int = 0

    def __post_init__(self):
        check_positive(batch_size=self.batch_size)
        check_seed(self.seed)
        check_positive(**{f"num_samples[{i}]": k for i, k in enumerate(self.num_samples)})
        for estimator in self.estimators:
            one_of("estimator", estimator, IWAE_ESTIMATORS, context="for gradient_snr")
        # num_draws is checked by gradient_snr, which needs at least two
