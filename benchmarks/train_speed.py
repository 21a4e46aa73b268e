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

    python benchmarks/train_speed.py --data-dir ../shared/data            # torch's threads (2 on this machine)
    python benchmarks/train_speed.py --threads 1 --repeats 5 --skip-pyro
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import resource
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from elbo import train
from elbo.kinds import load_data
from elbo.models.images.config import PRESETS
from elbo.models.images.datasets import binarize
from elbo.models.images.model import make_vae

OBJECTIVES = (("VAE", "elbo", 1), ("IWAE K=5", "iwae", 5), ("IWAE K=50", "iwae", 50))
PEAK_SIZE = 2048


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


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="holds mnist/train-images-idx3-ubyte(.gz)")
    parser.add_argument("--threads", type=int, help="torch's CPU threads [default: torch's choice]")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved repetitions; the fastest is reported")
    parser.add_argument("--seconds", type=float, default=0.5, help="about how long each contestant runs per "
                                                                    "repetition")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--skip-pyro", action="store_true")
    parser.add_argument("--skip-compile", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, source = images(args.data_dir, 10000)
    print(f"{source}, batches of {args.batch_size}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"load average {os.getloadavg()[0]:.2f} at the start")

    rows, peaks = [], []
    peak_a, peak_b = torch.randn(PEAK_SIZE, PEAK_SIZE), torch.randn(PEAK_SIZE, PEAK_SIZE)
    for name, objective, num_samples in OBJECTIVES:
        config = train.TrainConfig(objective=objective, num_samples=num_samples, batch_size=args.batch_size)
        contestants = {"ours": ours(config, x)}
        if not args.skip_compile:
            contestants["ours --compile"] = ours(dataclasses.replace(config, compile=True), x)
        contestants["minimal"] = minimal(num_samples, x, fused=False)
        contestants["minimal, fused Adam"] = minimal(num_samples, x, fused=True)
        if not args.skip_pyro:
            contestants["Pyro"] = pyro_svi(num_samples, x)
        warmup = {}
        for label, step in contestants.items():  # compiling happens here, in the first steps
            started = time.perf_counter()
            time_steps(step, x, args.batch_size, 3, 0)
            warmup[label] = time.perf_counter() - started
        num_steps = {label: max(5, round(args.seconds / time_steps(step, x, args.batch_size, 3, 3)))
                     for label, step in contestants.items()}
        seconds = {label: [] for label in contestants}
        for repeat in range(args.repeats):
            for label, step in contestants.items():
                seconds[label].append(time_steps(step, x, args.batch_size, num_steps[label], 10 + repeat * 50))
                peaks.append(matmul_gflops(peak_a, peak_b))  # between every two contestants: the same moments
        flops = matmul_flops(args.batch_size, num_samples)
        for label in contestants:
            best = min(seconds[label])
            rows.append({"objective": name, "contestant": label, "examples_per_sec": args.batch_size / best,
                         "median": args.batch_size / statistics.median(seconds[label]),
                         "gflops": flops / best / 1e9, "warmup_sec": warmup[label]})
        print(f"{name}: done", flush=True)
    peak = max(peaks)
    print()
    print(table(rows, peak))
    print()
    print(f"fp32 matmul peak: {peak:.1f} GFLOP/s (the fastest of {len(peaks)} {PEAK_SIZE}x{PEAK_SIZE} torch.mm, "
          f"median {statistics.median(peaks):.1f}); peak RSS of this process: {peak_rss_mib():.0f} MiB; load "
          f"average {os.getloadavg()[0]:.2f} at the end")
    print(targets(rows, peak))


def table(rows: list, peak: float) -> str:
    lines = ["| objective | step | examples/s | (median) | × minimal | × Pyro | GFLOP/s | % of peak "
             "| first 3 steps (s) |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        same = {r["contestant"]: r for r in rows if r["objective"] == row["objective"]}
        pyro = same.get("Pyro")
        lines.append(
            f"| {row['objective']} | {row['contestant']} | {row['examples_per_sec']:.0f} | ({row['median']:.0f}) | "
            f"{row['examples_per_sec'] / same['minimal']['examples_per_sec']:.2f} | "
            f"{'—' if pyro is None else format(row['examples_per_sec'] / pyro['examples_per_sec'], '.2f')} | "
            f"{row['gflops']:.1f} | {100 * row['gflops'] / peak:.0f}% | {row['warmup_sec']:.1f} |")
    return "\n".join(lines)


def targets(rows: list, peak: float) -> str:
    """The issue's targets, each PASS or FAIL with its number."""
    def rate(objective, contestant):
        return next((r["examples_per_sec"] for r in rows if r["objective"] == objective
                     and r["contestant"] == contestant), None)

    lines = []
    for objective, _, _ in OBJECTIVES:
        for label in ("ours", "ours --compile"):
            if rate(objective, label) is None:
                continue
            ratio = rate(objective, label) / rate(objective, "minimal")
            lines.append(f"{'PASS' if ratio >= 0.95 else 'FAIL'}  {objective}: {label} at {ratio:.2f}× the "
                         f"minimal loop (target ≥ 0.95)")
            if rate(objective, "Pyro") is not None:
                ratio = rate(objective, label) / rate(objective, "Pyro")
                lines.append(f"{'PASS' if ratio >= 2 else 'FAIL'}  {objective}: {label} at {ratio:.2f}× Pyro "
                             f"(target ≥ 2)")
    for label in ("ours", "ours --compile"):
        row = next((r for r in rows if r["objective"] == "IWAE K=50" and r["contestant"] == label), None)
        if row is not None:
            share = row["gflops"] / peak
            lines.append(f"{'PASS' if share >= 0.5 else 'FAIL'}  IWAE K=50: {label} at {100 * share:.0f}% of the "
                         f"fp32 matmul peak (target ≥ 50%)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
