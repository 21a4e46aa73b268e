"""How long ELBO surgery takes over all 60000 MNIST training images, for the 1-layer preset of Burda et al. (2015)
(784-200-200-50, tanh). Target: no more than 5 minutes on 2 cores.

Surgery needs a trained encoder, but its cost does not depend on how well trained it is: ``S·N`` exponentials for
the aggregate posterior ``log q(z)`` (S draws per point, N points) and ``M·N·D`` for the marginals ``log q(z_j)``
(M = ``--dimension-samples``, D = 50). Without ``--run``, the script trains the preset as a VAE for ``--epochs``
epochs (1 by default, untimed) into ``--out``, or reuses the run already there. It prints one table row: the time of
``elbo surgery RUN`` (``elbo.surgery.surgery_run``: loading and checking the data, encoding, every term) and of
the surgery itself, with the machine's load average, since other jobs sharing the cores slow it down.

    python benchmarks/surgery_mnist.py --data-dir ../shared/data
    python benchmarks/surgery_mnist.py --run runs/iwae50 --k 2 --threads 2
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from elbo import surgery, train
from elbo.configs import SurgeryConfig
from elbo.models.images.config import PRESETS

TARGET_SECONDS = 300


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="holds mnist/*-idx3-ubyte(.gz)")
    parser.add_argument("--run", help="an MNIST run directory to take apart [default: train the preset into --out]")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the preset trained when there is no --run")
    parser.add_argument("--out", default="runs/bench/surgery-burda1", help="where the preset is trained")
    parser.add_argument("--k", type=int, default=1, help="draws of z per training image")
    parser.add_argument("--dimension-samples", type=int, default=SurgeryConfig.dimension_samples,
                        help="draws for the total correlation and the dimension-wise KL")
    parser.add_argument("--block-size", "--chunk-size", type=int, default=surgery.BLOCK_SIZE,
                        help="block size of the mixtures")
    parser.add_argument("--threads", type=int, help="CPU threads for torch [default: torch's choice]")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    path = Path(args.run or args.out)
    if args.run is None and not (path / "checkpoint.pt").is_file():
        config = train.TrainConfig(data="mnist", data_dir=args.data_dir, val_size=0, objective="elbo",
                                   model=PRESETS["burda1"], epochs=args.epochs, batch_size=100, seed=args.seed)
        print(f"training the 1-layer preset for {args.epochs} epoch(s) into {path} (not timed)", flush=True)
        train.train(config, path, progress=False)

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    result = surgery.surgery_run(path, data_dir=args.data_dir, num_samples=args.k,
                                 dimension_samples=args.dimension_samples, block_size=args.block_size, seed=args.seed)
    seconds = time.perf_counter() - started
    load_after = os.getloadavg()[0]

    print("| images N | D | draws K | marginal draws | threads | surgery s | `elbo surgery` s | target s | load avg "
          "(before, after) |\n|---|---|---|---|---|---|---|---|---|")
    print(f"| {result['num_points']} | {result['latent_dim']} | {result['num_samples']} | "
          f"{result['dimension_samples']} | {torch.get_num_threads()} | {result['seconds']:.0f} | {seconds:.0f} | "
          f"{TARGET_SECONDS} | {load_before:.1f}, {load_after:.1f} |")
    print()
    print(f"{path} (epoch {result['epoch']}), nats per image; standard errors {result['standard_errors']}:")
    for name, label in surgery.SURGERY_LABELS.items():
        print(f"  {label:<30} {result[name]['mean']:>9.3f} ± {result[name]['stderr']:.3f}")
    print(f"  log N = {result['log_num_points']:.3f}; {os.cpu_count()} CPU(s) on this machine")


if __name__ == "__main__":
    main()
