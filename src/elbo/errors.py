"""The library's exception for bad input.

``InputError`` (a ``ValueError``) means the caller passed something the library cannot use: a setting out of range,
a data file of the wrong shape, a run directory that is not one. Its message is one line and names the library's own
argument (``batch_size``, ``data_dir``), so that a front end can put its own spelling in its place (the command line
says ``--batch-size``). Anything else that escapes the library is a bug.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input: one line naming the argument at fault (``argument``, when there is one)."""

    def __init__(self, message: str, *, argument: str | None = None):
        super().__init__(message)
        self.argument = argument
