"""What the benchmarks share (imported by them; not a benchmark itself, so `make bench` skips it)."""

from __future__ import annotations

import math
import subprocess
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


def cell(x, spec: str) -> str:
    """A table cell: ``x`` formatted by ``spec``; "-" for a missing value, "nan" for NaN."""
    if x is None:
        return "-"
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return format(x, spec)
