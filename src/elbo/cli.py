"""The ``elbo`` command: argparse → config → library calls. Bad input exits 2 with a one-line error."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

__all__ = ["main", "build_parser"]


# elbo.data.DATASETS, written out so that `elbo --help` need not import torch (a test holds them equal)
_DATASETS = ("digits", "mnist", "binarized_mnist", "frey")
# elbo.bbvi.FAMILIES and elbo.bbvi.ESTIMATORS, likewise
_FAMILIES = ("meanfield", "fullrank", "lowrank", "flow")
_FIT_ESTIMATORS = ("stl", "reparam", "score")
_FIT_METHODS = ("bam", "advi", "pathfinder")
_FIT_INITS = ("pathfinder", "map", "point")


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default as ``[default: X]``, except for flags and options whose default is None (they say
    it in their help, in the same form)."""

    def _get_help_string(self, action):
        says_nothing = any(action.default is default for default in (None, False, argparse.SUPPRESS))  # not 0 == False
        if says_nothing or not action.option_strings:
            return action.help
        return f"{action.help} [default: %(default)s]"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``elbo train: error: ...``) rather than the usage and the error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _set_threads(args) -> None:
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)


def _demo(args) -> int:
    from .demo import digits_demo, linear_gaussian_demo

    _set_threads(args)
    rows = linear_gaussian_demo(seed=args.seed, num_samples=args.k, progress=not args.quiet)
    print(f"Linear-Gaussian model, one data point: bounds after fitting q (K = {args.k}), in nats")
    print(f"{'family':<10} {'ELBO':>10} {'IWAE-K':>10} {'log p(x)':>10} {'KL(q‖p(z|x))':>14}")
    for row in rows:
        print(f"{row['family']:<10} {row['elbo']:>10.4f} {row['iwae']:>10.4f} {row['log_evidence']:>10.4f} "
              f"{row['kl']:>14.5f}")
    if args.skip_vae:
        return 0
    print()
    result = digits_demo(out=args.out, seed=args.seed, epochs=args.epochs, progress=not args.quiet)
    print(f"VAE and IWAE on scikit-learn's 8x8 digits (dynamically binarized; {result['num_train']} training, "
          f"{result['num_test']} test images), {result['epochs']} epochs each; test set, nats per image (± stderr)")
    print(f"{'model':<12} {'ELBO':>14} {'IWAE-50':>14} {'log p(x)':>14} {'active':>7} {'train s':>8}")
    for row in result["rows"]:
        e = row["evaluation"]
        cells = [f"{v['mean']:.2f} ± {v['stderr']:.2f}" for v in (e["elbo"], e["iwae"]["50"], e["log_likelihood"])]
        print(f"{row['name']:<12} {cells[0]:>14} {cells[1]:>14} {cells[2]:>14} "
              f"{sum(e['active_units']):>3}/{sum(e['latent_dims']):<3} {row['train_seconds']:>8.1f}")
    print(f"log p(x) is IWAE with K = {result['num_samples']}; runs are in {args.out}/ (see `elbo evaluate --help`)")
    for row in result["rows"]:
        print(f"report of the {row['name']}: {row['report']}")
    return 0


def _train(args) -> int:
    from .distributed import is_main_process
    from .train import resume, train

    _set_threads(args)
    progress = not args.quiet
    if args.resume is not None:
        given = [f"--{name.replace('_', '-')}" for name, value in vars(args).items()
                 if name in _TRAIN_SETTINGS and value is not None]
        if given or args.out is not None or args.force:
            raise UsageError(f"--resume continues a run with its own settings; drop "
                             f"{', '.join(given + ['--out'] * (args.out is not None) + ['--force'] * args.force)}")
        path = resume(args.resume, nproc=args.nproc, progress=progress)
    elif args.out is None:
        raise UsageError("say where the run goes with --out DIR (or continue a run with --resume DIR)")
    else:
        path = train(_train_config(args), args.out, nproc=args.nproc, force=args.force, progress=progress)
    if is_main_process():  # under torchrun, every process runs this command; one of them reports
        _print_last_epoch(path)
    return 0


_TRAIN_SETTINGS = ("data", "data_dir", "val_size", "model", "k", "estimator", "layers", "latent", "hidden",
                   "activation", "network", "likelihood", "gaussian_scale", "sigma", "epochs", "lr", "schedule",
                   "batch_size", "seed", "device", "compile")


def _train_config(args):
    import dataclasses

    from .train import IWAE_SCHEDULE_EPOCHS, TrainConfig
    from .vae import PRESETS

    def given(**values):
        return {name: value for name, value in values.items() if value is not None}

    model = dataclasses.replace(PRESETS["burda2" if args.layers == 2 else "burda1"], **given(
        latent_dims=args.latent and tuple(args.latent), hidden_dims=args.hidden and tuple(args.hidden),
        activation=args.activation, network=args.network, likelihood=args.likelihood,
        gaussian_scale=args.gaussian_scale, fixed_scale=args.sigma))
    epochs = args.epochs if args.epochs is not None else (IWAE_SCHEDULE_EPOCHS if args.schedule == "iwae" else 10)
    return TrainConfig(model=model, epochs=epochs, **given(
        data=args.data, data_dir=args.data_dir, val_size=args.val_size, objective=args.model, num_samples=args.k,
        estimator=args.estimator, lr=args.lr, schedule=args.schedule, batch_size=args.batch_size, seed=args.seed,
        device=args.device, compile=args.compile))


def _print_last_epoch(path) -> None:
    lines = (path / "metrics.jsonl").read_text().splitlines()
    if not lines:
        print(f"run {path}: no epoch finished")
        return
    last = json.loads(lines[-1])
    val = f", validation bound {last['val_bound']:.3f}" if "val_bound" in last else ""
    print(f"run {path}: epoch {last['epoch']}, training bound {last['train_bound']:.3f}{val} nats per image")


def _measure(args, measure, **settings) -> dict | None:
    """``measure(RUN, ...)``, one of the ``*_run`` functions that write a run's JSON files; with ``--json`` its result
    is printed and ``None`` returned, otherwise the result is returned for a table (``None`` in a process other than
    rank 0 of a torchrun group: one process reports)."""
    from .distributed import is_main_process

    _set_threads(args)
    result = measure(args.run_dir, data_dir=args.data_dir, device=args.device, seed=args.seed,
                     progress=not args.quiet, **settings)
    if not is_main_process():  # under torchrun every process runs the command; rank 0 reports
        return None
    if args.json:
        print(json.dumps(result, indent=2))
        return None
    return result


def _evaluate(args) -> int:
    from .evaluate import evaluate_run

    result = _measure(args, evaluate_run, num_samples=args.k, iwae_samples=tuple(args.iwae_k),
                      max_images=args.max_images, batch_size=args.batch_size, compile=args.compile, nproc=args.nproc)
    if result is None:
        return 0
    print(f"run {result['run']} (epoch {result['epoch']}), {result['data']} test set, {result['num_images']} images; "
          f"nats per image, mean ± standard error")
    rows = [("ELBO", result["elbo"])] + [(f"IWAE-{k}", v) for k, v in result["iwae"].items()] + \
           [(f"log p(x) (IWAE-{args.k})", result["log_likelihood"])]
    for name, value in rows:
        print(f"{name:<24} {value['mean']:>10.3f} ± {value['stderr']:.3f}")
    units = ", ".join(f"{a} of {d}" for a, d in zip(result["active_units"], result["latent_dims"]))
    print(f"{'active units':<24} {units}")
    print(f"written to {args.run_dir}/evaluation.json")
    return 0


def _surgery(args) -> int:
    from .evaluate import SURGERY_LABELS, surgery_run

    result = _measure(args, surgery_run, split=args.split, max_points=args.max_points, num_samples=args.k,
                      dimension_samples=args.dimension_samples, data=args.data, batch_size=args.batch_size,
                      chunk_size=args.chunk_size)
    if result is None:
        return 0
    print(f"run {result['run']} (epoch {result['epoch']}), {result['data']} {result['split']} set, "
          f"N = {result['num_points']} points, {result['num_samples']} draw(s) of z per point; nats per point, "
          f"mean ± standard error")
    remarks = {"index_code_mi": f"(at most log N = {result['log_num_points']:.3f})",
               "total_correlation": f"(from {result['dimension_samples']} draws)",
               "dimensionwise_kl": f"(from {result['dimension_samples']} draws)",
               "kl": "(= MI + marginal KL)", "elbo": "(= reconstruction − MI − marginal KL)"}
    for name, label in SURGERY_LABELS.items():
        print(f"{label:<30} {result[name]['mean']:>10.3f} ± {result[name]['stderr']:<7.3f} "
              f"{remarks.get(name, '')}".rstrip())
    print(f"standard errors: {result['standard_errors']}")
    print(f"written to {args.run_dir}/surgery.json ({result['seconds']:.1f} s)")
    return 0


def _diagnose(args) -> int:
    from .diagnostics import diagnose_run

    result = _measure(args, diagnose_run, num_samples=args.k, estimators=args.estimator, num_draws=args.draws,
                      batch_size=args.batch_size, data=args.data)
    if result is None:
        return 0
    kl = result["kl_per_dimension"]
    print(f"run {result['run']} (epoch {result['epoch']}), {result['data']}: latent units on "
          f"{result['num_test_images']} test images")
    print(f"{'unit':>4} {'KL (nats)':>10} {'activity':>10}")
    for unit, activity in enumerate(result["activity"]):
        print(f"{unit:>4} {'—' if kl is None else format(kl[unit], '.4f'):>10} {activity:>10.4f}")
    total = "" if kl is None else f"; KL(q(z|x) ‖ p(z)) = {sum(kl):.3f} nats per image"
    print(f"active units: {result['active_units']} of {result['latent_dim']}{total}")
    print(f"warning: {result['collapse_warning']}" if result["collapse_warning"] else "no posterior collapse")
    print()
    print(f"gradient signal-to-noise ratio |E g| / std g (Rainforth et al. 2018), mean over each network's parameters; "
          f"{result['num_draws']} draws on {result['snr_batch_size']} training images")
    print(f"{'estimator':<10} {'K':>5} {'encoder SNR':>12} {'decoder SNR':>12}")
    for row in result["gradient_snr"]:
        print(f"{row['estimator']:<10} {row['k']:>5} {row['encoder']:>12.4f} {row['decoder']:>12.4f}")
    print(f"written to {args.run_dir}/diagnostics.json")
    return 0


def _report(args) -> int:
    from .report import write_report

    _set_threads(args)
    print(write_report(args.run_dir, compute=args.compute, data_dir=args.data_dir, device=args.device,
                       seed=args.seed, progress=not args.quiet))
    return 0


def _fit(args) -> int:
    import time

    import torch

    from . import bbvi, diagnostics, mcmc

    # Posterior summaries, k̂ and log-evidence estimates in double precision, as Stan computes them; the model file
    # is run after this line, so its tensors follow.
    torch.set_default_dtype(torch.float64)
    # Models for `elbo fit` are small: a step is many tiny tensor operations, which more threads only slow down
    # (by 10x and more while another process wants the cores): --threads defaults to 1.
    _set_threads(args)
    model = bbvi.load_model(args.model_file)
    progress = sys.stderr.isatty()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the result says the same in its own lines
        fit = bbvi.fit(model, family=args.family, method=args.method, init=args.init, num_samples=args.num_samples,
                       estimator=args.estimator, max_steps=args.max_steps, batch_size=args.batch_size,
                       num_draws=args.num_draws, seed=args.seed, progress=progress)
    vi_seconds = time.perf_counter() - start
    result = {"model_file": args.model_file, "family": args.family, "method": fit.config.method,
              "steps": fit.num_steps, "converged": fit.converged, "reason": fit.reason,
              "num_grad_evals": fit.num_grad_evals, "num_nonfinite_draws": fit.num_nonfinite_draws,
              "num_draws": args.num_draws, "elbo": fit.elbo, "log_evidence": fit.log_evidence,
              "log_evidence_stderr": fit.log_evidence_stderr, "khat": fit.khat,
              "khat_meaning": diagnostics.khat_meaning(fit.khat), "vi_seconds": vi_seconds}
    if args.compare_nuts:
        try:
            reference = mcmc.nuts(model, num_samples=args.nuts_samples, warmup_steps=args.nuts_warmup,
                                  seed=args.seed, progress=progress)
        except ModuleNotFoundError as error:
            raise UsageError(str(error)) from None
        # the estimates fit says to report: PSIS-reweighted below k̂ = 0.7, q's own draws otherwise
        weights = fit.psis_log_weights.exp() if fit.khat < diagnostics.KHAT_THRESHOLD else None
        result |= {"nuts_seconds": reference.seconds, "nuts_samples": args.nuts_samples,
                   "nuts_warmup": args.nuts_warmup, "nuts_divergent": reference.num_divergent,
                   "vi_estimates": "raw" if weights is None else "psis",
                   "parameters": mcmc.compare(fit.draws, reference.draws, vi_weights=weights)}
    else:
        result["parameters"] = [{"name": name, "vi_mean": row["mean"], "vi_sd": row["sd"],
                                 "psis_mean": row["psis_mean"], "psis_sd": row["psis_sd"]}
                                for name, row in fit.summary().items()]
    print(json.dumps(result, indent=2) if args.json else _fit_table(result))
    return 0


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
    lines += [f"k̂ = {result['khat']:.2f} ({result['khat_meaning']})",
              f"ELBO {result['elbo']:.4f}; log p(x) ≈ {result['log_evidence']:.4f} ± "
              f"{result['log_evidence_stderr']:.4f} (importance sampling)",
              f"VI ({result['method']}): {result['steps']} steps, {result['num_grad_evals']} gradients, "
              f"{result['vi_seconds']:.2f} s; {result['reason']}"]
    if not result["converged"]:
        lines.append("warning: the fit did not converge; raise --max-steps")
    from .diagnostics import KHAT_THRESHOLD

    if result["num_nonfinite_draws"] > 0.01 * result["num_draws"]:
        lines.append(f"warning: log p is NaN or -inf at {result['num_nonfinite_draws']} of {result['num_draws']} "
                     f"draws of q: q puts mass where the model has none")
    if not result["khat"] < KHAT_THRESHOLD:
        lines.append("warning: k̂ ≥ 0.7 or undefined: do not report these estimates")
    elif psis:
        lines.append("report the PSIS-reweighted means and sds (k̂ < 0.7: Yao et al. 2018)")
    if nuts:
        lines.append(f"NUTS: {result['nuts_warmup']} warmup + {result['nuts_samples']} draws, "
                     f"{result['nuts_divergent']} divergent, {result['nuts_seconds']:.1f} s")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="elbo", description="Variational inference you can check.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    formatter = _Formatter

    demo = commands.add_parser("demo", help="fit q where the answer is known, then a VAE and an IWAE on 8x8 digits",
                               description="Fit a mean-field and a full-rank q on a linear-Gaussian model and print "
                                           "ELBO and IWAE-K next to the exact log p(x); then train a small VAE and "
                                           "IWAE (K = 5) on scikit-learn's bundled 8x8 digits (about a minute on "
                                           "2 cores), evaluate both, print a table, and write each run's report.html "
                                           "(with its ELBO surgery) and print its path.", formatter_class=formatter)
    demo.add_argument("--seed", type=int, default=0, help="random seed")
    demo.add_argument("--k", type=_positive_int, default=1000, help="samples for the linear-Gaussian estimates")
    demo.add_argument("--epochs", type=_positive_int, default=500, help="training epochs of each digits model")
    demo.add_argument("--out", default="runs/demo", help="where the digits runs go (their files are replaced)")
    demo.add_argument("--skip-vae", action="store_true", help="only the linear-Gaussian part")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.add_argument("--threads", type=_positive_int, default=1,
                      help="CPU threads for torch: the demo's small networks gain nothing from more, and on busy "
                           "cores threads that wait for each other slow it down many times")
    demo.set_defaults(handler=_demo)

    train = commands.add_parser(
        "train", help="train a VAE or an IWAE on images", formatter_class=formatter,
        description="Train a VAE (the ELBO, closed-form KL) or an IWAE (the K-sample importance weighted bound) "
                    "on images, writing config.json, metrics.jsonl (one line per epoch) and checkpoint.pt (every "
                    "epoch, atomically) to --out. --resume DIR continues an interrupted run exactly. The defaults "
                    "are Burda et al. (2015): 784-200-200-50 tanh networks, batch 20, Adam(0.9, 0.999, eps 1e-4).")
    data = train.add_argument_group("data")
    data.add_argument("--data", choices=_DATASETS,
                      help="data set [default: digits, bundled with scikit-learn]")
    data.add_argument("--data-dir", metavar="DIR",
                      help="where the data files are (DIR/mnist/, DIR/binarized_mnist/, DIR/frey_faces/ or DIR "
                           "itself); missing files are downloaded there when the machine is online [default: data]")
    data.add_argument("--val-size", type=_non_negative_int, metavar="N",
                      help="images held out of training for the validation bound [default: 10000 for MNIST, a "
                           "tenth otherwise]")
    model = train.add_argument_group("model")
    model.add_argument("--model", choices=("vae", "iwae"), help="objective: the ELBO or the IWAE bound [default: vae]")
    model.add_argument("--k", type=_positive_int, help="samples of z per image [default: 1]")
    model.add_argument("--estimator", choices=("reparam", "stl", "dreg"),
                       help="gradient estimator of the IWAE bound [default: reparam]")
    model.add_argument("--layers", type=int, choices=(1, 2),
                       help="stochastic layers, with Burda et al.'s architecture: 1 is 784-200-200-50, 2 is "
                            "784-[200,200]-100-[100,100]-50 [default: 1]")
    model.add_argument("--latent", type=_positive_int, nargs="+", metavar="D",
                       help="size of each stochastic layer, bottom first (overrides --layers' preset)")
    model.add_argument("--hidden", type=_int_tuple, nargs="+", metavar="H,H",
                       help="hidden layer widths below each stochastic layer, e.g. 200,200 100,100")
    model.add_argument("--activation", choices=("tanh", "relu", "softplus"), help="[default: tanh]")
    model.add_argument("--network", choices=("mlp", "conv"),
                       help="fully connected, or convolutional next to the image [default: mlp]")
    model.add_argument("--likelihood", choices=("bernoulli", "gaussian"),
                       help="p(x|z) [default: the data set's: gaussian for frey, bernoulli otherwise]")
    model.add_argument("--gaussian-scale", choices=("fixed", "shared", "per_pixel"),
                       help="σ of a Gaussian p(x|z): fixed at --sigma, or learned [default: per_pixel]")
    model.add_argument("--sigma", type=_positive_float, help="σ for --gaussian-scale fixed [default: 1.0]")
    optimization = train.add_argument_group("optimization")
    optimization.add_argument("--epochs", type=_positive_int,
                              help="epochs [default: 10, or 3280 with --schedule iwae]")
    optimization.add_argument("--lr", type=_positive_float, help="Adam's learning rate [default: 1e-3]")
    optimization.add_argument("--schedule", choices=("constant", "iwae"),
                              help="constant lr, or the IWAE paper's: 3^i epochs at lr·10^(-i/7), i = 0..7 "
                                   "[default: constant]")
    optimization.add_argument("--batch-size", type=_positive_int,
                              help="the global batch: with --nproc N each process takes 1/N of it [default: 20]")
    optimization.add_argument("--seed", type=int, help="[default: 0]")
    optimization.add_argument("--device", help="torch device, e.g. cpu or cuda [default: cpu]")
    optimization.add_argument("--compile", action="store_true", default=None,
                              help="run the objective through torch.compile (tens of seconds to start; faster after)")
    optimization.add_argument("--nproc", type=_positive_int, default=1, metavar="N",
                              help="data-parallel processes on this machine (DistributedDataParallel; gloo on CPU, "
                                   "nccl on GPU); for several machines start `elbo train` with torchrun instead")
    run_dir = train.add_argument_group("run directory")
    run_dir.add_argument("--out", metavar="DIR", help="the new run's directory")
    run_dir.add_argument("--force", action="store_true", help="replace the run files already in --out")
    run_dir.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR with its own settings")
    run_dir.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    run_dir.add_argument("--threads", type=_positive_int, help="CPU threads for torch [default: torch's choice]")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser(
        "evaluate", help="test log-likelihood, ELBO, IWAE-K and active units of a trained run",
        formatter_class=formatter,
        description="Evaluate the last checkpoint of a run on its test set: log p(x) estimated by importance "
                    "sampling with K samples (IWAE-K, chunked so memory does not grow with K), the ELBO, IWAE-K for "
                    "smaller K, and active units (Burda et al.: Cov_x(E_q[u]) > 0.01). Writes RUN/evaluation.json.")
    evaluate.add_argument("--k", type=_positive_int, default=5000, help="importance samples for log p(x)")
    evaluate.add_argument("--iwae-k", type=_positive_int, nargs="*", default=[5, 50], metavar="K",
                          help="the K of the IWAE bounds also reported")
    evaluate.add_argument("--max-images", type=_positive_int, metavar="N", help="only the first N test images")
    _add_run_arguments(evaluate, other_data=False)
    evaluate.add_argument("--nproc", type=_positive_int, default=1, metavar="N",
                          help="processes on this machine, each evaluating a block of the test images")
    evaluate.add_argument("--compile", action="store_true",
                          help="run the decoder through torch.compile (seconds to start; faster for large K)")
    evaluate.set_defaults(handler=_evaluate)

    surgery = commands.add_parser(
        "surgery", help="the ELBO taken apart: reconstruction, index-code MI, marginal KL (TC + dimension-wise)",
        formatter_class=formatter,
        description="ELBO surgery (Hoffman & Johnson 2016) over a run's training set: ELBO = reconstruction - "
                    "I[n; z] - KL(q(z) || p(z)), with the exact aggregate posterior q(z) = 1/N sum_n q(z|x_n), and "
                    "the marginal KL split into total correlation and dimension-wise KL (Chen et al. 2018). Every "
                    "term with its standard error, in nats per point. Writes RUN/surgery.json.")
    surgery.add_argument("--split", choices=("train", "val", "test"), default="train", help="which images")
    surgery.add_argument("--max-points", type=_positive_int, default=60000, metavar="N", help="the first N images")
    surgery.add_argument("--k", type=_positive_int, default=1, help="draws of z per point")
    surgery.add_argument("--dimension-samples", type=_positive_int, default=5000, metavar="M",
                         help="draws (of all N·K) that estimate the total correlation and dimension-wise KL; each "
                              "costs N·D exponentials")
    surgery.add_argument("--chunk-size", type=_positive_int, default=512,
                         help="draws and mixture components per block (memory grows with its square)")
    _add_run_arguments(surgery)
    surgery.set_defaults(handler=_surgery)

    diagnose = commands.add_parser(
        "diagnose", help="KL per latent unit, active units, posterior collapse, gradient signal-to-noise",
        formatter_class=formatter,
        description="Per-unit KL and activity on the test set, a warning when the posterior collapses (every unit "
                    "below 0.01 nats of KL, or more than half the units inactive), and the signal-to-noise ratio "
                    "of encoder and decoder gradients of the IWAE bound (Rainforth et al. 2018) for each estimator "
                    "and K, over repeated draws on a fixed batch of training images. Writes RUN/diagnostics.json.")
    diagnose.add_argument("--k", type=_positive_int_list, default=(1, 5, 50), metavar="K,K,...",
                          help="samples of the IWAE bound, e.g. 1,5,50")
    diagnose.add_argument("--estimator", type=_estimator_list, default=("reparam", "dreg"), metavar="NAME,...",
                          help="gradient estimators among reparam, stl, dreg, e.g. reparam,dreg")
    diagnose.add_argument("--draws", type=_positive_int, default=100, help="gradient draws per estimate (>= 2)")
    diagnose.add_argument("--batch-size", type=_positive_int, default=100, help="training images in the fixed batch")
    _add_run_arguments(diagnose, batch_size=False)
    diagnose.set_defaults(handler=_diagnose)

    report = commands.add_parser(
        "report", help="RUN/report.html: tables and figures of a run", formatter_class=formatter,
        description="Write a self-contained RUN/report.html (figures embedded as PNG, also saved in RUN/figures/): "
                    "the evaluation, the ELBO surgery and the diagnostics where their JSON files exist, KL per unit "
                    "and a collapse warning, training curves, reconstructions, prior samples, latent traversals, "
                    "for 2-D latents the learned manifold and the encodings by label, and the configuration.")
    report.add_argument("--compute", action="store_true",
                        help="compute evaluation.json and surgery.json with the defaults of `elbo evaluate` and `elbo "
                             "surgery` where they are missing or older than the checkpoint (minutes on MNIST)")
    _add_run_arguments(report, other_data=False, batch_size=False, json=False)
    report.set_defaults(handler=_report)

    fit = commands.add_parser("fit", help="fit q to a user-defined model, optionally against NUTS",
                              description="Fit q to the posterior of the elbo.Model that MODEL_FILE defines as "
                                          "`model` (by default Pathfinder, then batch and match, full rank); print "
                                          "per parameter q's mean and sd and the PSIS-reweighted ones (or, with "
                                          "--compare-nuts, the estimates to report beside NUTS's, with their "
                                          "errors in NUTS sds), k̂ and what it licenses, log p(x), why the fit "
                                          "stopped, gradients and wall times.",
                              formatter_class=formatter)
    fit.add_argument("model_file", metavar="MODEL_FILE", help="a Python file defining `model` (an elbo.Model)")
    fit.add_argument("--family", choices=_FAMILIES, default="fullrank", help="the family of q")
    fit.add_argument("--method", choices=_FIT_METHODS,
                     help="bam: batch and match (full rank); advi: Adam on the ELBO (any family, minibatches); "
                          "pathfinder: Pathfinder's best Gaussian [default: bam for a full-rank q on all data, "
                          "else advi]")
    fit.add_argument("--init", choices=_FIT_INITS, default="pathfinder",
                     help="where q starts: Pathfinder's Gaussian, the mode (L-BFGS), or Stan's initial point")
    fit.add_argument("--estimator", choices=_FIT_ESTIMATORS, default="stl", help="ADVI's gradient estimator")
    fit.add_argument("--num-samples", type=_positive_int,
                     help="draws of q per step [default: 8 for advi, 2 D + 2 for bam]")
    fit.add_argument("--max-steps", type=_positive_int, default=10_000, help="cap on steps")
    fit.add_argument("--batch-size", type=_positive_int,
                     help="subsample this many data points per step (models given with data) [default: all]")
    fit.add_argument("--num-draws", type=_positive_int, default=10_000,
                     help="draws of q for k̂, log p(x) and the summaries")
    fit.add_argument("--seed", type=int, default=0, help="random seed")
    fit.add_argument("--threads", type=_positive_int, default=1,
                     help="torch threads (1 is fastest for small models; more help with large data)")
    fit.add_argument("--compare-nuts", action="store_true", help="also run Pyro's NUTS on the same log density")
    fit.add_argument("--nuts-samples", type=_positive_int, default=1000, help="NUTS draws kept")
    fit.add_argument("--nuts-warmup", type=_positive_int, default=1000, help="NUTS warmup steps")
    fit.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    fit.set_defaults(handler=_fit)
    return parser


def _add_run_arguments(parser, *, other_data: bool = True, batch_size: bool = True, json: bool = True) -> None:
    """What the commands that measure a run share: RUN, which data, where, how, and how the result is printed."""
    parser.add_argument("run_dir", metavar="RUN", help="run directory written by `elbo train`")
    if other_data:
        parser.add_argument("--data", choices=_DATASETS,
                            help="measure on another data set with images of the model's size [default: the run's]")
    parser.add_argument("--data-dir", metavar="DIR", help="where the data is, if not where the run was trained")
    if batch_size:
        parser.add_argument("--batch-size", type=_positive_int, default=100, help="images per batch")
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the samples")
    if json:
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--threads", type=_positive_int, help="CPU threads for torch [default: torch's choice]")


def _number(text: str, kind, what: str, ok):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    return _number(text, int, "a positive integer", lambda v: v >= 1)


def _non_negative_int(text: str) -> int:
    return _number(text, int, "an integer >= 0", lambda v: v >= 0)


def _positive_float(text: str) -> float:
    return _number(text, float, "a finite number > 0", lambda v: 0 < v < float("inf"))


def _positive_int_list(text: str) -> tuple[int, ...]:
    """``"1,5,50"`` → ``(1, 5, 50)``: positive integers separated by commas."""
    try:
        return tuple(_positive_int(part) for part in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas (e.g. 1,5,50), got "
                                         f"{text!r}") from None


def _estimator_list(text: str) -> tuple[str, ...]:
    """``"reparam,dreg"`` → ``("reparam", "dreg")``."""
    from .diagnostics import SNR_ESTIMATORS

    names = tuple(part.strip() for part in text.split(","))
    if not all(name in SNR_ESTIMATORS for name in names):
        raise argparse.ArgumentTypeError(f"expected estimators among {', '.join(SNR_ESTIMATORS)} separated by commas, "
                                         f"got {text!r}")
    return names


def _int_tuple(text: str) -> tuple[int, ...]:
    """``"200,200"`` → ``(200, 200)``; ``""`` → ``()`` (no hidden layer)."""
    return tuple(_positive_int(part) for part in text.split(",") if part.strip())


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .distributed import WorkerFailed  # after parsing: `--help` need not import torch
    from .train import TrainingDiverged

    try:
        return args.handler(args)
    except (UsageError, ValueError, FileNotFoundError) as error:
        print(f"elbo {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (TrainingDiverged, WorkerFailed) as error:
        print(f"elbo {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        run = args.resume or args.out if args.command == "train" else None
        hint = f"; continue with: elbo train --resume {run}" if run else ""
        print(f"elbo {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
