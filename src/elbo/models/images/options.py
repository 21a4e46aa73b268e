"""The images kind's options of ``elbo train`` and its ``VAEConfig`` from them (no torch). ``--latent`` is one of
``elbo train``'s own (kinds share it): here, the size of each stochastic layer, bottom first."""

from __future__ import annotations

import dataclasses

from ...argtypes import default_of, positive_float, positive_int
from ...errors import InputError
from ...registry import GAUSSIAN_SCALES, LIKELIHOODS
from .config import ACTIVATIONS, NETWORKS, PRESETS, VAEConfig

__all__ = ["add_arguments", "config_from_arguments"]


def _int_tuple(text: str) -> tuple[int, ...]:
    """``"200,200"`` → ``(200, 200)``; ``""`` → ``()`` (no hidden layer)."""
    return tuple(positive_int(part) for part in text.split(",") if part.strip())


def _default(field: str):
    return default_of(VAEConfig, field)


def add_arguments(group) -> None:
    group.add_argument("--layers", type=int, choices=(1, 2),
                       help="stochastic layers, with Burda et al.'s architecture: 1 is 784-200-200-50, 2 is "
                            "784-[200,200]-100-[100,100]-50 [default: 1]")
    group.add_argument("--hidden", type=_int_tuple, nargs="+", metavar="H,H",
                       help="hidden layer widths below each stochastic layer, e.g. 200,200 100,100")
    group.add_argument("--activation", choices=ACTIVATIONS, help=f"[default: {_default('activation')}]")
    group.add_argument("--network", choices=NETWORKS,
                       help=f"fully connected, or convolutional next to the image [default: {_default('network')}]")
    group.add_argument("--likelihood", choices=LIKELIHOODS.names(),
                       help="p(x|z) [default: the data set's: gaussian for frey and for your own grey-level images, "
                            "bernoulli otherwise]")
    group.add_argument("--gaussian-scale", choices=GAUSSIAN_SCALES,
                       help=f"σ of a Gaussian p(x|z): fixed at --sigma, or learned "
                            f"[default: {_default('gaussian_scale')}]")
    group.add_argument("--sigma", dest="fixed_scale", metavar="SIGMA", type=positive_float,
                       help=f"σ for --gaussian-scale fixed [default: {_default('fixed_scale')}]")


def config_from_arguments(args) -> VAEConfig:
    """``PRESETS["burda1"]`` (or ``"burda2"`` for ``--layers 2``) with the options given; a Gaussian head's options
    with another likelihood named, and ``--sigma`` with a learned σ, are refused (the data set's own likelihood is
    checked by ``configure``)."""
    if args.likelihood not in (None, "gaussian") and (args.gaussian_scale, args.fixed_scale) != (None, None):
        raise InputError(f"--gaussian-scale and --sigma: options of --likelihood gaussian, not of {args.likelihood}; "
                         f"leave them out")
    if args.fixed_scale is not None and (args.gaussian_scale or _default("gaussian_scale")) != "fixed":
        raise InputError("--sigma: the σ of --gaussian-scale fixed; add --gaussian-scale fixed, or leave --sigma out")
    given = {name: value for name, value in dict(
        latent_dims=args.latent and tuple(args.latent), hidden_dims=args.hidden and tuple(args.hidden),
        activation=args.activation, network=args.network, likelihood=args.likelihood,
        gaussian_scale=args.gaussian_scale, fixed_scale=args.fixed_scale).items() if value is not None}
    return dataclasses.replace(PRESETS["burda2" if args.layers == 2 else "burda1"], **given)
