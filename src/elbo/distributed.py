"""Data parallelism on ``torch.distributed``: processes that each take a block of the rows and agree on the rest.

A process joins a group when torchrun's environment says so (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``): ``torchrun --nproc-per-node N -m elbo train ...`` on one machine, or torchrun's
rendezvous across machines. ``launch(fn, N, ...)`` starts N such processes on this machine itself (torchrun's
standalone rendezvous, on a free port) and is what ``elbo train --nproc N`` runs.

- ``joined(device)``: the process group for a block of code: gloo on CPU, nccl on CUDA.
- ``block(n)``: this rank's contiguous block of ``n`` rows (blocks differ in size by at most one row).
- ``map_blocks(fn, data)``: ``fn`` on this rank's block of ``data``, the results gathered from every rank in order,
  so that every rank ends with ``fn(data)`` computed once, in parts.

The noise a rank draws for its rows of a global batch is ``elbo.families.SharedNoise``'s.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import uuid

import numpy as np
import torch
import torch.distributed as dist

from ._checks import check_positive
from .errors import InputError

__all__ = ["WorkerFailed", "rank", "world_size", "is_main_process", "joined", "device_of_rank", "launch", "block",
           "gather", "map_blocks", "all_reduce_sum", "any_rank", "rank_seed"]

# How long a rank waits for the others at a collective before giving up (torch's default is 30 minutes).
TIMEOUT = datetime.timedelta(minutes=10)


class WorkerFailed(RuntimeError):
    """A process started by ``launch`` failed; the message is its error (``ValueError: ...``) and its rank."""


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main_process() -> bool:
    """Rank 0 of the group, or of the torchrun environment, or a single process: the one that writes and prints."""
    return rank() == 0 if dist.is_initialized() else int(os.environ.get("RANK", "0")) == 0


def _environment_world_size() -> int:
    value = os.environ.get("WORLD_SIZE", "1")
    if not value.isdigit() or int(value) < 1:
        raise InputError(f"WORLD_SIZE must be a positive integer, got {value!r}")
    return int(value)


def device_of_rank(device) -> torch.device:
    """``cuda`` means ``cuda:LOCAL_RANK`` under torchrun (one GPU per process); any other device is kept."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and _environment_world_size() > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


@contextlib.contextmanager
def joined(device):
    """Join the process group torchrun's environment describes for the duration of the block (gloo on CPU, nccl on
    CUDA), and leave it after; with ``WORLD_SIZE`` 1 or unset, or a group already joined, do nothing."""
    if dist.is_initialized() or _environment_world_size() == 1:
        yield
        return
    device = device_of_rank(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _worker(fn, threads, dtype, args, kwargs):
    torch.set_num_threads(threads)
    torch.set_default_dtype(dtype)
    return fn(*args, **kwargs)


def launch(fn, nproc: int, *args, threads: int | None = None, **kwargs):
    """Run ``fn(*args, **kwargs)`` in ``nproc`` new processes on this machine that form one process group, and
    return rank 0's result. ``fn`` joins the group itself (``joined``), as it does under torchrun. The processes
    start with this one's default dtype.

    The rendezvous is torchrun's standalone one (a free port on localhost). ``threads``: CPU threads per process
    (default: this machine's cores shared out). A failure in any process stops them all and raises
    ``WorkerFailed`` with the first error.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    check_positive(nproc=nproc)
    if dist.is_initialized() or _environment_world_size() > 1:
        raise InputError(f"nproc={nproc} starts its own processes; this one is already part of a group of "
                         f"{_environment_world_size()} (torchrun): leave nproc out", argument="nproc")
    threads = threads or max(1, (os.cpu_count() or 1) // nproc)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1,
                          start_method="spawn")
    logger = logging.getLogger("torch.distributed.elastic")
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # its tracebacks repeat the worker's error, which WorkerFailed carries
    try:
        results = elastic_launch(config, _worker)(fn, threads, torch.get_default_dtype(), args, kwargs)
    except ChildFailedError as error:
        raise WorkerFailed(_first_error(error.failures)) from None
    finally:
        logger.setLevel(level)
    return results[0]


def _first_error(failures: dict) -> str:
    """The earliest error a process reported (one stopped because another failed reports only a signal)."""
    reported = {r: f for r, f in failures.items() if isinstance(f.message, dict)}
    if not reported:
        r, failure = min(failures.items())
        return (f"process {r} of the group exited with code {failure.exitcode} before reporting an error (a script "
                f"that starts processes must do so under `if __name__ == '__main__':`)")
    r, failure = min(reported.items(), key=lambda item: (item[1].timestamp, item[0]))
    return f"{failure.message['message'].strip().splitlines()[0]} (in process {r} of the group)"


def block(n: int, rank_: int | None = None, world_size_: int | None = None) -> slice:
    """Rows ``[r·n/W, (r+1)·n/W)`` of ``n`` (integer division) for rank ``r`` of ``W``: contiguous, in rank order."""
    r = rank() if rank_ is None else rank_
    w = world_size() if world_size_ is None else world_size_
    return slice(r * n // w, (r + 1) * n // w)


def gather(values: torch.Tensor, n: int) -> torch.Tensor:
    """Every rank's ``values`` for its ``block(n)`` of rows, concatenated in rank order: shape ``(n, ...)`` on
    every rank. Blocks may differ in size by one row, so each is padded to the largest for ``all_gather``."""
    w = world_size()
    if w == 1:
        return values
    size = -(-n // w)
    padded = values.new_zeros((size, *values.shape[1:]))
    padded[:len(values)] = values
    parts = [torch.empty_like(padded) for _ in range(w)]
    dist.all_gather(parts, padded)
    sizes = [len(range(n)[block(n, r, w)]) for r in range(w)]
    return torch.cat([part[:size_r] for part, size_r in zip(parts, sizes)])


def map_blocks(fn, data: torch.Tensor) -> torch.Tensor:
    """``fn(data)`` for a row-wise ``fn``: each rank computes ``fn`` on its ``block`` of the rows, and every rank
    gets all of them back, in order. With one process, ``fn(data)``."""
    if world_size() == 1:
        return fn(data)
    return gather(fn(data[block(len(data))]), len(data))


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    """The sum over ranks of ``value`` (a new tensor; ``value`` itself with one process)."""
    if world_size() == 1:
        return value
    total = value.clone()
    dist.all_reduce(total)
    return total


def any_rank(flag: bool, device) -> bool:
    """True on every rank when ``flag`` is true on any, so that all ranks take the same branch."""
    return bool(all_reduce_sum(torch.tensor(float(flag), device=device)) > 0)


def rank_seed(seed: int, rank_: int | None = None) -> int:
    """The seed of rank ``rank_``'s own random stream (default: this process's rank): ``seed`` itself for rank 0
    (and a single process), and for the others a seed spawned from it (``numpy.random.SeedSequence``), so that no
    two ranks draw the same numbers."""
    r = rank() if rank_ is None else rank_
    return seed if r == 0 else int(np.random.SeedSequence(seed, spawn_key=(r,)).generate_state(1)[0])
