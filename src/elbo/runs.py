"""Run directories: what ``elbo train`` writes and every other command reads.

A run directory holds ``RUN_FILES``: ``config.json`` (the ``TrainConfig``), ``metrics.jsonl`` (one JSON object an
epoch), ``checkpoint.pt`` (model, optimizer, epoch, random states; written atomically and read back with
``torch.load(weights_only=True)``), and the measurements ``evaluation.json``, ``surgery.json``,
``diagnostics.json`` and ``report.html``. This module reads and writes them; it imports none of the modules that
train or measure a model, so all of them can import it.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ._files import write_atomically, write_json
from .configs import TrainConfig
from .errors import InputError
from .kinds import kind_of, load_data

__all__ = ["RUN_FILES", "Run", "load_run", "read_checkpoint", "write_checkpoint", "restore_model", "read_metrics",
           "append_metrics", "keep_metrics", "refuse_existing_run", "start_run", "load_run_data"]

# the files of a run, replaced by `train(..., force=True)`: measurements of an earlier model must not outlive it
RUN_FILES = ("config.json", "metrics.jsonl", "checkpoint.pt", "evaluation.json", "surgery.json", "diagnostics.json",
             "report.html")
CHECKPOINT_KEYS = ("config", "epoch", "model", "optimizer", "rng")


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
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any failure to read it (truncated zip, bad pickle, ...) means a corrupt file
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path} is corrupt or not a checkpoint ({message})") from None
    missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint] if isinstance(checkpoint, dict) \
        else ["everything"]
    if missing:
        raise InputError(f"{path} is not a checkpoint of `elbo train` (missing: {', '.join(missing)})")
    return checkpoint


def restore_model(checkpoint: dict, out: Path):
    """``(config, model)`` of a checkpoint: the model built by its kind from the config, with the saved parameters."""
    try:
        config = TrainConfig.from_dict(checkpoint["config"])
        model = kind_of(config.model).call("build", config.model)
        model.load_state_dict(checkpoint["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        message = str(error).strip().splitlines()[0]
        raise InputError(f"{out / 'checkpoint.pt'}: its config and parameters do not make a model ({message})") \
            from None
    return config, model


def read_metrics(out: Path) -> list:
    path = out / "metrics.jsonl"
    if not path.is_file():
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not one JSON object per line ({error})") from None


def append_metrics(out: Path, record: dict) -> None:
    with open(out / "metrics.jsonl", "a") as metrics:
        metrics.write(json.dumps(record) + "\n")


def keep_metrics(out: Path, epoch: int) -> None:
    """Drop the lines of epochs after ``epoch`` (those the checkpoint does not hold), atomically."""
    metrics = [m for m in read_metrics(out) if m["epoch"] <= epoch]
    write_atomically(out / "metrics.jsonl", "".join(json.dumps(m) + "\n" for m in metrics).encode())


def load_run_data(config: TrainConfig, data_dir=None):
    """The data a run was trained on (looked for in ``data_dir``, else where the run's own was)."""
    return load_data(config.data, data_dir=config.data_dir if data_dir is None else data_dir,
                     val_size=config.val_size)


def load_run(path, *, data_dir=None, device="cpu") -> Run:
    """Read run directory ``path`` back: config, model at its last checkpoint (eval mode), data, metrics.

    ``data_dir`` overrides the directory the run was trained from (for a run moved to another machine).
    """
    path = Path(path)
    checkpoint = read_checkpoint(path)
    config, model = restore_model(checkpoint, path)
    return Run(path, config, model.to(device).eval(), load_run_data(config, data_dir), checkpoint["epoch"],
               read_metrics(path))
