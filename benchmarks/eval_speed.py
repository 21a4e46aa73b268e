"""Evaluation speed: the importance-sampled log-likelihood (IWAE bound with K = 5000) of the 10000 MNIST test
images under the IWAE paper's one-layer model (784-200-200-50, tanh), as ``elbo evaluate`` computes it
(``elbo.evaluate.iwae_per_point``), timed from the first image to the last, with the peak RSS.

The model is untrained unless ``--run`` names a run directory: the work per sample (the decoder on every z, the
Bernoulli log-likelihood of 784 pixels) does not depend on the parameters' values, so neither does the time.
``--nproc N`` splits the images over N processes (``elbo evaluate --nproc N``); the threads are then shared out.

Memory does not grow with K: ``--memory`` runs the same evaluation on the first 500 images with K = 500 and
K = 5000, each in a fresh process, and prints the peak RSS of each while it evaluates (the peak is reset after
loading MNIST, whose own peak is larger). Without chunks, the decoder's logits alone would take
``K · batch_size · 784 · 4`` bytes: 1.5 GiB for K = 5000 and batches of 100 images.

    python benchmarks/eval_speed.py --compile --threads 2
    python benchmarks/eval_speed.py --nproc 2 --compile --memory
    python benchmarks/eval_speed.py --quick --memory                # 200 images, K = 100

On the benchmark harness (``_harness.py``): ``--threads`` are each process's; the peak RSS is the harness's (the
process's peak while evaluating, or its largest worker's); ``--memory`` adds two contestants, each in a process of
its own.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
from types import SimpleNamespace

import torch
from _harness import DATA_DIR, Benchmark, Column, Contestant, Setting, main  # beside this script

from elbo import distributed, evaluate
from elbo.kinds import load_data
from elbo.models.images.config import PRESETS
from elbo.models.images.model import make_vae
from elbo.runs import load_run

MEMORY_IMAGES = 500  # --memory's


def decoder_gflop(num_images: int, num_samples: int) -> float:
    """Matrix-product GFLOP of the decoder (50-200-200-784) over every sample: nearly all of the work."""
    return 2 * num_images * num_samples * (50 * 200 + 200 * 200 + 200 * 784) / 1e9


def model_and_images(case, args) -> SimpleNamespace:
    if args.run:
        run = load_run(args.run, data_dir=args.data_dir)
        return SimpleNamespace(model=run.model, test=run.data.test[:max(args.images, MEMORY_IMAGES)].float(),
                               what=f"run {args.run} (epoch {run.epoch})")
    images = load_data("mnist", data_dir=args.data_dir, val_size=0, download=False)  # test: binarized, fixed seed
    torch.manual_seed(0)
    model = make_vae(dataclasses.replace(PRESETS["burda1"], image_shape=(28, 28), likelihood="bernoulli"))
    model.init_from_data(images.train.float())
    return SimpleNamespace(model=model.eval(), test=images.test[:max(args.images, MEMORY_IMAGES)].float(),
                           what="an untrained model (the time does not depend on it)")


def log_likelihood(model, test: torch.Tensor, args, k: int) -> torch.Tensor:
    """This process's block of the test images, gathered: ``L_K`` of every image."""
    with distributed.joined("cpu"):
        torch.manual_seed(distributed.rank_seed(0))
        return distributed.map_blocks(lambda x: evaluate.iwae_per_point(
            model, model.guide, x, k, batch_size=args.batch_size, chunk_size=args.chunk_size,
            compile=args.compile), test)


def run(data, args, k: int | None = None, images: int | None = None) -> dict:
    """``L_K`` of the first ``images`` test images (default: ``--images``, ``--num-samples``), timed from the first
    image to the last."""
    k, test = k or args.num_samples, data.test[:images or args.images]
    started = time.perf_counter()
    if args.nproc == 1:
        values = log_likelihood(data.model, test, args, k)
    else:
        values = distributed.launch(log_likelihood, args.nproc, data.model, test, args, k, threads=args.threads)
    seconds = time.perf_counter() - started
    mean, stderr = evaluate.mean_and_stderr(values)
    return {"images": len(test), "k": k, "seconds": seconds, "images_per_s": len(test) / seconds,
            "log_likelihood": mean, "stderr": stderr, "gflops": decoder_gflop(len(test), k) / seconds,
            "model": data.what}


def memory(k: int) -> Contestant:
    return Contestant(f"K = {k} on {MEMORY_IMAGES} images", functools.partial(run, k=k, images=MEMORY_IMAGES),
                      key=f"memory-{k}",
                      when=lambda args: args.memory, isolated=True)


BENCHMARK = Benchmark(
    name="eval_speed", description=__doc__.split("\n\n")[0], load=model_and_images,
    settings={"data_dir": Setting(DATA_DIR, "the shared data directory (mnist/*-idx3-ubyte(.gz))"),
              "run": Setting("", "a run directory of `elbo train` on MNIST (default: an untrained model)"),
              "num_samples": Setting(5000, "importance samples per image", quick=100),
              "images": Setting(10000, "the first N test images", quick=200),
              "batch_size": Setting(100, "images per batch"), "chunk_size": Setting(20, "samples per chunk"),
              "compile": Setting(False, "the log joint through torch.compile"),
              "nproc": Setting(1, "processes, each with a block of the images"),
              "memory": Setting(False, "also: the peak RSS with K = 500 and K = 5000 on 500 images, each in a "
                                       "process of its own")},
    contestants=[Contestant("elbo evaluate's L_K", run, key="evaluate"), memory(500), memory(5000)],
    columns=[Column("images", "images"), Column("K", "k"), Column("log p(x) ± stderr", lambda row: (
        f"{row['log_likelihood']:.2f} ± {row['stderr']:.2f}")), Column("s", "seconds", ".1f"),
             Column("images/s", "images_per_s", ".1f"), Column("decoder GFLOP/s", "gflops", ".1f")])


if __name__ == "__main__":
    sys.exit(main(BENCHMARK))
