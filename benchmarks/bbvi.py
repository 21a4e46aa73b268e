"""Black-box VI on the example models, side by side in one run:

1. our fit with its defaults (full rank: Pathfinder, then batch and match; mean-field: Pathfinder's start, then
   ADVI) against Pyro's NUTS on the same log density: wall times, gradient evaluations, and the largest errors of
   the estimates elbo tells the user to report (PSIS-reweighted where k̂ < 0.7, q's own draws otherwise) over
   the scalar parameters, in units of the NUTS sd; k̂;
2. our ADVI (method="advi", from Stan's initial point) against Pyro's SVI on the same log density (AutoNormal for
   mean-field, AutoMultivariateNormal for full-rank; Trace_ELBO with the same number of draws per step,
   vectorized; Adam with the same learning rates and initial point) for the same number of steps: time per step
   and the final ELBO (10^4 draws each).

    python benchmarks/bbvi.py [--nuts-warmup 1000] [--nuts-samples 1000] [--threads 1]
    python benchmarks/bbvi.py --quick                      # 100 + 100 NUTS steps, 1000 draws
    python benchmarks/bbvi.py --render benchmarks/results/bbvi.json

Double precision, one torch thread by default (these models are small: more threads only add overhead). On the
benchmark harness (``_harness.py``): one case per (example, family); NUTS runs once per example, as the reference.
"""

from __future__ import annotations

import functools
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import torch
from _harness import Benchmark, Contestant, Setting, cell, main, markdown  # beside this script

import elbo
from elbo import bbvi, mcmc

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAMES = ("eight_schools", "logistic_regression", "linear_regression", "gaussian_mixture")
FAMILIES = ("meanfield", "fullrank")


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


@functools.cache
def reference(name: str, warmup: int, samples: int, seed: int):
    """The example's model and Pyro's NUTS on it (once per example, for both families)."""
    model = bbvi.load_model(EXAMPLES / f"{name}.py")
    return model, mcmc.nuts(model, num_draws=samples, warmup_steps=warmup, seed=seed, progress=False)


def cases(args) -> list[str]:
    unknown = [name for name in args.examples if name not in NAMES]
    if unknown:
        raise ValueError(f"unknown examples {unknown} (known: {', '.join(NAMES)})")
    return [f"{name} {family}" for name in args.examples for family in FAMILIES]


def load(case: str, args) -> SimpleNamespace:
    name, family = case.split()
    model, nuts = reference(name, args.nuts_warmup, args.nuts_samples, args.seed)

    @functools.cache
    def advi():  # our ADVI from Stan's initial point; Pyro's SVI runs as many steps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # k̂ and convergence are in the table
            return elbo.fit(model, family=family, method="advi", init="point", num_draws=args.num_draws,
                            seed=args.seed, progress=False)

    return SimpleNamespace(name=name, family=family, model=model, nuts=nuts, advi=advi)


def run_fit(case, args) -> dict:
    """Our fit with its defaults against NUTS: the errors of the reported estimates (PSIS-reweighted where k̂ <
    0.7)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k̂ and convergence are in the table
        start = time.perf_counter()
        fit = elbo.fit(case.model, family=case.family, num_draws=args.num_draws, seed=args.seed, progress=False)
        fit_seconds = time.perf_counter() - start
    ours = mcmc.compare(fit.draws, case.nuts.draws, vi_weights=fit.psis_log_weights.exp() if fit.khat < 0.7 else None)
    return {"method": fit.config.method, "dim": case.model.dim, "grad_evals": fit.num_grad_evals, "fit_s": fit_seconds,
            "nuts_s": case.nuts.seconds, "max_mean_error": max_abs(ours, "mean_error"),
            "max_sd_error": max_abs(ours, "sd_error"), "khat": fit.khat, "nuts_divergent": case.nuts.num_divergent}


def run_advi(case, args) -> dict:
    advi = case.advi()
    errors = mcmc.compare(advi.draws, case.nuts.draws)
    return {"steps": advi.num_steps, "seconds_per_step": advi.seconds / advi.num_steps, "elbo": advi.elbo,
            "max_mean_error": max_abs(errors, "mean_error"), "max_sd_error": max_abs(errors, "sd_error")}


def run_pyro(case, args) -> dict:
    advi = case.advi()
    seconds_per_step, final_elbo, draws = pyro_svi(case.model, advi, args.num_draws)
    errors = mcmc.compare(draws, case.nuts.draws)
    return {"steps": advi.num_steps, "seconds_per_step": seconds_per_step, "elbo": final_elbo,
            "max_mean_error": max_abs(errors, "mean_error"), "max_sd_error": max_abs(errors, "sd_error")}


def score(case, found: dict, args) -> dict:
    return {"example": case.name, "family": case.family, **found}


def table(result: dict) -> str:
    settings, rows = result["settings"], [row for row in result["rows"] if "error" not in row and "skipped" not in row]
    fits = [row for row in rows if row["key"] == "fit"]
    lines = [[r["example"], r["family"], r["method"], str(r["dim"]), str(r["grad_evals"]), cell(r["fit_s"], ".2f"),
              cell(r["nuts_s"], ".1f"), cell(r["max_mean_error"], ".3f"), cell(r["max_sd_error"], ".3f"),
              cell(r["khat"], ".2f"), str(r["nuts_divergent"])] for r in fits]
    first = markdown(["example", "family", "method", "D", "VI gradients", "VI s", "NUTS s", "max abs mean err",
                      "max abs sd err", "k̂", "NUTS divergent"], lines, [False] * 3 + [True] * 8)
    pairs = []
    for case in dict.fromkeys(row["case"] for row in rows):
        ours = next((r for r in rows if r["case"] == case and r["key"] == "advi"), None)
        pyro = next((r for r in rows if r["case"] == case and r["key"] == "pyro"), None)
        some = ours or pyro
        if some is None:
            continue

        def of(row, key, spec, scale=1.0):
            return "-" if row is None or row[key] is None else format(scale * row[key], spec)

        ratio = pyro["seconds_per_step"] / ours["seconds_per_step"] if ours and pyro else None
        pairs.append([some["example"], some["family"], str(some["steps"]), of(ours, "seconds_per_step", ".2f", 1000),
                      of(pyro, "seconds_per_step", ".2f", 1000), cell(ratio, ".2f"), of(ours, "elbo", ".2f"),
                      of(pyro, "elbo", ".2f"), of(ours, "max_mean_error", ".3f"), of(pyro, "max_mean_error", ".3f"),
                      of(ours, "max_sd_error", ".3f"), of(pyro, "max_sd_error", ".3f")])
    second = markdown(["example", "family", "steps", "ours ms/step", "Pyro ms/step", "Pyro / ours", "ours ELBO",
                       "Pyro ELBO", "mean err ours", "mean err Pyro", "sd err ours", "sd err Pyro"], pairs,
                      [False, False] + [True] * 10)
    failed = [f"- {r['case']} / {r['contestant']}: {r.get('error') or r.get('skipped')}" for r in result["rows"]
              if "error" in r or "skipped" in r]
    return "\n".join([
        f"VI (elbo.fit, defaults) against NUTS (Pyro, {settings['nuts_warmup']} warmup + {settings['nuts_samples']} "
        f"draws, 1 chain); errors of the reported estimates (PSIS-reweighted where k̂ < 0.7), the largest over the "
        f"scalar parameters, in NUTS sds\n", first,
        "\nOur ADVI (from Stan's initial point) against Pyro's SVI (AutoNormal / AutoMultivariateNormal, Trace_ELBO) "
        f"for the same number of steps; final ELBO over {settings['num_draws']} draws\n", second,
        *(["\nFailed or skipped:", *failed] if failed else [])])


def float64(args, contestants) -> None:
    torch.set_default_dtype(torch.float64)  # before the example files build their tensors


BENCHMARK = Benchmark(
    name="bbvi", description=__doc__.split("\n\n")[0], cases=cases, load=load, score=score, table=table,
    setup=float64,
    settings={"examples": Setting(list(NAMES), "comma-separated examples (files of examples/)"),
              "nuts_warmup": Setting(1000, "NUTS warmup steps", quick=100),
              "nuts_samples": Setting(1000, "NUTS draws", quick=100),
              "num_draws": Setting(10_000, "draws of q for ELBOs and errors", quick=1000),
              "seed": Setting(0, "seed of every fit")},
    contestants=[Contestant("elbo.fit, defaults", run_fit, ("pyro-ppl",), key="fit"),
                 Contestant("elbo ADVI", run_advi, ("pyro-ppl",), key="advi"),
                 Contestant("Pyro SVI", run_pyro, ("pyro-ppl",), key="pyro")],
    packages=("pyro-ppl",))


if __name__ == "__main__":
    sys.exit(main(BENCHMARK))
