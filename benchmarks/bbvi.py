"""Black-box VI on the example models, side by side in one run:

1. our fit with its defaults (full rank: Pathfinder, then batch and match; mean-field: Pathfinder's start, then
   ADVI) against Pyro's NUTS on the same log density: wall times, gradient evaluations, and the largest errors of
   the estimates elbo tells the user to report (PSIS-reweighted where k̂ < 0.7, q's own draws otherwise) over
   the scalar parameters, in units of the NUTS sd; k̂;
2. our ADVI (method="advi", from Stan's initial point) against Pyro's SVI on the same log density (AutoNormal for
   mean-field, AutoMultivariateNormal for full-rank; Trace_ELBO with the same number of draws per step,
   vectorized; Adam with the same learning rates and initial point) for the same number of steps: time per step
   and the final ELBO (10^4 draws each).

    python benchmarks/bbvi.py [--nuts-samples 1000] [--threads 1]

Double precision, one torch thread by default (these models are small: more threads only add overhead).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import torch

import elbo
from elbo import bbvi, mcmc

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAMES = ("eight_schools", "logistic_regression", "linear_regression", "gaussian_mixture")


def pyro_svi(model: elbo.Model, fit: elbo.Fit, num_draws: int):
    """Pyro's SVI on ``model.log_density`` for ``fit.num_steps`` steps with ``fit``'s settings; returns seconds
    per step, the final ELBO over ``num_draws`` draws, and ``num_draws`` constrained draws of its q."""
    import pyro
    import pyro.distributions as dist
    from pyro.infer import SVI, Trace_ELBO
    from pyro.infer.autoguide import AutoMultivariateNormal, AutoNormal, init_to_value

    config = fit.config

    def pyro_model():
        # a flat site for the unconstrained z, and the model's log density (with its Jacobian) as a factor
        z = pyro.sample("z", dist.ImproperUniform(dist.constraints.real_vector, (), (model.dim,)))
        pyro.factor("log_density", model.log_density(z.reshape(-1, model.dim)).reshape(z.shape[:-1]))

    pyro.clear_param_store()
    guide_class = {"meanfield": AutoNormal, "fullrank": AutoMultivariateNormal}[config.family]
    with bbvi.seeded(config.seed):
        guide = guide_class(pyro_model, init_loc_fn=init_to_value(values={"z": model.initial_point()}),
                            init_scale=config.init_scale)
    optimizer = pyro.optim.LambdaLR({"optimizer": torch.optim.Adam, "optim_args": {"lr": config.lr},
                                     "lr_lambda": lambda t: 1 / (1 + t / config.lr_decay_steps)})
    loss = Trace_ELBO(num_particles=config.num_samples or 8, vectorize_particles=True, max_plate_nesting=0)
    svi = SVI(pyro_model, guide, optimizer, loss)
    with bbvi.seeded(config.seed):
        start = time.perf_counter()
        for _ in range(fit.num_steps):
            svi.step()
            optimizer.step()
        seconds_per_step = (time.perf_counter() - start) / fit.num_steps
        with torch.no_grad():
            final_elbo = -Trace_ELBO(num_particles=num_draws, vectorize_particles=True,
                                     max_plate_nesting=0).loss(pyro_model, guide)
            with pyro.plate("draws", num_draws):
                z = guide()["z"]
    return seconds_per_step, final_elbo, model.constrain(z)


def max_abs(rows, key):
    return max(abs(row[key]) for row in rows if row[key] is not None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nuts-samples", type=int, default=1000, help="NUTS warmup steps and draws (default 1000)")
    parser.add_argument("--num-draws", type=int, default=10_000, help="draws of q for ELBOs and errors")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float64)  # before the example files build their tensors

    vs_nuts, vs_pyro = [], []
    for name in NAMES:
        model = bbvi.load_model(EXAMPLES / f"{name}.py")
        reference = mcmc.nuts(model, num_draws=args.nuts_samples, warmup_steps=args.nuts_samples, seed=args.seed,
                              progress=False)
        for family in ("meanfield", "fullrank"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # k̂ and convergence are in the table
                start = time.perf_counter()
                fit = elbo.fit(model, family=family, num_draws=args.num_draws, seed=args.seed, progress=False)
                fit_seconds = time.perf_counter() - start
                advi = elbo.fit(model, family=family, method="advi", init="point", num_draws=args.num_draws,
                                seed=args.seed, progress=False)
            ours = mcmc.compare(fit.draws, reference.draws,
                                vi_weights=fit.psis_log_weights.exp() if fit.khat < 0.7 else None)
            pyro_seconds_per_step, pyro_elbo, pyro_draws = pyro_svi(model, advi, args.num_draws)
            advi_rows, theirs = mcmc.compare(advi.draws, reference.draws), mcmc.compare(pyro_draws, reference.draws)
            vs_nuts.append((name, family, fit.config.method, model.dim, fit.num_grad_evals, fit_seconds,
                            reference.seconds, max_abs(ours, "mean_error"), max_abs(ours, "sd_error"), fit.khat,
                            reference.num_divergent))
            vs_pyro.append((name, family, advi.num_steps, advi.seconds / advi.num_steps, pyro_seconds_per_step,
                            advi.elbo, pyro_elbo, max_abs(advi_rows, "mean_error"), max_abs(theirs, "mean_error"),
                            max_abs(advi_rows, "sd_error"), max_abs(theirs, "sd_error")))
            print(f"done: {name} {family}", flush=True)

    print(f"\nVI (elbo.fit, defaults) against NUTS (Pyro, {args.nuts_samples} warmup + {args.nuts_samples} draws, "
          f"1 chain); errors of the reported estimates (PSIS-reweighted where k̂ < 0.7), the largest over the "
          f"scalar parameters, in NUTS sds; {args.threads} thread(s)\n")
    print("| example | family | method | D | VI gradients | VI s | NUTS s | max abs mean err | max abs sd err | k̂ "
          "| NUTS divergent |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in vs_nuts:
        name, family, method, dim, grads, fit_s, nuts_s, mean_error, sd_error, khat, divergent = row
        print(f"| {name} | {family} | {method} | {dim} | {grads} | {fit_s:.2f} | {nuts_s:.1f} | {mean_error:.3f} | "
              f"{sd_error:.3f} | {khat:.2f} | {divergent} |")
    print("\nOur ADVI (from Stan's initial point) against Pyro's SVI (AutoNormal / AutoMultivariateNormal, "
          f"Trace_ELBO) for the same number of steps; final ELBO over {args.num_draws} draws\n")
    print("| example | family | steps | ours ms/step | Pyro ms/step | Pyro / ours | ours ELBO | Pyro ELBO | "
          "mean err ours | mean err Pyro | sd err ours | sd err Pyro |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in vs_pyro:
        name, family, steps, ours_s, pyro_s, ours_elbo, pyro_elbo, ours_mean, pyro_mean, ours_sd, pyro_sd = row
        print(f"| {name} | {family} | {steps} | {1000 * ours_s:.2f} | {1000 * pyro_s:.2f} | {pyro_s / ours_s:.2f} | "
              f"{ours_elbo:.2f} | {pyro_elbo:.2f} | {ours_mean:.3f} | {pyro_mean:.3f} | {ours_sd:.3f} | "
              f"{pyro_sd:.3f} |")


if __name__ == "__main__":
    main()
