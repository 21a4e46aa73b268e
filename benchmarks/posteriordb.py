"""elbo.fit against NumPyro (SVI and NUTS) on posteriordb's reference posteriors: error against the gold-standard
draws, against wall time and gradient evaluations.

    python benchmarks/posteriordb.py                                   # all ported posteriors (about half an hour)
    python benchmarks/posteriordb.py --posteriors kidiq-kidscore_momiq,eight_schools-eight_schools_noncentered
    python benchmarks/posteriordb.py --skip nuts,svi-normal --svi-steps 2000

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

import argparse
import math
import os
import platform
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import _common  # benchmarks/_common.py, beside this script
import numpy as np
import torch
from _common import cell

import elbo
from elbo import posteriordb
from elbo._files import write_json
from elbo.posteriordb._ops import jax_ops

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = (REPO / ".." / "shared" / "data" / "posteriordb").resolve()
KHAT_OK = 0.7
NUM_DRAWS = 10_000  # of each variational q, for the errors
SVI_PARTICLES = 8
SVI_STEP_SIZE, SVI_CLIP_NORM = 0.01, 10.0
THRESHOLDS = (0.1, 0.2)  # of the largest |mean error|, in reference sds
PROMISE = 0.2  # k̂ < 0.7 promises |mean error| and |sd error| within this, in reference sds


def _single_threaded():
    """One thread for torch and for XLA; must run before JAX is first imported."""
    os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
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


def run_elbo(posterior, settings: dict, args) -> dict:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        fit = elbo.fit(posterior.model, seed=args.seed, progress=False, **settings)
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


@dataclass(frozen=True)
class Contestant:
    name: str
    key: str  # for --skip
    family: str  # "fullrank" or "meanfield": which NumPyro SVI it is compared with
    kind: str  # "elbo", "svi" or "nuts"
    option: object = None  # elbo.fit's settings, or the autoguide's name

    def run(self, posterior, args, model):
        if self.kind == "elbo":
            return run_elbo(posterior, self.option, args)
        if self.kind == "svi":
            return run_svi(posterior, self.option, args, model)
        return run_nuts(posterior, args, model)


CONTESTANTS = (
    Contestant("elbo default", "default", "fullrank", "elbo", {}),
    Contestant("elbo meanfield", "meanfield", "meanfield", "elbo", {"family": "meanfield"}),
    Contestant("elbo fullrank ADVI", "fullrank-advi", "fullrank", "elbo", {"family": "fullrank", "method": "advi"}),
    Contestant("elbo pathfinder", "pathfinder", "fullrank", "elbo", {"method": "pathfinder"}),
    Contestant("NumPyro AutoNormal", "svi-normal", "meanfield", "svi", "AutoNormal"),
    Contestant("NumPyro AutoMVN", "svi-mvn", "fullrank", "svi", "AutoMultivariateNormal"),
    Contestant("NumPyro NUTS", "nuts", "fullrank", "nuts"),
)
NUTS_NAME = "NumPyro NUTS"
SVI_PEER = {"fullrank": "NumPyro AutoMVN", "meanfield": "NumPyro AutoNormal"}


def warm_up(contestants, args):
    """Each contestant once on a one-dimensional normal, untimed: library set-up costs are not any posterior's."""
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

    small = argparse.Namespace(**{**vars(args), "svi_steps": 10, "nuts_warmup": 10, "nuts_samples": 10})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for contestant in contestants:
            contestant.run(Tiny, small, tiny_model)


# --- reporting -------------------------------------------------------------------------------------------------


def print_rows(rows):
    print("\n| posterior | D | ref k̂ | contestant | grad evals | wall s | wall s (no compile) | max \\|mean err\\| | "
          "median \\|mean err\\| | max \\|sd err\\| | median \\|sd err\\| | k̂ | k̂ < 0.7 | estimate | "
          "q raw max \\|mean\\| / \\|sd\\| | warnings | note |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|---|")
    for row in rows:
        head = (f"| {row['posterior']} | {row['dim']} | {cell(row.get('reference_khat'), '.2f')} | "
                f"{row['contestant']} |")
        if row.get("error"):
            print(f"{head} - | - | - | - | - | - | - | - | - | - | - | - | {row['error']} |")
            continue
        e = row["errors"]
        raw = row.get("errors_raw")
        raw_text = f"{raw['max_mean']:.3f} / {raw['max_sd']:.3f}" if raw else "-"
        khat_ok = "-" if row["khat_ok"] is None else ("yes" if row["khat_ok"] else "no")
        print(f"{head} {row['grad_evals']} | {cell(row['wall_s'], '.2f')} | {cell(row['wall_s_no_compile'], '.2f')} "
              f"| {cell(e['max_mean'], '.3f')} | {cell(e['median_mean'], '.3f')} | {cell(e['max_sd'], '.3f')} | "
              f"{cell(e['median_sd'], '.3f')} | "
              f"{cell(row['khat'], '.2f')} | {khat_ok} | {row['estimate']} | {raw_text} | {len(row['warnings'])} "
              f"| {row['note']} |")


def violations(rows, name) -> list[str]:
    """Posteriors where ``name`` said k̂ < 0.7 yet its reported estimates are off by more than ``PROMISE``."""
    return [row["posterior"] for row in rows if row["contestant"] == name and not row.get("error")
            and row["khat_ok"] and not (row["errors"]["max_mean"] <= PROMISE and row["errors"]["max_sd"] <= PROMISE)]


def summary(rows, contestants) -> list[dict]:
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
    for contestant in contestants:
        ok = [row for row in rows if row["contestant"] == contestant.name and not row.get("error")]
        max_mean = [row["errors"]["max_mean"] for row in ok]
        entry = {"contestant": contestant.name, "num_run": len(ok),
                 "num_errors": sum(1 for row in rows if row["contestant"] == contestant.name and row.get("error")),
                 "median_wall_s": float(np.median([row["wall_s"] for row in ok])) if ok else None,
                 "median_wall_s_no_compile": float(np.median([row["wall_s_no_compile"] for row in ok]))
                 if ok and ok[0]["wall_s_no_compile"] is not None else None,
                 "median_grad_evals": float(np.median([row["grad_evals"] for row in ok])) if ok else None,
                 "ratio_to_nuts": median_ratio(contestant.name, NUTS_NAME),
                 "svi_peer": SVI_PEER[contestant.family],
                 "ratio_to_svi": median_ratio(contestant.name, SVI_PEER[contestant.family]),
                 "ratio_to_nuts_no_compile": median_ratio(contestant.name, NUTS_NAME, compiled=False),
                 "ratio_to_svi_no_compile": median_ratio(contestant.name, SVI_PEER[contestant.family],
                                                         compiled=False)}
        entry |= {f"num_mean_within_{t}": sum(1 for m in max_mean if m <= t) for t in THRESHOLDS}
        if contestant.kind == "elbo":
            entry["num_khat_ok"] = sum(1 for row in ok if row["khat_ok"])
            entry["violations"] = violations(rows, contestant.name)
            gaussian = [row for row in ok if row["reference_khat"] < 0.5]
            entry["num_gaussian"] = len(gaussian)
            entry["gaussian_within_0.1"] = sum(1 for row in gaussian if row["errors"]["max_mean"] <= 0.1)
            entry["silent_failures"] = [row["posterior"] for row in ok if not row["warnings"] and not (
                row["errors"]["max_mean"] <= PROMISE and row["errors"]["max_sd"] <= PROMISE)]
        table.append(entry)
    return table


def print_summary(table, num_posteriors):
    print(f"\nSummary over {num_posteriors} posteriors. × NUTS, × SVI: the median over the posteriors of the "
          "ratio of wall times, with compilation, and without (NumPyro's second, compiled run; elbo compiles "
          "nothing); the SVI peer is AutoMVN for full rank, AutoNormal for mean field. Counts of posteriors by "
          "the largest |mean error| of the reported estimate; promise violations: k̂ < 0.7 with a reported "
          f"|mean error| or |sd error| above {PROMISE}\n")
    print("| contestant | run / errors | median wall s | median wall s (no compile) | median grad evals | "
          "× NUTS | × SVI (peer) | × NUTS, no compile | × SVI, no compile | max \\|mean err\\| ≤ 0.1 | ≤ 0.2 | "
          "k̂ < 0.7 | promise violations |")
    print("|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|")
    for e in table:
        violated = "-" if "violations" not in e else (
            f"{len(e['violations'])}" + (f": {', '.join(e['violations'])}" if e["violations"] else ""))
        print(f"| {e['contestant']} | {e['num_run']} / {e['num_errors']} | {cell(e['median_wall_s'], '.2f')} | "
              f"{cell(e['median_wall_s_no_compile'], '.2f')} | {cell(e['median_grad_evals'], '.0f')} | "
              f"{cell(e['ratio_to_nuts'], '.2f')} | {cell(e['ratio_to_svi'], '.2f')} ({e['svi_peer']}) | "
              f"{cell(e['ratio_to_nuts_no_compile'], '.2f')} | {cell(e['ratio_to_svi_no_compile'], '.2f')} | "
              f"{e['num_mean_within_0.1']} | {e['num_mean_within_0.2']} | {e.get('num_khat_ok', '-')} | {violated} |")
    print("\nOn the posteriors a Gaussian can represent (k̂ of the Gaussian fitted to the reference draws, as q, below "
          "0.5), how many have a largest |mean error| within 0.1; silent failures: a run that misses 0.2 and issued "
          "no warning\n")
    print("| contestant | Gaussian-representable | within 0.1 | silent failures |")
    print("|---|---:|---:|---|")
    for e in table:
        if "num_gaussian" in e:
            silent = f"{len(e['silent_failures'])}" + (f": {', '.join(e['silent_failures'])}"
                                                        if e["silent_failures"] else "")
            print(f"| {e['contestant']} | {e['num_gaussian']} | {e['gaussian_within_0.1']} | {silent} |")


def draw_figure(rows, contestants, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = "osD^v<>"
    figure, ax = plt.subplots(figsize=(8, 5.5))
    for i, contestant in enumerate(contestants):
        points = [(row["wall_s"], row["errors"]["max_mean"]) for row in rows
                  if row["contestant"] == contestant.name and not row.get("error")
                  and math.isfinite(row["errors"]["max_mean"]) and row["errors"]["max_mean"] > 0]
        if points:
            x, y = zip(*points)
            ax.scatter(x, y, marker=markers[i % len(markers)], color=f"C{i}", alpha=0.75, label=contestant.name)
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


def versions() -> str:
    import jax
    import jaxlib
    import numpyro

    commit = _common.commit()
    return (f"python {platform.python_version()}, elbo {elbo.__version__} at {commit}, torch {torch.__version__}, "
            f"jax {jax.__version__}, jaxlib {jaxlib.__version__}, numpyro {numpyro.__version__}, "
            f"numpy {np.__version__}; {platform.platform()}, {os.cpu_count()} CPUs; "
            f"torch threads {torch.get_num_threads()}, XLA_FLAGS={os.environ.get('XLA_FLAGS')!r}")


# --- the run ---------------------------------------------------------------------------------------------------


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def parse_args(argv=None):
    keys = ", ".join(f"{c.key} ({c.name})" for c in CONTESTANTS)
    parser = argparse.ArgumentParser(
        description="elbo.fit (default BaM, mean-field ADVI, full-rank ADVI, Pathfinder) against NumPyro's SVI\n"
                    "(AutoNormal, AutoMultivariateNormal) and NUTS on posteriordb's reference posteriors: errors of\n"
                    "the posterior means and sds against the reference draws, wall time, gradient evaluations, k̂.\n"
                    "Float64, one thread, contestants interleaved posterior by posterior; prints a table per run\n"
                    "and a summary per contestant, writes --json and --figure. The module docstring says what is\n"
                    "measured.",
        epilog="examples:\n  python benchmarks/posteriordb.py                  # all posteriors, about half an hour\n"
               "  python benchmarks/posteriordb.py --posteriors kidiq-kidscore_momiq,"
               "eight_schools-eight_schools_noncentered\n"
               "  python benchmarks/posteriordb.py --skip nuts,svi-normal --svi-steps 2000",
        formatter_class=_HelpFormatter)
    parser.add_argument("--posteriors", default="all",
                        help="comma-separated posteriordb names, or all: every one of elbo.posteriordb.POSTERIORS")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="posteriordb's files")
    parser.add_argument("--seed", type=int, default=0, help="seed of every contestant")
    parser.add_argument("--svi-steps", type=int, default=10_000, help="NumPyro SVI steps")
    parser.add_argument("--nuts-warmup", type=int, default=1000, help="NumPyro NUTS warmup iterations")
    parser.add_argument("--nuts-samples", type=int, default=1000, help="NumPyro NUTS draws")
    parser.add_argument("--skip", default="", help=f"comma-separated contestants to leave out, by key or name: {keys}")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "posteriordb.json",
                        help="where to write all rows and the summary")
    parser.add_argument("--figure", type=Path, default=REPO / "docs" / "posteriordb_error_vs_time.png",
                        help="the figure of error against wall time")
    args = parser.parse_args(argv)
    names = sorted(posteriordb.POSTERIORS) if args.posteriors == "all" else \
        [name.strip() for name in args.posteriors.split(",") if name.strip()]
    unknown = [name for name in names if name not in posteriordb.POSTERIORS]
    if unknown:
        parser.error(f"unknown posteriors {unknown}; ported: {', '.join(sorted(posteriordb.POSTERIORS))}")
    skip = {s.strip().lower() for s in args.skip.split(",") if s.strip()}
    known = {c.key for c in CONTESTANTS} | {c.name.lower() for c in CONTESTANTS}
    if skip - known:
        parser.error(f"unknown contestants to skip {sorted(skip - known)}; contestants: {keys}")
    args.names = names
    args.contestants = [c for c in CONTESTANTS if c.key not in skip and c.name.lower() not in skip]
    return args


def main(argv=None):
    args = parse_args(argv)
    _single_threaded()
    torch.set_default_dtype(torch.float64)
    start = time.perf_counter()
    load_start = os.getloadavg()
    print(f"load average at start (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in load_start)}")
    print(versions())
    print(f"{len(args.names)} posteriors, contestants: {', '.join(c.name for c in args.contestants)}; seed "
          f"{args.seed}; SVI {args.svi_steps} steps × {SVI_PARTICLES} particles, ClippedAdam(step_size="
          f"{SVI_STEP_SIZE}, clip_norm={SVI_CLIP_NORM}); NUTS {args.nuts_warmup} + {args.nuts_samples}, 1 chain\n",
          flush=True)
    warm_up(args.contestants, args)

    rows = []
    for name in args.names:
        try:
            posterior = posteriordb.load(name, args.data_dir)
            dim, model = posterior.model.dim, numpyro_model(posterior)
            reference_khat = posterior.gaussian_khat(seed=args.seed)
        except Exception as error:  # a posterior that does not load is reported, not fatal
            traceback.print_exc()
            rows += [{"posterior": name, "dim": "-", "contestant": c.name, "error": f"error: loading: {error}"}
                     for c in args.contestants]
            continue
        for contestant in args.contestants:
            row = {"posterior": name, "dim": dim, "contestant": contestant.name, "reference_khat": reference_khat}
            try:
                row |= contestant.run(posterior, args, model)
                e = row["errors"]
                status = (f"max |mean err| {e['max_mean']:.3f}, max |sd err| {e['max_sd']:.3f}, "
                          f"{row['wall_s']:.2f} s, {row['grad_evals']} grads")
            except Exception as error:  # one contestant's failure must not stop the run
                status = _common.record_failure(row, error, f"{name} / {contestant.name} failed:\n")
            rows.append(row)
            print(f"{name} (D = {dim}) / {contestant.name}: {status}", flush=True)

    print_rows(rows)
    table = summary(rows, args.contestants)
    print_summary(table, len(args.names))
    total = time.perf_counter() - start
    load_end = os.getloadavg()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    settings = {"posteriors": args.names, "contestants": [c.name for c in args.contestants], "seed": args.seed,
                "svi_steps": args.svi_steps, "svi_particles": SVI_PARTICLES, "svi_step_size": SVI_STEP_SIZE,
                "svi_clip_norm": SVI_CLIP_NORM, "nuts_warmup": args.nuts_warmup, "nuts_samples": args.nuts_samples,
                "num_draws": NUM_DRAWS, "data_dir": str(args.data_dir)}
    write_json(args.json, {  # strict JSON: what did not finish is null
        "settings": settings, "versions": versions(), "load_average_start": load_start, "load_average_end": load_end,
        "total_seconds": total, "rows": rows, "summary": table})
    draw_figure(rows, args.contestants, args.figure)
    print(f"\nrows: {args.json}; figure: {args.figure}")
    print(f"load average at end (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in load_end)}; "
          f"total {total / 60:.1f} min")


if __name__ == "__main__":
    main()
