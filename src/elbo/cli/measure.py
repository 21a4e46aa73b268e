"""``elbo evaluate``, ``elbo surgery`` and ``elbo diagnose``: a run's measurements, each written to a JSON file in the
run directory and printed as a table."""

from __future__ import annotations

from ..configs import AIS_CHAINS, AIS_STARTS, IWAE_ESTIMATORS, SPLITS, DiagnoseConfig, EvaluateConfig, SurgeryConfig
from ..registry import KINDS
from ._common import add_command, add_run_arguments, choice_list, default_of, measure, positive_int, positive_int_list

__all__ = ["add_evaluate", "add_surgery", "add_diagnose"]


def add_evaluate(commands) -> None:
    parser = add_command(
        commands, "evaluate", help="test log-likelihood, ELBO, IWAE-K and active units of a trained run",
        description="Evaluate the last checkpoint of a run on its test set: log p(x) estimated by importance "
                    "sampling with K samples (IWAE-K, chunked so memory does not grow with K), the ELBO, IWAE-K for "
                    "smaller K, and active units (Burda et al.: Cov_x(E_q[u]) > 0.01); with --ais, annealed importance "
                    "sampling beside them, and with --bdmc, lower and upper bounds on data simulated from the model "
                    "(the ladder ELBO <= IWAE-K <= AIS <= log p(x) <= BDMC upper). Writes RUN/evaluation.json.")
    default = lambda field: default_of(EvaluateConfig, field)  # noqa: E731
    per_kind = ", ".join(f"{KINDS[name].num_samples} for {name}" for name in KINDS.names())
    parser.add_argument("--k", dest="num_samples", metavar="K", type=positive_int,
                        help=f"importance samples for log p(x) [default: the model kind's: {per_kind}]")
    parser.add_argument("--iwae-k", dest="iwae_samples", type=positive_int, nargs="*",
                        default=list(default("iwae_samples")), metavar="K",
                        help="the K of the IWAE bounds also reported")
    parser.add_argument("--max-points", type=positive_int, metavar="N", help="only the first N test points")
    add_run_arguments(parser, EvaluateConfig, other_data=False)
    parser.add_argument("--nproc", type=positive_int, default=1, metavar="N",
                        help="processes on this machine, each evaluating a block of the test points")
    parser.add_argument("--compile", action="store_true",
                        help="run the decoder through torch.compile (seconds to start; faster for large K)")
    _add_ais_arguments(parser)
    parser.set_defaults(handler=_evaluate)


def _add_ais_arguments(parser) -> None:
    parser.add_argument("--ais", dest="ais_steps", type=positive_int, metavar="STEPS",
                        help="also annealed importance sampling with STEPS intermediate distributions (HMC moves): a "
                             "stochastic lower bound on log p(x) above IWAE-K's [default: none]")
    parser.add_argument("--bdmc", dest="bdmc_steps", type=positive_int, metavar="STEPS",
                        help="also bidirectional Monte Carlo with STEPS steps on as many points simulated from the "
                             "model: lower and upper bounds on log p(x), their gap, and a bracket on KL(q || p) "
                             "[default: none]")
    parser.add_argument("--chains", dest="ais_chains", type=positive_int, metavar="C",
                        help=f"AIS and BDMC chains per point [default: {AIS_CHAINS}]")
    parser.add_argument("--ais-start", choices=AIS_STARTS,
                        help=f"where the chains start: q(z|x) or the prior p(z) [default: {AIS_STARTS[0]}]")


def _evaluate(args) -> int:
    from ..evaluate import evaluate_run
    from ..report import active_units_text, ladder_lines

    result = measure(args, evaluate_run, num_samples=args.num_samples, iwae_samples=tuple(args.iwae_samples),
                     max_points=args.max_points, batch_size=args.batch_size, compile=args.compile, nproc=args.nproc,
                     ais_steps=args.ais_steps, bdmc_steps=args.bdmc_steps, ais_chains=args.ais_chains,
                     ais_start=args.ais_start)
    if result is None:
        return 0
    unit = result["unit"]
    print(f"run {result['run']} (epoch {result['epoch']}), {result['data']} test set, {result['num_points']} {unit}s; "
          f"nats per {unit}, mean ± standard error")
    rows = [("ELBO", result["elbo"])] + [(f"IWAE-{k}", v) for k, v in result["iwae"].items()] + \
           [(f"log p(x) (IWAE-{result['log_likelihood']['num_samples']})", result["log_likelihood"])]
    for name, value in rows:
        print(f"{name:<24} {value['mean']:>10.3f} ± {value['stderr']:.3f}")
    print(f"{'active units':<24} {active_units_text(result)}")
    for name, value in result.get("metrics", {}).items():
        print(f"{name:<24} {'—' if value is None else format(value, '.6g')}")
    for line in ladder_lines(result):
        print(line)
    _print_topics(result.get("details", {}).get("topics"))
    print(f"written to {args.run_dir}/evaluation.json")
    return 0


def _print_topics(topics: list | None) -> None:
    """A topic model's topics, best NPMI first: each one's number, NPMI and top words."""
    if not topics:
        return
    print(f"topics, best NPMI first (NPMI of the top {len(topics[0]['words'])} words in the training documents):")
    for number, topic in sorted(enumerate(topics), key=lambda pair: -pair[1]["npmi"]):
        print(f"{number:>5} {topic['npmi']:>7.3f}  {' '.join(topic['words'])}")


def add_surgery(commands) -> None:
    parser = add_command(
        commands, "surgery",
        help="the ELBO taken apart: reconstruction, index-code MI, marginal KL (TC + dimension-wise)",
        description="ELBO surgery (Hoffman & Johnson 2016) over a run's training set: ELBO = reconstruction - "
                    "I[n; z] - KL(q(z) || p(z)), with the exact aggregate posterior q(z) = 1/N sum_n q(z|x_n), and "
                    "the marginal KL split into total correlation and dimension-wise KL (Chen et al. 2018). Every "
                    "term with its standard error, in nats per point. Writes RUN/surgery.json.")
    default = lambda field: default_of(SurgeryConfig, field)  # noqa: E731
    parser.add_argument("--split", choices=SPLITS, default=default("split"), help="which points")
    parser.add_argument("--max-points", type=positive_int, default=default("max_points"), metavar="N",
                        help="the first N points")
    parser.add_argument("--k", dest="num_samples", metavar="K", type=positive_int, default=default("num_samples"),
                        help="draws of z per point")
    parser.add_argument("--dimension-samples", type=positive_int, default=default("dimension_samples"), metavar="M",
                        help="draws (of all N·K) that estimate the total correlation and dimension-wise KL; each "
                             "costs N·D exponentials")
    parser.add_argument("--block-size", type=positive_int, default=default("block_size"),
                        help="draws and mixture components per block (memory grows with its square)")
    add_run_arguments(parser, SurgeryConfig)
    parser.set_defaults(handler=_surgery)


def _surgery(args) -> int:
    from ..surgery import SURGERY_LABELS, surgery_run

    result = measure(args, surgery_run, split=args.split, max_points=args.max_points, num_samples=args.num_samples,
                     dimension_samples=args.dimension_samples, data=args.data, batch_size=args.batch_size,
                     block_size=args.block_size)
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


def add_diagnose(commands) -> None:
    parser = add_command(
        commands, "diagnose", help="KL per latent unit, active units, posterior collapse, gradient signal-to-noise",
        description="Per-unit KL and activity on the test set, a warning when the posterior collapses (every unit "
                    "below 0.01 nats of KL, or more than half the units inactive), and the signal-to-noise ratio "
                    "of encoder and decoder gradients of the IWAE bound (Rainforth et al. 2018) for each estimator "
                    "and K, over repeated draws on a fixed batch of training points. Writes RUN/diagnostics.json.")
    default = lambda field: default_of(DiagnoseConfig, field)  # noqa: E731
    parser.add_argument("--k", dest="num_samples", type=positive_int_list, default=default("num_samples"),
                        metavar="K,K,...", help="samples of the IWAE bound, e.g. 1,5,50")
    parser.add_argument("--estimator", dest="estimators", type=choice_list(IWAE_ESTIMATORS),
                        default=default("estimators"), metavar="NAME,...",
                        help=f"gradient estimators among {', '.join(IWAE_ESTIMATORS)}, e.g. reparam,dreg")
    parser.add_argument("--draws", dest="num_draws", type=positive_int, default=default("num_draws"),
                        help="gradient draws per estimate (>= 2)")
    parser.add_argument("--batch-size", type=positive_int, default=default("batch_size"),
                        help="training points in the fixed batch")
    add_run_arguments(parser, DiagnoseConfig, batch_size=False)
    parser.set_defaults(handler=_diagnose)


def _diagnose(args) -> int:
    from ..diagnostics import diagnose_run

    result = measure(args, diagnose_run, num_samples=args.num_samples, estimators=args.estimators,
                     num_draws=args.num_draws, batch_size=args.batch_size, data=args.data)
    if result is None:
        return 0
    kl = result["kl_per_dimension"]
    print(f"run {result['run']} (epoch {result['epoch']}), {result['data']}: latent units on "
          f"{result['num_test_points']} test points")
    print(f"{'unit':>4} {'KL (nats)':>10} {'activity':>10}")
    for unit, activity in enumerate(result["activity"]):
        print(f"{unit:>4} {'—' if kl is None else format(kl[unit], '.4f'):>10} {activity:>10.4f}")
    total = "" if kl is None else f"; KL(q(z|x) ‖ p(z)) = {sum(kl):.3f} nats per point"
    print(f"active units: {result['active_units']} of {result['latent_dim']}{total}")
    print(f"warning: {result['collapse_warning']}" if result["collapse_warning"] else "no posterior collapse")
    print()
    print(f"gradient signal-to-noise ratio |E g| / std g (Rainforth et al. 2018), mean over each network's parameters; "
          f"{result['num_draws']} draws on {result['snr_batch_size']} training points")
    print(f"{'estimator':<10} {'K':>5} {'encoder SNR':>12} {'decoder SNR':>12}")
    for row in result["gradient_snr"]:
        print(f"{row['estimator']:<10} {row['k']:>5} {row['encoder']:>12.4f} {row['decoder']:>12.4f}")
    print(f"written to {args.run_dir}/diagnostics.json")
    return 0
