# # Images: a VAE and an IWAE
#
# Train a variational autoencoder on the ELBO and an importance weighted autoencoder on the bound `L_K`, on
# scikit-learn's 8x8 digits (bundled: no download), then measure both the same way: the test ELBO, `log p(x)`
# by importance sampling, active units, and the ELBO taken apart by ELBO surgery.
#
# Run it: `python docs/tutorials/images.py [OUT]` (runs go into OUT, by default `runs/tutorial-images`).
# `ELBO_TUTORIAL_QUICK=1` trains for a few epochs and estimates with fewer samples: a few seconds.
# The same runs from the command line:
#
# ```bash
# elbo train --data digits --objective iwae --k 5 --epochs 200 --batch-size 100 --out runs/tutorial-images/iwae-5
# elbo evaluate runs/tutorial-images/iwae-5 --k 5000
# elbo surgery runs/tutorial-images/iwae-5
# elbo report runs/tutorial-images/iwae-5
# ```

import os
import sys
from pathlib import Path

from elbo import evaluate, runs, surgery, train
from elbo.configs import TrainConfig
from elbo.models.images import VAEConfig

QUICK = os.environ.get("ELBO_TUTORIAL_QUICK") == "1"
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/tutorial-images")
EPOCHS = 5 if QUICK else 200
NUM_SAMPLES = 100 if QUICK else 5000  # K of the importance-sampled log p(x); 5000 is the standard

# ## One architecture, two objectives
#
# A config is a frozen dataclass: `TrainConfig` holds the run's settings and, in `model`, the config of the
# model kind (here `VAEConfig`: 64-64 tanh layers to 8 latent units, the decoder mirrored). The data set's
# kind picks the likelihood: Bernoulli for binarized digits. `objective="iwae"` with `num_samples=5` trains on
# `L_5`; the IWAE's gradient estimator is `estimator="reparam"` unless told `"dreg"` or `"stl"`.

architecture = VAEConfig(latent_dims=(8,), hidden_dims=((64, 64),))
configs = {
    "vae": TrainConfig(data="digits", model=architecture, objective="elbo", epochs=EPOCHS, batch_size=100),
    "iwae-5": TrainConfig(data="digits", model=architecture, objective="iwae", num_samples=5, epochs=EPOCHS,
                          batch_size=100),
}

# ## Train
#
# `train.train` writes a run directory: `config.json`, `metrics.jsonl` (one line per epoch), `checkpoint.pt`
# (written atomically after every epoch). `force=True` replaces an earlier run of this tutorial.

for name, config in configs.items():
    train.train(config, OUT / name, force=True, progress=False)

# ## Measure
#
# `evaluate.evaluate_run` reads the run back and writes `evaluation.json`: the test ELBO, the IWAE bounds and
# `log p(x)` (IWAE with K = `num_samples`), each a mean over test images with its standard error, in nats.

print(f"{'model':<8} {'test ELBO':>10} {'log p(x)':>10} {'gap':>7} {'active':>7}")
results = {}
for name in configs:
    result = evaluate.evaluate_run(OUT / name, num_samples=NUM_SAMPLES, iwae_samples=(50,))
    results[name] = result
    elbo_, log_px = result["elbo"]["mean"], result["log_likelihood"]["mean"]
    active = f"{result['active_units'][0]}/{result['latent_dims'][0]}"
    print(f"{name:<8} {elbo_:>10.3f} {log_px:>10.3f} {log_px - elbo_:>7.3f} {active:>7}")

# The gap between `log p(x)` and the ELBO is `KL(q(z|x) ‖ p(z|x))`, averaged over the test images. Each model is
# best at its own objective: trained long enough, the VAE has the higher ELBO, the IWAE the higher `log p(x)`.
#
# ## Why the bound is what it is
#
# `runs.load_run` gives back the config, the model at its last checkpoint (in eval mode), the data and the
# metrics; `evaluate.log_likelihood` is the importance-sampled estimate for any model and guide, with no run
# directory (its samples are new, so it differs from `evaluation.json`'s within their errors). ELBO surgery
# (Hoffman & Johnson 2016) takes the ELBO over the training images apart with the exact aggregate posterior:
# `ELBO = reconstruction - I[n; z] - KL(q(z) ‖ p(z))`, where the index-code mutual information is at most log N.

run = runs.load_run(OUT / "vae")
q = run.model.guide(run.data.test)  # q(z|x) of every test image: Independent(Normal(loc, scale), 1), batch (297,)
mean, stderr = evaluate.log_likelihood(run.model, run.model.guide, run.data.test, num_samples=NUM_SAMPLES)
print(f"vae log p(x) again, from the model and its guide: {mean:.3f} ± {stderr:.3f} over {q.batch_shape[0]} images")
terms = surgery.elbo_surgery(run.model, run.model.guide, run.data.train, dimension_samples=500 if QUICK else 5000)
for term in ("reconstruction", "index_code_mi", "marginal_kl", "elbo"):
    print(f"surgery {term:<15} {terms[term]['mean']:9.3f} ± {terms[term]['stderr']:.3f}")
print(f"surgery log N           {terms['log_num_points']:9.3f}")

# The terms add up: reconstruction minus the two KL terms is the ELBO, to floating point.
