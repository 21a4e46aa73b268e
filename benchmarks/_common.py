"""What the benchmarks share (imported by them; not a benchmark itself, so `make bench` skips it)."""

from __future__ import annotations

import math
import subprocess
import sys
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def commit() -> str:
    """The checked-out commit, marked when the working tree has uncommitted changes; "unknown" outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (uncommitted changes)" if dirty.strip() else "")


def record_failure(row: dict, error: Exception, heading: str = "") -> str:
    """A contestant's failure written into its ``row``: ``"error"`` (one line, ``error: Type: first line``) and
    ``"traceback"``, which is also printed to stderr after ``heading``; returns the error line. One contestant's
    failure must not stop a benchmark's run."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    row["error"] = f"error: {type(error).__name__}: {message}"
    row["traceback"] = traceback.format_exc()
    print(f"{heading}{row['traceback']}", file=sys.stderr, flush=True)
    return row["error"]


def cell(x, spec: str) -> str:
    """A table cell: ``x`` formatted by ``spec``; "-" for a missing value, "nan" for NaN."""
    if x is None:
        return "-"
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return format(x, spec)


def shuffled_training(data, seed: int = 0):
    """``data`` (a dataclass with ``train`` and, optionally, ``train_labels`` and ``train_tokens``) with its
    training documents in one fixed random order. The peers' online passes take their minibatches in the order
    given (ours reshuffles every epoch), and 20news's file is not in a random order: scikit-learn's online LDA
    fitted in file order had twice the held-out perplexity it has on the shuffled documents."""
    import dataclasses

    import torch

    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))
    changes = {"train": data.train[order]}
    if getattr(data, "train_labels", None) is not None:
        changes["train_labels"] = data.train_labels[order]
    if getattr(data, "train_tokens", None) is not None:
        changes["train_tokens"] = tuple(data.train_tokens[i] for i in order.tolist())
    return dataclasses.replace(data, **changes)
