"""Table 1 of Burda et al. (2015), "Importance weighted autoencoders", on MNIST: test negative log-likelihood of
VAEs and IWAEs with K ∈ {1, 5, 50} samples, one and two stochastic layers, next to the paper's numbers.

The protocol: dynamically binarized MNIST (all 60000 training images, resampled every epoch), the paper's
architectures (784-200-200-50, and 784-[200,200]-100-[100,100]-50, tanh), batch 20, Adam(0.9, 0.999, ε = 1e-4),
the schedule of 3^i epochs at 1e-3 · 10^(-i/7) for i = 0..7 (3280 epochs), and log p(x) estimated on the test set
by importance sampling with K = 5000 (the test images binarized once, with a fixed seed).

Full length wants a GPU (``--device cuda``). On a CPU, ``--epochs`` and ``--budget-minutes`` cut the training
short (the table says how many epochs each run reached), and ``--test-images`` evaluates on the first N test
images; on a CPU with neither ``--epochs`` nor ``--budget-minutes``, it makes the README's short run (3 epochs,
VAE K=1 and IWAE K=5, 50, on 500 test images: about 20 minutes on 2 cores). An existing run directory under
``--out`` is resumed, not replaced.

    python benchmarks/mnist_iwae.py --data-dir ../shared/data --device cuda          # the full protocol
    python benchmarks/mnist_iwae.py --data-dir ../shared/data --epochs 3 --runs elbo-1 iwae-50 --test-images 500
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from elbo import evaluate, train
from elbo.models.images.config import PRESETS

# Table 1 of Burda et al. (2015), MNIST, negative log-likelihood in nats. Only the figures this project was
# given are filled in; IWAE with K = 1 is the VAE with K = 1 (the same bound).
PAPER_NLL = {(1, "elbo", 1): 86.76, (1, "iwae", 1): 86.76, (1, "iwae", 50): 84.78,
             (2, "elbo", 1): 85.33, (2, "iwae", 1): 85.33, (2, "iwae", 50): 82.90}
RUNS = ("elbo-1", "elbo-5", "elbo-50", "iwae-5", "iwae-50")
LABELS = {"elbo": "VAE", "iwae": "IWAE"}  # the objectives as the table names them


def _run_name(text: str) -> tuple[str, int]:
    objective, _, k = text.partition("-")
    objective = "elbo" if objective == "vae" else objective  # "vae-K": the VAE, trained on the ELBO
    if objective not in ("elbo", "iwae") or not k.isdigit() or int(k) < 1:
        raise argparse.ArgumentTypeError(f"expected OBJECTIVE-K such as elbo-1 (or vae-1) or iwae-50, got {text!r}")
    return objective, int(k)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="holds mnist/*-idx3-ubyte(.gz)")
    parser.add_argument("--runs", type=_run_name, nargs="+", metavar="OBJECTIVE-K",
                        help=f"which cells of the table [default: {' '.join(RUNS)}]")
    parser.add_argument("--layers", type=int, nargs="+", choices=(1, 2), default=[1, 2],
                        help="stochastic layers")
    parser.add_argument("--epochs", type=int, help=f"at most this many epochs [default: {train.IWAE_SCHEDULE_EPOCHS}]")
    parser.add_argument("--budget-minutes", type=float, help="training time of all runs together, split evenly; "
                                                             "each run stops at the end of an epoch past its share")
    parser.add_argument("--k", type=int, default=5000, help="importance samples for log p(x)")
    parser.add_argument("--test-images", type=int, help="evaluate on the first N test images [default: all 10000]")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/mnist_iwae", help="run directories go here")
    args = parser.parse_args(argv)
    if args.device == "cpu" and args.epochs is None and args.budget_minutes is None:
        print("On a CPU with neither --epochs nor --budget-minutes: the README's short run, not the full protocol.")
        args.epochs, args.budget_minutes = 3, 24
        args.runs = args.runs or [_run_name(r) for r in ("elbo-1", "iwae-5", "iwae-50")]
        args.test_images = args.test_images or 500
    args.epochs = args.epochs or train.IWAE_SCHEDULE_EPOCHS
    args.runs = args.runs or [_run_name(r) for r in RUNS]
    if args.threads:
        torch.set_num_threads(args.threads)

    cells = [(layers, objective, k) for layers in args.layers for objective, k in args.runs]
    share = None if args.budget_minutes is None else 60 * args.budget_minutes / len(cells)
    rows = []
    for layers, objective, k in cells:
        config = train.TrainConfig(
            data="mnist", data_dir=args.data_dir, val_size=0, objective=objective, num_samples=k,
            model=PRESETS[f"burda{layers}"], epochs=args.epochs, schedule="iwae", lr=1e-3, batch_size=20,
            seed=args.seed, device=args.device)
        path = Path(args.out) / f"{layers}layer-{objective}-{k}"
        started = time.perf_counter()
        if (path / "checkpoint.pt").is_file():
            train.resume(path, progress=False, time_limit=share)
        else:
            train.train(config, path, progress=False, time_limit=share)
        train_minutes = (time.perf_counter() - started) / 60
        result = evaluate.evaluate_run(path, num_samples=args.k, iwae_samples=(), max_points=args.test_images,
                                       device=args.device, seed=args.seed)
        metrics = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
        rows.append({"layers": layers, "objective": objective, "k": k, "epochs": result["epoch"],
                     "train_minutes": train_minutes, "examples_per_sec": metrics[-1]["examples_per_sec"],
                     "test_images": result["num_points"], "nll": -result["log_likelihood"]["mean"],
                     "nll_stderr": result["log_likelihood"]["stderr"], "active_units": result["active_units"],
                     "paper_nll": PAPER_NLL.get((layers, objective, k))})
        print(_row(rows[-1]), flush=True)
    (Path(args.out) / "table.json").write_text(json.dumps(rows, indent=2) + "\n")
    print()
    print(_table(rows, args))


def _row(row: dict) -> str:
    paper = "—" if row["paper_nll"] is None else f"{row['paper_nll']:.2f}"
    units = "+".join(map(str, row["active_units"]))
    return (f"| {row['layers']} | {LABELS[row['objective']]} | {row['k']} | {row['epochs']} | "
            f"{row['train_minutes']:.1f} | {row['examples_per_sec']:.0f} | {row['nll']:.2f} ± {row['nll_stderr']:.2f}"
            f" | {units} | {paper} |")


def _table(rows: list, args) -> str:
    header = ("| layers | objective | K | epochs | train min | ex/s | test NLL (nats) | active units | paper NLL "
              "(3280 epochs) |\n|---|---|---|---|---|---|---|---|---|")
    return "\n".join([header, *map(_row, rows)]) + (
        f"\n\nNLL: -log p(x) by importance sampling with K = {args.k} on {rows[0]['test_images']} test images, "
        f"± its standard error over the images.")


if __name__ == "__main__":
    main()
