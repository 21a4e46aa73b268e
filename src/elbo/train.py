"""Training a VAE or an IWAE: ``TrainConfig``, the loop, and the run directory.

``train(config, out)`` fits a model and writes the run directory ``out``:

- ``config.json``: the ``TrainConfig`` (with the model's data-dependent fields filled in);
- ``metrics.jsonl``: one JSON object per epoch: ``epoch``, ``lr``, ``elbo`` and ``train_bound`` (the ELBO and the
  objective, running means over the epoch's batches, in nats per image; the two are one for the VAE, while for
  the IWAE the ELBO is the mean of the same log-weights whose log-mean-exp is the bound), ``val_bound`` (the
  objective on the validation set at the end of the epoch), ``val_elbo``, ``examples_per_sec`` (training only),
  ``seconds`` (the epoch, with validation);
- ``checkpoint.pt``: model, optimizer, epoch and every random state, after each epoch (and before the first),
  written atomically (a temporary file, then ``os.replace``) and read back with ``torch.load(weights_only=True)``.

``resume(out)`` continues from the checkpoint and reaches the same parameters, bit for bit on CPU, as a run that
was never interrupted: the learning rate is a function of the epoch, and the checkpoint holds the global torch
generator (the samples ``z``), the shuffling generator and the binarization generator.

Objectives: ``"vae"`` is the ELBO, ``E_q[log p(x|z)] - KL(q(z|x) ‖ p(z))`` with the closed-form KL (estimated by
Monte Carlo for a model with two stochastic layers, which has no single prior); ``"iwae"`` is the bound
``L_K`` of Burda et al. (2015) with estimator ``"reparam"``, ``"stl"`` or ``"dreg"``. The IWAE paper's schedule
(``schedule="iwae"``) runs stage ``i = 0..7`` for ``3^i`` epochs at ``lr · 10^(-i/7)``: 3280 epochs in all.

Data parallel (``train(..., nproc=N)``, or N processes started by torchrun): ``batch_size`` is the *global* batch.
Every process holds the same random streams and draws the permutation, the binarization and the noise ``z`` of
the whole global batch, then trains on its own contiguous block of ``batch_size / N`` rows (``SharedNoise`` in
``elbo.distributed``); ``DistributedDataParallel`` averages the gradients of the blocks' mean bounds, which is the
gradient of the global batch's mean. So N processes compute what one does, up to the order of float sums, and a
checkpoint (written by rank 0 only) holds every process's random state, since all are the same; a run may be
resumed with another N. A last batch that does not split evenly loses its remainder (at most N - 1 images an epoch).

``step(objective, optimizer, x)`` is one step of the loop; ``make_objective(model, config)`` builds the module it
differentiates (wrapped in ``DistributedDataParallel`` and compiled as the run asks); ``benchmarks/train_speed.py``
times exactly these.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from . import bounds, data, distributed, evaluate
from ._checks import check_positive
from ._compiler import compiled
from ._files import write_atomically, write_json
from .vae import VAEConfig, make_vae

__all__ = ["TrainConfig", "OBJECTIVES", "SCHEDULES", "Run", "TrainingDiverged", "train", "resume", "load_run",
           "training_bound", "learning_rate", "IWAE_SCHEDULE_EPOCHS", "Objective", "make_objective",
           "make_optimizer", "step"]

OBJECTIVES = ("vae", "iwae")
SCHEDULES = ("constant", "iwae")
# the files of a run, replaced by `train(..., force=True)`: measurements of an earlier model must not outlive it
RUN_FILES = ("config.json", "metrics.jsonl", "checkpoint.pt", "evaluation.json", "surgery.json", "diagnostics.json",
             "report.html")
IWAE_SCHEDULE_EPOCHS = sum(3**i for i in range(8))  # 3280


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; saved in ``config.json`` and in every checkpoint.

    ``num_samples`` is K: samples of ``z`` per image (for ``"vae"`` they average the ELBO's estimate). Adam's
    defaults are the IWAE paper's (``β = (0.9, 0.999)``, ``ε = 1e-4``). ``batch_size`` is the global batch, split
    evenly over the processes of a data-parallel run. ``log_every``: steps between updates of the progress bar, the
    only host synchronisation inside an epoch. ``compile``: run the objective through ``torch.compile`` (needs a C++
    compiler on a CPU; without one training goes on uncompiled, with a warning).
    """

    data: str = "digits"
    data_dir: str | None = None
    val_size: int | None = None
    model: VAEConfig = field(default_factory=VAEConfig)
    objective: str = "vae"
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
        for name, allowed in (("data", data.DATASETS), ("objective", OBJECTIVES), ("schedule", SCHEDULES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {getattr(self, name)!r}")
        estimators = ("reparam",) if self.objective == "vae" else ("reparam", "stl", "dreg")
        if self.estimator not in estimators:
            raise ValueError(f"estimator must be one of {', '.join(map(repr, estimators))} for objective "
                             f"{self.objective!r}, got {self.estimator!r}")
        check_positive(**{name: getattr(self, name) for name in ("num_samples", "epochs", "batch_size", "log_every")})
        for name in ("lr", "adam_eps"):
            if not (isinstance(getattr(self, name), (int, float)) and 0 < getattr(self, name) < math.inf):
                raise ValueError(f"{name} must be a finite number > 0, got {getattr(self, name)!r}")
        if not (len(self.adam_betas) == 2 and all(0 <= b < 1 for b in self.adam_betas)):
            raise ValueError(f"adam_betas must be two numbers in [0, 1), got {self.adam_betas!r}")
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile must be True or False, got {self.compile!r}")
        if not isinstance(self.model, VAEConfig):
            raise ValueError(f"model must be a VAEConfig, got {type(self.model).__name__}")
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda', got {self.device!r}") from None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Inverse of ``to_dict`` after a JSON round trip."""
        values = {key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}
        return cls(**{**values, "model": VAEConfig.from_dict(values["model"])})


class TrainingDiverged(RuntimeError):
    """The bound became NaN or infinite; the run directory keeps the last finite checkpoint."""


@dataclass(frozen=True, eq=False)
class Run:
    """A run directory read back: its config, the model at its last checkpoint (in eval mode), its data and
    metrics (one dict per epoch)."""

    path: Path
    config: TrainConfig
    model: torch.nn.Module
    data: data.ImageData
    epoch: int
    metrics: list


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """The learning rate of epoch ``epoch`` (0-based): ``lr``, or for ``schedule="iwae"`` ``lr · 10^(-i/7)`` in
    stage ``i``, where stage ``i`` lasts ``3^i`` epochs (the last stage, ``i = 7``, runs on past 3280 epochs)."""
    if config.schedule == "constant":
        return config.lr
    stage, stage_end = 0, 1
    while epoch >= stage_end and stage < 7:
        stage += 1
        stage_end += 3**stage
    return config.lr * 10 ** (-stage / 7)


def training_bound(model, x: torch.Tensor, config: TrainConfig, *, guide=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The objective's per-image bound ``(B,)`` with the estimator's gradient, and the ELBO of the same draws
    ``(B,)``, detached: the mean of the log-weights over the K samples for the IWAE objective (free: they are
    computed anyway), the bound itself for the VAE. ``x`` was checked once already; ``guide`` defaults to
    ``model.guide``."""
    guide = model.guide if guide is None else guide
    if config.objective == "vae":
        form = "analytic" if hasattr(model, "prior") else "mc"  # a hierarchical model has no closed-form KL
        bound = bounds.elbo(model, guide, x, config.num_samples, form=form, validate_args=False)
        return bound, bound.detach()
    bound, log_w = bounds.iwae_and_log_weights(model, guide, x, config.num_samples, config.estimator, False)
    return bound, log_w.detach().mean(0)


class Objective(nn.Module):
    """The training objective as a module, ``forward(x) = training_bound(model, x, config)``: the bound and the
    ELBO, each ``(B,)``, so that ``DistributedDataParallel`` (which synchronises the gradients of what its forward
    computes) can wrap it.

    In a group of ``world_size > 1`` processes, ``x`` is block ``rank`` of the global batch and ``z`` is drawn as
    that block's rows of the whole batch's noise (``elbo.distributed.SharedNoise``).
    """

    def __init__(self, model: nn.Module, config: TrainConfig, *, rank: int = 0, world_size: int = 1):
        super().__init__()
        self.model, self.config, self.rank, self.world_size = model, config, rank, world_size

    def guide(self, x: torch.Tensor):
        q = self.model.guide(x)
        return q if self.world_size == 1 else distributed.SharedNoise(q, self.rank, self.world_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return training_bound(self.model, x, self.config, guide=self.guide)


def make_objective(model: nn.Module, config: TrainConfig) -> nn.Module:
    """The module ``step`` differentiates: ``Objective`` for this process's rank, in ``DistributedDataParallel``
    when there are several, through ``torch.compile`` when ``config.compile`` (and it works here)."""
    rank, world_size = distributed.rank(), distributed.world_size()
    objective = Objective(model, config, rank=rank, world_size=world_size)
    if world_size > 1:
        device = next(model.parameters()).device
        # forward_sync_buffers=False: the only buffers (a fixed Gaussian scale) never change, so need no syncing.
        # A group of its own: DDP keeps its group alive after destroy_process_group (torch 2.13), and a gloo thread
        # of a group still alive at exit that frees a work holding Python tensors (our gathers and sums) aborts the
        # process ("terminate called without an active exception", one torchrun run in six). DDP's own work (its
        # gradient buckets) holds none, and the default group, which carries the rest, is shut down cleanly.
        objective = DistributedDataParallel(objective, device_ids=[device] if device.type == "cuda" else None,
                                            forward_sync_buffers=False, process_group=torch.distributed.new_group())
    if config.compile:
        objective = compiled(objective, next(model.parameters()).device)
    return objective


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam with the run's settings. ``fused=True``: one kernel per parameter rather than a dozen (on a CPU
    ``torch.optim`` otherwise loops over parameters and operations in Python)."""
    return torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.adam_betas, eps=config.adam_eps,
                            fused=True)


def step(objective: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of gradient ascent on the mean bound of batch ``x``; returns the bound and the ELBO, each ``(B,)``,
    detached. Nothing here waits for the device."""
    bound, elbo = objective(x)
    loss = -bound.mean()  # the one place a bound is negated
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return bound.detach(), elbo


def train(config: TrainConfig, out, *, nproc: int = 1, force: bool = False, progress: bool = True,
          time_limit: float | None = None):
    """Train a model from scratch into run directory ``out``; returns its path.

    An ``out`` holding a run is refused unless ``force`` (which replaces the run's files, and only them, once the
    data has loaded). ``time_limit``: seconds after which training stops at the end of an epoch (``resume`` goes
    on from there). ``nproc``: data-parallel processes on this machine (``config.batch_size`` is split evenly over
    them); under torchrun, each process calls ``train`` with ``nproc=1`` and joins torchrun's group.
    """
    out = Path(out)
    if nproc != 1:
        _check_processes(config, nproc)
        _refuse_existing_run(out, force)
        _setup(config, torch.device("cpu"))  # bad data fails here, in one line, before any process starts
        return distributed.launch(train, nproc, config, out, force=force, progress=progress, time_limit=time_limit)
    with distributed.joined(config.device):
        return _train(config, out, force=force, progress=progress, time_limit=time_limit)


def _check_processes(config: TrainConfig, nproc: int) -> None:
    check_positive(nproc=nproc)
    if config.batch_size % nproc:
        raise ValueError(f"batch_size {config.batch_size} is the global batch, split evenly over the processes: "
                         f"it must be a multiple of their number, {nproc}")
    device = torch.device(config.device)
    if device.type == "cuda" and nproc > torch.cuda.device_count():
        raise ValueError(f"{nproc} processes on device 'cuda' need a GPU each; torch sees "
                         f"{torch.cuda.device_count()}")


def _refuse_existing_run(out: Path, force: bool) -> list:
    existing = [name for name in RUN_FILES if (out / name).exists()]
    if existing and not force:
        raise ValueError(f"{out} already holds a run ({', '.join(existing)}): continue it with --resume {out}, "
                         f"or pass --force to replace it")
    return existing


def _train(config: TrainConfig, out: Path, *, force: bool, progress: bool, time_limit: float | None) -> Path:
    main = distributed.is_main_process()
    existing = _refuse_existing_run(out, force) if main else []  # the others would see rank 0's new files
    _check_processes(config, distributed.world_size())
    device = _device(config)
    config, images, model = _setup(config, device)
    state = _State(config, out, model, images, make_optimizer(model, config), _generators(config.seed, device),
                   epoch=0)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        for name in existing:
            (out / name).unlink()
        write_json(out / "config.json", config.to_dict())
        (out / "metrics.jsonl").touch()
        _save_checkpoint(state)
    return _fit(state, progress=progress, time_limit=time_limit)


def _setup(config: TrainConfig, device: torch.device):
    """The data, the config with the model's data-dependent fields filled in, and the seeded, initialised model."""
    images = data.load(config.data, data_dir=config.data_dir, val_size=config.val_size)
    config = dataclasses.replace(config, model=dataclasses.replace(
        config.model, image_shape=images.image_shape, likelihood=config.model.likelihood or images.likelihood))
    torch.manual_seed(config.seed)  # the one place the run is seeded, the same in every process
    model = make_vae(config.model).to(device)
    for split in (images.train, images.val, images.test):  # once, here: the loop skips validation (a host sync)
        model.check_data(split)
    model.init_from_data(images.train.to(device))
    return config, images, model


def resume(out, *, nproc: int = 1, progress: bool = True, time_limit: float | None = None):
    """Continue the run in ``out`` from its checkpoint to ``config.epochs``; returns its path. ``nproc`` as in
    ``train``; it need not be the number the run started with."""
    out = Path(out)
    if nproc != 1:
        config, _ = _restore_model(_read_checkpoint(out), out)  # a bad run directory fails here
        _check_processes(config, nproc)
        return distributed.launch(resume, nproc, out, progress=progress, time_limit=time_limit)
    checkpoint = _read_checkpoint(out)
    config, model = _restore_model(checkpoint, out)
    with distributed.joined(config.device):
        return _resume(checkpoint, config, model, out, progress=progress, time_limit=time_limit)


def _resume(checkpoint: dict, config: TrainConfig, model, out: Path, *, progress: bool,
            time_limit: float | None) -> Path:
    _check_processes(config, distributed.world_size())
    images = data.load(config.data, data_dir=config.data_dir, val_size=config.val_size)
    device = _device(config)
    model.to(device)
    optimizer = make_optimizer(model, config)
    generators = _generators(config.seed, device)
    try:
        optimizer.load_state_dict(checkpoint["optimizer"])
        for name, generator in generators.items():
            generator.set_state(checkpoint["rng"][name])
        torch.set_rng_state(checkpoint["rng"]["torch"])
        if device.type == "cuda":
            torch.cuda.set_rng_state(checkpoint["rng"]["cuda"], device)
    except (KeyError, ValueError, RuntimeError, TypeError) as error:
        raise ValueError(f"{out / 'checkpoint.pt'}: cannot restore the training state ({error})") from None
    if distributed.is_main_process():
        metrics = [m for m in _read_metrics(out) if m["epoch"] <= checkpoint["epoch"]]  # drop epochs after it
        write_atomically(out / "metrics.jsonl", "".join(json.dumps(m) + "\n" for m in metrics).encode())
    state = _State(config, out, model, images, optimizer, generators, epoch=checkpoint["epoch"])
    return _fit(state, progress=progress, time_limit=time_limit)


def _fit(state: _State, *, progress: bool, time_limit: float | None) -> Path:
    config, model, optimizer, generators = state.config, state.model, state.optimizer, state.generators
    device = next(model.parameters()).device
    world_size, main = distributed.world_size(), distributed.is_main_process()
    progress = progress and main
    objective = make_objective(model, config)
    x_train = state.data.train.to(device)
    binarize_with = generators["binarize"] if state.data.dynamic_binarization else None
    batch_sizes = [min(config.batch_size, len(x_train) - start) for start in range(0, len(x_train), config.batch_size)]
    images_per_epoch = sum(n - n % world_size for n in batch_sizes)  # a remainder that does not split is left out
    started = time.perf_counter()
    for epoch in range(state.epoch, config.epochs):
        lr = learning_rate(config, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        epoch_start = time.perf_counter()
        sums = torch.zeros(2, device=device)  # the bound's and the ELBO's, on the device: no host sync per step
        bar = tqdm(total=images_per_epoch, unit="ex", unit_scale=True, desc=f"epoch {epoch + 1}/{config.epochs}",
                   leave=False, disable=not progress, dynamic_ncols=True)
        batches = data.epoch_batches(x_train, config.batch_size, shuffle=generators["shuffle"],
                                     binarize_with=binarize_with)
        for batch_index, x in enumerate(batches):
            x = x[distributed.block(len(x) - len(x) % world_size)]  # this process's rows of the global batch
            sums += torch.stack([values.sum() for values in step(objective, optimizer, x)])
            bar.update(len(x) * world_size)
            if progress and (batch_index + 1) % config.log_every == 0:  # the only host sync in the loop
                bar.set_postfix(bound=f"{sums[0].item() * world_size / bar.n:.2f}")  # this process's running mean
        bar.close()
        # .item() waits for the device, so the time below is honest
        train_bound, train_elbo = (distributed.all_reduce_sum(sums) / images_per_epoch).tolist()
        train_seconds = time.perf_counter() - epoch_start
        if not (math.isfinite(train_bound) and all(bool(torch.isfinite(p).all()) for p in model.parameters())):
            raise TrainingDiverged(f"the training bound became {train_bound} in epoch {epoch + 1}; stopped, and "
                                   f"{state.out / 'checkpoint.pt'} keeps epoch {state.epoch}, the last finite one "
                                   f"(a smaller --lr may help)")
        record = {"epoch": epoch + 1, "lr": lr, "elbo": train_elbo, "train_bound": train_bound,
                  **_validate(model, state), "examples_per_sec": images_per_epoch / train_seconds,
                  "seconds": time.perf_counter() - epoch_start}
        state.epoch = epoch + 1
        if main:
            with open(state.out / "metrics.jsonl", "a") as metrics:
                metrics.write(json.dumps(record) + "\n")
            _save_checkpoint(state)
        if progress:
            tqdm.write(_summary(record, config))
        # every process must stop after the same epoch: rank 0's clock may run out while another's has not
        if time_limit is not None and distributed.any_rank(time.perf_counter() - started > time_limit, device):
            break
    return state.out


def _summary(record: dict, config: TrainConfig) -> str:
    elbo = "" if config.objective == "vae" else f" (ELBO {record['elbo']:.2f})"
    val = f"  val {record['val_bound']:.2f}" if "val_bound" in record else ""
    return (f"epoch {record['epoch']}/{config.epochs}  lr {record['lr']:.2e}  train {record['train_bound']:.2f}{elbo}"
            f"{val}  ({record['examples_per_sec']:.0f} ex/s)")


def _validate(model, state: _State) -> dict:
    """``val_bound`` (the objective on the validation set) and ``val_elbo``, with fixed noise: the same seed
    every epoch, in a forked generator so that validation leaves the training run's random stream alone. In a
    group of processes each takes a block of the images, with a seed of its own (``distributed.rank_seed``)."""
    config, x_val = state.config, state.data.val
    if len(x_val) == 0:
        return {}
    model.eval()
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(distributed.rank_seed(config.seed))
        x_val = x_val.to(device)
        val_elbo = evaluate.mean_and_stderr(
            distributed.map_blocks(lambda x: evaluate.elbo_per_point(model, model.guide, x), x_val))[0]
        if config.objective == "vae":
            return {"val_bound": val_elbo, "val_elbo": val_elbo}
        val_iwae = distributed.map_blocks(
            lambda x: evaluate.iwae_per_point(model, model.guide, x, config.num_samples), x_val)
        return {"val_bound": evaluate.mean_and_stderr(val_iwae)[0], "val_elbo": val_elbo}


# --- state and files ---------------------------------------------------------------------------------------------

@dataclass(eq=False)
class _State:
    config: TrainConfig
    out: Path
    model: torch.nn.Module
    data: data.ImageData
    optimizer: torch.optim.Optimizer
    generators: dict
    epoch: int  # epochs completed


def _device(config: TrainConfig) -> torch.device:
    device = distributed.device_of_rank(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {config.device!r} was asked for, but torch sees no CUDA device here")
    return device


def _generators(seed: int, device: torch.device) -> dict:
    """Independent streams for shuffling (CPU) and for binarization (on the data's device)."""
    shuffle_seed, binarize_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    return {"shuffle": torch.Generator().manual_seed(shuffle_seed),
            "binarize": torch.Generator(device).manual_seed(binarize_seed)}


def _save_checkpoint(state: _State) -> None:
    """Only tensors and primitive containers, so that ``torch.load(weights_only=True)`` can read it."""
    device = next(state.model.parameters()).device
    rng = {"torch": torch.get_rng_state(), **{name: g.get_state() for name, g in state.generators.items()}}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    checkpoint = {"config": state.config.to_dict(), "epoch": state.epoch, "model": state.model.state_dict(),
                  "optimizer": state.optimizer.state_dict(), "rng": rng}
    content = io.BytesIO()
    torch.save(checkpoint, content)
    write_atomically(state.out / "checkpoint.pt", content.getvalue())


def _read_checkpoint(out: Path) -> dict:
    path = out / "checkpoint.pt"
    if not out.is_dir():
        raise ValueError(f"{out} is not a run directory (no such directory)")
    if not path.is_file():
        raise ValueError(f"{out} is not a run directory of `elbo train`: it has no checkpoint.pt")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any failure to read it (truncated zip, bad pickle, ...) means a corrupt file
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path} is corrupt or not a checkpoint ({message})") from None
    missing = [key for key in ("config", "epoch", "model", "optimizer", "rng") if key not in checkpoint] \
        if isinstance(checkpoint, dict) else ["everything"]
    if missing:
        raise ValueError(f"{path} is not a checkpoint of `elbo train` (missing: {', '.join(missing)})")
    return checkpoint


def _restore_model(checkpoint: dict, out: Path):
    try:
        config = TrainConfig.from_dict(checkpoint["config"])
        model = make_vae(config.model)
        model.load_state_dict(checkpoint["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        message = str(error).strip().splitlines()[0]
        raise ValueError(f"{out / 'checkpoint.pt'}: its config and parameters do not make a model ({message})") \
            from None
    return config, model


def _read_metrics(out: Path) -> list:
    path = out / "metrics.jsonl"
    if not path.is_file():
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not one JSON object per line ({error})") from None


def load_run(path, *, data_dir=None, device="cpu") -> Run:
    """Read run directory ``path`` back: config, model at its last checkpoint (eval mode), data, metrics.

    ``data_dir`` overrides the directory the run was trained from (for a run moved to another machine).
    """
    path = Path(path)
    checkpoint = _read_checkpoint(path)
    config, model = _restore_model(checkpoint, path)
    images = data.load(config.data, data_dir=config.data_dir if data_dir is None else data_dir,
                       val_size=config.val_size)
    return Run(path, config, model.to(device).eval(), images, checkpoint["epoch"], _read_metrics(path))
