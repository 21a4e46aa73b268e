"""Training speed: our training step next to a minimal hand-written PyTorch loop and Pyro's SVI, on the IWAE
paper's one-layer architecture (784-200-200-50, tanh, Bernoulli decoder) with batches of 20 MNIST images.

For the VAE (ELBO, K = 1) and IWAE with K = 5 and K = 50, in one process, with interleaved repetitions (each
contestant takes its turn in every repetition, so that a change in the machine's load hits all alike), the
fastest repetition of each (the one the rest of the machine disturbed least; the median is printed beside it):

- ``ours``: ``elbo.train.step`` on ``elbo.train.make_objective`` and ``make_optimizer``, the exact code ``elbo
  train`` runs for each batch (the batches are binarized beforehand, here and for every contestant);
- ``ours --compile``: the same with ``TrainConfig(compile=True)`` (``elbo train --compile``);
- ``minimal``: the same maths written out in this file, plain PyTorch: the encoder and decoder as
  ``nn.Sequential``, ``z = loc + scale · ε``, ``log p(x|z) = Σ x·logits - softplus(logits)``, the closed-form KL
  for the VAE and ``logsumexp`` of the log-weights for the IWAE, ``torch.optim.Adam`` as constructed by default;
  ``minimal, fused Adam`` is the same loop with ``Adam(fused=True)``, as ``make_optimizer`` builds it;
- ``Pyro``: ``SVI`` with ``Trace_ELBO`` (the VAE; its KL is estimated by Monte Carlo) or ``RenyiELBO(alpha=0)``
  with ``vectorize_particles=True`` (the IWAE bound), Pyro's Adam, validation off.

GFLOP/s counts the matrix products, analytically: forward ``2·rows·in·out`` for every linear layer (B rows in
the encoder, K·B in the decoder), the same again for the weight gradients, and again for the input gradients
of every layer but the first (nothing needs the gradient with respect to the images): just under 3× forward.
The element-wise work (tanh, softplus, the log-densities, Adam) is not counted. The peak is the fastest
2048 x 2048 fp32 ``torch.mm``, timed after every contestant's turn, with the same threads.

    python benchmarks/train_speed.py --threads 2 --repeats 11      # both cores of this machine
    python benchmarks/train_speed.py --repeats 5 --skip pyro        # one thread (the harness's default)
    python benchmarks/train_speed.py --quick                        # 2 repetitions of about 0.1 s each

On the benchmark harness (``_harness.py``): every contestant is built, compiled and warmed up once per objective
(``prepare``), then timed in every repetition, in an order shuffled afresh for each; the peak is a contestant of its
own, timed in every repetition like the others.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import statistics
import sys
import time
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from _harness import DATA_DIR, Benchmark, Contestant, Setting, main, markdown  # beside this script
from torch import nn

from elbo import train
from elbo.kinds import load_data
from elbo.models.images.config import PRESETS
from elbo.models.images.datasets import binarize
from elbo.models.images.model import make_vae

OBJECTIVES = (("VAE", "elbo", 1), ("IWAE K=5", "iwae", 5), ("IWAE K=50", "iwae", 50))
PEAK_SIZE = 2048


@functools.cache
def images(data_dir, count: int) -> tuple[torch.Tensor, str]:
    """``count`` MNIST training images, binarized once with a fixed seed; random binary images of the same shape
    when MNIST is not in ``data_dir``."""
    try:
        pixels = load_data("mnist", data_dir=data_dir, val_size=0, download=False).train[:count].float()
        source = "MNIST"
    except (FileNotFoundError, ValueError):
        pixels, source = torch.rand(count, 784), "random binary images (MNIST not found)"
    return binarize(pixels, seed=0), source


# --- the contestants: each is a function x -> None that takes one optimizer step on batch x ---------------------

def ours(config: train.TrainConfig, x_init: torch.Tensor):
    model = make_vae(dataclasses.replace(PRESETS["burda1"], image_shape=(28, 28), likelihood="bernoulli"))
    model.init_from_data(x_init)
    objective, optimizer = train.make_objective(model, config), train.make_optimizer(model, config)
    return lambda x: train.step(objective, optimizer, x)


def mlp(sizes):
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.Tanh()]
    return nn.Sequential(*layers[:-1])


def minimal(num_samples: int, x_init: torch.Tensor, *, fused: bool):
    """The maths of the VAE (closed-form KL) or the IWAE bound, written out."""
    encoder, decoder = mlp((784, 200, 200, 100)), mlp((50, 200, 200, 784))
    with torch.no_grad():
        decoder[-1].bias.copy_(torch.logit(x_init.mean(0).clamp(1e-3, 1 - 1e-3)))
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-3, betas=(0.9, 0.999),
                                 eps=1e-4, fused=fused or None)

    def bound(x):
        loc, log_scale = encoder(x).chunk(2, -1)
        scale = log_scale.exp()
        eps = torch.randn(num_samples, *loc.shape)
        z = loc + scale * eps
        logits = decoder(z)
        log_px = (x * logits - F.softplus(logits)).sum(-1)  # (K, B)
        if num_samples == 1:
            kl = 0.5 * (loc**2 + scale**2 - 1 - 2 * log_scale).sum(-1)
            return log_px.mean(0) - kl
        log_pz_over_qz = (-0.5 * z**2 + 0.5 * eps**2 + log_scale).sum(-1)  # the log 2π terms cancel
        return torch.logsumexp(log_px + log_pz_over_qz, 0) - math.log(num_samples)

    def step(x):
        loss = -bound(x).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def pyro_svi(num_samples: int, x_init: torch.Tensor):
    import pyro
    import pyro.distributions as dist
    from pyro.infer import SVI, RenyiELBO, Trace_ELBO

    pyro.clear_param_store()
    pyro.enable_validation(False)
    encoder, decoder = mlp((784, 200, 200, 100)), mlp((50, 200, 200, 784))
    with torch.no_grad():
        decoder[-1].bias.copy_(torch.logit(x_init.mean(0).clamp(1e-3, 1 - 1e-3)))

    def model(x):
        pyro.module("decoder", decoder)
        with pyro.plate("images", len(x)), pyro.poutine.scale(scale=1 / len(x)):  # the mean over the batch
            z = pyro.sample("z", dist.Normal(x.new_zeros(50), 1.0).to_event(1))
            pyro.sample("x", dist.Bernoulli(logits=decoder(z)).to_event(1), obs=x)

    def guide(x):
        pyro.module("encoder", encoder)
        with pyro.plate("images", len(x)), pyro.poutine.scale(scale=1 / len(x)):
            loc, log_scale = encoder(x).chunk(2, -1)
            pyro.sample("z", dist.Normal(loc, log_scale.exp()).to_event(1))

    loss = Trace_ELBO() if num_samples == 1 else RenyiELBO(alpha=0, num_particles=num_samples,
                                                           vectorize_particles=True, max_plate_nesting=1)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-4}), loss)
    return svi.step


# --- measuring ---------------------------------------------------------------------------------------------------

def matmul_flops(batch_size: int, num_samples: int) -> int:
    """FLOPs of the matrix products of one step (forward and backward; see the module docstring)."""
    encoder, decoder = (784, 200, 200, 100), (50, 200, 200, 784)

    def forward(rows, sizes):
        return sum(2 * rows * n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))

    forward_flops = forward(batch_size, encoder) + forward(num_samples * batch_size, decoder)
    first_layer = 2 * batch_size * encoder[0] * encoder[1]
    return forward_flops + forward_flops + (forward_flops - first_layer)


def time_steps(step, x: torch.Tensor, batch_size: int, num_steps: int, offset: int) -> float:
    """Seconds per step over ``num_steps`` consecutive batches starting at batch ``offset``."""
    count = len(x) // batch_size
    started = time.perf_counter()
    for i in range(offset, offset + num_steps):
        j = i % count
        step(x[j * batch_size:(j + 1) * batch_size])
    return (time.perf_counter() - started) / num_steps


def matmul_gflops(a: torch.Tensor, b: torch.Tensor) -> float:
    """GFLOP/s of one ``a @ b`` (square fp32 matrices)."""
    started = time.perf_counter()
    torch.mm(a, b)
    return 2 * len(a) ** 3 / (time.perf_counter() - started) / 1e9


# --- the benchmark ----------------------------------------------------------------------------------------------


def load(objective: str, settings) -> SimpleNamespace:
    x, source = images(str(settings.data_dir), 10000)
    loss, num_samples = next((loss, k) for name, loss, k in OBJECTIVES if name == objective)
    config = train.TrainConfig(objective=loss, num_samples=num_samples, batch_size=settings.batch_size)
    return SimpleNamespace(x=x, source=source, config=config, num_samples=num_samples)


def timed(make):
    """A contestant's ``prepare``: its step function built by ``make(case)``, its first 3 steps timed (compiling
    happens there), and the number of steps that take about ``--seconds``."""

    def prepare(case, settings):
        torch.manual_seed(0)
        step = make(case)
        started = time.perf_counter()
        time_steps(step, case.x, settings.batch_size, 3, 0)
        warmup = time.perf_counter() - started
        num_steps = max(5, round(settings.seconds / time_steps(step, case.x, settings.batch_size, 3, 3)))
        return SimpleNamespace(case=case, step=step, warmup=warmup, num_steps=num_steps, turns=0)

    return prepare


def run(state, settings) -> dict:
    """One repetition: seconds per step over ``num_steps`` batches, each repetition on batches of its own."""
    seconds = time_steps(state.step, state.case.x, settings.batch_size, state.num_steps, 10 + state.turns * 50)
    state.turns += 1
    flops = matmul_flops(settings.batch_size, state.case.num_samples)
    return {"seconds_per_step": seconds, "examples_per_sec": settings.batch_size / seconds,
            "gflops": flops / seconds / 1e9, "warmup_sec": state.warmup, "data": state.case.source}


def peak(state, settings) -> dict:
    return {"gflops": max(matmul_gflops(*state) for _ in range(3))}


def fold(rows: list) -> list[dict]:
    """One row per (objective, contestant) from its repetitions: the fastest (the one the rest of the machine
    disturbed least) and the median."""
    done = [row for row in rows if "examples_per_sec" in row]
    folded = {}
    for row in done:
        folded.setdefault((row["objective"], row["contestant"]), []).append(row)
    return [{**max(group, key=lambda r: r["examples_per_sec"]),
             "median": statistics.median(r["examples_per_sec"] for r in group)} for group in folded.values()]


def table(result: dict) -> str:
    rows = fold(result["rows"])
    peaks = [row["gflops"] for row in result["rows"] if row["contestant"] == PEAK and "gflops" in row]
    top = max(peaks) if peaks else None
    lines = []
    for row in rows:
        same = {r["contestant"]: r for r in rows if r["objective"] == row["objective"]}
        base, pyro = same.get("minimal"), same.get("Pyro")
        lines.append([row["objective"], row["contestant"], f"{row['examples_per_sec']:.0f}", f"({row['median']:.0f})",
                      "—" if base is None else f"{row['examples_per_sec'] / base['examples_per_sec']:.2f}",
                      "—" if pyro is None else f"{row['examples_per_sec'] / pyro['examples_per_sec']:.2f}",
                      f"{row['gflops']:.1f}", "—" if top is None else f"{100 * row['gflops'] / top:.0f}%",
                      f"{row['warmup_sec']:.1f}"])
    failed = [f"- {r['objective']} / {r['contestant']}: {r.get('error') or r.get('skipped')}"
              for r in result["rows"] if "error" in r or "skipped" in r]
    data = next((row["data"] for row in rows), "-")
    out = [f"{data}, batches of {result['settings']['batch_size']}; the fastest of "
           f"{result['settings']['repeats']} interleaved repetitions (the median in brackets)\n",
           markdown(["objective", "step", "examples/s", "(median)", "× minimal", "× Pyro", "GFLOP/s", "% of peak",
                     "first 3 steps (s)"], lines, [False, False] + [True] * 7)]
    if top is not None:
        out.append(f"\nfp32 matmul peak: {top:.1f} GFLOP/s (the fastest of {len(peaks)} turns of 3 {PEAK_SIZE}x"
                   f"{PEAK_SIZE} torch.mm, median {statistics.median(peaks):.1f})\n")
        out.append(targets(rows, top))
    return "\n".join(out + (["\nFailed or skipped:", *failed] if failed else []))


def targets(rows: list, peak: float) -> str:
    """The issue's targets, each PASS or FAIL with its number."""
    def rate(objective, contestant):
        return next((r["examples_per_sec"] for r in rows if r["objective"] == objective
                     and r["contestant"] == contestant), None)

    lines = []
    for objective, _, _ in OBJECTIVES:
        for label in ("ours", "ours --compile"):
            if rate(objective, label) is None or rate(objective, "minimal") is None:
                continue
            ratio = rate(objective, label) / rate(objective, "minimal")
            lines.append(f"- {'PASS' if ratio >= 0.95 else 'FAIL'}  {objective}: {label} at {ratio:.2f}× the "
                         f"minimal loop (target ≥ 0.95)")
            if rate(objective, "Pyro") is not None:
                ratio = rate(objective, label) / rate(objective, "Pyro")
                lines.append(f"- {'PASS' if ratio >= 2 else 'FAIL'}  {objective}: {label} at {ratio:.2f}× Pyro "
                             f"(target ≥ 2)")
    for label in ("ours", "ours --compile"):
        row = next((r for r in rows if r["objective"] == "IWAE K=50" and r["contestant"] == label), None)
        if row is not None:
            share = row["gflops"] / peak
            lines.append(f"- {'PASS' if share >= 0.5 else 'FAIL'}  IWAE K=50: {label} at {100 * share:.0f}% of the "
                         f"fp32 matmul peak (target ≥ 50%)")
    return "\n".join(lines)


PEAK = "fp32 matmul peak"
BENCHMARK = Benchmark(
    name="train_speed", description=__doc__.split("\n\n")[0], case="objective", repeats=7,
    cases=lambda settings: [name for name, _, _ in OBJECTIVES], load=load, table=table,
    settings={"data_dir": Setting(DATA_DIR, "the shared data directory (mnist/train-images-idx3-ubyte(.gz))"),
              "seconds": Setting(0.5, "about how long each contestant runs per repetition", quick=0.1),
              "batch_size": Setting(20, "images per step")},
    contestants=[
        Contestant("ours", run, key="ours", prepare=timed(lambda case: ours(case.config, case.x))),
        Contestant("ours --compile", run, key="compile",
                   prepare=timed(lambda case: ours(dataclasses.replace(case.config, compile=True), case.x))),
        Contestant("minimal", run, prepare=timed(lambda case: minimal(case.num_samples, case.x, fused=False))),
        Contestant("minimal, fused Adam", run, key="fused",
                   prepare=timed(lambda case: minimal(case.num_samples, case.x, fused=True))),
        Contestant("Pyro", run, ("pyro-ppl",), key="pyro", prepare=timed(lambda case: pyro_svi(case.num_samples,
                                                                                            case.x))),
        Contestant(PEAK, peak, key="peak",
                   prepare=lambda case, s: (torch.randn(PEAK_SIZE, PEAK_SIZE), torch.randn(PEAK_SIZE, PEAK_SIZE)))])


if __name__ == "__main__":
    sys.exit(main(BENCHMARK))
