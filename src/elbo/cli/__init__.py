"""The ``elbo`` command: argparse → config → library calls, a module per command.

The one error boundary of the package: the library's ``InputError`` (bad input, naming the library's argument) and
OS errors on the user's paths are printed as one line with the command line's own flag names, exit 2; a training run
that diverged or a worker process that failed, one line, exit 1; anything else is a bug and shows its traceback,
exit 1. Building the parser imports no torch: choices and defaults come from ``elbo.configs``, ``elbo.fit_config``
and ``elbo.registry``.
"""

from __future__ import annotations

import re
import sys

from ..errors import InputError
from ._common import Parser, UsageError
from .demo import add_demo
from .fit import add_fit
from .measure import add_diagnose, add_evaluate, add_surgery
from .report import add_report
from .train import add_train

__all__ = ["main", "build_parser", "UsageError"]

COMMANDS = (add_demo, add_train, add_evaluate, add_surgery, add_diagnose, add_report, add_fit)


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
        if dest == argument or "_" in dest:
            message = re.sub(rf"(?<![\w.-]){re.escape(dest)}(?![\w(])", flag, message)
    return message


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..distributed import WorkerFailed  # after parsing: `--help` needs no torch
    from ..train import TrainingDiverged

    try:
        return args.handler(args)
    except (UsageError, InputError) as error:
        message = _in_flags(str(error), args.parser, getattr(error, "argument", None))
        print(f"elbo {args.command}: error: {message}", file=sys.stderr)
        return 2
    except OSError as error:  # a path of the user's: missing, unreadable, unwritable, a full disk
        print(f"elbo {args.command}: error: {_in_flags(str(error), args.parser, None)}", file=sys.stderr)
        return 2
    except (TrainingDiverged, WorkerFailed) as error:
        print(f"elbo {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        run = args.resume or args.out if args.command == "train" else None
        hint = f"; continue with: elbo train --resume {run}" if run else ""
        print(f"elbo {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
