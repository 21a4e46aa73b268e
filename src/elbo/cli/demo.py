"""``elbo demo``: bounds where the answer is known, then a VAE and an IWAE on scikit-learn's 8x8 digits."""

from __future__ import annotations

from ._common import add_command, positive_int, seed, set_threads

__all__ = ["add_demo"]


def add_demo(commands) -> None:
    demo = add_command(commands, "demo", help="fit q where the answer is known, then a VAE and an IWAE on 8x8 digits",
                               description="Fit a mean-field and a full-rank q on a linear-Gaussian model and print "
                                           "ELBO and IWAE-K next to the exact log p(x); then train a small VAE and "
                                           "IWAE (K = 5) on scikit-learn's bundled 8x8 digits (about a minute on "
                                           "2 cores), evaluate both, print a table, and write each run's report.html "
                                           "(with its ELBO surgery) and print its path.")
    demo.add_argument("--seed", type=seed, default=0, help="random seed")
    demo.add_argument("--k", type=positive_int, default=1000, help="samples for the linear-Gaussian estimates")
    demo.add_argument("--epochs", type=positive_int, default=500, help="training epochs of each digits model")
    demo.add_argument("--out", default="runs/demo", help="where the digits runs go (their files are replaced)")
    demo.add_argument("--skip-vae", action="store_true", help="only the linear-Gaussian part")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.add_argument("--threads", type=positive_int, default=1,
                      help="CPU threads for torch: the demo's small networks gain nothing from more, and on busy "
                           "cores threads that wait for each other slow it down many times")
    demo.set_defaults(handler=_demo)


def _demo(args) -> int:
    from ..demo import digits_demo, linear_gaussian_demo

    set_threads(args)
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
