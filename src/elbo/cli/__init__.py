"""The ``elbo`` command: argparse → config → library calls, a module per command.

The one error boundary of the package: the library's ``InputError`` (bad input, naming the library's argument) and
OS errors on the user's paths are printed as one line with the command line's own flag names, exit 2; a training run
that diverged or a worker process that failed, one line, exit 1; anything else is a bug and shows its traceback,
exit 1; Ctrl-C at any moment, one line, exit 130. ``ELBO_TRACEBACK=1`` (``elbo fit --traceback``) shows the
traceback of any of these instead of its line; an error raised in the model file of ``elbo fit``, one line naming
the file's line, exit 2. Building the parser imports no torch: choices and defaults come from ``elbo.configs``,
``elbo.bbvi.config`` and ``elbo.registry``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
import time
import traceback
import warnings

from ..errors import InputError
from ._common import Parser, UsageError
from .demo import add_demo
from .fit import add_fit
from .infer import add_infer
from .measure import add_diagnose, add_evaluate, add_surgery
from .report import add_report
from .simulate import add_simulate
from .train import add_train

__all__ = ["main", "build_parser", "UsageError"]

COMMANDS = (add_demo, add_train, add_evaluate, add_surgery, add_diagnose, add_report, add_fit, add_simulate,
            add_infer)


def build_parser() -> Parser:
    parser = Parser(prog="elbo", description="Variational inference you can check.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(commands)
    for command in commands.choices.values():
        command.set_defaults(parser=command)
    return parser


def _in_flags(message: str, parser, argument: str | None) -> str:
    """``message`` with the library's argument names (``batch_size``) in the command's flag names (``--batch-size``):
    the argument the error names, every multi-word one the command has an option for, and the library's calls and
    switches the command has options for (``resume(DIR)`` → ``--resume DIR``, ``force=True`` → ``--force``)."""
    flags = {action.dest: max(action.option_strings, key=len) for action in parser._actions if action.option_strings}
    for dest, flag in flags.items():
        message = re.sub(rf"(?<![\w.]){re.escape(dest)}\(([^)]*)\)", lambda m, flag=flag: f"{flag} {m[1]}", message)
        message = re.sub(rf"(?<![\w.]){re.escape(dest)}=True\b", flag, message)
        if dest == argument or "_" in dest:  # the argument the error names: where it names it first; never a part
            # of a path the message quotes (/runs/out/x, out.npz), nor a name in quotes (a file's array 'bin_size')
            message = re.sub(rf"(?<![\w./'-]){re.escape(dest)}(?![\w(/']|\.\w)", flag, message,
                             count="_" not in dest)
    return message


def _os_error(error: OSError) -> str:
    """``PATH: cause`` (``/runs/x: Permission denied``), or the error's own words where it names no path."""
    if error.filename is None or not error.strerror:
        return str(error)
    target = f" -> {error.filename2}" if error.filename2 is not None else ""
    return f"{error.filename}{target}: {error.strerror}"


@contextlib.contextmanager
def _warnings_in_one_line(command: str):
    """Inside, a warning Python prints is one line, ``elbo CMD: warning: ...``, rather than two (with the source)."""
    original = warnings.formatwarning
    warnings.formatwarning = lambda message, category, filename, lineno, line=None: \
        f"elbo {command}: warning: {message}\n"
    try:
        yield
    finally:
        warnings.formatwarning = original


def main(argv=None) -> int:
    """Run ``elbo`` with ``argv``; the exit code. Ctrl-C at any moment, the parsing and imports included, is one
    line and exit code 130."""
    args = None
    try:
        with _interrupts_between_imports():
            args = build_parser().parse_args(argv)
            return _run(args)
    except KeyboardInterrupt:
        return _interrupted(args)
    except Exception as error:
        if _caused_by_interrupt(error):  # a C extension's init broken by Ctrl-C: "ImportError: initialization failed"
            return _interrupted(args)
        raise


@contextlib.contextmanager
def _interrupts_between_imports(patience: float = 2.0):
    """Inside, Ctrl-C raises KeyboardInterrupt only outside imports: raised in the init of a C extension (torch's,
    scipy's), it aborts the process (pybind11's std::terminate) or becomes an ImportError. One that comes during an
    import is raised once the import is over, or after ``patience`` seconds; only for ``python -m elbo`` (the main
    thread, Python's own handler), the caller's handler restored after."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    state = {"installed": True}  # and "since": the time of a deferred Ctrl-C

    def again(signum):
        if state["installed"] and "since" in state:
            os.kill(os.getpid(), signum)

    def handler(signum, frame):
        started = state.setdefault("since", time.monotonic())
        if _importing(frame) and time.monotonic() - started < patience:
            retry = threading.Timer(0.02, again, (signum,))  # the import is likely over by then
            retry.daemon = True
            retry.start()
            return
        del state["since"]
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        state["installed"] = False
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if "since" in state:  # deferred, and the command ended before it was raised
            raise KeyboardInterrupt


def _importing(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _caused_by_interrupt(error: BaseException) -> bool:
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _wants_traceback(args) -> bool:
    """``--traceback`` (``elbo fit``) or ``ELBO_TRACEBACK=1`` (any command): errors show their full traceback."""
    return bool(getattr(args, "traceback", False)) or os.environ.get("ELBO_TRACEBACK", "") not in ("", "0")


def _report(args, line: str) -> None:
    """``line`` on stderr, or the traceback of the error being handled when the user asked for it."""
    if _wants_traceback(args):
        traceback.print_exc()
    else:
        print(line, file=sys.stderr)


def _run(args) -> int:
    from ..distributed import WorkerFailed  # after parsing: `--help` needs no torch
    from ..train import TrainingDiverged

    try:
        with _warnings_in_one_line(args.command):
            return args.handler(args)
    except (UsageError, InputError) as error:
        message = str(error)
        if not getattr(error, "verbatim", False):
            message = _in_flags(message, args.parser, getattr(error, "argument", None))
        _report(args, f"elbo {args.command}: error: {message}")
        return 2
    except OSError as error:  # a path of the user's: missing, unreadable, unwritable, a full disk
        _report(args, f"elbo {args.command}: error: {_in_flags(_os_error(error), args.parser, None)}")
        return 2
    except (TrainingDiverged, WorkerFailed) as error:
        _report(args, f"elbo {args.command}: {error}")
        return 1


def _interrupted(args) -> int:
    """``elbo CMD: interrupted`` (``elbo: interrupted`` before the command is known), with how to resume a training
    run that has a checkpoint to resume from; exit code 130."""
    # A KeyboardInterrupt raised inside `exec` of a string (scipy's imports do it) leaves CPython's flag of an
    # unhandled one set, and `python -m elbo` would end by killing itself with SIGINT (exit -2) for all that it was
    # handled here. Each `exec` of a string clears the flag first.
    exec("pass")
    if args is None:
        print("elbo: interrupted", file=sys.stderr)
        return 130
    run = args.resume or args.out if args.command == "train" else None
    resumable = run is not None and os.path.isfile(os.path.join(run, "checkpoint.pt"))
    hint = f"; continue with: elbo train --resume {run}" if resumable else ""
    if _wants_traceback(args):
        traceback.print_exc()
    print(f"elbo {args.command}: interrupted{hint}", file=sys.stderr)
    return 130
