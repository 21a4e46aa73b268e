# # Data parallelism
#
# Train the same IWAE with one process and with two, and check the promise of `elbo train --nproc N`: N
# processes compute what one process computes with the same global batch, up to the order of float sums. Then
# resume the two-process run with one process, and evaluate with two.
#
# Run it: `python docs/tutorials/parallel.py [OUT]` (by default `runs/tutorial-parallel`). `ELBO_TUTORIAL_QUICK=1`
# trains for one epoch; each launch of processes costs a few seconds of start-up (each imports torch). The same
# from the command line, and with torchrun on one machine or several:
#
# ```bash
# elbo train --data digits --objective iwae --k 5 --epochs 2 --batch-size 100 --nproc 2 --out runs/tutorial-parallel/two
# torchrun --standalone --nproc-per-node 2 -m elbo train --data digits --objective iwae --k 5 --epochs 2 \
#     --batch-size 100 --out runs/tutorial-parallel/torchrun
# elbo train --resume runs/tutorial-parallel/two --nproc 1
# elbo evaluate runs/tutorial-parallel/two --k 500 --nproc 2
# ```

import json
import os
import sys
from pathlib import Path

import torch

from elbo import evaluate, runs, train
from elbo.configs import TrainConfig
from elbo.models.images import VAEConfig

QUICK = os.environ.get("ELBO_TUTORIAL_QUICK") == "1"
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/tutorial-parallel")
EPOCHS = 1 if QUICK else 5

# Processes are started with `spawn`: each re-imports this file, so a script that starts processes does its
# work under `if __name__ == "__main__":` (at the end), and the sections below are functions.
#
# ## One global batch, split by rows
#
# `batch_size` is the global batch: with `nproc=2` each process takes a block of 50 rows of every batch of 100.
# Every process draws the same permutation, binarization and noise for the whole global batch from the run's
# seeded streams and keeps its own rows, so the processes together compute the one-process step. Float64 makes
# the comparison sharp: what differs is only the order in which the gradients' sums are added.


def one_and_two_processes():
    torch.set_default_dtype(torch.float64)  # the launched processes start with this default dtype too
    config = TrainConfig(data="digits", model=VAEConfig(latent_dims=(8,), hidden_dims=((64, 64),)),
                         objective="iwae", num_samples=5, estimator="dreg", epochs=EPOCHS, batch_size=100)
    train.train(config, OUT / "one", force=True, progress=False)
    train.train(config, OUT / "two", nproc=2, force=True, progress=False)
    one, two = runs.load_run(OUT / "one").model, runs.load_run(OUT / "two").model
    difference = max((p1 - p2).abs().max().item() for p1, p2 in zip(one.parameters(), two.parameters()))
    print(f"after {EPOCHS} epoch(s), 1 process against 2: largest parameter difference {difference:.1e}")


# ## Resume with any number of processes
#
# A checkpoint holds every random state, so a run stopped after any epoch resumes exactly; the number of
# processes may change. Here the two-process run gets one more epoch (its `config.json` raised to allow it),
# from one process.


def resume_with_one_process():
    config_file = OUT / "two" / "config.json"
    settings = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**settings, "epochs": EPOCHS + 1}))
    train.resume(OUT / "two", nproc=1, progress=False)
    print(f"resumed: {runs.load_run(OUT / 'two').epoch} epochs")


# ## Evaluate in parallel
#
# `evaluate_run(..., nproc=2)` scores a block of the test images in each process, each with its own random stream,
# and gathers the per-image values; only the first process writes `evaluation.json`. (The quick path evaluates in
# this process, to spare a second start-up of processes; `tests/test_distributed.py` checks the parallel one.)


def evaluate_with_two_processes():
    result = evaluate.evaluate_run(OUT / "two", num_samples=100 if QUICK else 1000, iwae_samples=(),
                                   nproc=1 if QUICK else 2)
    print(f"test log p(x) {result['log_likelihood']['mean']:.3f} ± {result['log_likelihood']['stderr']:.3f} "
          f"from {result['processes']} processes over {result['num_points']} images")


if __name__ == "__main__":
    one_and_two_processes()
    resume_with_one_process()
    evaluate_with_two_processes()
