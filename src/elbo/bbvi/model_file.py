"""A user's model file (``elbo fit model.py``): run it, take its ``model``, and shape any error raised in it into
one line naming the file's own line."""

from __future__ import annotations

import runpy
import traceback
from pathlib import Path

from ..errors import InputError
from .model import Model

__all__ = ["load_model", "error_in_file"]


def load_model(path) -> Model:
    """Run the Python file at ``path`` and return the ``elbo.Model`` it defines as ``model``.

    An error while running the file (a syntax error, a null byte, a failing import, an exception at its top level)
    is an ``InputError`` of one line naming the file's own line: ``model.py:7: NameError: name 'x' is not defined``,
    chained to the original error."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"model file {path} is a directory, expected a Python file")
    if not path.is_file():
        raise FileNotFoundError(f"no model file {path}")
    try:
        namespace = runpy.run_path(str(path), run_name="__elbo_model__")  # not "__main__": skip the file's own script
    except SyntaxError as error:  # also null bytes, a bad encoding, bad indentation; in the file or one it imports
        lineno = error.lineno or _null_byte_line(path)
        where = f"{error.filename or path}" + (f":{lineno}" if lineno else "")
        raise InputError(f"{where}: {type(error).__name__}: {' '.join(str(error.msg).split())}") from error
    except (Exception, SystemExit) as error:
        message = error_in_file(error, path)
        if message is None and isinstance(error, OSError):
            raise  # reading the file itself
        raise InputError(message or f"{path}: {_one_line(error)}") from error
    if "model" not in namespace:
        raise InputError(f"{path} does not define `model` (an elbo.Model)")
    if not isinstance(namespace["model"], Model):
        raise InputError(f"`model` in {path} is a {type(namespace['model']).__name__}, expected an elbo.Model")
    return namespace["model"]


def error_in_file(error: BaseException, path) -> str | None:
    """``path:line: ExcType: message`` in one line, at the deepest frame of ``error``'s traceback that runs the
    file at ``path`` (the user's model file); None when no frame does (the error is not the file's)."""
    target, same, line = Path(path).resolve(), {}, None
    for frame, lineno in traceback.walk_tb(error.__traceback__):
        name = frame.f_code.co_filename
        if name not in same:
            try:
                same[name] = Path(name).resolve() == target
            except (OSError, ValueError, RuntimeError):
                same[name] = False
        if same[name]:
            line = lineno
    return None if line is None else f"{path}:{line}: {_one_line(error)}"


def _null_byte_line(path: Path) -> int | None:
    """The line of the file's first null byte (Python's SyntaxError for one gives none), None when it has none."""
    try:
        content = path.read_bytes()
    except OSError:
        return None
    return content.count(b"\n", 0, content.index(b"\0")) + 1 if b"\0" in content else None


def _one_line(error: BaseException) -> str:
    """``ExcType: message`` on one line (the library's ``InputError``: its message alone)."""
    try:
        text = " ".join(str(error).split())
    except Exception:  # a __str__ that fails
        text = "(its message cannot be printed)"
    if isinstance(error, InputError):
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


