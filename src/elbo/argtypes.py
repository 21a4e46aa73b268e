"""The command line's argument types (positive numbers, seeds, lists) and options' defaults read from config
dataclasses: torch-free, shared by the CLI and the kinds' own options (``models/*/options.py``), which stand below
the CLI and so cannot import it."""

from __future__ import annotations

import argparse
import dataclasses

__all__ = ["positive_int", "non_negative_int", "positive_float", "non_negative_float", "probability_below_one", "seed",
           "positive_int_list", "choice_list", "default_of"]


def _number(text: str, kind, what: str, ok):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, "a positive integer", lambda v: v >= 1)


def non_negative_int(text: str) -> int:
    return _number(text, int, "an integer >= 0", lambda v: v >= 0)


def positive_float(text: str) -> float:
    return _number(text, float, "a finite number > 0", lambda v: 0 < v < float("inf"))


def non_negative_float(text: str) -> float:
    return _number(text, float, "a finite number >= 0", lambda v: 0 <= v < float("inf"))


def probability_below_one(text: str) -> float:
    return _number(text, float, "a number in [0, 1)", lambda v: 0 <= v < 1)


def seed(text: str) -> int:
    """A random seed: an integer in [0, 2^63), checked as the command line is read."""
    from ._checks import MAX_SEED

    return _number(text, int, "an integer in [0, 2^63)", lambda v: 0 <= v <= MAX_SEED)


def positive_int_list(text: str) -> tuple[int, ...]:
    """``"1,5,50"`` → ``(1, 5, 50)``: positive integers separated by commas."""
    try:
        return tuple(positive_int(part) for part in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas (e.g. 1,5,50), got "
                                         f"{text!r}") from None


def choice_list(choices):
    """An argument type: ``"a,b"`` → ``("a", "b")``, each among ``choices``."""

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(part.strip() for part in text.split(","))
        if not all(name in choices for name in names):
            raise argparse.ArgumentTypeError(f"expected names among {', '.join(choices)} separated by commas, got "
                                             f"{text!r}")
        return names

    return parse


def default_of(config: type, field: str):
    """The default of ``field`` of the config dataclass ``config``."""
    (match,) = [f for f in dataclasses.fields(config) if f.name == field]
    return match.default
