"""An argument check the modules share."""

from __future__ import annotations


def check_positive(**settings) -> None:
    """Each value must be an ``int`` of at least 1 (not a ``bool``); else one ``ValueError`` naming the first that
    is not."""
    for name, value in settings.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
