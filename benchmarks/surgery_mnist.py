"""How long ELBO surgery takes over all 60000 MNIST training images, for the 1-layer preset of Burda et al. (2015)
(784-200-200-50, tanh). Target: no more than 5 minutes on 2 cores.

Surgery needs a trained encoder, but its cost does not depend on how well trained it is: ``S·N`` exponentials for
the aggregate posterior ``log q(z)`` (S draws per point, N points) and ``M·N·D`` for the marginals ``log q(z_j)``
(M = ``--dimension-samples``, D = 50). Without ``--run``, the script trains the preset as a VAE for ``--epochs``
epochs (1 by default, untimed) into ``--out``, or reuses the run already there. It prints one table row: the time of
``elbo surgery RUN`` (``elbo.surgery.surgery_run``: loading and checking the data, encoding, every term) and of
the surgery itself, with the machine's load average, since other jobs sharing the cores slow it down.

    python benchmarks/surgery_mnist.py --threads 2                 # and --threads 1
    python benchmarks/surgery_mnist.py --run runs/iwae50 --num-samples 2 --threads 2
    python benchmarks/surgery_mnist.py --quick                     # 2000 images, 500 marginal draws

On the benchmark harness (``_harness.py``): one contestant, with the harness's options, JSON and peak RSS.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from _harness import DATA_DIR, REPO, Benchmark, Contestant, Setting, main, markdown  # beside this script

from elbo import surgery, train
from elbo.configs import SurgeryConfig
from elbo.models.images.config import PRESETS

TARGET_SECONDS = 300


def trained(case, args) -> Path:
    """``--run``, or the preset trained for ``--epochs`` into ``--out`` (untimed), or the run already there."""
    path = Path(args.run or args.out)
    if not args.run and not (path / "checkpoint.pt").is_file():
        config = train.TrainConfig(data="mnist", data_dir=str(args.data_dir), val_size=0, objective="elbo",
                                   model=PRESETS["burda1"], epochs=args.epochs, batch_size=100, seed=args.seed)
        print(f"training the 1-layer preset for {args.epochs} epoch(s) into {path} (not timed)", file=sys.stderr,
              flush=True)
        train.train(config, path, progress=False)
    return path


def run(path: Path, args) -> dict:
    """``elbo surgery RUN``, timed whole (loading and checking the data, encoding, every term)."""
    started = time.perf_counter()
    result = surgery.surgery_run(path, data_dir=str(args.data_dir), num_samples=args.num_samples,
                                 max_points=args.images, dimension_samples=args.dimension_samples,
                                 block_size=args.block_size, seed=args.seed)
    return {**result, "command_seconds": time.perf_counter() - started, "torch_threads": torch.get_num_threads(),
            "run": str(path)}


def table(result: dict) -> str:
    lines, terms = [], []
    for row in result["rows"]:
        if "error" in row or "skipped" in row:
            lines.append([row.get("error") or row["skipped"]] + ["-"] * 7)
            continue
        lines.append([str(row["num_points"]), str(row["latent_dim"]), str(row["num_samples"]),
                      str(row["dimension_samples"]), str(row["torch_threads"]), f"{row['seconds']:.0f}",
                      f"{row['command_seconds']:.0f}", str(TARGET_SECONDS)])
        terms += [f"{row['run']} (epoch {row['epoch']}), nats per image; standard errors {row['standard_errors']}:", ""]
        terms += [f"- {label.strip()}: {row[name]['mean']:.3f} ± {row[name]['stderr']:.3f}"
                  for name, label in surgery.SURGERY_LABELS.items()]
        terms += [f"- log N = {row['log_num_points']:.3f}"]
    return "\n".join([markdown(["images N", "D", "draws K", "marginal draws", "threads", "surgery s",
                                "`elbo surgery` s", "target s"], lines, [True] * 8), "", *terms])


BENCHMARK = Benchmark(
    name="surgery_mnist", description=__doc__.split("\n\n")[0], load=trained, table=table,
    settings={"data_dir": Setting(DATA_DIR, "the shared data directory (mnist/*-idx3-ubyte(.gz))"),
              "run": Setting("", "an MNIST run directory to take apart (default: train the preset into --out)"),
              "epochs": Setting(1, "epochs of the preset trained when there is no --run"),
              "out": Setting(REPO / "runs" / "bench" / "surgery-burda1", "where the preset is trained"),
              "images": Setting(60000, "the first N training images", quick=2000),
              "num_samples": Setting(1, "draws of z per training image"),
              "dimension_samples": Setting(SurgeryConfig.dimension_samples, "draws for the total correlation and the "
                                                                            "dimension-wise KL", quick=500),
              "block_size": Setting(surgery.BLOCK_SIZE, "block size of the mixtures"),
              "seed": Setting(0, "seed of the training and of the surgery")},
    contestants=[Contestant("elbo surgery", run, key="surgery")])


if __name__ == "__main__":
    sys.exit(main(BENCHMARK))
