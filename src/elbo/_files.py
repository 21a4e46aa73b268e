"""Writing a file so that a reader finds it whole or not at all."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path


def write_atomically(path, content: bytes) -> None:
    """Write ``content`` to a temporary file beside ``path``, flush it to the disk, then rename it to ``path``: a
    reader, or a run killed half-way, sees the old file or the new one, never part of one. The temporary file is
    removed when the write or the rename fails (a full disk, an interrupt). The file gets the permissions of any
    new file (``0o666`` less the umask), not the temporary file's ``0o600``."""
    path = Path(path)
    part = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp", delete=False)
    try:
        with part:
            part.write(content)
            part.flush()
            os.fsync(part.fileno())
        os.chmod(part.name, 0o666 & ~_umask())
        os.replace(part.name, path)
    except BaseException:
        Path(part.name).unlink(missing_ok=True)
        raise


def write_json(path, value) -> None:
    """``value`` as indented JSON (a run's ``config.json`` and its measurements), written atomically. JSON has no
    NaN or infinity: a value that is not finite (the standard error of one point, say) is written ``null``."""
    write_atomically(path, (json.dumps(_finite_or_null(value), indent=2, allow_nan=False) + "\n").encode())


def _finite_or_null(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(item) for item in value]
    return value


def _umask() -> int:
    umask = os.umask(0)  # reading it means setting it: set it back at once
    os.umask(umask)
    return umask


def tuples_from_json(value):
    """Lists back to tuples, nested: a config's tuples after a JSON round trip."""
    return tuple(tuples_from_json(v) for v in value) if isinstance(value, list) else value
