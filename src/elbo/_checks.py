"""The argument checks every module shares, each with one wording; each raises ``InputError`` naming the argument."""

from __future__ import annotations

import math

from .errors import InputError

__all__ = ["one_of", "check_positive", "check_positive_float", "check_finite", "check_seed", "parse_device",
           "check_device", "check_int_at_least", "check_fits", "check_val_size"]


def one_of(name: str, value, allowed, *, context: str = ""):
    """``value`` if it is among ``allowed``; else ``InputError``: "NAME must be one of 'a', 'b'[ CONTEXT], got X"."""
    if value not in allowed:
        where = f" {context}" if context else ""
        raise InputError(f"{name} must be one of {', '.join(map(repr, allowed))}{where}, got {value!r}",
                         argument=name)
    return value


def check_positive(**settings) -> None:
    """Each value must be an ``int`` of at least 1 (not a ``bool``)."""
    for name, value in settings.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}", argument=name)


def check_positive_float(**settings) -> None:
    """Each value must be a finite real number above 0 (not a ``bool``)."""
    for name, value in settings.items():
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf):
            raise InputError(f"{name} must be a finite number > 0, got {value!r}", argument=name)


def check_finite(name: str, values) -> None:
    """A floating-point tensor must hold no NaN or infinite value; the message counts them."""
    import torch  # a leaf: the configs that import this module stay free of torch

    if values.is_floating_point():
        bad = ~torch.isfinite(values)
        if bad.any():
            raise InputError(f"{name} must be finite: {int(bad.sum())} of its {values.numel()} values are NaN or inf",
                             argument=name)


def check_int_at_least(name: str, value, minimum: int) -> None:
    """``value`` must be an ``int`` (not a ``bool``) of at least ``minimum``: "NAME must be an integer >= MIN"."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}", argument=name)


MAX_SEED = 2**63 - 1  # torch.manual_seed and numpy's SeedSequence both take any integer in [0, 2^63)


def check_seed(seed, *, name: str = "seed") -> None:
    """A seed is an integer in ``[0, 2^63)``."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"{name} must be an integer in [0, 2^63), got {seed!r}", argument=name)


def check_fits(needed: float, device, *, what: str, argument: str, remedy: str) -> None:
    """``InputError`` when ``needed`` bytes exceed the memory free now on ``device`` (a CPU's available physical
    memory, a GPU's free memory): "WHAT need about X GiB, more than the Y GiB free here: REMEDY"."""
    import os

    import torch

    device = torch.device(device)
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else \
        os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if needed > free:
        raise InputError(f"{what} need about {needed / 2**30:.1f} GiB, more than the {free / 2**30:.1f} GiB free "
                         f"here: {remedy}", argument=argument)


def parse_device(device):
    """``torch.device(device)``, or ``InputError`` for a name torch does not know (whatever this machine has: a
    config may be written on one machine and run on another)."""
    import torch

    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"device must name a torch device such as 'cpu' or 'cuda', got {device!r}",
                         argument="device") from None


def check_device(device):
    """``parse_device(device)``, or ``InputError`` for a CUDA device on a machine where torch sees none (or fewer
    than its index asks for), or a device type elbo does not run on."""
    import torch

    parsed = parse_device(device)
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} was asked for, but torch sees no CUDA device here", argument="device")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise InputError(f"device {device!r} was asked for, but torch sees {torch.cuda.device_count()} CUDA "
                         f"device(s)", argument="device")
    if parsed.type not in ("cpu", "cuda"):
        raise InputError(f"device must be 'cpu' or 'cuda' (with an index, e.g. 'cuda:1'), got {device!r}",
                         argument="device")
    return parsed


def check_val_size(val_size, pool_size: int, *, default: int, points: str) -> int:
    """How many of a data set's ``pool_size`` non-test ``points`` validate: ``default`` for ``None``, else an integer
    in ``[0, pool_size)``."""
    if val_size is None:
        return default
    if not isinstance(val_size, int) or isinstance(val_size, bool) or not 0 <= val_size < pool_size:
        raise InputError(f"val_size must be an integer in [0, {pool_size}) for this data set "
                         f"({pool_size} {points}), got {val_size!r}", argument="val_size")
    return val_size
