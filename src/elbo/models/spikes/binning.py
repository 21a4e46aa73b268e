"""Spike times binned into counts: a recording given as spikes rather than counts (``.npz`` arrays, no pickles).

A file without ``counts`` may hold, one entry a spike, ``spike_times`` (seconds from the start of its trial),
``spike_trials`` and ``spike_neurons`` (integer indices), with ``duration`` (each trial's length in seconds, one
number) and, optionally, ``num_trials`` and ``num_neurons`` (otherwise one more than the largest index). ``binned``
counts them in bins of ``bin_size`` seconds (the ``--bin-size`` of ``elbo train``, else the file's own
``bin_size``): bin ``t`` holds the spikes at times in ``[t Δ, (t + 1) Δ)``, and there are ``floor(duration / Δ)``
bins (a last, partial bin, and its spikes, dropped).
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import InputError

__all__ = ["binned", "SPIKE_ARRAYS"]

SPIKE_ARRAYS = ("spike_times", "spike_trials", "spike_neurons", "duration")


def _vector(arrays: dict, name: str, source: str, kind: str) -> np.ndarray:
    values = np.asarray(arrays[name])
    if values.ndim != 1 or values.dtype.kind not in kind:
        raise InputError(f"{source}: {name} must be a vector of {'integers' if kind == 'iu' else 'numbers'}, got "
                         f"shape {values.shape} of {values.dtype}")
    return values


def _count(arrays: dict, name: str, indices: np.ndarray, source: str) -> int:
    """``num_trials`` or ``num_neurons``: the file's, else one more than the largest index."""
    if name not in arrays:
        return int(indices.max()) + 1 if len(indices) else 0
    value = np.asarray(arrays[name])
    if value.size != 1 or value.dtype.kind not in "iu" or int(value) < 1:
        raise InputError(f"{source}: {name} must be one positive integer, got {value.tolist()!r}")
    return int(value)


def binned(arrays: dict, width: float, source: str) -> dict:
    """``arrays`` with ``counts`` ``(M, T, N)`` from its spike times in bins of ``width`` seconds (a checked
    positive number), and ``bin_size`` set to it (module docstring). One-line ``InputError`` for missing arrays,
    indices or times out of range, or fewer than 2 bins."""
    missing = [name for name in SPIKE_ARRAYS if name not in arrays]
    if "spike_times" not in arrays or missing:
        raise InputError(f"{source}: no array 'counts', nor spike times ({', '.join(missing)} missing): expected "
                         f"counts (trials, bins, neurons) and bin_size, or {', '.join(SPIKE_ARRAYS)}")
    times = _vector(arrays, "spike_times", source, "iuf").astype(np.float64)
    trials, neurons = (_vector(arrays, name, source, "iu") for name in ("spike_trials", "spike_neurons"))
    if not len(times) == len(trials) == len(neurons):
        raise InputError(f"{source}: spike_times, spike_trials and spike_neurons must have one entry per spike, got "
                         f"{len(times)}, {len(trials)} and {len(neurons)}")
    duration = np.asarray(arrays["duration"])
    if duration.size != 1 or duration.dtype.kind not in "iuf" or not (math.isfinite(float(duration)) and
                                                                         float(duration) > 0):
        raise InputError(f"{source}: duration must be one finite number > 0 (seconds), got {duration.tolist()!r}")
    num_trials, num_neurons = (_count(arrays, name, indices, source)
                               for name, indices in (("num_trials", trials), ("num_neurons", neurons)))
    bad = ~np.isfinite(times) | (times < 0) | (times >= float(duration)) | (trials >= num_trials) | \
        (neurons >= num_neurons)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(f"{source}: spike {first} (time {float(times[first]):g} s, trial {int(trials[first])}, neuron "
                         f"{int(neurons[first])}) is outside the trials' duration [0, {float(duration):g}) s or their "
                         f"{num_trials} trials and {num_neurons} neurons")
    num_bins = int(math.floor(float(duration) / width + 1e-9))
    if num_bins < 2:
        raise InputError(f"{source}: trials of {float(duration):g} s make {num_bins} bin(s) of {width:g} s; a "
                         f"trajectory needs at least 2", argument="bin_size")
    index = np.floor(times / width).astype(np.int64)
    keep = index < num_bins
    counts = np.zeros((num_trials, num_bins, num_neurons), dtype=np.int64)
    np.add.at(counts, (trials[keep], index[keep], neurons[keep]), 1)
    return {**arrays, "counts": counts, "bin_size": np.asarray(width)}
