"""What the commands share: the parser's look, the run arguments of the commands that measure a run, and (from
``elbo.argtypes``) the argument types and options' defaults. Nothing here imports torch."""

from __future__ import annotations

import argparse
import json

from ..argtypes import (
    choice_list,
    default_of,
    non_negative_int,
    positive_float,
    positive_int,
    positive_int_list,
    probability_below_one,
    seed,
)

__all__ = ["UsageError", "Formatter", "Parser", "add_command", "positive_int", "non_negative_int", "positive_float",
           "seed", "probability_below_one", "positive_int_list", "choice_list", "default_of", "add_run_arguments",
           "add_threads", "set_threads", "check_data_dir", "measure"]

THREADS_HELP = ("CPU threads for torch. 1 by default, as for `elbo fit`: these models' matrix products are small, and "
                "threads that wait for each other on a core another program holds slow each step many times (the "
                "README's digits IWAE for 10 epochs on 2 cores, one of them busy: 12 s with 1 thread, 50 s with 2); "
                "raise it on a quiet machine with large batches. With --nproc N, each process's")


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


class Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default as ``[default: X]``, except for flags and options whose default is None (they say
    it in their help, in the same form)."""

    def _get_help_string(self, action):
        says_nothing = any(action.default is default for default in (None, False, argparse.SUPPRESS))  # not 0 == False
        if says_nothing or not action.option_strings:
            return action.help
        return f"{action.help} [default: %(default)s]"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``elbo train: error: ...``) rather than the usage and the error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_command(commands, name: str, *, help: str, description: str) -> Parser:
    """A subcommand ``elbo NAME`` with the parsers' look."""
    return commands.add_parser(name, help=help, description=description, formatter_class=Formatter)


def add_run_arguments(parser, config: type, *, other_data: bool = True, batch_size: bool = True,
                      json: bool = True) -> None:
    """What the commands that measure a run share: RUN, which data, where, how, and how the result is printed;
    defaults from the command's config dataclass ``config``."""
    from ..registry import DATASETS

    parser.add_argument("run_dir", metavar="RUN", help="run directory written by `elbo train`")
    if other_data:
        parser.add_argument("--data", choices=DATASETS.names(),
                            help="measure on another data set of the run's kind, with points of the model's size "
                                 "[default: the run's]")
    parser.add_argument("--data-dir", metavar="DIR", help="where the data is, if not where the run was trained")
    if batch_size:
        parser.add_argument("--batch-size", type=positive_int, default=default_of(config, "batch_size"),
                            help="data points per batch")
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--seed", type=seed, default=default_of(config, "seed"), help="random seed of the samples")
    if json:
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_threads(parser)


def add_threads(parser) -> None:
    """``--threads N``, default 1 (``THREADS_HELP`` says why)."""
    parser.add_argument("--threads", type=positive_int, default=1, metavar="N", help=THREADS_HELP)


def set_threads(args) -> None:
    import torch

    torch.set_num_threads(args.threads)


def check_data_dir(args) -> None:
    """``--data-dir`` for a run whose data set reads no files (and no ``--data`` of another) is refused, not
    ignored."""
    from pathlib import Path

    from ..registry import DATASETS

    config = Path(args.run_dir) / "config.json"
    if args.data_dir is None or getattr(args, "data", None) is not None or not config.is_file():
        return
    try:
        data = json.loads(config.read_text()).get("data")
    except (ValueError, AttributeError):
        return  # the run's loading says what is wrong with it
    if data in DATASETS and not DATASETS[data].reads_files:
        raise UsageError(f"--data-dir: the run's data set, {data}, reads no files; leave it out")


def measure(args, function, **settings) -> dict | None:
    """``function(RUN, ...)``, one of the ``*_run`` functions that write a run's JSON files; with ``--json`` its result
    is printed and ``None`` returned, otherwise the result is returned for a table (``None`` in a process other than
    rank 0 of a torchrun group: one process reports)."""
    from ..distributed import is_main_process

    set_threads(args)
    check_data_dir(args)
    result = function(args.run_dir, data_dir=args.data_dir, device=args.device, seed=args.seed,
                      progress=not args.quiet, **settings)
    if not is_main_process():  # under torchrun every process runs the command; rank 0 reports
        return None
    if args.json:
        print(json.dumps(result, indent=2))
        return None
    return result
