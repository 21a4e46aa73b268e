"""Run directories: what ``elbo train`` writes and every other command reads.

A run directory holds ``RUN_FILES``: ``config.json`` (the ``TrainConfig``), ``metrics.jsonl`` (one JSON object an
epoch), ``checkpoint.pt`` (model, optimizer, epoch, random states; written atomically and read back with
``torch.load(weights_only=True)``), and the measurements ``evaluation.json``, ``surgery.json``,
``diagnostics.json`` and ``report.html``. This module reads and writes them; it imports none of the modules that
train or measure a model, so all of them can import it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import io
import json
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from . import distributed
from ._files import write_atomically, write_json
from .configs import TrainConfig
from .errors import InputError
from .kinds import kind_of, load_data
from .registry import DATASETS, KINDS

__all__ = ["RUN_FILES", "LOCK_FILE", "Run", "locked", "load_run", "read_checkpoint", "write_checkpoint",
           "measured_data", "restore_model", "read_metrics", "append_metrics", "keep_metrics", "refuse_existing_run",
           "start_run", "remove_run_files", "load_run_data", "settings_of_run"]

# the files of a run, replaced by `train(..., force=True)`: measurements of an earlier model must not outlive it
RUN_FILES = ("config.json", "metrics.jsonl", "checkpoint.pt", "evaluation.json", "surgery.json", "diagnostics.json",
             "report.html")
CHECKPOINT_KEYS = ("config", "epoch", "model", "optimizer", "rng")
LOCK_FILE = ".elbo.lock"  # held (flock) by the one process that may write the run; it holds that process's pid
_HELD = "ELBO_LOCKED_RUNS"  # the run directories this process, or the launcher that started it, holds


@dataclass(eq=False)
class Run:
    """A run directory read back: its config, the model at its last checkpoint (in eval mode), its data, the epochs
    completed and the metrics (one dict per epoch)."""

    path: Path
    config: TrainConfig
    model: torch.nn.Module
    data: object
    epoch: int
    metrics: list

    @property
    def unit(self) -> str:
        """What one data point of this run is ("image"): its bounds are in nats per ``unit``."""
        return kind_of(self.config.model).unit


@contextlib.contextmanager
def locked(out, *, create: bool = False):
    """Hold run directory ``out``'s exclusive lock for the block: an ``flock`` on ``out/.elbo.lock``, a file that
    holds the holder's pid and is removed when the block ends. The operating system releases the lock when the
    process ends, however it ends (kill -9 too: the file is then left, and the next process takes it over). A second
    process that asks for it gets ``InputError`` naming the holder's pid. ``create``: make ``out`` first (a new run);
    otherwise a missing directory is "not a run directory". Only the main process of a group takes it, and the
    processes a holder launches (``elbo.distributed.launch``) find it held for them."""
    out = Path(out)
    key = str(out.resolve())
    if not distributed.is_main_process() or key in os.environ.get(_HELD, "").split(os.pathsep):
        yield
        return
    if create:
        out.mkdir(parents=True, exist_ok=True)
    elif not out.is_dir():
        raise InputError(f"{out} is not a run directory (no such directory)")
    descriptor = _lock(out / LOCK_FILE)
    held = os.environ.get(_HELD)
    os.environ[_HELD] = os.pathsep.join(filter(None, (held, key)))
    try:
        yield
    finally:
        os.environ.pop(_HELD) if held is None else os.environ.__setitem__(_HELD, held)
        (out / LOCK_FILE).unlink(missing_ok=True)  # while still held: no one can have locked this file meanwhile
        os.close(descriptor)


def _lock(path: Path) -> int:
    """A descriptor of ``path`` holding its exclusive ``flock``, with this process's pid written in it. The file may
    be removed by a holder that finishes between our open and our lock: then it is not the file at ``path`` any
    more, and we try again with the new one."""
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(descriptor)
            raise InputError(f"{path.parent} is in use by another elbo process (pid {holder}): wait for it to "
                             f"finish, or stop it") from None
        try:
            same = os.path.samestat(os.fstat(descriptor), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
            return descriptor
        os.close(descriptor)


def refuse_existing_run(out: Path, force: bool) -> list:
    """The run files already in ``out`` (to be replaced when ``force``); ``InputError`` when there are any and not
    ``force``."""
    existing = [name for name in RUN_FILES if (out / name).exists()]
    if existing and not force:
        raise InputError(f"{out} already holds a run ({', '.join(existing)}): continue it with resume({out}), or "
                         f"pass force=True to replace it", argument="out")
    return existing


def start_run(out: Path, config: TrainConfig, existing: list) -> None:
    """Make ``out`` a new run directory: the files of an earlier run removed, the config written, no metrics yet."""
    out.mkdir(parents=True, exist_ok=True)
    for name in existing:
        (out / name).unlink()
    write_json(out / "config.json", config.to_dict())
    (out / "metrics.jsonl").touch()


def remove_run_files(out: Path) -> None:
    """Remove the run files of ``out`` (a run whose first checkpoint could not be written), so that the command that
    made it works again once the cause is gone."""
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)


def write_checkpoint(out: Path, config: TrainConfig, epoch: int, model, optimizer, rng: dict) -> None:
    """``out/checkpoint.pt``, atomically; only tensors and primitive containers, so that
    ``torch.load(weights_only=True)`` can read it."""
    checkpoint = {"config": config.to_dict(), "epoch": epoch, "model": model.state_dict(),
                  "optimizer": optimizer.state_dict(), "rng": rng}
    content = io.BytesIO()
    torch.save(checkpoint, content)
    write_atomically(out / "checkpoint.pt", content.getvalue())


def read_checkpoint(out: Path) -> dict:
    """The checkpoint of run directory ``out``, with its keys checked; ``InputError`` naming what is wrong."""
    path = out / "checkpoint.pt"
    if not out.is_dir():
        raise InputError(f"{out} is not a run directory (no such directory)")
    if not path.is_file():
        raise InputError(f"{out} is not a run directory of `elbo train`: it has no checkpoint.pt")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols: the error below says what matters
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # objects other than tensors and plain containers: refused, never run
        raise InputError(f"{path} is corrupt or not a checkpoint (it holds objects other than tensors and plain "
                         f"containers, and was refused unread)") from None
    except Exception as error:  # any other failure to read it (truncated zip, ...) means a corrupt file
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path} is corrupt or not a checkpoint ({message})") from None
    missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint] if isinstance(checkpoint, dict) \
        else ["everything"]
    if missing:
        raise InputError(f"{path} is not a checkpoint of `elbo train` (missing: {', '.join(missing)})")
    epoch = checkpoint["epoch"]
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise InputError(f"{path} is corrupt: its epoch must be an integer >= 0, got {epoch!r}")
    return checkpoint


def restore_model(checkpoint: dict, out: Path):
    """``(config, model)`` of a checkpoint: the model built by its kind from the config, with the saved parameters."""
    _check_registered(checkpoint["config"], out)
    try:
        config = TrainConfig.from_dict(checkpoint["config"])
        model = kind_of(config.model).call("build", config.model)
        _check_tensors(checkpoint["model"], model.state_dict(), "parameters")
        model.load_state_dict(checkpoint["model"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
        message = str(error).strip().splitlines()[0]
        raise InputError(f"{out / 'checkpoint.pt'}: its config and parameters do not make a model ({message})") \
            from None
    if config.epochs < checkpoint["epoch"]:
        raise InputError(f"{out / 'checkpoint.pt'} is corrupt: it holds epoch {checkpoint['epoch']} of a run of "
                         f"{config.epochs} epochs")
    return config, model


def _check_registered(config, out: Path) -> None:
    """A run of a data set or model kind that this process has not registered (one registered from Python by the code
    that trained it) is refused in one line that says which registration it needs, not blamed on its checkpoint."""
    if not isinstance(config, dict):
        return  # from_dict says what is wrong with it
    model = config.get("model")
    needed = [(table, name) for table, name in ((DATASETS, config.get("data")),
                                                (KINDS, model.get("kind") if isinstance(model, dict) else None))
              if isinstance(name, str) and name not in table]
    if needed:
        table, name = needed[0]
        registry, what = ("DATASETS", "data set") if table is DATASETS else ("KINDS", "model kind")
        raise InputError(f"{out}: the run was trained on {what} {name!r}, which is not registered here: "
                         f"register it as the code that trained it did (elbo.registry.{registry}.register({name!r}, "
                         f"...)) before reading the run; registered: {', '.join(table.names())}")


def _check_tensors(saved, expected: dict, what: str) -> None:
    """``saved`` must hold a finite tensor of the shape and kind (floating point or not) of each of ``expected``, and
    nothing else: ``load_state_dict`` checks no values (a float32 run loads into a float64 model, cast)."""
    if not isinstance(saved, dict) or set(saved) != set(expected):
        names = sorted(set(saved) ^ set(expected)) if isinstance(saved, dict) else [type(saved).__name__]
        raise ValueError(f"its {what} do not match the model's (differing names: {', '.join(map(str, names[:3]))})")
    for name, tensor in expected.items():
        value = saved[name]
        if not (isinstance(value, torch.Tensor) and value.shape == tensor.shape
                and value.is_floating_point() == tensor.is_floating_point()):
            found = f"{tuple(value.shape)} {value.dtype}" if isinstance(value, torch.Tensor) else type(value).__name__
            kind = "floating-point" if tensor.is_floating_point() else str(tensor.dtype)
            raise ValueError(f"{name} must be a {tuple(tensor.shape)} {kind} tensor, got {found}")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} holds NaN or infinite values")


def check_optimizer_state(saved, optimizer: torch.optim.Optimizer, out: Path) -> None:
    """A checkpoint's optimizer state must match ``optimizer`` (built from the run's config) tensor by tensor: the
    same parameter groups and, for each parameter, state tensors of its shape and dtype (scalars 0-dimensional),
    finite. ``Optimizer.load_state_dict`` checks none of these, and a fused step writes out of bounds on a tensor of
    the wrong size."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    try:
        groups, state = saved["param_groups"], saved["state"]
        if [list(g["params"]) for g in groups] != [list(range(len(params)))] or not isinstance(state, dict):
            raise ValueError("its parameter groups are not the model's")
        for index, entry in state.items():
            if not (isinstance(index, int) and 0 <= index < len(params)) or not isinstance(entry, dict):
                raise ValueError(f"its state names parameter {index!r}, which the model has not")
            for key, value in entry.items():
                shape = () if key == "step" else params[index].shape
                if not (isinstance(value, torch.Tensor) and value.shape == shape and value.is_floating_point()
                        and bool(torch.isfinite(value).all())):
                    raise ValueError(f"state {key!r} of parameter {index} is not a finite {tuple(shape)} tensor")
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise InputError(f"{out / 'checkpoint.pt'}: cannot restore the optimizer ({error})") from None


def read_metrics(out: Path) -> list:
    """The epochs' lines of ``metrics.jsonl``. A last line cut short (the process was killed as it wrote it) is
    dropped with a warning: the checkpoint decides where the run is. Any other bad line is an error."""
    path = out / "metrics.jsonl"
    if not path.is_file():
        return []
    text = path.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            if number == len(lines) and not text.endswith("\n"):
                warnings.warn(f"{path}: its last line was cut short (the run was stopped as it wrote it) and is "
                              f"left out", stacklevel=2)
                break
            raise InputError(f"{path}: not one JSON object per line (line {number}: {error})") from None
        if not (isinstance(record, dict) and isinstance(record.get("epoch"), int)):
            raise InputError(f"{path}: line {number} is not an epoch's record (a JSON object with an integer epoch)")
        records.append(record)
    return records


def append_metrics(out: Path, record: dict) -> None:
    """Append one epoch's ``record`` to the run's ``metrics.jsonl`` as a line of JSON."""
    with open(out / "metrics.jsonl", "a") as metrics:
        metrics.write(json.dumps(record) + "\n")


def keep_metrics(out: Path, epoch: int) -> None:
    """Drop the lines of epochs after ``epoch`` (those the checkpoint does not hold), atomically."""
    metrics = [m for m in read_metrics(out) if m["epoch"] <= epoch]
    write_atomically(out / "metrics.jsonl", "".join(json.dumps(m) + "\n" for m in metrics).encode())


def load_run_data(config: TrainConfig, data_dir=None):
    """The data a run was trained on (looked for in ``data_dir``, else where the run's own was; a data set that reads
    no files is loaded without it: the commands that measure the run on another data set give ``data_dir`` for that
    one, and ``measured_data`` refuses it for one that reads none)."""
    if data_dir is None or not DATASETS[config.data].reads_files:
        data_dir = config.data_dir
    return load_data(config.data, data_dir=data_dir,
                     val_size=config.val_size, options=config.data_options)


def settings_of_run(out: Path, config: TrainConfig) -> TrainConfig:
    """The run's config as ``config.json`` now says it, held against the checkpoint's ``config``: ``epochs`` may
    have been raised there (to train the run further: ``resume`` goes on to the new number); any other difference
    is refused in one line, since a run's settings are its checkpoint's. A missing ``config.json`` is the
    checkpoint's config."""
    path = out / "config.json"
    if not path.is_file():
        return config
    try:
        edited = TrainConfig.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError, KeyError, AttributeError) as error:  # JSON errors are ValueErrors
        raise InputError(f"{path} is not the config of a run ({str(error).splitlines()[0]})") from None
    differences = [field.name for field in dataclasses.fields(TrainConfig)
                   if field.name != "epochs" and getattr(edited, field.name) != getattr(config, field.name)]
    if differences:
        raise InputError(f"{path} disagrees with checkpoint.pt on {', '.join(differences)}: a run's settings are its "
                         f"checkpoint's; put config.json back (only epochs may be raised), or start a new run")
    return dataclasses.replace(config, epochs=edited.epochs)


def load_run(path, *, data_dir=None, device="cpu") -> Run:
    """Read run directory ``path`` back: config, model at its last checkpoint (eval mode), data, metrics.

    ``data_dir`` overrides the directory the run was trained from (for a run moved to another machine).
    """
    path = Path(path)
    checkpoint = read_checkpoint(path)
    config, model = restore_model(checkpoint, path)
    settings_of_run(path, config)  # a config.json that contradicts the checkpoint is refused
    return Run(path, config, model.to(device).eval(), load_run_data(config, data_dir), checkpoint["epoch"],
               read_metrics(path))


def measured_data(run: Run, data: str | None, data_dir):
    """The data set a run is measured on: its own, or ``data``, another of the same kind (looked for in
    ``data_dir``, else where the run's own was; with the run's data options when it is the run's data set)."""
    if data is None:
        return run.data
    options = run.config.data_options if data == run.config.data else None
    return load_data(data, data_dir=run.config.data_dir if data_dir is None else data_dir, options=options)
