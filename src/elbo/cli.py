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


def _fit(args) -> int:
    import json
    import time

    import torch

    from . import bbvi, diagnostics, mcmc

    # Posterior summaries, k̂ and log-evidence estimates in double precision, as Stan computes them; the model file
    # is run after this line, so its tensors follow.
    torch.set_default_dtype(torch.float64)
    # Models for `elbo fit` are small: a step is many tiny tensor operations, which more threads only slow down
    # (by 10x and more while another process wants the cores).
    torch.set_num_threads(args.threads)
    model = bbvi.load_model(args.model_file)
    progress = sys.stderr.isatty()
    start = time.perf_counter()
    fit = bbvi.fit(model, family=args.family, num_samples=args.num_samples, estimator=args.estimator,
                   max_steps=args.max_steps, batch_size=args.batch_size, num_draws=args.num_draws, seed=args.seed,
                   progress=progress)
    vi_seconds = time.perf_counter() - start
    result = {"model_file": args.model_file, "family": args.family, "steps": fit.num_steps,
              "converged": fit.converged, "elbo": fit.elbo, "log_evidence": fit.log_evidence,
              "log_evidence_stderr": fit.log_evidence_stderr, "khat": fit.khat,
              "khat_meaning": diagnostics.khat_meaning(fit.khat), "vi_seconds": vi_seconds}
    if args.compare_nuts:
        try:
            reference = mcmc.nuts(model, num_samples=args.nuts_samples, warmup_steps=args.nuts_warmup,
                                  seed=args.seed, progress=progress)
        except ModuleNotFoundError as error:
            raise UsageError(str(error)) from None
        result |= {"nuts_seconds": reference.seconds, "nuts_samples": args.nuts_samples,
                   "nuts_warmup": args.nuts_warmup, "nuts_divergent": reference.num_divergent,
                   "parameters": mcmc.compare(fit.draws, reference.draws)}
    else:
        result["parameters"] = [{"name": name, "vi_mean": row["mean"], "vi_sd": row["sd"]}
                                for name, row in fit.summary().items()]
    print(json.dumps(result, indent=2) if args.json else _fit_table(result))
    return 0


def _fit_table(result: dict) -> str:
    nuts = "nuts_seconds" in result
    header = f"{'parameter':<16} {'VI mean':>10} {'VI sd':>10}"
    if nuts:
        header += f" {'NUTS mean':>10} {'NUTS sd':>10} {'mean err':>9} {'sd err':>9}"
    lines = [f"{result['model_file']}: {result['family']} q, errors in NUTS sds" if nuts else
             f"{result['model_file']}: {result['family']} q", header]
    for row in result["parameters"]:
        line = f"{row['name']:<16} {row['vi_mean']:>10.4g} {row['vi_sd']:>10.4g}"
        if nuts:
            errors = [("" if row[key] is None else f"{row[key]:+.3f}") for key in ("mean_error", "sd_error")]
            line += f" {row['nuts_mean']:>10.4g} {row['nuts_sd']:>10.4g} {errors[0]:>9} {errors[1]:>9}"
        lines.append(line)
    lines += [f"k̂ = {result['khat']:.2f} ({result['khat_meaning']})",
              f"ELBO {result['elbo']:.4f}; log p(x) ≈ {result['log_evidence']:.4f} ± "
              f"{result['log_evidence_stderr']:.4f} (importance sampling)",
              f"VI: {result['steps']} steps ({'converged' if result['converged'] else 'stopped at --max-steps'}), "
              f"{result['vi_seconds']:.1f} s"]
    if nuts:
        lines.append(f"NUTS: {result['nuts_warmup']} warmup + {result['nuts_samples']} draws, "
                     f"{result['nuts_divergent']} divergent, {result['nuts_seconds']:.1f} s")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="elbo", description="Variational inference you can check.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser("demo", help="fit q on a model with a known answer and print the bounds",
                               description="Fit a mean-field and a full-rank q on a linear-Gaussian model and "
                                           "print ELBO and IWAE-K next to the exact log p(x).")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--k", type=_positive_int, default=1000, help="samples for the estimates (default 1000)")
    demo.set_defaults(run=_demo)
    fit = commands.add_parser("fit", help="fit q to a user-defined model, optionally against NUTS",
                              description="Fit q by maximising the ELBO to the posterior of the elbo.Model that "
                                          "MODEL_FILE defines as `model`; print per parameter the VI mean and sd "
                                          "(and NUTS's, with VI's errors in NUTS sds), k̂, log p(x), wall times.")
    fit.add_argument("model_file", metavar="MODEL_FILE", help="a Python file defining `model` (an elbo.Model)")
    fit.add_argument("--family", default="fullrank", help="meanfield, fullrank, lowrank or flow (default fullrank)")
    fit.add_argument("--estimator", default="stl", help="stl, reparam or score (default stl)")
    fit.add_argument("--num-samples", type=_positive_int, default=8, help="draws of q per step (default 8)")
    fit.add_argument("--max-steps", type=_positive_int, default=10_000, help="cap on steps (default 10000)")
    fit.add_argument("--batch-size", type=_positive_int, default=None,
                     help="subsample this many data points per step (models given with data)")
    fit.add_argument("--num-draws", type=_positive_int, default=10_000,
                     help="draws of q for k̂, log p(x) and the summaries (default 10000)")
    fit.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    fit.add_argument("--threads", type=_positive_int, default=1,
                     help="torch threads (default 1: fastest for small models; more help with large data)")
    fit.add_argument("--compare-nuts", action="store_true", help="also run Pyro's NUTS on the same log density")
    fit.add_argument("--nuts-samples", type=_positive_int, default=1000, help="NUTS draws kept (default 1000)")
    fit.add_argument("--nuts-warmup", type=_positive_int, default=1000, help="NUTS warmup steps (default 1000)")
    fit.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    fit.set_defaults(run=_fit)
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
