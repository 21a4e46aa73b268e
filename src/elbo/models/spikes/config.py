"""The spikes kind's configuration, ``SpikeConfig`` (no torch at import)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..._checks import check_positive, check_positive_float
from ...errors import InputError

__all__ = ["SpikeConfig", "SpikeOptions"]


@dataclass(frozen=True)
class SpikeConfig:
    """A Gaussian-process latent-trajectory model of spike counts, fitted by amortized VI.

    ``latent_dim``: ``d``, the size of each bin's latent ``z_t``. ``timescale``: the initial length scale ``ℓ`` of
    every latent dimension's squared-exponential kernel, in seconds (each dimension then learns its own);
    ``jitter``: ``ε`` in ``K = (1 - ε) k_SE + ε I``, in ``(0, 1)``. ``hidden_size``: the width of each direction of
    the encoder's bidirectional GRU. The data fill in the rest (``configure``): ``num_neurons`` (``N``, all of
    them), ``held_in`` (the first ``held_in`` neurons, all the encoder sees), ``num_bins`` (``T``) and ``bin_size``
    (``Δ``, seconds); ``None`` until then.
    """

    latent_dim: int = 3
    timescale: float = 0.1
    jitter: float = 1e-3
    hidden_size: int = 64
    num_neurons: int | None = None
    held_in: int | None = None
    num_bins: int | None = None
    bin_size: float | None = None

    def __post_init__(self):
        check_positive(latent_dim=self.latent_dim, hidden_size=self.hidden_size)
        check_positive_float(timescale=self.timescale)
        if not (isinstance(self.jitter, (int, float)) and not isinstance(self.jitter, bool)
                and 0 < self.jitter < 1):
            raise InputError(f"jitter must be a number in (0, 1), got {self.jitter!r}", argument="jitter")
        for name in ("num_neurons", "held_in", "num_bins"):
            if getattr(self, name) is not None:
                check_positive(**{name: getattr(self, name)})
        if self.bin_size is not None:
            check_positive_float(bin_size=self.bin_size)
        if self.held_in is not None and self.num_neurons is not None and self.held_in > self.num_neurons:
            raise InputError(f"held_in must be at most num_neurons = {self.num_neurons}, got {self.held_in}",
                             argument="held_in")
        if self.num_bins is not None and self.num_bins < 2:
            raise InputError(f"num_bins must be at least 2 (a trajectory), got {self.num_bins}", argument="num_bins")

    @property
    def log_timescale(self) -> float:
        return math.log(self.timescale)

    @classmethod
    def from_dict(cls, values: dict) -> SpikeConfig:
        """Inverse of ``dataclasses.asdict`` after a JSON round trip."""
        return cls(**values)


@dataclass(frozen=True)
class SpikeOptions:
    """How the data set ``"spikes"`` reads a recording: ``bin_size``, the width in seconds of the bins its spike
    times are counted in (``None``: the file's own ``bin_size``; a file of counts is binned already); ``held_out``,
    how many of the last neurons are held out of the encoder for co-smoothing (``None``: a fifth; 0: none, every
    neuron read, as for inference on all of them)."""

    bin_size: float | None = None
    held_out: int | None = None

    def __post_init__(self):
        if self.bin_size is not None:
            check_positive_float(bin_size=self.bin_size)
        if self.held_out is not None and (not isinstance(self.held_out, int) or isinstance(self.held_out, bool)
                                          or self.held_out < 0):
            raise InputError(f"held_out must be an integer >= 0, got {self.held_out!r}", argument="held_out")

    @classmethod
    def from_dict(cls, values: dict) -> SpikeOptions:
        """Inverse of ``dataclasses.asdict`` after a JSON round trip."""
        return cls(**values)
