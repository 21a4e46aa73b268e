"""``elbo fit``: black-box VI for the model a Python file defines, optionally against NUTS."""

from __future__ import annotations

import json
import sys
import warnings
from types import SimpleNamespace

from ..bbvi.config import ESTIMATORS, FAMILIES, FULLRANK_MAX_DIM, INITS, METHODS, FitConfig
from ._common import UsageError, add_command, default_of, positive_int, seed, set_threads

__all__ = ["add_fit"]


def add_fit(commands) -> None:
    fit = add_command(commands, "fit", help="fit q to a user-defined model, optionally against NUTS",
                              description="Fit q to the posterior of the elbo.Model that MODEL_FILE defines as "
                                          "`model` (by default Pathfinder, then batch and match, full rank); print "
                                          "per parameter q's mean and sd and the PSIS-reweighted ones (or, with "
                                          "--compare-nuts, the estimates to report beside NUTS's, with their "
                                          "errors in NUTS sds), k̂ and what it licenses, log p(x), why the fit "
                                          "stopped, gradients and wall times.")
    fit.add_argument("model_file", metavar="MODEL_FILE", help="a Python file defining `model` (an elbo.Model)")
    default = lambda field: default_of(FitConfig, field)  # noqa: E731
    fit.add_argument("--family", choices=FAMILIES, default=default("family"),
                     help=f"the family of q [default: fullrank up to D = {FULLRANK_MAX_DIM} unconstrained coordinates, "
                          f"else meanfield; hierarchical with --local]")
    methods = "; ".join(f"{name}: {METHODS[name].help}" for name in METHODS)
    fit.add_argument("--method", choices=METHODS,
                     help=f"{methods} [default: bam for a full-rank q on all data, else advi]")
    fit.add_argument("--init", choices=INITS, default=default("init"),
                     help="where q starts: Pathfinder's Gaussian, the mode (L-BFGS), or Stan's initial point")
    fit.add_argument("--estimator", choices=ESTIMATORS, default=default("estimator"), help="ADVI's gradient estimator")
    fit.add_argument("--k", dest="num_samples", metavar="K", type=positive_int,
                     help="draws of q per step [default: 8 for advi, 2 D + 2 for bam]")
    fit.add_argument("--max-steps", type=positive_int, default=default("max_steps"), help="cap on steps")
    fit.add_argument("--batch-size", type=positive_int,
                     help="subsample this many data points per step (models given with data) [default: all]")
    fit.add_argument("--local", metavar="NAMES", type=lambda text: tuple(n.strip() for n in text.split(",")),
                     help="the parameters local to a group, comma-separated: family hierarchical (the globals full "
                          "rank, each group's parameters independent given them) [default: none]")
    fit.add_argument("--num-draws", type=positive_int, default=default("num_draws"),
                     help=f"draws of q for k̂, log p(x) and the summaries, each on all data [default: 10000, or as "
                          f"many as {default('diagnostics_seconds'):g} s allow where the data make a draw slow, at "
                          f"least 1000]")
    fit.add_argument("--seed", type=seed, default=0, help="random seed")
    fit.add_argument("--threads", type=positive_int, default=1,
                     help="torch threads (1 is fastest for small models; more help with large data)")
    fit.add_argument("--nproc", type=positive_int, default=1, metavar="N",
                     help="N processes on this machine, each summing the log-likelihood over its block of the rows "
                          "(the same fit as one process, to the order of the additions; torchrun works too)")
    fit.add_argument("--repair", action="store_true",
                     help="where k̂ ≥ 0.7, fit a flow on the Gaussian; where its k̂ is still ≥ 0.7, run NUTS in the "
                          "flow's warped space (NeuTra) and report its draws with R̂, ESS and divergences")
    fit.add_argument("--compare-nuts", action="store_true", help="also run Pyro's NUTS on the same log density")
    fit.add_argument("--nuts-samples", type=positive_int, default=1000, help="NUTS draws kept")
    fit.add_argument("--nuts-warmup", type=positive_int, default=1000, help="NUTS warmup steps")
    fit.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    fit.add_argument("--traceback", action="store_true",
                     help="on an error, show the full traceback instead of one line (also: ELBO_TRACEBACK=1)")
    fit.set_defaults(handler=_fit_command)


class ModelFileError(UsageError):
    """An error in the user's model file, running it or fitting its model: one line, ``model.py:7: KeyError:
    'muu'``, printed as it is (its names are the user's, not the library's arguments), chained to the original
    error, whose traceback ``--traceback`` shows."""

    verbatim = True


def _fit_command(args) -> int:
    """``_fit``, with an error raised in a frame of the model file (a KeyError or a shape error in ``log_joint``)
    as one line naming the file's line. Errors that do not pass through the file are the library's, and keep their
    traceback."""
    from ..bbvi import model_file
    from ..errors import InputError

    try:
        return _fit(args)
    except (UsageError, InputError):
        raise  # the library's own checks, or the file's errors in load_model's words
    except (Exception, SystemExit) as error:
        message = model_file.error_in_file(error, args.model_file)
        if message is None:
            raise
        raise ModelFileError(message) from error


def _fit(args) -> int:
    from .. import distributed

    if args.nproc > 1 and args.compare_nuts:
        raise UsageError("--compare-nuts runs NUTS in one process: leave out --nproc, or run it alone")
    if args.nproc > 1:
        _load_model(args.model_file)  # the file's errors here, in one line, before the processes start
        # the options' values, without the parser and the handler that cannot go to another process
        settings = SimpleNamespace(**{key: value for key, value in vars(args).items()
                                      if isinstance(value, (str, int, float, tuple, type(None)))})
        result = distributed.launch(_fit_result, args.nproc, settings, threads=args.threads)
    else:
        result = _fit_result(args)
    print(json.dumps(result, indent=2) if args.json else _fit_table(result))
    return 0


def _fit_result(args) -> dict:
    """The fit (and NUTS) of ``args``, as the dict ``--json`` prints; in each process of a group with ``--nproc``,
    each of which runs the model file and sums the log-likelihood over its block of the rows."""
    import time

    import torch

    from .. import bbvi, distributed
    from ..bbvi import mcmc, psis

    # Posterior summaries, k̂ and log-evidence estimates in double precision, as Stan computes them; the model file
    # is run after this line, so its tensors follow.
    torch.set_default_dtype(torch.float64)
    # Models for `elbo fit` are small: a step is many tiny tensor operations, which more threads only slow down
    # (by 10x and more while another process wants the cores): --threads defaults to 1.
    set_threads(args)
    model = _load_model(args.model_file)
    progress = sys.stderr.isatty() and distributed.is_main_process()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the result says the same in its own lines
        fit = bbvi.fit(model, family=args.family, method=args.method, init=args.init, num_samples=args.num_samples,
                       estimator=args.estimator, max_steps=args.max_steps, batch_size=args.batch_size, local=args.local,
                       num_draws=args.num_draws, seed=args.seed, progress=progress, repair=args.repair)
    vi_seconds = time.perf_counter() - start
    result = {"model_file": args.model_file, "family": fit.config.family, "method": fit.config.method,
              "steps": fit.num_steps, "converged": fit.converged, "reason": fit.reason,
              "num_grad_evals": fit.num_grad_evals, "num_nonfinite_draws": fit.num_nonfinite_draws,
              "num_draws": len(fit.log_weights), "elbo": fit.elbo, "log_evidence": fit.log_evidence,
              "log_evidence_stderr": fit.log_evidence_stderr, "khat": fit.khat,
              "khat_meaning": psis.khat_meaning(fit.khat), "vi_seconds": vi_seconds, "nproc": args.nproc,
              "mcmc": fit.diagnostics().get("mcmc")}
    if args.compare_nuts:
        try:
            reference = mcmc.nuts(model, num_draws=args.nuts_samples, warmup_steps=args.nuts_warmup,
                                  seed=args.seed, progress=progress)
        except ModuleNotFoundError as error:
            raise UsageError(str(error)) from None
        # the estimates fit says to report: PSIS-reweighted below k̂ = 0.7, q's own draws otherwise
        weights = fit.psis_log_weights.exp() if fit.khat < psis.KHAT_THRESHOLD else None
        return result | {"nuts_seconds": reference.seconds, "nuts_samples": args.nuts_samples,
                         "nuts_warmup": args.nuts_warmup, "nuts_divergent": reference.num_divergent,
                         "vi_estimates": "raw" if weights is None else "psis",
                         "parameters": mcmc.compare(fit.draws, reference.draws, vi_weights=weights)}
    return result | {"parameters": [{"name": name, "vi_mean": row["mean"], "vi_sd": row["sd"],
                                     "psis_mean": row["psis_mean"], "psis_sd": row["psis_sd"]}
                                    for name, row in fit.summary().items()]}


def _load_model(path: str):
    from .. import bbvi
    from ..errors import InputError

    try:
        return bbvi.load_model(path)
    except InputError as error:
        if error.__cause__ is None:
            raise
        raise ModelFileError(str(error)) from error.__cause__  # an error running the file: its words, as they are


def _fit_table(result: dict) -> str:
    nuts = "nuts_seconds" in result
    psis = "psis_mean" in result["parameters"][0]
    header = f"{'parameter':<16} {'VI mean':>10} {'VI sd':>10}"
    if psis:
        header += f" {'PSIS mean':>10} {'PSIS sd':>10}"
    if nuts:
        header += f" {'NUTS mean':>10} {'NUTS sd':>10} {'mean err':>9} {'sd err':>9}"
    if nuts:
        estimates = "PSIS-reweighted" if result["vi_estimates"] == "psis" else "q's own draws"
        title = f"{result['model_file']}: {result['family']} q, {estimates}; errors in NUTS sds"
    else:
        title = f"{result['model_file']}: {result['family']} q"
    lines = [title, header]
    for row in result["parameters"]:
        line = f"{row['name']:<16} {row['vi_mean']:>10.4g} {row['vi_sd']:>10.4g}"
        if psis:
            line += f" {row['psis_mean']:>10.4g} {row['psis_sd']:>10.4g}"
        if nuts:
            errors = [("" if row[key] is None else f"{row[key]:+.3f}") for key in ("mean_error", "sd_error")]
            line += f" {row['nuts_mean']:>10.4g} {row['nuts_sd']:>10.4g} {errors[0]:>9} {errors[1]:>9}"
        lines.append(line)
    nproc = f" in {result['nproc']} processes" if result.get("nproc", 1) > 1 else ""
    lines += [f"k̂ = {result['khat']:.2f} ({result['khat_meaning']})",
              f"ELBO {result['elbo']:.4f}; log p(x) ≈ {result['log_evidence']:.4f} ± "
              f"{result['log_evidence_stderr']:.4f} (importance sampling)",
              f"VI ({result['method']}): {result['steps']} steps, {result['num_grad_evals']} gradients, "
              f"{result['vi_seconds']:.2f} s{nproc}; {result['reason']}"]
    if not result["converged"]:
        lines.append("warning: the fit did not converge; raise --max-steps")
    from ..bbvi.psis import KHAT_THRESHOLD

    if result["num_nonfinite_draws"] > 0.01 * result["num_draws"]:
        lines.append(f"warning: log p is NaN or -inf at {result['num_nonfinite_draws']} of {result['num_draws']} "
                     f"draws of q: q puts mass where the model has none")
    if result.get("mcmc"):
        lines.append(_mcmc_line(result["mcmc"]))
    elif not result["khat"] < KHAT_THRESHOLD:
        lines.append("warning: k̂ ≥ 0.7 or undefined: do not report these estimates")
    elif psis:
        lines.append("report the PSIS-reweighted means and sds (k̂ < 0.7: Yao et al. 2018)")
    if nuts:
        lines.append(f"NUTS: {result['nuts_warmup']} warmup + {result['nuts_samples']} draws, "
                     f"{result['nuts_divergent']} divergent, {result['nuts_seconds']:.1f} s")
    return "\n".join(lines)


def _mcmc_line(report: dict) -> str:
    """What NeuTra's chains say about themselves (``elbo fit --repair``)."""
    line = (f"NeuTra (NUTS in the flow's warped space): {report['num_chains']} chains × {report['num_draws']} draws, "
            f"R̂ {report['rhat']:.3f}, bulk ESS {report['ess_bulk']:.0f}, tail ESS {report['ess_tail']:.0f}, "
            f"{report['divergences']} divergent; the estimates above are these MCMC draws")
    trusted = report["rhat"] <= 1.01 and min(report["ess_bulk"], report["ess_tail"]) >= 100 * report["num_chains"]
    if trusted and not report["divergences"]:
        return line
    return line + "\nwarning: the chains' diagnostics do not vouch for these estimates"
