"""The spikes data set's options of ``elbo train`` and its ``SpikeOptions`` from them (no torch)."""

from __future__ import annotations

from ...argtypes import positive_float
from .config import SpikeOptions

__all__ = ["add_arguments", "options_from_arguments"]


def add_arguments(group) -> None:
    group.add_argument("--bin-size", metavar="SECONDS", type=positive_float,
                       help="the width of the bins a recording's spike times are counted in [default: the file's "
                            "bin_size]")


def options_from_arguments(args) -> SpikeOptions:
    return SpikeOptions(bin_size=args.bin_size)
