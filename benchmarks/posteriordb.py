"""elbo.fit against NumPyro (SVI and NUTS) on posteriordb's reference posteriors: error against the gold-standard
draws, against wall time and gradient evaluations.

    python benchmarks/posteriordb.py                                   # all ported posteriors (about half an hour)
    python benchmarks/posteriordb.py --posteriors kidiq-kidscore_momiq,eight_schools-eight_schools_noncentered
    python benchmarks/posteriordb.py --skip nuts,svi-normal --svi-steps 2000
    python benchmarks/posteriordb.py --quick                           # two posteriors, short NumPyro runs
    python benchmarks/posteriordb.py --render benchmarks/results/posteriordb.json

For each posterior of ``elbo.posteriordb.POSTERIORS`` (or ``--posteriors``), the contestants run one after the
other (all of them on one posterior before the next, so that a change in the machine's load hits all alike), each
on the same log density (the port's, run by torch for elbo and by JAX for NumPyro), in float64, one thread, with
a fixed seed:

1. ``elbo default`` (key ``default``): ``elbo.fit(model)``, Pathfinder's Gaussian refined by batch and match, full
   rank;
2. ``elbo meanfield`` (``meanfield``): ``family="meanfield"``, ADVI from Pathfinder's diagonal;
3. ``elbo fullrank ADVI`` (``fullrank-advi``): ``family="fullrank", method="advi"``;
4. ``elbo pathfinder`` (``pathfinder``): ``method="pathfinder"``, Pathfinder's best Gaussian only;
5. ``NumPyro AutoNormal`` (``svi-normal``) and 6. ``NumPyro AutoMVN`` (``svi-mvn``): SVI with
   ``AutoNormal`` / ``AutoMultivariateNormal`` (their default initialization: uniform in [-2, 2] unconstrained,
   scale 0.1), ``Trace_ELBO(num_particles=8)`` (vectorized over the particles), ``ClippedAdam(step_size=0.01,
   clip_norm=10)`` at a constant step size, ``--svi-steps`` steps by ``svi.run`` (a ``lax.scan``, here under
   ``jax.jit``, NumPyro's fastest path), then 10,000 draws of the guide (``guide.sample_posterior``);
7. ``NumPyro NUTS`` (``nuts``): one chain, ``--nuts-warmup`` warmup iterations and ``--nuts-samples`` draws, the
   whole run (``MCMC.warmup`` collecting the warmup, then ``MCMC.run``) under one ``jax.jit``.

The NumPyro model is one ``ImproperUniform`` site per Stan parameter, on its constraint, and a
``numpyro.factor`` of the port's log density; NumPyro adds the Jacobians of its own bijections, as elbo does.

Measured, per (posterior, contestant):

- gradient evaluations: ``Fit.num_grad_evals`` for elbo (one per draw at which the gradient of log p is taken,
  Pathfinder's included); steps × particles for SVI; for NUTS the leapfrog steps (``num_steps``) over warmup and
  sampling together;
- wall time, compilation included: for elbo the whole ``elbo.fit`` call (the fit and its 10,000 draws, their
  log-weights and k̂); for SVI ``svi.init``, the jitted ``svi.run`` and ``sample_posterior``; for NUTS the jitted
  run. For NumPyro also without compilation: the same jitted calls a second time, with the same inputs (elbo runs
  eagerly in torch: nothing to compile). The first contestant of the first posterior would pay one-off set-up
  costs (library initialization), so every contestant first runs once on a one-dimensional normal, not timed;
- errors against posteriordb's reference draws (``Posterior.errors``: per reference quantity, the error of the
  mean and of the sd, in reference sds): the largest and the median of their absolute values. For elbo both q's
  raw draws and their PSIS reweighting; the reported estimate is the PSIS-reweighted one where k̂ < 0.7 (what
  ``Fit`` tells a user to report), q's raw draws otherwise; NumPyro's are its draws;
- k̂ (elbo only) and whether k̂ < 0.7; the warnings ``elbo.fit`` issued.

A contestant that raises is recorded as ``error: <message>`` (its traceback on stderr and in the JSON) and the run
goes on. The summary gives, per contestant, its median wall time, the medians over posteriors of its wall-time
ratio to NUTS and to NumPyro's SVI of its family (AutoMVN for full rank, AutoNormal for mean field), the number
of posteriors whose largest |mean error| is within 0.1 and 0.2 reference sds, and, for elbo, the "promise
violations": posteriors where k̂ < 0.7 (the fit says its estimates are usable) but the reported estimates have a
|mean error| or |sd error| above 0.2. All rows go to ``--json``; ``--figure`` plots the largest |mean error|
against wall time, one point per (contestant, posterior).
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from _harness import DATA_DIR, REPO, Benchmark, Column, Contestant, Setting, cell, main  # beside this script

import elbo
from elbo import posteriordb
from elbo.bbvi.posteriordb import jax_ops

KHAT_OK = 0.7
NUM_DRAWS = 10_000  # of each variational q, for the errors
SVI_PARTICLES = 8
SVI_STEP_SIZE, SVI_CLIP_NORM = 0.01, 10.0
THRESHOLDS = (0.1, 0.2)  # of the largest |mean error|, in reference sds
PROMISE = 0.2  # k̂ < 0.7 promises |mean error| and |sd error| within this, in reference sds
QUICK_POSTERIORS = ["kidiq-kidscore_momiq", "eight_schools-eight_schools_noncentered"]


def single_threaded_jax():
    """Float64 for torch and JAX, JAX on the CPU; the harness has set XLA's threads (before JAX's first import)."""
    torch.set_default_dtype(torch.float64)
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")


def _finite_or_none(x):
    return float(x) if x is not None and math.isfinite(x) else None


def _summarize(errors: dict) -> dict:
    """The largest and median |mean error| and |sd error| over the reference quantities (NaN if any is NaN), and
    the quantities with the largest."""
    names = list(errors)
    mean = np.abs([e["mean_error"] for e in errors.values()])
    sd = np.abs([e["sd_error"] for e in errors.values()])
    return {"max_mean": float(mean.max()), "median_mean": float(np.median(mean)), "max_sd": float(sd.max()),
            "median_sd": float(np.median(sd)), "num_quantities": len(errors),
            "worst_mean": names[int(np.nanargmax(mean))] if not np.isnan(mean).all() else None,
            "worst_sd": names[int(np.nanargmax(sd))] if not np.isnan(sd).all() else None}


def _to_torch(draws: dict, names) -> dict:
    return {name: torch.as_tensor(np.array(draws[name]), dtype=torch.float64) for name in names}


# --- the contestants -------------------------------------------------------------------------------------------


def run_elbo(posterior, options: dict, args) -> dict:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        fit = elbo.fit(posterior.model, seed=args.seed, progress=False, **options)
        wall = time.perf_counter() - start
    raw = _summarize(posterior.errors(fit.draws))
    psis = _summarize(posterior.errors(fit.draws, weights=fit.psis_log_weights.exp()))
    khat_ok = bool(fit.khat < KHAT_OK)
    return {"grad_evals": fit.num_grad_evals, "wall_s": wall, "wall_s_no_compile": None, "fit_s": fit.seconds,
            "num_steps": fit.num_steps, "converged": fit.converged, "reason": fit.reason,
            "khat": _finite_or_none(fit.khat), "khat_ok": khat_ok, "estimate": "psis" if khat_ok else "raw",
            "errors": psis if khat_ok else raw, "errors_raw": raw, "errors_psis": psis,
            "warnings": [str(w.message).splitlines()[0] for w in caught], "note": ""}


def numpyro_model(posterior):
    """The posterior as a NumPyro model: a flat site per parameter on its constraint, the log density a factor."""
    import numpyro
    import numpyro.distributions as dist

    log_density = posterior.log_density_fn(jax_ops())
    specs = posterior.specs

    def model():
        params = {name: numpyro.sample(name, dist.ImproperUniform(spec.numpyro_constraint(), (), spec.shape))
                  for name, spec in specs.items()}
        numpyro.factor("log_density", log_density(params))

    return model


def run_svi(posterior, guide_name: str, args, model) -> dict:
    import jax
    import numpyro
    from numpyro.infer import SVI, Trace_ELBO, autoguide

    guide = getattr(autoguide, guide_name)(model)
    svi = SVI(model, guide, numpyro.optim.ClippedAdam(step_size=SVI_STEP_SIZE, clip_norm=SVI_CLIP_NORM),
              Trace_ELBO(num_particles=SVI_PARTICLES))
    init_key, draws_key = jax.random.split(jax.random.key(args.seed))
    run = jax.jit(lambda state: svi.run(init_key, args.svi_steps, progress_bar=False, init_state=state))

    def fit_and_draw(state=None):
        start = time.perf_counter()
        state = svi.init(init_key) if state is None else state
        result = jax.block_until_ready(run(state))
        draws = jax.block_until_ready(guide.sample_posterior(draws_key, result.params, sample_shape=(NUM_DRAWS,)))
        return state, result, draws, time.perf_counter() - start

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state, result, draws, wall = fit_and_draw()
        *_, wall_no_compile = fit_and_draw(state)
    losses = np.asarray(result.losses)
    num_nan = int(np.isnan(losses).sum())
    return {"grad_evals": args.svi_steps * SVI_PARTICLES, "wall_s": wall, "wall_s_no_compile": wall_no_compile,
            "num_steps": args.svi_steps, "final_loss": _finite_or_none(float(np.mean(losses[-100:]))),
            "khat": None, "khat_ok": None, "estimate": "draws",
            "errors": _summarize(posterior.errors(_to_torch(draws, posterior.specs))),
            "warnings": [str(w.message).splitlines()[0] for w in caught],
            "note": f"NaN loss at {num_nan} of {args.svi_steps} steps" if num_nan else ""}


def run_nuts(posterior, args, model) -> dict:
    import jax
    from numpyro.infer import MCMC, NUTS

    def sample(key):
        mcmc = MCMC(NUTS(model), num_warmup=args.nuts_warmup, num_samples=args.nuts_samples, progress_bar=False)
        mcmc.warmup(key, extra_fields=("num_steps",), collect_warmup=True)
        warmup_steps = mcmc.get_extra_fields()["num_steps"]
        mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=("num_steps",))
        extra = mcmc.get_extra_fields()
        return mcmc.get_samples(), warmup_steps, extra["num_steps"], extra["diverging"]

    sample = jax.jit(sample)
    key = jax.random.key(args.seed)
    timings = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # the second call reuses the compiled run
            start = time.perf_counter()
            draws, warmup_steps, sample_steps, diverging = jax.block_until_ready(sample(key))
            timings.append(time.perf_counter() - start)
    warmup_steps, sample_steps = int(np.sum(warmup_steps)), int(np.sum(sample_steps))
    num_divergent = int(np.sum(diverging))
    return {"grad_evals": warmup_steps + sample_steps, "warmup_grad_evals": warmup_steps,
            "sample_grad_evals": sample_steps, "wall_s": timings[0], "wall_s_no_compile": timings[1],
            "num_steps": args.nuts_warmup + args.nuts_samples, "num_divergent": num_divergent,
            "khat": None, "khat_ok": None, "estimate": "draws",
            "errors": _summarize(posterior.errors(_to_torch(draws, posterior.specs))),
            "warnings": [str(w.message).splitlines()[0] for w in caught],
            "note": f"{num_divergent} divergent" if num_divergent else ""}


FAMILY = {"elbo default": "fullrank", "elbo meanfield": "meanfield", "elbo fullrank ADVI": "fullrank",
          "elbo pathfinder": "fullrank", "NumPyro AutoNormal": "meanfield", "NumPyro AutoMVN": "fullrank",
          "NumPyro NUTS": "fullrank"}  # which NumPyro SVI each is compared with
NUTS_NAME = "NumPyro NUTS"
SVI_PEER = {"fullrank": "NumPyro AutoMVN", "meanfield": "NumPyro AutoNormal"}
NUMPYRO = ("jax", "jaxlib", "numpyro")


def ours(name: str, key: str, options: dict) -> Contestant:
    return Contestant(name, lambda case, args: run_elbo(case.posterior, options, args), key=key)


CONTESTANTS = (
    ours("elbo default", "default", {}),
    ours("elbo meanfield", "meanfield", {"family": "meanfield"}),
    ours("elbo fullrank ADVI", "fullrank-advi", {"family": "fullrank", "method": "advi"}),
    ours("elbo pathfinder", "pathfinder", {"method": "pathfinder"}),
    *(Contestant(f"NumPyro {short}", lambda case, args, guide=guide: run_svi(case.posterior, guide, args, case.model),
                 NUMPYRO, key=key) for short, guide, key in (("AutoNormal", "AutoNormal", "svi-normal"),
                                                             ("AutoMVN", "AutoMultivariateNormal", "svi-mvn"))),
    Contestant(NUTS_NAME, lambda case, args: run_nuts(case.posterior, args, case.model), NUMPYRO, key="nuts"),
)


def setup(args, contestants):
    """Float64 and JAX on the CPU; then each contestant once on a one-dimensional normal, untimed: library set-up costs
    are not any posterior's (the first contestant of the first posterior would pay them)."""
    single_threaded_jax()
    import numpyro
    import numpyro.distributions as dist

    class Tiny:
        specs = {"x": posteriordb.Spec()}
        model = elbo.Model(params={"x": elbo.Param()}, log_joint=lambda p: -0.5 * (p["x"] - 1) ** 2,
                            vectorize=True)  # not at 0, the first point tried: Pathfinder needs a gradient

        @staticmethod
        def errors(draws, weights=None):
            return {"x": {"mean_error": 0.0, "sd_error": 0.0}}

    def tiny_model():
        numpyro.sample("x", dist.Normal())

    small = SimpleNamespace(**{**vars(args), "svi_steps": 10, "nuts_warmup": 10, "nuts_samples": 10})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for contestant in contestants:
            contestant.run(SimpleNamespace(posterior=Tiny, model=tiny_model), small)


# --- reporting -------------------------------------------------------------------------------------------------


def rows_table(rows) -> list[str]:
    out = []
    out.append("\n| posterior | D | ref k̂ | contestant | grad evals | wall s | wall s (no compile) | "
               "max \\|mean err\\| | median \\|mean err\\| | max \\|sd err\\| | median \\|sd err\\| | k̂ | k̂ < 0.7 | "
               "estimate | q raw max \\|mean\\| / \\|sd\\| | warnings | note |")
    out.append("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|---|")
    for row in rows:
        head = (f"| {row['posterior']} | {row['dim']} | {cell(row.get('reference_khat'), '.2f')} | "
                f"{row['contestant']} |")
        if row.get("error"):
            out.append(f"{head} - | - | - | - | - | - | - | - | - | - | - | - | {row['error']} |")
            continue
        e = row["errors"]
        raw = row.get("errors_raw")
        raw_text = f"{raw['max_mean']:.3f} / {raw['max_sd']:.3f}" if raw else "-"
        khat_ok = "-" if row["khat_ok"] is None else ("yes" if row["khat_ok"] else "no")
        out.append(f"{head} {row['grad_evals']} | {cell(row['wall_s'], '.2f')} | "
                   f"{cell(row['wall_s_no_compile'], '.2f')} "
              f"| {cell(e['max_mean'], '.3f')} | {cell(e['median_mean'], '.3f')} | {cell(e['max_sd'], '.3f')} | "
              f"{cell(e['median_sd'], '.3f')} | "
              f"{cell(row['khat'], '.2f')} | {khat_ok} | {row['estimate']} | {raw_text} | {len(row['warnings'])} "
              f"| {row['note']} |")
    return out


def violations(rows, name) -> list[str]:
    """Posteriors where ``name`` said k̂ < 0.7 yet its reported estimates are off by more than ``PROMISE``."""
    return [row["posterior"] for row in rows if row["contestant"] == name and not row.get("error")
            and row["khat_ok"] and not (row["errors"]["max_mean"] <= PROMISE and row["errors"]["max_sd"] <= PROMISE)]


def summary(rows, names) -> list[dict]:
    by_key = {(row["posterior"], row["contestant"]): row for row in rows if not row.get("error")}
    posteriors = list(dict.fromkeys(row["posterior"] for row in rows))

    def seconds(row, compiled):
        """Wall time with compilation, or without (elbo compiles nothing: its one wall time)."""
        return row["wall_s"] if compiled or row["wall_s_no_compile"] is None else row["wall_s_no_compile"]

    def median_ratio(name, peer, compiled=True):
        ratios = [seconds(by_key[p, name], compiled) / seconds(by_key[p, peer], compiled) for p in posteriors
                  if (p, name) in by_key and (p, peer) in by_key]
        return float(np.median(ratios)) if ratios else None

    table = []
    for name in names:
        ok = [row for row in rows if row["contestant"] == name and not row.get("error") and not row.get("skipped")]
        max_mean = [row["errors"]["max_mean"] for row in ok]
        entry = {"contestant": name, "num_run": len(ok),
                 "num_errors": sum(1 for row in rows if row["contestant"] == name and row.get("error")),
                 "median_wall_s": float(np.median([row["wall_s"] for row in ok])) if ok else None,
                 "median_wall_s_no_compile": float(np.median([row["wall_s_no_compile"] for row in ok]))
                 if ok and ok[0]["wall_s_no_compile"] is not None else None,
                 "median_grad_evals": float(np.median([row["grad_evals"] for row in ok])) if ok else None,
                 "ratio_to_nuts": median_ratio(name, NUTS_NAME),
                 "svi_peer": SVI_PEER[FAMILY[name]],
                 "ratio_to_svi": median_ratio(name, SVI_PEER[FAMILY[name]]),
                 "ratio_to_nuts_no_compile": median_ratio(name, NUTS_NAME, compiled=False),
                 "ratio_to_svi_no_compile": median_ratio(name, SVI_PEER[FAMILY[name]],
                                                         compiled=False)}
        entry |= {f"num_mean_within_{t}": sum(1 for m in max_mean if m <= t) for t in THRESHOLDS}
        if name.startswith("elbo"):
            entry["num_khat_ok"] = sum(1 for row in ok if row["khat_ok"])
            entry["violations"] = violations(rows, name)
            gaussian = [row for row in ok if row["reference_khat"] < 0.5]
            entry["num_gaussian"] = len(gaussian)
            entry["gaussian_within_0.1"] = sum(1 for row in gaussian if row["errors"]["max_mean"] <= 0.1)
            entry["silent_failures"] = [row["posterior"] for row in ok if not row["warnings"] and not (
                row["errors"]["max_mean"] <= PROMISE and row["errors"]["max_sd"] <= PROMISE)]
        table.append(entry)
    return table


def summary_tables(table, num_posteriors) -> list[str]:
    out = []
    out.append(f"\nSummary over {num_posteriors} posteriors. × NUTS, × SVI: the median over the posteriors of the "
          "ratio of wall times, with compilation, and without (NumPyro's second, compiled run; elbo compiles "
          "nothing); the SVI peer is AutoMVN for full rank, AutoNormal for mean field. Counts of posteriors by "
          "the largest |mean error| of the reported estimate; promise violations: k̂ < 0.7 with a reported "
          f"|mean error| or |sd error| above {PROMISE}\n")
    out.append("| contestant | run / errors | median wall s | median wall s (no compile) | median grad evals | "
          "× NUTS | × SVI (peer) | × NUTS, no compile | × SVI, no compile | max \\|mean err\\| ≤ 0.1 | ≤ 0.2 | "
          "k̂ < 0.7 | promise violations |")
    out.append("|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|")
    for e in table:
        violated = "-" if "violations" not in e else (
            f"{len(e['violations'])}" + (f": {', '.join(e['violations'])}" if e["violations"] else ""))
        out.append(f"| {e['contestant']} | {e['num_run']} / {e['num_errors']} | {cell(e['median_wall_s'], '.2f')} | "
              f"{cell(e['median_wall_s_no_compile'], '.2f')} | {cell(e['median_grad_evals'], '.0f')} | "
              f"{cell(e['ratio_to_nuts'], '.2f')} | {cell(e['ratio_to_svi'], '.2f')} ({e['svi_peer']}) | "
              f"{cell(e['ratio_to_nuts_no_compile'], '.2f')} | {cell(e['ratio_to_svi_no_compile'], '.2f')} | "
              f"{e['num_mean_within_0.1']} | {e['num_mean_within_0.2']} | {e.get('num_khat_ok', '-')} | {violated} |")
    out.append("\nOn the posteriors a Gaussian can represent (k̂ of the Gaussian fitted to the reference draws, as q, "
               "below "
          "0.5), how many have a largest |mean error| within 0.1; silent failures: a run that misses 0.2 and issued "
          "no warning\n")
    out.append("| contestant | Gaussian-representable | within 0.1 | silent failures |")
    out.append("|---|---:|---:|---|")
    for e in table:
        if "num_gaussian" in e:
            silent = f"{len(e['silent_failures'])}" + (f": {', '.join(e['silent_failures'])}"
                                                        if e["silent_failures"] else "")
            out.append(f"| {e['contestant']} | {e['num_gaussian']} | {e['gaussian_within_0.1']} | {silent} |")
    return out


def draw_figure(rows, names, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = "osD^v<>"
    figure, ax = plt.subplots(figsize=(8, 5.5))
    for i, name in enumerate(names):
        points = [(row["wall_s"], row["errors"]["max_mean"]) for row in rows
                  if row["contestant"] == name and "errors" in row
                  and math.isfinite(row["errors"]["max_mean"]) and row["errors"]["max_mean"] > 0]
        if points:
            x, y = zip(*points)
            ax.scatter(x, y, marker=markers[i % len(markers)], color=f"C{i}", alpha=0.75, label=name)
    ax.axhline(PROMISE, color="k", linestyle="--", linewidth=1, label=f"{PROMISE} reference sd")
    ax.set(xscale="log", yscale="log", xlabel="wall time, s (compilation included; one thread)",
           ylabel="max |mean error| of the reported estimate (reference sds)",
           title=f"posteriordb: error against time ({len({row['posterior'] for row in rows})} posteriors)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=150)
    plt.close(figure)


# --- the benchmark ---------------------------------------------------------------------------------------------


def cases(args) -> list[str]:
    names = sorted(posteriordb.POSTERIORS) if args.posteriors == ["all"] else args.posteriors
    unknown = [name for name in names if name not in posteriordb.POSTERIORS]
    if unknown:
        raise ValueError(f"unknown posteriors {unknown}; ported: {', '.join(sorted(posteriordb.POSTERIORS))}")
    return names


def load(name: str, args) -> SimpleNamespace:
    posterior = posteriordb.load(name, args.data_dir / "posteriordb")
    return SimpleNamespace(posterior=posterior, model=numpyro_model(posterior), dim=posterior.model.dim,
                           reference_khat=posterior.gaussian_khat(seed=args.seed))


def score(case, found: dict, args) -> dict:
    return {"dim": case.dim, "reference_khat": case.reference_khat, **found}


def table(result: dict) -> str:
    rows, settings = result["rows"], result["settings"]
    posteriors = result.get("posteriors", settings["posteriors"])  # older results: the settings' list
    return "\n".join(rows_table(rows) + summary_tables(result["summary"], len(posteriors)))


def summarize(rows, args) -> dict:
    names = list(dict.fromkeys(row["contestant"] for row in rows))
    return {"summary": summary(rows, names), "posteriors": cases(args)}


def finish(result: dict, args) -> None:
    draw_figure(result["rows"], result["settings"]["contestants"], args.figure)
    print(f"figure: {args.figure}", file=sys.stderr)


BENCHMARK = Benchmark(
    name="posteriordb", description=__doc__.split("\n\n")[0], case="posterior", cases=cases, load=load,
    score=score, summarize=summarize, table=table, setup=setup, finish=finish, contestants=CONTESTANTS,
    settings={"posteriors": Setting(["all"], "comma-separated posteriordb names, or all: every one of "
                                             "elbo.posteriordb.POSTERIORS", quick=QUICK_POSTERIORS),
              "data_dir": Setting(DATA_DIR, "the shared data directory (posteriordb's files in its posteriordb/)"),
              "seed": Setting(0, "seed of every contestant"),
              "svi_steps": Setting(10_000, "NumPyro SVI steps", quick=500),
              "nuts_warmup": Setting(1000, "NumPyro NUTS warmup iterations", quick=200),
              "nuts_samples": Setting(1000, "NumPyro NUTS draws", quick=200),
              "figure": Setting(REPO / "docs" / "posteriordb_error_vs_time.png",
                                "the figure of error against wall time",
                                quick=REPO / "runs" / "bench" / "posteriordb-quick.png"),
              "svi_particles": SVI_PARTICLES, "svi_step_size": SVI_STEP_SIZE, "svi_clip_norm": SVI_CLIP_NORM,
              "num_draws": NUM_DRAWS},
    columns=[Column("max |mean err|", lambda row: row["errors"]["max_mean"], ".3f"),
             Column("wall s", "wall_s", ".2f")],
    packages=NUMPYRO)


if __name__ == "__main__":
    sys.exit(main(BENCHMARK))
