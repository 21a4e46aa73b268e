"""The spikes kind's data sets: spike counts of trials, ``(M, T, N)`` (trials × time bins × neurons), in torch's
default dtype, split into train / validation / test trials, with a held-in / held-out split of the neurons.

- ``"lorenz"`` (``load_lorenz``): the Lorenz benchmark of LFADS (``elbo.models.spikes.simulate``), generated from a
  seed with its truth (rates, latents, readout): 65 conditions × 4 trials of 50 bins of 20 ms, 30 neurons. Nothing
  is downloaded: ``data_dir`` and ``download`` are accepted for the registry's sake and not used.
- a user's recordings (``load_npz(path)``, or ``load_recordings(data_dir=...)`` for ``data_dir/spikes.npz``): a
  ``.npz`` file holding ``counts`` (``(M, T, N)``, non-negative integers), ``bin_size`` (seconds), and, optionally,
  ``condition`` (one label per trial, any values) and ``time`` (``(T,)``, increasing, seconds). The truth that
  ``save_simulation`` writes beside the counts (``rates`` in spikes/s, ``latents``, ``W``, ``b``) is read too where
  it is there. Or, instead of counts, the spikes themselves (``spike_times``, ``spike_trials``, ``spike_neurons``,
  ``duration``), binned in ``--bin-size`` seconds or the file's ``bin_size`` (``binning``). A bad file is an
  ``InputError`` of one line naming the file.

Trials are split by ``split_trials``, deterministically from ``seed``: 20 % test, ``val_size`` (by default 10 %)
validation, the rest training, stratified by condition (each condition's trials are dealt out in a random order, so
every condition is in the training split wherever it has at least two trials). Neurons: the last ``held_out`` (by
default 20 %) are held out for co-smoothing (Pei et al. 2021): a model's encoder sees only the first ``held_in``;
its readout, trained on all of the training trials' neurons, predicts the held-out ones.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..._checks import check_seed, check_val_size, one_of
from ...errors import InputError
from ...kinds import SPLITS
from .binning import binned
from .config import SpikeOptions
from .simulate import simulate_lorenz

__all__ = ["SpikeTrains", "load_lorenz", "load_npz", "read_recording", "load_recordings", "from_arrays", "split_trials",
           "TEST_FRACTION", "HELD_OUT_FRACTION", "RECORDINGS_FILE"]

TEST_FRACTION, VAL_FRACTION, HELD_OUT_FRACTION = 0.2, 0.1, 0.2
RECORDINGS_FILE = "spikes.npz"
_TRUTH = ("rates", "latents")


@dataclass(frozen=True, eq=False)
class SpikeTrains:
    """Spike counts ``(M, T, N)`` of each split, in the default dtype, with what is known about them.

    ``bin_size``: ``Δ`` in seconds; ``time``: each bin's time, ``(T,)``; ``held_in``: the first ``held_in``
    neurons are held in, the other ``N - held_in`` held out. ``*_labels``: each trial's condition (int64 indices
    into ``label_names``), or ``None``. The truth of a simulation, or ``None``: ``*_rates`` (spikes/s,
    ``(M, T, N)``), ``*_latents`` (``(M, T, d)``), and the readout ``weights`` (``(N, d)``) and ``bias`` (``(N,)``)
    with ``rates = exp(latents @ weights.T + bias)``.
    """

    name: str
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    bin_size: float
    time: torch.Tensor
    held_in: int
    train_labels: torch.Tensor | None = None
    val_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    label_names: tuple[str, ...] | None = None
    train_rates: torch.Tensor | None = None
    val_rates: torch.Tensor | None = None
    test_rates: torch.Tensor | None = None
    train_latents: torch.Tensor | None = None
    val_latents: torch.Tensor | None = None
    test_latents: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    bias: torch.Tensor | None = None

    @property
    def num_neurons(self) -> int:
        return self.train.shape[-1]

    @property
    def num_bins(self) -> int:
        return self.train.shape[1]

    def scored(self, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The counts of ``split`` (``"train"``, ``"val"`` or ``"test"``) and their conditions (or ``None``)."""
        return getattr(self, one_of("split", split, SPLITS)), getattr(self, f"{split}_labels")

    def truth(self, split: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The true rates (spikes/s) and latents of ``split``'s trials, each ``None`` where unknown."""
        one_of("split", split, SPLITS)
        return getattr(self, f"{split}_rates"), getattr(self, f"{split}_latents")

    def resample(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The batch itself: spike counts have nothing to redraw."""
        return batch


def split_trials(condition, *, val_size: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Trial indices of each split (``"train"``, ``"val"``, ``"test"``, each ascending), from ``condition: (M,)``
    (any labels; all equal for data without conditions) and ``seed`` alone: ``round(0.2 M)`` (at least 1) test
    trials, ``val_size`` (``None``: ``round(0.1 M)``) validation trials, the rest training.

    Stratified: each condition's trials get a random rank, and the trials are dealt in order of rank (conditions in
    a random order within a rank), training first, then validation, then test, so that the test split takes one
    trial of as many conditions as it can before a second of any.
    """
    check_seed(seed)
    condition = np.asarray(condition)
    num_trials = len(condition)
    if num_trials < 2:
        raise InputError(f"the data have {num_trials} trial(s): at least 2 are needed, one to train and one to test")
    rng = np.random.default_rng(seed)
    _, groups = np.unique(condition, return_inverse=True)
    rank = np.empty(num_trials, dtype=np.int64)
    for group in range(groups.max() + 1):
        members = np.flatnonzero(groups == group)
        rank[members] = rng.permutation(len(members))
    shuffle = rng.permutation(groups.max() + 1)[groups]
    order = np.lexsort((shuffle, rank))
    num_test = max(1, round(TEST_FRACTION * num_trials))
    num_val = check_val_size(val_size, num_trials - num_test, default=min(round(VAL_FRACTION * num_trials),
                                                                          num_trials - num_test - 1),
                             points="trials that are not test trials")
    cut = num_trials - num_test - num_val
    return {"train": np.sort(order[:cut]), "val": np.sort(order[cut:cut + num_val]),
            "test": np.sort(order[cut + num_val:])}


def from_arrays(name: str, arrays: dict, *, val_size: int | None = None, held_out: int | None = None,
                seed: int = 0, source: str = "the data") -> SpikeTrains:
    """``SpikeTrains`` from a recording's arrays (``counts``, ``bin_size``, optionally ``condition``, ``time`` and
    the truth ``rates``, ``latents``, ``W``, ``b``), checked (``source`` names them in an error), split by
    ``split_trials(condition, val_size=val_size, seed=seed)`` and with the last ``held_out`` neurons held out
    (``None``: ``round(0.2 N)``)."""
    counts, bin_size = _counts(arrays, source), _bin_size(arrays, source)
    num_trials, num_bins, num_neurons = counts.shape
    labels, label_names = _conditions(arrays, num_trials, source)
    time = _time(arrays, num_bins, bin_size, source)
    held_in = num_neurons - _held_out(held_out, num_neurons)
    splits = split_trials(np.zeros(num_trials) if labels is None else labels, val_size=val_size, seed=seed)
    truth = _truth(arrays, counts.shape, source)
    dtype = torch.get_default_dtype()
    fields = {}
    for split, index in splits.items():
        fields[split] = torch.as_tensor(counts[index], dtype=dtype)
        fields[f"{split}_labels"] = None if labels is None else torch.as_tensor(labels[index], dtype=torch.int64)
        for key in _TRUTH:
            fields[f"{split}_{key}"] = None if truth.get(key) is None else torch.as_tensor(truth[key][index],
                                                                                        dtype=dtype)
    readout = {key: None if truth.get(array) is None else torch.as_tensor(truth[array], dtype=dtype)
               for key, array in (("weights", "W"), ("bias", "b"))}
    return SpikeTrains(name, bin_size=bin_size, time=torch.as_tensor(time, dtype=dtype), held_in=held_in,
                       label_names=label_names, **fields, **readout)


# --- loaders -----------------------------------------------------------------------------------------------------

def load_lorenz(*, data_dir=None, val_size: int | None = None, download: bool = True, seed: int = 0,
                held_out: int | None = None, **settings) -> SpikeTrains:
    """The Lorenz benchmark, ``simulate_lorenz(seed, **settings)`` (by default 260 trials of 50 bins, 30 neurons),
    split by ``seed``: 182 training, 26 validation and 52 test trials; the last 6 neurons held out. ``data_dir`` and
    ``download`` are not used (the data are generated)."""
    return from_arrays("lorenz", simulate_lorenz(seed, **settings), val_size=val_size, held_out=held_out, seed=seed,
                       source="the Lorenz simulation")


def load_npz(path, *, val_size: int | None = None, held_out: int | None = None, seed: int = 0,
             argument: str = "path", bin_size: float | None = None) -> SpikeTrains:
    """A user's recordings from the ``.npz`` file ``path`` (module docstring), split as ``from_arrays`` does; spike
    times binned by ``binning.binned`` in bins of ``bin_size`` seconds (``None``: the file's ``bin_size``).
    ``argument``: the name of the caller's argument that gave the path, for its errors."""
    path = Path(path)
    arrays = _with_counts(_read_npz(path, argument), bin_size, str(path))
    data = from_arrays(path.stem, arrays, val_size=val_size, held_out=held_out, seed=seed, source=str(path))
    if "counts" in arrays and "condition" not in arrays:  # spike times and conditions say which axis is which
        _warn_if_transposed(np.shape(arrays["counts"]), str(path))
    return data


def _warn_if_transposed(shape: tuple, source: str) -> None:
    """A warning where counts of fewer trials than neurons may be a file saved as (neurons, bins, trials)."""
    trials, bins, neurons = shape
    if trials < neurons:
        warnings.warn(f"{source}: counts read as {trials} trials x {bins} bins x {neurons} neurons, fewer trials "
                      f"than neurons: if its axes are (neurons, bins, trials), save counts.transpose(2, 1, 0)",
                      stacklevel=4)


def _with_counts(arrays: dict, bin_size: float | None, source: str, *, fallback: float | None = None) -> dict:
    """The file's arrays with its counts: its own, or its spike times binned (in ``bin_size``, else its own, else
    ``fallback``)."""
    if "counts" in arrays:
        if bin_size is not None:
            raise InputError(f"{source} holds counts already binned (its own bin_size): a bin size of {bin_size:g} s "
                             f"applies to spike times only", argument="bin_size")
        return arrays
    if "spike_times" not in arrays:
        return arrays  # _counts says what is missing
    if bin_size is None and "bin_size" not in arrays and fallback is not None:
        bin_size = fallback
    return binned(arrays, bin_size if bin_size is not None else _bin_size(arrays, source), source)


def read_recording(path, *, argument: str = "path", bin_size: float | None = None) -> dict:
    """All the trials of the ``.npz`` file ``path``, checked as ``load_npz`` checks them (spike times binned in the
    file's ``bin_size``, else in ``bin_size``), unsplit: ``counts`` (int64, ``(M, T, N)``), ``bin_size`` (a float,
    seconds), ``time`` (``(T,)``, seconds) and ``condition`` (``(M,)``, the file's labels, or ``None``)."""
    path = Path(path)
    source = str(path)
    arrays = _with_counts(_read_npz(path, argument), None, source, fallback=bin_size)
    counts, bin_size = _counts(arrays, source), _bin_size(arrays, source)
    _conditions(arrays, len(counts), source)  # checked; the labels are kept as the file has them
    return {"counts": counts, "bin_size": bin_size, "time": _time(arrays, counts.shape[1], bin_size, source),
            "condition": arrays.get("condition")}


def _read_npz(path: Path, argument: str) -> dict:
    if not path.is_file():
        raise InputError(f"{path}: no such file (expected a .npz file of spike counts)", argument=argument)
    key = None
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {}
            for key in archive.files:
                arrays[key] = archive[key]
            return arrays
    except ValueError as error:
        if key is not None and "allow_pickle" in str(error):  # an array of objects: the usual list of trials
            raise InputError(f"{path}: the array '{key}' holds Python objects (a list of trials or of spike trains?), "
                             f"which are not read (no pickles); save numbers: counts (trials, bins, neurons), or "
                             f"spike times flat, one entry a spike: spike_times, spike_trials, spike_neurons, and "
                             f"duration", argument=argument) from None
        raise _unreadable(path, error, argument) from None
    except (OSError, EOFError) as error:
        raise _unreadable(path, error, argument) from None


def _unreadable(path: Path, error: Exception, argument: str) -> InputError:
    return InputError(f"{path}: not a readable .npz file ({type(error).__name__}: "
                      f"{str(error).splitlines()[0] if str(error) else 'no detail'})", argument=argument)


def load_recordings(*, data_dir=None, val_size: int | None = None, download: bool = True,
                    options: SpikeOptions | None = None) -> SpikeTrains:
    """A user's recordings: ``data_dir`` is a ``.npz`` file, or a directory holding ``spikes.npz``
    (``load_npz``), with ``options.bin_size`` for spike times and ``options.held_out`` neurons held out.
    ``download`` is not used (the data are the user's)."""
    if data_dir is None:
        raise InputError(f"the recordings are your own: give data_dir, a .npz file or a directory holding "
                         f"{RECORDINGS_FILE}", argument="data_dir")
    path = Path(data_dir)
    options = options or SpikeOptions()
    return load_npz(path / RECORDINGS_FILE if path.is_dir() else path, val_size=val_size, argument="data_dir",
                    bin_size=options.bin_size, held_out=options.held_out)


# --- checks ------------------------------------------------------------------------------------------------------

def _first(mask: np.ndarray) -> str:
    trial, bin_, neuron = np.argwhere(mask)[0]
    return f"first at trial {trial}, bin {bin_}, neuron {neuron}"


def _counts(arrays: dict, source: str) -> np.ndarray:
    """``counts`` as int64 ``(M, T, N)``, refused unless 3-D, non-empty, finite, non-negative and integer."""
    if "counts" not in arrays:
        raise InputError(f"{source}: no array 'counts' (expected counts (trials, bins, neurons), bin_size and, "
                         f"optionally, condition and time)")
    counts = np.asarray(arrays["counts"])
    if counts.dtype.kind not in "iuf":
        raise InputError(f"{source}: counts must be numbers, got dtype {counts.dtype}")
    if counts.ndim != 3:
        raise InputError(f"{source}: counts must have 3 dimensions (trials, bins, neurons), got shape "
                         f"{counts.shape}")
    if 0 in counts.shape:
        raise InputError(f"{source}: counts has shape {counts.shape}: no trials, bins or neurons")
    checks = (("finite", ~np.isfinite(counts), "NaN or inf"), ("non-negative", counts < 0, "negative"),
              ("integers", counts != np.round(counts), "fractional"))
    for what, bad, description in checks:
        if bad.any():
            raise InputError(f"{source}: counts must be {what}: {int(bad.sum())} of them are {description} "
                             f"({_first(bad)})")
    empty = np.flatnonzero(counts.sum(axis=(1, 2)) == 0)
    if len(empty):
        raise InputError(f"{source}: {len(empty)} trial(s) have no spike at all (first: trial {empty[0]}): an "
                         f"empty trial is a recording fault; drop it")
    return counts.astype(np.int64)


def _bin_size(arrays: dict, source: str) -> float:
    """The file's array 'bin_size' (its name quoted in errors: the array, not the argument ``bin_size``)."""
    if "bin_size" not in arrays:
        spikes = "spike_times" in arrays
        raise InputError(f"{source}: no array 'bin_size' (the width of a bin in seconds)"
                         + (", and no bin_size given to count its spike times in" if spikes else ""),
                         argument="bin_size" if spikes else None)
    value = np.asarray(arrays["bin_size"])
    if value.size != 1 or value.dtype.kind not in "iuf" or not (np.isfinite(value).all() and float(value) > 0):
        raise InputError(f"{source}: the array 'bin_size' must be one finite number > 0 (seconds), got "
                         f"{value.tolist()!r}")
    return float(value)


def _conditions(arrays: dict, num_trials: int, source: str) -> tuple[np.ndarray | None, tuple[str, ...] | None]:
    """Each trial's condition as an index into the sorted distinct labels, and those labels as strings."""
    if "condition" not in arrays:
        return None, None
    condition = np.asarray(arrays["condition"])
    if condition.shape != (num_trials,):
        transposed = condition.ndim == 1 and condition.shape[0] == np.shape(arrays["counts"])[-1]
        raise InputError(f"{source}: condition must hold one label per trial, shape ({num_trials},), got "
                         f"{condition.shape}" + ("; one a neuron: are counts saved (neurons, bins, trials)? save "
                                                 "counts.transpose(2, 1, 0)" if transposed else ""))
    names, index = np.unique(condition, return_inverse=True)
    return index.astype(np.int64), tuple(str(name) for name in names)


def _time(arrays: dict, num_bins: int, bin_size: float, source: str) -> np.ndarray:
    """``time`` as given (``(T,)``, finite, increasing), else the bins' centres ``(t + ½) Δ``."""
    if "time" not in arrays:
        return (np.arange(num_bins) + 0.5) * bin_size
    time = np.asarray(arrays["time"])
    if time.shape != (num_bins,) or time.dtype.kind not in "iuf" or not np.isfinite(time).all() or \
            (np.diff(time) <= 0).any():
        raise InputError(f"{source}: time must be {num_bins} finite, increasing numbers (one per bin), got shape "
                         f"{time.shape}")
    return time.astype(np.float64)


def _held_out(held_out: int | None, num_neurons: int) -> int:
    if held_out is None:
        return round(HELD_OUT_FRACTION * num_neurons)
    if not isinstance(held_out, int) or isinstance(held_out, bool) or not 0 <= held_out < num_neurons:
        raise InputError(f"held_out must be an integer in [0, {num_neurons}) (neurons held out of the "
                         f"{num_neurons}), got {held_out!r}", argument="held_out")
    return held_out


def _truth(arrays: dict, shape: tuple, source: str) -> dict:
    """The truth a simulation wrote beside the counts, shapes checked: rates ``(M, T, N)``, latents ``(M, T, d)``,
    ``W: (N, d)``, ``b: (N,)``."""
    truth = {key: np.asarray(arrays[key], dtype=np.float64) for key in ("rates", "latents", "W", "b")
             if key in arrays}
    expected = {"rates": shape, "latents": shape[:2], "W": shape[2:], "b": shape[2:]}
    for key, value in truth.items():
        if value.shape[:len(expected[key])] != expected[key] or not np.isfinite(value).all():
            raise InputError(f"{source}: {key} must be finite with shape starting {expected[key]}, got "
                             f"{value.shape}")
    return truth
