"""Training an amortized model of any kind by the ELBO or the IWAE bound: the loop, resuming, data parallelism.

``train(config, out)`` (a ``TrainConfig`` of ``elbo.configs``) fits a model and writes the run directory ``out``
(``elbo.runs``):

- ``config.json``: the ``TrainConfig`` (with the model's data-dependent fields filled in by its kind);
- ``metrics.jsonl``: one JSON object per epoch: ``epoch``, ``lr``, ``elbo`` and ``train_bound`` (the ELBO and the
  objective, running means over the epoch's batches, in nats per data point; the two are one for the ELBO, while for
  the IWAE the ELBO is the mean of the same log-weights whose log-mean-exp is the bound), ``val_bound`` (the
  objective on the validation set at the end of the epoch), ``val_elbo``, ``examples_per_sec`` (training only),
  ``seconds`` (the epoch, with validation);
- ``checkpoint.pt``: model, optimizer, epoch and every random state, after each epoch (and before the first),
  written atomically (a temporary file, then ``os.replace``) and read back with ``torch.load(weights_only=True)``.

``resume(out)`` continues from the checkpoint and reaches the same parameters, bit for bit on CPU, as a run that
was never interrupted: the learning rate is a function of the epoch, and the checkpoint holds the global torch
generator (the samples ``z``), the shuffling generator and the data's generator (e.g. dynamic binarization: the
data set's ``resample``).

Objectives: ``"elbo"`` is the ELBO, ``E_q[log p(x|z)] - KL(q(z|x) ‖ p(z))`` with the closed-form KL (estimated by
Monte Carlo for a model with two stochastic layers, which has no single prior); ``"iwae"`` is the bound
``L_K`` of Burda et al. (2015) with estimator ``"reparam"``, ``"stl"`` or ``"dreg"``. The IWAE paper's schedule
(``schedule="iwae"``) runs stage ``i = 0..7`` for ``3^i`` epochs at ``lr · 10^(-i/7)``: 3280 epochs in all.
``schedule="cosine"`` anneals from ``lr`` towards 0 over the run's epochs (for a fixed budget of time).

Data parallel (``train(..., nproc=N)``, or N processes started by torchrun): ``batch_size`` is the *global* batch.
Every process holds the same random streams and draws the permutation, the binarization and the noise ``z`` of
the whole global batch, then trains on its own contiguous block of ``batch_size / N`` rows (``SharedNoise`` in
``elbo.families``); ``DistributedDataParallel`` averages the gradients of the blocks' mean bounds, which is the
gradient of the global batch's mean. So N processes compute what one does, up to the order of float sums, and a
checkpoint (written by rank 0 only) holds every process's random state, since all are the same; a run may be
resumed with another N. A last batch that does not split evenly loses its remainder (at most N - 1 points an epoch).

``step(objective, optimizer, x)`` is one step of the loop; ``make_objective(model, config)`` builds the module it
differentiates (wrapped in ``DistributedDataParallel`` and compiled as the run asks); ``benchmarks/train_speed.py``
times exactly these.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from . import bounds, distributed, evaluate, runs
from ._checks import check_device, check_fits, check_positive
from ._compiler import compiled
from .configs import IWAE_SCHEDULE_EPOCHS, TrainConfig
from .data import graph_bytes_per_draw
from .errors import InputError
from .families import SharedNoise
from .kinds import kind_of
from .protocols import BatchStream, ChecksData, ConjugateUpdates, InitFromData, LatentModel

__all__ = ["TrainConfig", "TrainingDiverged", "train", "resume", "training_bound", "learning_rate",
           "IWAE_SCHEDULE_EPOCHS", "Objective", "make_objective", "make_optimizer", "step", "epoch_batches"]


class TrainingDiverged(RuntimeError):
    """The bound became NaN or infinite; the run directory keeps the last finite checkpoint."""


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """The learning rate of epoch ``epoch`` (0-based): ``lr``; for ``schedule="cosine"``
    ``lr · (1 + cos(π · epoch / epochs)) / 2``; for ``schedule="iwae"`` ``lr · 10^(-i/7)`` in stage ``i``, where
    stage ``i`` lasts ``3^i`` epochs (the last stage, ``i = 7``, runs on past 3280 epochs)."""
    if config.schedule == "constant":
        return config.lr
    if config.schedule == "cosine":
        return config.lr * (1 + math.cos(math.pi * epoch / config.epochs)) / 2
    stage, stage_end = 0, 1
    while epoch >= stage_end and stage < 7:
        stage += 1
        stage_end += 3**stage
    return config.lr * 10 ** (-stage / 7)


def training_bound(model, x: torch.Tensor, config: TrainConfig, *, guide=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The objective's per-point bound ``(B,)`` with the estimator's gradient, and the ELBO of the same draws
    ``(B,)``, detached: the mean of the log-weights over the K samples for the IWAE objective (free: they are
    computed anyway), the bound itself for the ELBO. ``x`` was checked once already; ``guide`` defaults to
    ``model.guide``."""
    guide = model.guide if guide is None else guide
    if config.objective == "elbo":
        form = "analytic" if isinstance(model, LatentModel) else "mc"  # a log joint alone has no closed-form KL
        bound = bounds.elbo(model, guide, x, config.num_samples, form=form, validate_args=False)
        return bound, bound.detach()
    bound, log_w = bounds.iwae_and_log_weights(model, guide, x, config.num_samples, config.estimator, False)
    return bound, log_w.detach().mean(0)


class Objective(nn.Module):
    """The training objective as a module, ``forward(x) = training_bound(model, x, config)``: the bound and the
    ELBO, each ``(B,)``, so that ``DistributedDataParallel`` (which synchronises the gradients of what its forward
    computes) can wrap it.

    In a group of ``world_size > 1`` processes, ``x`` is block ``rank`` of the global batch and ``z`` is drawn as
    that block's rows of the whole batch's noise (``elbo.families.SharedNoise``).
    """

    def __init__(self, model: nn.Module, config: TrainConfig, *, rank: int = 0, world_size: int = 1):
        super().__init__()
        self.model, self.config, self.rank, self.world_size = model, config, rank, world_size

    def guide(self, x: torch.Tensor):
        q = self.model.guide(x)
        return q if self.world_size == 1 else SharedNoise(q, self.rank, self.world_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return training_bound(self.model, x, self.config, guide=self.guide)


def make_objective(model: nn.Module, config: TrainConfig) -> nn.Module:
    """The module ``step`` differentiates: ``Objective`` for this process's rank, in ``DistributedDataParallel``
    when there are several, through ``torch.compile`` when ``config.compile`` (and it works here)."""
    if isinstance(model, ConjugateUpdates):
        return model  # its update() is the step, summing over the group itself
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
    detached. Nothing here waits for the device. A model with conjugate updates (``ConjugateUpdates``, e.g. LDA by
    SVI) takes its own closed-form step instead, and its bound is its ELBO."""
    if isinstance(objective, ConjugateUpdates):
        bound = objective.update(x)
        return bound, bound
    bound, elbo = objective(x)
    loss = -bound.mean()  # gradient descent on the negated bound
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return bound.detach(), elbo


def epoch_batches(x: torch.Tensor, batch_size: int, *, shuffle: torch.Generator, resample=None):
    """The batches of one epoch: ``x`` in the order of a fresh permutation, in slices of ``batch_size`` (the last
    may be smaller), each passed through ``resample`` (e.g. a fresh binarization) where given.

    The data stays one tensor on its device and each batch is an index into it. ``shuffle`` is a CPU generator
    (a permutation per epoch).
    """
    order = torch.randperm(len(x), generator=shuffle).to(x.device)
    for start in range(0, len(x), batch_size):
        batch = x[order[start:start + batch_size]]
        yield batch if resample is None else resample(batch)


def train(config: TrainConfig, out, *, nproc: int = 1, force: bool = False, progress: bool = True,
          time_limit: float | None = None, threads: int | None = None):
    """Train a model from scratch into run directory ``out``; returns its path.

    An ``out`` holding a run is refused unless ``force`` (which replaces the run's files, and only them, once the
    data has loaded). ``time_limit``: seconds after which training stops at the end of an epoch (``resume`` goes
    on from there). ``nproc``: data-parallel processes on this machine (``config.batch_size`` is split evenly over
    them); under torchrun, each process calls ``train`` with ``nproc=1`` and joins torchrun's group. ``threads``: the
    CPU threads of each of the ``nproc`` processes (``None``: this machine's cores shared out).
    """
    out = Path(out)
    check_positive(nproc=nproc)
    check_device(config.device)
    _check_processes(config, nproc)
    if nproc != 1:
        _setup(config, torch.device("cpu"))  # bad data fails here, in one line, before any process starts
        with runs.locked(out, create=True):  # the processes launched find it held
            runs.refuse_existing_run(out, force)
            return distributed.launch(train, nproc, config, out, force=force, progress=progress,
                                      time_limit=time_limit, threads=threads)
    with distributed.joined(config.device):
        return _train(config, out, force=force, progress=progress, time_limit=time_limit)


def _check_processes(config: TrainConfig, nproc: int) -> None:
    if config.batch_size % nproc:
        raise InputError(f"batch_size {config.batch_size} is the global batch, split evenly over the processes: "
                         f"it must be a multiple of their number, {nproc}", argument="batch_size")
    device = torch.device(config.device)
    if device.type == "cuda" and nproc > torch.cuda.device_count():
        raise InputError(f"{nproc} processes on device 'cuda' need a GPU each; torch sees "
                         f"{torch.cuda.device_count()}", argument="nproc")


def _train(config: TrainConfig, out: Path, *, force: bool, progress: bool, time_limit: float | None) -> Path:
    main = distributed.is_main_process()
    _check_processes(config, distributed.world_size())
    device = _device(config)
    config, data, model = _setup(config, device)  # bad input fails before anything is made
    with runs.locked(out, create=True):  # before anything is written
        existing = runs.refuse_existing_run(out, force) if main else []  # the others would see rank 0's new files
        training = _Training(runs.Run(out, config, model, data, 0, []), make_optimizer(model, config),
                             _generators(config.seed, device))
        if main:
            try:
                runs.start_run(out, config, existing)
                training.save()
            except OSError:  # a full disk, say: leave no half-made run, so the same command works once there is room
                runs.remove_run_files(out)
                raise
        return _run_epochs(training, progress=progress, time_limit=time_limit)


def _setup(config: TrainConfig, device: torch.device):
    """The data, the config with the model's data-dependent fields filled in by its kind, and the seeded,
    initialised model."""
    data = runs.load_run_data(config)
    kind = kind_of(config.model)
    config = dataclasses.replace(config, model=kind.call("configure", config.model, data))
    torch.manual_seed(config.seed)  # the one place the run is seeded, the same in every process
    model = kind.call("build", config.model).to(device)
    if isinstance(model, ChecksData):
        for split in (data.train, data.val, data.test):  # once, here: the loop skips validation (a host sync)
            if not isinstance(split, BatchStream):  # a stream checks its lines as it reads them
                model.check_data(split)
    if isinstance(model, ConjugateUpdates):
        _check_conjugate(config, model)
    if isinstance(data.train, BatchStream) and not isinstance(model, ConjugateUpdates):
        raise InputError(f"a streamed training set trains only a model with conjugate updates (LDA), not "
                         f"{type(model).__name__}: read the data into memory instead", argument="data_options")
    if not isinstance(model, ConjugateUpdates):  # no autograd graph to fit
        _check_memory(model, data.train[:2].to(device), config, device)
    if isinstance(model, InitFromData):
        model.init_from_data(data.train.to(device))
    return config, data, model


def _check_conjugate(config: TrainConfig, model) -> None:
    """A model with closed-form steps (LDA by SVI) maximises the ELBO with its own step sizes: the settings of a
    gradient step (objective, K, Adam's learning rate and its schedule, compilation) are refused, not ignored."""
    if config.objective != "elbo" or config.num_samples != 1:
        raise InputError(f"{type(model).__name__} is fitted by its closed-form steps, which maximise the ELBO: "
                         f"objective must be 'elbo' and num_samples 1, got {config.objective!r} and "
                         f"{config.num_samples}", argument="objective")
    unused = [name for name in ("lr", "schedule", "compile")
              if getattr(config, name) != getattr(TrainConfig, name)]
    if unused:
        raise InputError(f"{' and '.join(unused)}: settings of a gradient step, and {type(model).__name__} takes "
                         f"closed-form steps of size (tau0 + t)^-kappa: leave them out", argument=unused[0])


def resume(out, *, nproc: int = 1, progress: bool = True, time_limit: float | None = None,
           threads: int | None = None):
    """Continue the run in ``out`` from its checkpoint to ``config.epochs``; returns its path. ``nproc`` and
    ``threads`` as in ``train``; ``nproc`` need not be the number the run started with."""
    out = Path(out)
    check_positive(nproc=nproc)
    with runs.locked(out):
        checkpoint = runs.read_checkpoint(out)
        config, model = runs.restore_model(checkpoint, out)  # a bad run directory fails here, in this process
        config = runs.settings_of_run(out, config)  # epochs raised in config.json: go on to the new number
        _check_processes(config, nproc)
        if nproc != 1:
            return distributed.launch(resume, nproc, out, progress=progress, time_limit=time_limit, threads=threads)
        with distributed.joined(config.device):
            return _resume(checkpoint, config, model, out, progress=progress, time_limit=time_limit)


def _resume(checkpoint: dict, config: TrainConfig, model, out: Path, *, progress: bool,
            time_limit: float | None) -> Path:
    _check_processes(config, distributed.world_size())
    data = runs.load_run_data(config)
    device = _device(config)
    model.to(device)
    optimizer = make_optimizer(model, config)
    generators = _generators(config.seed, device)
    runs.check_optimizer_state(checkpoint["optimizer"], optimizer, out)
    try:
        optimizer.load_state_dict(checkpoint["optimizer"])
        for name, generator in generators.items():
            generator.set_state(checkpoint["rng"][name])
        torch.set_rng_state(checkpoint["rng"]["torch"])
        if device.type == "cuda":
            torch.cuda.set_rng_state(checkpoint["rng"]["cuda"], device)
    except (KeyError, ValueError, RuntimeError, TypeError) as error:
        raise InputError(f"{out / 'checkpoint.pt'}: cannot restore the training state ({error})") from None
    if distributed.is_main_process():
        runs.keep_metrics(out, checkpoint["epoch"])  # drop epochs after the checkpoint
    training = _Training(runs.Run(out, config, model, data, checkpoint["epoch"], []), optimizer, generators)
    return _run_epochs(training, progress=progress, time_limit=time_limit)


@dataclass(eq=False)
class _Training:
    """A run being trained: the run (its ``epoch`` the epochs completed), its optimizer and random streams."""

    run: runs.Run
    optimizer: torch.optim.Optimizer
    generators: dict

    def save(self) -> None:
        device = next(self.run.model.parameters()).device
        rng = {"torch": torch.get_rng_state(), **{name: g.get_state() for name, g in self.generators.items()}}
        if device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(device)
        runs.write_checkpoint(self.run.path, self.run.config, self.run.epoch, self.run.model, self.optimizer, rng)


def _run_epochs(training: _Training, *, progress: bool, time_limit: float | None) -> Path:
    run = training.run
    device = next(run.model.parameters()).device
    progress = progress and distributed.is_main_process()
    objective = make_objective(run.model, run.config)
    x_train = run.data.train if isinstance(run.data.train, BatchStream) else run.data.train.to(device)
    started = time.perf_counter()
    for epoch in range(run.epoch, run.config.epochs):
        record = _epoch(training, objective, x_train, epoch, progress)
        run.epoch = epoch + 1
        if distributed.is_main_process():
            runs.append_metrics(run.path, record)
            training.save()
        if progress:
            tqdm.write(_summary(record, run.config, isinstance(run.model, ConjugateUpdates)))
        # every process must stop after the same epoch: rank 0's clock may run out while another's has not
        if time_limit is not None and distributed.any_rank(time.perf_counter() - started > time_limit, device):
            break
    return run.path


def _epoch(training: _Training, objective, x_train, epoch: int, progress: bool) -> dict:
    """One epoch of training and its validation; returns the epoch's line of ``metrics.jsonl``. ``x_train``: the
    training set on the model's device, or a ``BatchStream``."""
    run, optimizer, generators = training.run, training.optimizer, training.generators
    config, device, world_size = run.config, next(run.model.parameters()).device, distributed.world_size()
    batch_sizes = [min(config.batch_size, len(x_train) - start) for start in range(0, len(x_train), config.batch_size)]
    points_per_epoch = sum(n - n % world_size for n in batch_sizes)  # a remainder that does not split is left out
    lr = learning_rate(config, epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr
    run.model.train()
    epoch_start = time.perf_counter()
    sums = torch.zeros(2, device=device)  # the bound's and the ELBO's, on the device: no host sync per step
    bar = tqdm(total=points_per_epoch, unit="ex", unit_scale=True, desc=f"epoch {epoch + 1}/{config.epochs}",
               leave=False, disable=not progress, dynamic_ncols=True)
    for batch_index, x in enumerate(_process_batches(run, x_train, generators)):
        sums += torch.stack([values.sum() for values in step(objective, optimizer, x)])
        bar.update(len(x) * world_size)
        if progress and (batch_index + 1) % config.log_every == 0:  # the only host sync in the loop
            bar.set_postfix(bound=f"{sums[0].item() * world_size / bar.n:.2f}")  # this process's running mean
    bar.close()
    # .item() waits for the device, so the time below is honest
    train_bound, train_elbo = (distributed.all_reduce_sum(sums) / points_per_epoch).tolist()
    train_seconds = time.perf_counter() - epoch_start
    if not (math.isfinite(train_bound) and all(bool(torch.isfinite(p).all()) for p in run.model.parameters())):
        raise TrainingDiverged(f"the training bound became {train_bound} in epoch {epoch + 1}; stopped, and "
                               f"{run.path / 'checkpoint.pt'} keeps epoch {run.epoch}, the last finite one "
                               f"(a smaller learning rate may help)")
    return {"epoch": epoch + 1, "lr": lr, "elbo": train_elbo, "train_bound": train_bound, **_validate(run),
            "examples_per_sec": points_per_epoch / train_seconds, "seconds": time.perf_counter() - epoch_start}


def _process_batches(run: runs.Run, x_train, generators: dict):
    """This process's block of each minibatch of an epoch: of the data in memory in a fresh order (each batch
    through the data's ``resample``), or of a stream (``BatchStream``) in its order."""
    world_size = distributed.world_size()
    if isinstance(x_train, BatchStream):
        yield from x_train.batches(run.config.batch_size, rank=distributed.rank(), world_size=world_size)
        return
    for x in epoch_batches(x_train, run.config.batch_size, shuffle=generators["shuffle"],
                           resample=lambda batch: run.data.resample(batch, generators["data"])):
        yield x[distributed.block(len(x) - len(x) % world_size)]  # this process's rows of the global batch


def _summary(record: dict, config: TrainConfig, conjugate: bool = False) -> str:
    """An epoch's line; without the learning rate for a model with closed-form steps (``conjugate``), which has
    none."""
    elbo = "" if config.objective == "elbo" else f" (ELBO {record['elbo']:.2f})"
    val = f"  val {record['val_bound']:.2f}" if "val_bound" in record else ""
    lr = "" if conjugate else f"  lr {record['lr']:.2e}"
    return (f"epoch {record['epoch']}/{config.epochs}{lr}  train {record['train_bound']:.2f}{elbo}"
            f"{val}  ({record['examples_per_sec']:.0f} ex/s)")


def _validate(run: runs.Run) -> dict:
    """``val_bound`` (the objective on the validation set) and ``val_elbo``, with fixed noise: the same seed
    every epoch, in a forked generator so that validation leaves the training run's random stream alone. In a
    group of processes each takes a block of the points, with a seed of its own (``distributed.rank_seed``)."""
    config, model, x_val = run.config, run.model, run.data.val
    if len(x_val) == 0:
        return {}
    model.eval()
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(distributed.rank_seed(config.seed))
        x_val = x_val.to(device)
        val_elbo = evaluate.mean_and_stderr(
            distributed.map_blocks(lambda x: evaluate.elbo_per_point(model, model.guide, x), x_val))[0]
        if config.objective == "elbo":
            return {"val_bound": val_elbo, "val_elbo": val_elbo}
        val_iwae = distributed.map_blocks(
            lambda x: evaluate.iwae_per_point(model, model.guide, x, config.num_samples), x_val)
        return {"val_bound": evaluate.mean_and_stderr(val_iwae)[0], "val_elbo": val_elbo}


def _device(config: TrainConfig) -> torch.device:
    check_device(config.device)
    return distributed.device_of_rank(config.device)


def _check_memory(model, x: torch.Tensor, config: TrainConfig, device: torch.device) -> None:
    """Refuse, before anything is written, a step whose autograd graph cannot fit in the memory free now: the bytes
    one draw saves for the backward pass (``elbo.data.graph_bytes_per_draw``) times the ``num_samples ×
    batch_size`` draws of a process's step."""
    draws = config.num_samples * config.batch_size // distributed.world_size()
    check_fits(graph_bytes_per_draw(model, x) * draws, device,
               what=f"num_samples × batch_size = {draws} draws of z a step", argument="num_samples",
               remedy="lower num_samples or batch_size")


def _generators(seed: int, device: torch.device) -> dict:
    """Independent streams for shuffling (CPU) and for the data's own draws (on the data's device), e.g. a fresh
    binarization of every batch."""
    shuffle_seed, data_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    return {"shuffle": torch.Generator().manual_seed(shuffle_seed),
            "data": torch.Generator(device).manual_seed(data_seed)}
