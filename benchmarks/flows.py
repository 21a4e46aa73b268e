"""Beyond Gaussian posteriors (issue 27): elbo's Gaussian default, its flow and its self-repairing fit, and Pyro's
NUTS, on targets with exact draws (``elbo.bbvi.targets``):

- Neal's funnel (d = 10), a banana, 0.3/0.7 mixtures of two unit Gaussians at ±4 (d = 2 and 10), a 0.1/0.2/0.3/0.4
  mixture of four (d = 2), a multivariate Student-t (ν = 3, d = 10), the centred eight schools (its "exact" draws:
  posteriordb's reference draws of the same posterior), and a correlated Gaussian (d = 4, where the Gaussian is right
  and nothing may be lost);
- contestants: ``elbo.fit`` with its defaults (Pathfinder, batch and match, full rank, and the search for missed
  modes), ``family="flow"``, ``repair=True``, and Pyro's NUTS (4 chains);
- errors of the estimates each reports (PSIS-reweighted where k̂ < 0.7, else its own draws; MCMC's draws equally
  weighted), the largest over the scalar parameters, in true sds: means, sds, 5% and 95% quantiles; each mode's
  weight for the mixtures; k̂; whether the fit warned; wall time and gradient evaluations.

    python benchmarks/flows.py [--targets funnel10,banana,...] [--threads 1]
    python benchmarks/flows.py --quick
    python benchmarks/flows.py --render benchmarks/results/flows.json

Double precision, one torch thread. The exact moments are those of 10^5 exact draws (seeded; eight schools: 10^5
resampled from posteriordb's 10^4).
"""

from __future__ import annotations

import sys
import time
import warnings

import torch
from _harness import DATA_DIR, Benchmark, Contestant, Setting, cell, main, markdown  # beside this script

import elbo
from elbo.bbvi import mcmc, psis, targets

TARGETS = {"funnel10": lambda: targets.funnel(10), "banana": lambda: targets.banana(1.0),
           "mixture2_d2": lambda: targets.mixture(2), "mixture2_d10": lambda: targets.mixture(10),
           "mixture4_d2": lambda: targets.mixture(2, (0.1, 0.2, 0.3, 0.4)),
           "student_t10": lambda: targets.student_t(10), "gaussian4": lambda: targets.gaussian(4),
           "eight_schools_centered": lambda: targets.eight_schools_centered(DATA_DIR / "posteriordb")}


def load(case: str, args):
    target = TARGETS[case]()
    torch.manual_seed(12345)
    exact = target.sample(100_000)
    return target, {name: values.reshape(len(values), -1) for name, values in exact.items()}


def _weighted_quantile(values: torch.Tensor, weights: torch.Tensor, q: float) -> float:
    order = values.argsort()
    cumulative = weights[order].cumsum(0)
    return values[order][torch.searchsorted(cumulative, torch.tensor(q, dtype=cumulative.dtype)).clamp_max(
        len(values) - 1)].item()


def errors(draws: dict, weights: torch.Tensor, exact: dict) -> dict:
    """The largest absolute errors over the scalar parameters, in exact sds, of the weighted mean, sd and 5%/95%
    quantiles of ``draws``."""
    worst = {"mean_error": 0.0, "sd_error": 0.0, "q05_error": 0.0, "q95_error": 0.0}
    for name, values in draws.items():
        flat, reference = values.reshape(len(values), -1).double(), exact[name].double()
        for j in range(flat.shape[1]):
            x, y = flat[:, j], reference[:, j]
            sd = y.std().item()
            mean = (weights @ x).item()
            found = {"mean_error": mean - y.mean().item(),
                     "sd_error": (weights @ (x - mean) ** 2).sqrt().item() - sd,
                     "q05_error": _weighted_quantile(x, weights, 0.05) - y.quantile(0.05).item(),
                     "q95_error": _weighted_quantile(x, weights, 0.95) - y.quantile(0.95).item()}
            for key, value in found.items():
                worst[key] = max(worst[key], abs(value) / sd)
    return worst


def _mode_error(target, z_first: torch.Tensor, weights: torch.Tensor):
    if target.mode_weights is None:
        return None
    found = targets.mode_weights(z_first, target.mode_centres, weights)
    return max(abs(a - b) for a, b in zip(found, target.mode_weights))


def _fit(data, args, **settings) -> dict:
    target, exact = data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clock = time.perf_counter()
        fit = elbo.fit(target.model, seed=args.seed, progress=False, num_draws=args.num_draws, **settings)
        seconds = time.perf_counter() - clock
    warned = [str(w.message) for w in caught if issubclass(w.category, UserWarning)
              and "will take at least" not in str(w.message)]
    neutra = "mcmc" in fit.diagnostics()
    use_psis = not neutra and fit.khat < psis.KHAT_THRESHOLD
    weights = fit.psis_log_weights.exp() if use_psis else torch.full((len(fit.z),), 1 / len(fit.z),
                                                                     dtype=torch.float64)
    producer = "neutra" if neutra else "mixture" if "a mixture of q" in fit.reason else fit.config.family
    row = {"produced_by": producer, "khat": fit.khat, "warned": bool(warned), "seconds": seconds,
           "grad_evals": fit.num_grad_evals, "mode_weight_error": _mode_error(target, fit.z[:, 0], weights),
           **errors(fit.draws, weights.double(), exact), "reason": fit.reason, "warnings": warned}
    if neutra:
        row |= {key: fit.mcmc[key] for key in ("rhat", "ess_bulk", "ess_tail", "divergences")}
    return row


def run_gaussian(data, args) -> dict:
    return _fit(data, args)


def run_flow(data, args) -> dict:
    return _fit(data, args, family="flow")


def run_repair(data, args) -> dict:
    return _fit(data, args, repair=True)


def run_nuts(data, args) -> dict:
    target, exact = data
    result = mcmc.nuts(target.model, num_draws=args.nuts_samples, warmup_steps=args.nuts_warmup, num_chains=4,
                       seed=args.seed, progress=False)
    z = target.model.unconstrain(result.draws)
    weights = torch.full((len(z),), 1 / len(z), dtype=torch.float64)
    chains = z.reshape(4, args.nuts_samples, -1)
    return {"produced_by": "nuts", "khat": None, "warned": result.num_divergent > 0, "seconds": result.seconds,
            "grad_evals": None, "mode_weight_error": _mode_error(target, z[:, 0], weights),
            **errors(result.draws, weights, exact), **mcmc.chain_diagnostics(chains),
            "divergences": result.num_divergent}


def table(result: dict) -> str:
    rows = [r for r in result["rows"] if "error" not in r and "skipped" not in r]
    lines = [[r["case"], r["contestant"], r["produced_by"], cell(r["khat"], ".2f"), "yes" if r["warned"] else "no",
              cell(r["mean_error"], ".2f"), cell(r["sd_error"], ".2f"), cell(r["q05_error"], ".2f"),
              cell(r["q95_error"], ".2f"), cell(r["mode_weight_error"], ".3f"), cell(r["seconds"], ".1f"),
              cell(r["grad_evals"], "d") if r["grad_evals"] is not None else "-",
              cell(r.get("rhat"), ".3f"), cell(r.get("ess_bulk"), ".0f")] for r in rows]
    failed = [f"- {r['case']} / {r['contestant']}: {r.get('error') or r.get('skipped')}" for r in result["rows"]
              if "error" in r or "skipped" in r]
    settings = result["settings"]
    return "\n".join([
        f"Errors of the reported estimates in true sds (largest over the parameters; {settings['num_draws']} draws "
        f"of q; NUTS: 4 chains × {settings['nuts_samples']} draws after {settings['nuts_warmup']} warmup steps)\n",
        markdown(["target", "contestant", "numbers from", "k̂", "warned", "mean", "sd", "5%", "95%",
                  "mode weight", "s", "gradients", "R̂", "bulk ESS"], lines, [False] * 3 + [True] * 11),
        *(["\nFailed or skipped:", *failed] if failed else [])])


def float64(args, contestants) -> None:
    """Double precision, and one small fit first: the first of a process pays torch's one-time set-up (about 2 s)."""
    torch.set_default_dtype(torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        elbo.fit(targets.gaussian(2).model, seed=0, progress=False, num_draws=100)


BENCHMARK = Benchmark(
    name="flows", description=__doc__.split("\n\n")[0], cases=lambda args: args.targets, load=load, table=table,
    case="case", setup=float64,
    settings={"targets": Setting(list(TARGETS), "comma-separated targets"),
              "num_draws": Setting(4000, "draws of q for the diagnostics and the errors", quick=1000),
              "nuts_warmup": Setting(300, "NUTS warmup steps a chain (as NeuTra's)", quick=100),
              "nuts_samples": Setting(300, "NUTS draws a chain (as NeuTra's)", quick=100),
              "seed": Setting(0, "seed of every fit")},
    contestants=[Contestant("elbo.fit, defaults", run_gaussian, key="gaussian"),
                 Contestant("elbo.fit, family=flow", run_flow, key="flow"),
                 Contestant("elbo.fit, repair=True", run_repair, ("pyro-ppl",), key="repair"),
                 Contestant("Pyro NUTS", run_nuts, ("pyro-ppl",), key="nuts")],
    packages=("pyro-ppl",))


if __name__ == "__main__":
    sys.exit(main(BENCHMARK))
