"""How good is q, bounded from both sides: AIS lower bounds and BDMC upper bounds on log p(x) (``elbo.ais``), against
the exact evidence where there is one and against IWAE-5000 on the shipped MNIST runs.

Cases, one row each:

- ``linear-gaussian``: the linear-Gaussian model of ``elbo.exact`` (z in R³, x in R⁶, noise 0.5), points simulated
  from it, chains from the prior; for each schedule of ``--exact-steps``, AIS's lower and BDMC's upper bound minus
  the exact log p(x) (mean over the points, and in standard errors over them) and the gap between the two;
- ``regression``: a conjugate Bayesian regression fitted by ``elbo.fit`` (mean-field), ``Fit.evidence("ais")`` for
  each schedule against its closed-form evidence, in Monte Carlo standard errors;
- each run of ``--runs`` (``results/mnist/``): AIS on the first ``--images`` test images against IWAE-K on the same
  images (the difference per image, mean and standard error), the ELBO, and BDMC on ``--sim-images`` images
  simulated from the model (the gap, the target: below 0.5 nats per image); the AIS evaluation's own time is the
  issue's certifying-AIS target (≤ 15 minutes for 1,000 images on 2 cores);
- ``topics-bbc``, ``spikes-lorenz``: ProdLDA on BBC News and the Poisson GP-VAE on the Lorenz simulation, trained
  here first (not timed), then ``elbo.evaluate.evaluate(..., ais_steps, bdmc_steps)`` on ``--kind-points`` test
  points and as many simulated ones: the ladder on both, and the BDMC gap against the target of 1% of |log p(x)|.

    python benchmarks/evidence.py                 # one thread
    python benchmarks/evidence.py --quick         # smoke: 50 images, short schedules, one run

On the benchmark harness (``_harness.py``): one contestant, the harness's options, JSON and peak RSS.
"""

from __future__ import annotations

import math
import sys
import time
from types import SimpleNamespace

import torch
from _harness import DATA_DIR, REPO, Benchmark, Contestant, Setting, main, markdown  # beside this script
from torch.distributions import MultivariateNormal, Normal

import elbo
from elbo import ais, evaluate, exact
from elbo.configs import TrainConfig
from elbo.models.spikes.config import SpikeConfig
from elbo.models.topics.config import TopicConfig
from elbo.runs import load_run
from elbo.train import train

GAP_TARGET = 0.5  # nats per image: the BDMC gap that certifies a schedule on MNIST
AIS_MINUTES_TARGET = 15  # a certifying 1,000-image AIS evaluation, 2 cores
EXACT = ("linear-gaussian", "regression")
KINDS = ("topics-bbc", "spikes-lorenz")
KIND_GAP_TARGET = 0.01  # the BDMC gap of the topic and spike models, as a fraction of |log p(x)|


def cases(settings) -> list[str]:
    return [*settings.exact_cases, *settings.kinds, *settings.runs]


def load(case, settings):
    torch.manual_seed(settings.seed)
    if case == "linear-gaussian":
        generator = torch.Generator().manual_seed(settings.seed)
        model = exact.LinearGaussian(torch.randn(6, 3, generator=generator, dtype=torch.float64),
                                     torch.randn(6, generator=generator, dtype=torch.float64), 0.5)
        return SimpleNamespace(case=case, model=model.requires_grad_(False))
    if case == "regression":
        return SimpleNamespace(case=case, **_regression(settings.seed))
    if case in KINDS:
        return SimpleNamespace(case=case, run=_trained(case, settings))
    run = load_run(REPO / "results" / "mnist" / case, data_dir=str(settings.data_dir))
    return SimpleNamespace(case=case, run=run)


def _trained(case: str, settings):
    """ProdLDA (20 topics) on BBC News, or the Poisson GP-VAE on the Lorenz simulation, trained into runs/bench/
    (or read back from there)."""
    out = REPO / "runs" / "bench" / f"evidence-{case}"
    if (out / "checkpoint.pt").is_file():  # trained by an earlier run of this benchmark, with the same seed
        return load_run(out, data_dir=str(settings.data_dir))
    if case == "topics-bbc":
        config = TrainConfig(data="bbc", data_dir=str(settings.data_dir), model=TopicConfig(num_topics=20),
                             epochs=settings.kind_epochs, batch_size=200, lr=2e-3, seed=settings.seed)
    else:
        config = TrainConfig(data="lorenz", model=SpikeConfig(), epochs=4 * settings.kind_epochs, batch_size=182,
                             lr=1e-2, schedule="cosine", seed=settings.seed)
    print(f"training {case} for {config.epochs} epochs into {out} (not timed)", file=sys.stderr, flush=True)
    train(config, out, progress=False, force=True)
    return load_run(out, data_dir=str(settings.data_dir))


def _regression(seed: int, n: int = 100, d: int = 5, noise: float = 0.5) -> dict:
    """y = X β + ε, β ~ N(0, I), ε ~ N(0, noise² I): log p(y) = log N(y; 0, X Xᵀ + noise² I)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    y = x @ torch.randn(d, generator=generator, dtype=torch.float64) + noise * torch.randn(
        n, generator=generator, dtype=torch.float64)
    model = elbo.Model(params={"beta": elbo.Param((d,))},
                       log_prior=lambda p: Normal(0.0, 1.0).log_prob(p["beta"]).sum(-1),
                       log_likelihood=lambda p, batch: Normal(p["beta"] @ batch[0].T, noise).log_prob(batch[1]),
                       data=(x, y))
    covariance = x @ x.T + noise**2 * torch.eye(n, dtype=torch.float64)
    return {"model": model, "log_evidence": float(MultivariateNormal(torch.zeros(n, dtype=torch.float64),
                                                                     covariance).log_prob(y))}


def _in_se(values: torch.Tensor) -> dict:
    """Mean, standard error over the points, and the mean in standard errors."""
    mean, stderr = evaluate.mean_and_stderr(values)
    return {"mean": mean, "stderr": stderr, "z": mean / stderr if stderr else math.nan}


def _linear_gaussian(data, settings) -> dict:
    model = data.model
    x, z = ais.simulate(model, settings.exact_points)
    log_px = model.log_evidence(x)
    schedules = []
    for steps in settings.exact_steps:
        started = time.perf_counter()
        result = ais.bdmc_per_point(model, x, z, steps, start="prior", num_chains=settings.exact_chains,
                                    batch_size=len(x))
        schedules.append({"steps": steps, "lower_error": _in_se(result["lower"] - log_px),
                          "upper_error": _in_se(result["upper"] - log_px),
                          "gap": _in_se(result["upper"] - result["lower"]), "seconds": time.perf_counter() - started})
    return {"points": len(x), "chains": settings.exact_chains, "mean_log_evidence": float(log_px.mean()),
            "schedules": schedules}


def _regression_row(data, settings) -> dict:
    fit = elbo.fit(data.model, family="meanfield", progress=False, num_draws=2000, seed=settings.seed,
                   dtype=torch.float64)
    schedules = []
    for steps in settings.exact_steps:
        result = fit.evidence("ais", num_steps=steps, num_chains=settings.exact_chains, progress=False)
        schedules.append({"steps": steps, "log_evidence": result["log_evidence"], "stderr": result["stderr"],
                          "z": (result["log_evidence"] - data.log_evidence) / result["stderr"],
                          "ess": result["ess"], "seconds": result["seconds"]})
    importance = fit.evidence("is")
    return {"log_evidence": data.log_evidence, "elbo": fit.elbo, "importance": importance, "khat": fit.khat,
            "chains": settings.exact_chains, "schedules": schedules}


def _mnist(data, settings) -> dict:
    model = data.run.model.eval().requires_grad_(False)
    test = data.run.data.test[:settings.images]
    started = time.perf_counter()
    result = ais.ais_per_point(model, test, settings.steps, num_chains=settings.chains, batch_size=100)
    ais_seconds = time.perf_counter() - started
    lower = result["log_mean_weight"]
    started = time.perf_counter()
    iwae = evaluate.iwae_per_point(model, model.guide, test, settings.iwae_k).double()
    iwae_seconds = time.perf_counter() - started
    elbo_values = evaluate.elbo_per_point(model, model.guide, test).double()
    x, z = ais.simulate(model, settings.sim_images)
    started = time.perf_counter()
    bdmc = ais.bdmc_per_point(model, x, z, settings.bdmc_steps, num_chains=settings.chains, batch_size=100)
    bdmc_seconds = time.perf_counter() - started
    return {"epoch": data.run.epoch, "images": len(test), "steps": settings.steps, "chains": settings.chains,
            "ais": _in_se(lower), "ais_mc_stderr": float(result["mc_stderr"].square().sum().sqrt() / len(lower)),
            "ess": float(result["ess"].mean()), "iwae_k": settings.iwae_k, "iwae": _in_se(iwae),
            "elbo": _in_se(elbo_values), "ais_minus_iwae": _in_se(lower - iwae),
            "ais_minus_elbo": _in_se(lower - elbo_values),
            "ais_seconds": ais_seconds, "iwae_seconds": iwae_seconds,
            "bdmc": {"images": len(x), "steps": settings.bdmc_steps, "lower": _in_se(bdmc["lower"]),
                     "upper": _in_se(bdmc["upper"]), "gap": _in_se(bdmc["upper"] - bdmc["lower"]),
                     "seconds": bdmc_seconds}}


def _kind(data, settings) -> dict:
    """``evaluate`` with AIS and BDMC: the ladder on the test points and on as many simulated ones."""
    model = data.run.model.eval().requires_grad_(False)
    test = data.run.data.test[:settings.kind_points]
    start = settings.topics_start if data.case == "topics-bbc" else "guide"
    result = evaluate.evaluate(model, test, num_samples=settings.iwae_k, iwae_samples=(), ais_steps=settings.steps,
                               bdmc_steps=settings.bdmc_steps, ais_chains=settings.chains, ais_start=start)
    bdmc = result["bdmc"]
    return {"epoch": data.run.epoch, "unit": data.run.unit, "points": len(test), "steps": settings.steps,
            "start": start, "chains": settings.chains, "iwae_k": settings.iwae_k, "elbo": result["elbo"],
            "iwae": result["log_likelihood"], "ais": {k: result["ais"][k] for k in ("mean", "stderr", "mc_stderr",
                                                                                      "ess", "seconds")},
            "ais_minus_iwae": result["ais"]["minus_log_likelihood"], "ais_minus_elbo": result["ais"]["minus_elbo"],
            "bdmc": bdmc, "relative_gap": bdmc["gap"]["mean"] / abs(bdmc["lower"]["mean"])}


def run(data, settings) -> dict:
    if data.case == "regression":
        return _regression_row(data, settings)  # elbo.fit trains q: gradients on
    with torch.no_grad():
        if data.case == "linear-gaussian":
            return _linear_gaussian(data, settings)
        return _kind(data, settings) if data.case in KINDS else _mnist(data, settings)


def _pm(value: dict, digits: int = 3) -> str:
    return f"{value['mean']:.{digits}f} ± {value['stderr']:.{digits}f}"


def _exact_tables(rows: dict) -> list[str]:
    parts = []
    row = rows.get("linear-gaussian")
    if row and "schedules" in row:
        parts += [f"### Linear-Gaussian model (exact log p(x)), {row['points']} simulated points, {row['chains']} "
                  f"chains each from the prior", "",
                  markdown(["steps", "AIS − log p(x)", "(in SE)", "BDMC upper − log p(x)", "(in SE)",
                            "gap (upper − AIS)", "seconds"],
                           [[str(s["steps"]), _pm(s["lower_error"]), f"{s['lower_error']['z']:.1f}",
                             _pm(s["upper_error"]), f"{s['upper_error']['z']:.1f}", _pm(s["gap"]),
                             f"{s['seconds']:.1f}"] for s in row["schedules"]], [True] * 7), ""]
    row = rows.get("regression")
    if row and "schedules" in row:
        parts += [f"### Conjugate Bayesian regression (exact log p(y) = {row['log_evidence']:.3f}), "
                  f"`Fit.evidence(\"ais\")` from a mean-field q, {row['chains']} chains", "",
                  f"ELBO {row['elbo']:.3f}; importance sampling with q: {row['importance']['log_evidence']:.3f} ± "
                  f"{row['importance']['stderr']:.3f} (k̂ = {row['khat']:.2f}).", "",
                  markdown(["steps", "AIS log p(y)", "Monte Carlo SE", "error in SE", "ESS", "seconds"],
                           [[str(s["steps"]), f"{s['log_evidence']:.3f}", f"{s['stderr']:.3f}", f"{s['z']:.1f}",
                             f"{s['ess']:.1f}", f"{s['seconds']:.1f}"] for s in row["schedules"]], [True] * 6), ""]
    return parts


def _mnist_tables(rows: list) -> list[str]:
    lines, gaps = [], []
    for row in rows:
        if "ais" not in row:
            lines.append([row["model"], row.get("error") or row.get("skipped", "")] + ["-"] * 7)
            continue
        lines.append([row["model"], str(row["images"]), _pm(row["elbo"], 2), _pm(row["iwae"], 2),
                      _pm(row["ais"], 2), _pm(row["ais_minus_iwae"]), f"{row['ais_minus_iwae']['z']:.1f}",
                      f"{row['ess']:.1f} of {row['chains']}", f"{row['ais_seconds'] / 60:.1f}"])
        bdmc = row["bdmc"]
        gaps.append([row["model"], str(bdmc["images"]), str(bdmc["steps"]), _pm(bdmc["lower"], 2),
                     _pm(bdmc["upper"], 2), _pm(bdmc["gap"]), "yes" if bdmc["gap"]["mean"] < GAP_TARGET else "no",
                     f"{bdmc['seconds'] / 60:.1f}"])
    if not lines:
        return []
    first = next((row for row in rows if "ais" in row), rows[0])
    return [f"### MNIST test images: AIS-{first.get('steps')} ({first.get('chains')} chains from q(z|x), 10 "
            f"leapfrog steps) against IWAE-{first.get('iwae_k')} on the same images", "",
            "Nats per image (log-likelihoods, not negated), mean ± standard error over the images; AIS − IWAE is "
            "the per-image difference.", "",
            markdown(["run", "images", "ELBO", "IWAE-K", "AIS", "AIS − IWAE-K", "(in SE)", "ESS", "AIS minutes"],
                     lines, [False] + [True] * 8), "",
            f"### BDMC on images simulated from each model (target: gap below {GAP_TARGET} nats per image)", "",
            markdown(["run", "images", "steps", "AIS lower", "BDMC upper", "gap", "below target", "minutes"],
                     gaps, [False] + [True] * 7), ""]


def _kind_tables(rows: list) -> list[str]:
    lines = []
    for row in rows:
        if "bdmc" not in row:
            lines.append([row["model"], row.get("error") or row.get("skipped", "")] + ["-"] * 10)
            continue
        bdmc = row["bdmc"]
        lines.append([row["model"], row.get("start", "guide"), str(row["points"]), _pm(row["elbo"], 1),
                      _pm(row["iwae"], 1), _pm(row["ais"], 1),
                      _pm(row["ais_minus_iwae"], 2), _pm(bdmc["lower"], 1), _pm(bdmc["upper"], 1),
                      _pm(bdmc["gap"], 2), f"{100 * row['relative_gap']:.2f}%",
                      f"[{bdmc['kl_lower']['mean']:.1f}, {bdmc['kl_upper']['mean']:.1f}]"])
    if not lines:
        return []
    first = next((row for row in rows if "bdmc" in row), rows[0])
    return [f"### Topic and spike models: the ladder (AIS-{first.get('steps')}, {first.get('chains')} chains from "
            f"q(z|x) (guide) or the prior; IWAE-{first.get('iwae_k')}) on test points and on as many simulated ones",
            "",
            f"Nats per document or trial, mean ± standard error over the points. Target: a BDMC gap below "
            f"{100 * KIND_GAP_TARGET:.0f}% of |log p(x)| on simulated data.", "",
            markdown(["model", "start", "points", "test ELBO", "test IWAE-K", "test AIS", "AIS − IWAE-K",
                      "simulated AIS", "BDMC upper", "gap", "gap / abs log p(x)", "KL(q ‖ p) bracket"],
                     lines, [False, False] + [True] * 10), ""]


def table(result: dict) -> str:
    rows = {row["model"]: row for row in result["rows"]}
    kinds = [row for row in result["rows"] if row["model"] in KINDS]
    mnist = [row for row in result["rows"] if row["model"] not in EXACT + KINDS]
    return "\n".join(_exact_tables(rows) + _kind_tables(kinds) + _mnist_tables(mnist))


BENCHMARK = Benchmark(
    name="evidence", description=__doc__.split("\n\n")[0], cases=cases, load=load, case="model", table=table,
    settings={"data_dir": Setting(DATA_DIR, "the shared data directory (mnist/)"),
              "runs": Setting(["1layer-elbo-1", "1layer-iwae-5", "1layer-iwae-50-dreg"],
                              "runs of results/mnist/ to measure", quick=["1layer-iwae-5"]),
              "images": Setting(1000, "the first N test images", quick=50),
              "steps": Setting(500, "AIS steps on the test images", quick=20),
              "chains": Setting(4, "AIS and BDMC chains per image"),
              "iwae_k": Setting(5000, "K of the IWAE bound compared", quick=100),
              "sim_images": Setting(200, "images simulated from each model for BDMC", quick=20),
              "bdmc_steps": Setting(500, "BDMC steps on the simulated images", quick=20),
              "exact_steps": Setting([10, 100, 1000], "schedules on the exact models", quick=[10, 100], type=lambda
                                     text: [int(part) for part in text.split(",")]),
              "exact_points": Setting(200, "points simulated from the linear-Gaussian model", quick=50),
              "exact_chains": Setting(16, "chains per point on the exact models"),
              "exact_cases": Setting(list(EXACT), "exact cases to run"),
              "kinds": Setting(list(KINDS), "topic and spike cases to run", quick=["topics-bbc"]),
              "topics_start": Setting("prior", "where the topic model's chains start (ProdLDA's q(z|x) puts some "
                                      "simulated documents' true z thousands of nats into its tail)",
                                      choices=ais.START),
              "kind_epochs": Setting(50, "epochs of ProdLDA (the GP-VAE trains 4x as many)", quick=2),
              "kind_points": Setting(100, "test points (and simulated ones) of the topic and spike models",
                                     quick=10),
              "seed": Setting(0, "seed")},
    contestants=[Contestant("elbo.ais", run, key="ais")])


if __name__ == "__main__":
    sys.exit(main(BENCHMARK))
