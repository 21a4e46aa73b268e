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

    python benchmarks/eval_speed.py --data-dir ../shared/data --compile
    python benchmarks/eval_speed.py --data-dir ../shared/data --nproc 2 --compile --memory
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time

import torch

from elbo import distributed, evaluate
from elbo.kinds import load_data
from elbo.models.images.config import PRESETS
from elbo.models.images.model import make_vae
from elbo.runs import load_run


def decoder_gflop(num_images: int, num_samples: int) -> float:
    """Matrix-product GFLOP of the decoder (50-200-200-784) over every sample: nearly all of the work."""
    return 2 * num_images * num_samples * (50 * 200 + 200 * 200 + 200 * 784) / 1e9


def reset_peak_rss() -> None:
    """Start this process's peak resident set size (VmHWM) afresh at its current size (Linux: clear_refs 5), so
    that the evaluation's peak is not hidden under the larger one of loading the data."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def peak_rss_mib() -> float:
    """This process's peak resident set size since the last ``reset_peak_rss``, in MiB."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024  # kB


def model_and_images(args):
    if args.run is not None:
        run = load_run(args.run, data_dir=args.data_dir)
        return run.model, run.data.test[:args.images].float(), f"run {args.run} (epoch {run.epoch})"
    images = load_data("mnist", data_dir=args.data_dir, val_size=0, download=False)  # test: binarized, fixed seed
    torch.manual_seed(0)
    model = make_vae(dataclasses.replace(PRESETS["burda1"], image_shape=(28, 28), likelihood="bernoulli"))
    model.init_from_data(images.train.float())
    return model.eval(), images.test[:args.images].float(), "an untrained model (the time does not depend on it)"


def log_likelihood(model, test: torch.Tensor, args) -> torch.Tensor:
    """This process's block of the test images, gathered: ``L_K`` of every image."""
    with distributed.joined("cpu"):
        torch.manual_seed(distributed.rank_seed(0))
        return distributed.map_blocks(lambda x: evaluate.iwae_per_point(
            model, model.guide, x, args.k, batch_size=args.batch_size, chunk_size=args.chunk_size,
            compile=args.compile), test)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="holds mnist/*-idx3-ubyte(.gz)")
    parser.add_argument("--run", help="a run directory of `elbo train` on MNIST [default: an untrained model]")
    parser.add_argument("--k", type=int, default=5000, help="importance samples per image")
    parser.add_argument("--images", type=int, default=10000, help="the first N test images")
    parser.add_argument("--batch-size", type=int, default=100, help="images per batch")
    parser.add_argument("--chunk-size", type=int, default=20, help="samples per chunk")
    parser.add_argument("--compile", action="store_true", help="the log joint through torch.compile")
    parser.add_argument("--nproc", type=int, default=1, help="processes, each with a block of the images")
    parser.add_argument("--threads", type=int, help="threads per process [default: the cores shared out]")
    parser.add_argument("--memory", action="store_true", help="also: peak RSS with K = 500 and K = 5000")
    parser.add_argument("--json", action="store_true", help="print one JSON line (used by --memory)")
    args = parser.parse_args(argv)
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.nproc)
    torch.set_num_threads(threads)
    model, test, what = model_and_images(args)
    load = os.getloadavg()[0]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # torch, loading the data, the model
    reset_peak_rss()
    started = time.perf_counter()
    if args.nproc == 1:
        values = log_likelihood(model, test, args)
    else:
        values = distributed.launch(log_likelihood, args.nproc, model, test, args, threads=threads)
    seconds = time.perf_counter() - started
    mean, stderr = evaluate.mean_and_stderr(values)
    result = {"images": len(test), "k": args.k, "seconds": seconds, "nproc": args.nproc, "threads": threads,
              "compile": args.compile, "batch_size": args.batch_size, "chunk_size": args.chunk_size,
              "log_likelihood": mean, "stderr": stderr,
              "gflops": decoder_gflop(len(test), args.k) / seconds, "load_before": load,
              "load_after": os.getloadavg()[0],
              "peak_rss_before_mib": rss_before,
              # this process's peak since the reset, and with --nproc the largest of its worker processes' (whole
              # lives: starting torch, receiving the model and the images, evaluating)
              "peak_rss_mib": max(peak_rss_mib(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{what}; {len(test)} MNIST test images, K = {args.k}, {args.nproc} process(es) x {threads} thread(s), "
          f"batch {args.batch_size} x chunk {args.chunk_size}, compile {args.compile}")
    print(f"log p(x) ≈ {mean:.2f} ± {stderr:.2f} nats; {seconds:.1f} s ({len(test) / seconds:.1f} images/s, decoder "
          f"{result['gflops']:.1f} GFLOP/s); peak RSS {result['peak_rss_mib']:.0f} MiB while evaluating "
          f"({rss_before:.0f} MiB while loading the data); load average "
          f"{load:.2f} before, {result['load_after']:.2f} after")
    if args.memory:
        for k in (500, 5000):
            command = [sys.executable, __file__, "--data-dir", args.data_dir, "--k", str(k), "--images", "500",
                       "--batch-size", str(args.batch_size), "--chunk-size", str(args.chunk_size), "--json",
                       *(["--compile"] if args.compile else [])]
            child = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
            print(f"K = {k:>4} on 500 images: peak RSS {child['peak_rss_mib']:.1f} MiB while evaluating "
                  f"({child['peak_rss_before_mib']:.0f} MiB while loading the data; {child['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
