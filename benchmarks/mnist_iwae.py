"""Table 1 of Burda et al. (2015), "Importance weighted autoencoders", on MNIST: test negative log-likelihood of
VAEs and IWAEs with K ∈ {1, 5, 50} samples, one and two stochastic layers, next to the paper's numbers and the best
public reproduction's.

Two protocols. The paper's (the default): dynamically binarized MNIST (all 60000 training images, resampled every
epoch), the paper's architectures (784-200-200-50, and 784-[200,200]-100-[100,100]-50, tanh), batch 20,
Adam(0.9, 0.999, ε = 1e-4), the schedule of 3^i epochs at 1e-3 · 10^(-i/7) for i = 0..7 (3280 epochs). It wants a
GPU (``--device cuda``); ``--epochs`` cuts it short, and on a CPU without ``--epochs`` or ``--budget-minutes`` it
makes a short run (3 epochs, VAE K=1 and IWAE K=5, 50, on 500 test images).

The budget protocol (``--budget-minutes M``): the same architecture and objective, trained for M minutes of wall
time each, on the first 50000 training images, with the last 10000 as the validation split (its bound is logged
every epoch); the test images are scored once, at the end. Batch ``--batch-size`` (default 100 here) and a cosine
learning rate from ``--lr`` towards 0 whose length in epochs is fixed before training: two timed epochs (a run of their
own, thrown away, their time counted in the budget) give the seconds an epoch takes, and the run gets as many epochs
as the rest of the budget holds. A run still stops at the end of the epoch that passes the budget, if the machine
slows down; the table says how many epochs were planned and reached.

Either way log p(x) is estimated on the test set by importance sampling with K = 5000 (the test images binarized
once, with a fixed seed), and an existing run directory under ``--out`` is resumed, not replaced (under the budget,
with what is left of it). ``table.json`` in ``--out`` keeps a row per cell; a second invocation with other cells
adds to it, so runs can be made by processes side by side. ``--figure`` plots every run's validation bound against
wall time (``curves.png``).

Not on the benchmark harness (``_harness.py``): this script manages training runs (resumed, under a time budget,
their rows gathered from processes side by side in ``table.json``) rather than timing contestants side by side;
its options mean what the harness's do (``--threads``, default 1; ``--num-samples``; ``--figure PATH``).

    python benchmarks/mnist_iwae.py --data-dir ../shared/data --device cuda          # the full protocol
    python benchmarks/mnist_iwae.py --budget-minutes 60 --runs iwae-5 --layers 1 --threads 1 --out results/mnist
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from elbo import evaluate, runs, train
from elbo.configs import IWAE_ESTIMATORS
from elbo.models.images.config import PRESETS

# Test NLL on MNIST, nats, keyed by (layers, objective, K, estimator): Table 1 of Burda et al. (2015), 3280 epochs,
# and the best public reproduction (nbip/IWAE, TF2, its README at 0216b45). Only the figures this project was given
# are filled in; IWAE with K = 1 is the VAE with K = 1 (the same bound).
PAPER_NLL = {(1, "elbo", 1, "reparam"): 86.76, (1, "iwae", 1, "reparam"): 86.76, (1, "iwae", 5, "reparam"): 85.54,
             (1, "iwae", 50, "reparam"): 84.78, (2, "elbo", 1, "reparam"): 85.33, (2, "iwae", 1, "reparam"): 85.33,
             (2, "iwae", 50, "reparam"): 82.90}
REPRODUCTION_NLL = {(1, "elbo", 1, "reparam"): 86.35, (1, "iwae", 5, "reparam"): 85.18,
                    (1, "iwae", 5, "dreg"): 84.90, (1, "iwae", 50, "reparam"): 84.59,
                    (1, "iwae", 50, "dreg"): 84.32, (2, "iwae", 50, "reparam"): 82.82}
RUNS = ("elbo-1", "elbo-5", "elbo-50", "iwae-5", "iwae-50")
LABELS = {"elbo": "VAE", "iwae": "IWAE"}  # the objectives as the table names them
VALIDATION_IMAGES = TEST_IMAGES = 10000


def _run_name(text: str) -> tuple[str, int, str]:
    objective, k, estimator = (text.split("-") + ["reparam"])[:3] if text.count("-") in (1, 2) else ("", "", "")
    objective = "elbo" if objective == "vae" else objective  # "vae-K": the VAE, trained on the ELBO
    if (objective not in ("elbo", "iwae") or not k.isdigit() or int(k) < 1
            or estimator not in IWAE_ESTIMATORS or (objective == "elbo" and estimator != "reparam")):
        raise argparse.ArgumentTypeError(f"expected OBJECTIVE-K[-ESTIMATOR] such as elbo-1 (or vae-1), iwae-50 or "
                                         f"iwae-50-dreg, got {text!r}")
    return objective, int(k), estimator


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="holds mnist/*-idx3-ubyte(.gz)")
    parser.add_argument("--runs", type=_run_name, nargs="+", metavar="OBJECTIVE-K[-ESTIMATOR]",
                        help=f"which cells of the table [default: {' '.join(RUNS)}]")
    parser.add_argument("--layers", type=int, nargs="+", choices=(1, 2), default=[1, 2],
                        help="stochastic layers")
    parser.add_argument("--epochs", type=int, help=f"at most this many epochs [default: {train.IWAE_SCHEDULE_EPOCHS}]")
    parser.add_argument("--budget-minutes", type=float, help="the budget protocol: minutes of training per run")
    parser.add_argument("--batch-size", type=int, help="[default: 20, or 100 under --budget-minutes]")
    parser.add_argument("--lr", type=float, default=1e-3, help="the (first) learning rate")
    parser.add_argument("--num-samples", type=int, default=5000, help="importance samples for log p(x)")
    parser.add_argument("--test-images", type=int, help="evaluate on the first N test images [default: all 10000]")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    parser.add_argument("--compile", action="store_true", help="train and evaluate through torch.compile")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/mnist_iwae", help="run directories go here")
    parser.add_argument("--figure", type=Path, nargs="?", const=True, default=None, metavar="PATH",
                        help="plot the runs' validation bounds in PATH [default: OUT/curves.png]")
    args = parser.parse_args(argv)
    if args.device == "cpu" and args.epochs is None and args.budget_minutes is None:
        print("On a CPU with neither --epochs nor --budget-minutes: the short run, not the full protocol.")
        args.epochs = 3
        args.runs = args.runs or [_run_name(r) for r in ("elbo-1", "iwae-5", "iwae-50")]
        args.test_images = args.test_images or 500
    args.runs = args.runs or [_run_name(r) for r in RUNS]
    args.batch_size = args.batch_size or (20 if args.budget_minutes is None else 100)
    return args


def main(argv=None) -> None:
    args = _arguments(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    rows = []
    for layers in args.layers:
        for objective, k, estimator in args.runs:
            config = _config(args, layers, objective, k, estimator)
            path = out / (f"{layers}layer-{objective}-{k}" + ("" if estimator == "reparam" else f"-{estimator}"))
            planned = _train(config, path, args)
            rows.append(_measure(path, args, planned))
            print(_row(rows[-1]), flush=True)
    _save_rows(out / "table.json", rows)
    print()
    print(_table(rows, args))
    if args.figure:
        _plot_curves(out, out / "curves.png" if args.figure is True else args.figure)


def _config(args, layers: int, objective: str, k: int, estimator: str, epochs: int | None = None):
    budget = args.budget_minutes is not None
    return train.TrainConfig(
        data="mnist", data_dir=args.data_dir, val_size=VALIDATION_IMAGES if budget else 0, objective=objective,
        num_samples=k, estimator=estimator, model=PRESETS[f"burda{layers}"],
        epochs=epochs or args.epochs or train.IWAE_SCHEDULE_EPOCHS, schedule="cosine" if budget else "iwae",
        lr=args.lr, batch_size=args.batch_size, seed=args.seed, device=args.device, compile=args.compile)


def _train(config, path: Path, args) -> int:
    """Train (or resume) the run at ``path``; returns the epochs its schedule has."""
    if args.budget_minutes is None:
        if (path / "checkpoint.pt").is_file():
            train.resume(path, progress=False)
        else:
            train.train(config, path, progress=False)
        return config.epochs
    budget_file = _budget_file(path)
    if not budget_file.is_file():  # two timed epochs fix the schedule's length (the first includes compiling)
        timing = path.with_name(path.name + ".timing")
        started = time.perf_counter()
        train.train(train.TrainConfig.from_dict({**config.to_dict(), "epochs": 2}), timing, progress=False,
                    force=True)
        timing_seconds = time.perf_counter() - started
        first, second = (record["seconds"] for record in runs.read_metrics(timing))
        shutil.rmtree(timing)
        epochs = max(1, int((60 * args.budget_minutes - timing_seconds - (first - second)) / second))
        budget_file.parent.mkdir(parents=True, exist_ok=True)
        budget_file.write_text(json.dumps({"budget_minutes": args.budget_minutes, "timing_seconds": timing_seconds,
                                           "epoch_seconds": second, "epochs": epochs}) + "\n")
    plan = json.loads(budget_file.read_text())
    if plan.get("finished"):  # trained to its plan or stopped by the budget: measured as it is
        return plan["epochs"]
    left = 60 * plan["budget_minutes"] - _training_seconds(path)
    if (path / "checkpoint.pt").is_file():  # an interrupted run goes on with what is left of the budget
        train.resume(path, progress=False, time_limit=max(left, 0.0))
    else:
        config = train.TrainConfig.from_dict({**config.to_dict(), "epochs": plan["epochs"]})
        train.train(config, path, progress=False, time_limit=left)
    budget_file.write_text(json.dumps({**plan, "finished": True}) + "\n")
    return plan["epochs"]


def _budget_file(path: Path) -> Path:
    """Where the budget protocol keeps the plan of the run at ``path``, beside its directory."""
    return path.with_name(path.name + ".budget.json")


def _training_seconds(path: Path) -> float:
    """The run's training time: the sum of its epochs' (each with its validation and checkpoint) and, under the
    budget, of the timed epochs that planned it."""
    budget_file = _budget_file(path)
    timing = json.loads(budget_file.read_text())["timing_seconds"] if budget_file.is_file() else 0.0
    return timing + sum(record["seconds"] for record in runs.read_metrics(path))


def _evaluation(path: Path, args, epochs: int) -> dict:
    """The run's ``evaluation.json`` if it scored its last epoch (``epochs``) with these settings, else a new
    evaluation."""
    file = path / "evaluation.json"
    if file.is_file():
        found = json.loads(file.read_text())
        if (found["epoch"] == epochs and found["log_likelihood"]["num_samples"] == args.num_samples
                and found["num_points"] == (args.test_images or TEST_IMAGES)):
            return found
    return evaluate.evaluate_run(path, num_samples=args.num_samples, max_points=args.test_images, device=args.device,
                                 seed=args.seed, compile=args.compile)


def _measure(path: Path, args, planned: int) -> dict:
    """The table's row of the run at ``path``."""
    metrics = runs.read_metrics(path)
    config = train.TrainConfig.from_dict(json.loads((path / "config.json").read_text()))
    result = _evaluation(path, args, len(metrics))
    layers = len(config.model.latent_dims)
    cell = (layers, config.objective, config.num_samples, config.estimator)
    return {"run": str(path), "layers": layers, "objective": config.objective, "k": config.num_samples,
            "estimator": config.estimator, "batch_size": config.batch_size, "schedule": config.schedule,
            "epochs": result["epoch"], "planned_epochs": planned,
            "train_minutes": _training_seconds(path) / 60,
            "examples_per_sec": metrics[-1]["examples_per_sec"], "val_bound": metrics[-1].get("val_bound"),
            "test_images": result["num_points"], "nll": -result["log_likelihood"]["mean"],
            "nll_stderr": result["log_likelihood"]["stderr"], "active_units": result["active_units"],
            "paper_nll": PAPER_NLL.get(cell), "reproduction_nll": REPRODUCTION_NLL.get(cell)}


def _save_rows(file: Path, rows: list) -> None:
    """Add ``rows`` to the table in ``file``, replacing the rows of the same runs."""
    kept = json.loads(file.read_text()) if file.is_file() else []
    runs = {row["run"] for row in rows}
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps([row for row in kept if row["run"] not in runs] + rows, indent=2) + "\n")


def _plot_curves(out: Path, file: Path) -> None:
    """Each run's validation bound (its training objective: the ELBO or L_K) against its training time, and for
    an IWAE its validation ELBO dashed, in the same colour."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(figsize=(7, 4.5))
    bounds = []
    for path in sorted(p for p in out.iterdir() if (p / "metrics.jsonl").is_file()):
        metrics = [record for record in runs.read_metrics(path) if "val_bound" in record]
        minutes = (torch.tensor([record["seconds"] for record in metrics]).cumsum(0) / 60).tolist()
        line, = axes.plot(minutes, [record["val_bound"] for record in metrics], label=f"{path.name}: its bound")
        if metrics and metrics[0]["val_bound"] != metrics[0]["val_elbo"]:
            axes.plot(minutes, [record["val_elbo"] for record in metrics], "--", color=line.get_color(),
                      label=f"{path.name}: ELBO")
        bounds += [record[key] for record in metrics for key in ("val_bound", "val_elbo")]
    axes.set(xlabel="training time (minutes)", ylabel="nats per image",
             title="MNIST, the 10000 validation images")
    if bounds:
        axes.set_ylim(sorted(bounds)[len(bounds) // 20] - 1, max(bounds) + 0.5)  # the first epochs' off the axes
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(file, dpi=120)
    print(f"wrote {file}")


def _row(row: dict) -> str:
    anchors = ["—" if row[key] is None else f"{row[key]:.2f}" for key in ("paper_nll", "reproduction_nll")]
    units = "+".join(map(str, row["active_units"]))
    estimator = "" if row["estimator"] == "reparam" else f" ({row['estimator']})"
    val = "—" if row["val_bound"] is None else f"{-row['val_bound']:.2f}"
    return (f"| {row['layers']} | {LABELS[row['objective']]}{estimator} | {row['k']} | {row['batch_size']} | "
            f"{row['epochs']} of {row['planned_epochs']} | {row['train_minutes']:.1f} | "
            f"{row['examples_per_sec']:.0f} | "
            f"{val} | **{row['nll']:.2f} ± {row['nll_stderr']:.2f}** | {units} | {anchors[0]} | {anchors[1]} |")


def _table(rows: list, args) -> str:
    header = ("| layers | objective | K | batch | epochs | train min | ex/s | val -bound | test NLL (nats) "
              "| active units | paper NLL | reproduction NLL |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    return "\n".join([header, *map(_row, rows)]) + (
        f"\n\nNLL: -log p(x) by importance sampling with K = {args.num_samples} on {rows[0]['test_images']} test "
        f"images, "
        f"± its standard error over the images. The paper's figures are after 3280 epochs; the reproduction's are "
        f"nbip/IWAE's.")


if __name__ == "__main__":
    main()
