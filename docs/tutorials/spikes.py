# # Spike trains: latent trajectories
#
# Simulate spike counts from a Lorenz system seen through a Poisson readout (the benchmark of LFADS), so that the
# true latents and firing rates are known; fit the Poisson GP-VAE (a Gaussian-process prior over each trial's
# latent trajectory, an encoder over the held-in neurons); then score it as the field does: bits per spike,
# co-smoothing of the held-out neurons (co-bps) and, because the truth is known, R² of the rates and the latents.
#
# Run it: `python docs/tutorials/spikes.py [OUT]` (by default `runs/tutorial-spikes`); `ELBO_TUTORIAL_QUICK=1`
# simulates fewer trials and trains for fewer epochs: a few seconds. The same from the command line:
#
# ```bash
# elbo simulate lorenz --out runs/tutorial-spikes/lorenz.npz --seed 0
# elbo train --data spikes --data-dir runs/tutorial-spikes/lorenz.npz --batch-size 182 --lr 0.01 \
#     --schedule cosine --epochs 1000 --out runs/tutorial-spikes/gpvae
# elbo evaluate runs/tutorial-spikes/gpvae
# elbo infer runs/tutorial-spikes/gpvae --data runs/tutorial-spikes/lorenz.npz --out runs/tutorial-spikes/rates.npz
# ```

import os
import sys
from pathlib import Path

import torch

from elbo import evaluate, runs, train
from elbo.configs import TrainConfig
from elbo.models.spikes import SpikeConfig
from elbo.models.spikes.infer import infer
from elbo.models.spikes.simulate import save_simulation

QUICK = os.environ.get("ELBO_TUTORIAL_QUICK") == "1"
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/tutorial-spikes")
OUT.mkdir(parents=True, exist_ok=True)

# ## A recording with known latents
#
# `save_simulation` writes what a recording holds, `counts` (trials × bins × neurons) and `bin_size` (seconds),
# with the truth beside it (`rates`, `latents`): the `.npz` format that `--data spikes` reads for your own data.

recording = OUT / "lorenz.npz"
simulation = save_simulation(recording, seed=0, force=True, num_conditions=20 if QUICK else 65)
print(f"counts {simulation['counts'].shape} (trials, bins, neurons), bin size {float(simulation['bin_size'])} s")

# ## Fit
#
# `SpikeConfig` sets the model: 3 latent dimensions, each with a squared-exponential GP prior over time whose
# timescale is learned. The loader holds out the last fifth of the neurons: the encoder never sees them, and
# predicting them from the others is co-smoothing. Full-batch training with a cosine learning rate.

config = TrainConfig(data="spikes", data_dir=str(recording), model=SpikeConfig(latent_dim=3),
                     epochs=20 if QUICK else 1000, batch_size=182, lr=0.01, schedule="cosine")
train.train(config, OUT / "gpvae", force=True, progress=False)

# ## Scores
#
# `evaluate_run` reports the bounds per trial (nats), and the kind's own measures under `"metrics"`: bits per spike
# (the log-likelihood's gain over each neuron's mean rate), co-bps of the held-out neurons, and the R² of the
# inferred rates and latents against the truth (latents after the best affine map, since they are identified only
# up to one).

result = evaluate.evaluate_run(OUT / "gpvae", num_samples=50 if QUICK else 1000, iwae_samples=())
metrics = result["metrics"]
print(f"test ELBO {result['elbo']['mean']:.2f} nats per trial, log p(x) {result['log_likelihood']['mean']:.2f}")
for name in ("bits_per_spike", "co_bps", "rate_r2", "latent_r2"):
    print(f"{name:<15} {metrics[name]:.3f}")

# ## Posterior trajectories
#
# `infer` gives the posterior mean and standard deviation of every trial's rates and latents under q, as
# `elbo infer` writes them to a file.

run = runs.load_run(OUT / "gpvae")
with torch.no_grad():
    posterior = infer(run.model, run.data.test)
print(f"latents {tuple(posterior['latents'].shape)}, mean posterior sd {posterior['latents_sd'].mean().item():.3f}")
