"""The ``elbo`` command: argparse → config → library calls. Bad input exits 2 with a one-line error."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


def _demo(args) -> int:
    from .demo import linear_gaussian_demo

    rows = linear_gaussian_demo(seed=args.seed, num_samples=args.k)
    print(f"Linear-Gaussian model, one data point: bounds after fitting q (K = {args.k}), in nats")
    print(f"{'family':<10} {'ELBO':>10} {'IWAE-K':>10} {'log p(x)':>10} {'KL(q‖p(z|x))':>14}")
    for row in rows:
        print(f"{row['family']:<10} {row['elbo']:>10.4f} {row['iwae']:>10.4f} {row['log_evidence']:>10.4f} "
              f"{row['kl']:>14.5f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="elbo", description="Variational inference you can check.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser("demo", help="fit q on a model with a known answer and print the bounds",
                               description="Fit a mean-field and a full-rank q on a linear-Gaussian model and "
                                           "print ELBO and IWAE-K next to the exact log p(x).")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--k", type=_positive_int, default=1000, help="samples for the estimates (default 1000)")
    demo.set_defaults(run=_demo)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, ValueError, FileNotFoundError) as error:
        print(f"elbo {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"elbo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
