"""The spikes kind's options of ``elbo train`` and its ``SpikeConfig`` from them; the data set ``spikes``'s options and
its ``SpikeOptions`` from them (no torch). ``--latent D`` is one of ``elbo train``'s own (kinds share it): here ``d``,
the size of each bin's latent."""

from __future__ import annotations

from ...argtypes import default_of, non_negative_int, positive_float, positive_int
from ...errors import InputError
from .config import SpikeConfig, SpikeOptions

__all__ = ["add_model_arguments", "config_from_arguments", "add_arguments", "options_from_arguments"]


def add_model_arguments(group) -> None:
    group.add_argument("--timescale", metavar="SECONDS", type=positive_float,
                       help=f"the latents' GP timescale at the start (each dimension then learns its own) "
                            f"[default: {default_of(SpikeConfig, 'timescale')}]")
    group.add_argument("--gru-size", metavar="H", type=positive_int,
                       help=f"the width of each direction of the encoder's bidirectional GRU "
                            f"[default: {default_of(SpikeConfig, 'hidden_size')}]")


def config_from_arguments(args) -> SpikeConfig:
    """``SpikeConfig`` with the options given; ``--latent`` takes one size (one latent trajectory a trial)."""
    if args.latent is not None and len(args.latent) != 1:
        raise InputError(f"--latent: a spike model has one latent trajectory a trial: give one size D, got "
                         f"{' '.join(map(str, args.latent))}")
    given = {name: value for name, value in dict(
        latent_dim=args.latent and args.latent[0], timescale=args.timescale, hidden_size=args.gru_size).items()
        if value is not None}
    return SpikeConfig(**given)


def add_arguments(group) -> None:
    group.add_argument("--bin-size", metavar="SECONDS", type=positive_float,
                       help="the width of the bins a recording's spike times are counted in [default: the file's "
                            "bin_size]")
    group.add_argument("--held-out", metavar="N", type=non_negative_int,
                       help="the last N neurons are held out of the encoder, for co-smoothing (co-bps); 0 reads every "
                            "neuron [default: a fifth of them]")


def options_from_arguments(args) -> SpikeOptions:
    return SpikeOptions(bin_size=args.bin_size, held_out=args.held_out)
