"""The demo: fit q on a model with a known answer and put every bound next to the exact log p(x); then train a
VAE and an IWAE on the bundled 8x8 digits and measure them."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch.distributions import kl_divergence
from tqdm.auto import tqdm

from . import bounds, exact, families

__all__ = ["linear_gaussian_demo", "digits_demo"]


def linear_gaussian_demo(*, seed: int = 0, steps: int = 1000, num_samples: int = 1000, progress: bool = True):
    """Fit a mean-field and a full-rank q by maximising the ELBO on one data point of a linear-Gaussian model
    (z ~ N(0, I_2), x | z ~ N(Wz + b, 0.5² I_5)), then estimate ELBO and IWAE-K with ``num_samples`` samples.

    Returns rows of ``family, elbo, iwae, log_evidence, kl`` in nats; ``kl`` is the exact KL(q ‖ p(z|x)).
    """
    torch.manual_seed(seed)
    model = exact.LinearGaussian(torch.randn(5, 2), torch.randn(5), 0.5)
    x = model.marginal().sample((1,)).detach()
    log_evidence = model.log_evidence(x).item()
    rows = []
    for name, guide in (("MeanField", families.MeanField(2, batch_shape=(1,))),
                        ("FullRank", families.FullRank(2, batch_shape=(1,)))):
        optimizer = torch.optim.Adam(guide.parameters(), lr=0.02)
        for _ in tqdm(range(steps), desc=f"fit {name}", disable=not progress, leave=False):
            optimizer.zero_grad()
            loss = -bounds.elbo(model, guide, x, 8, form="mc", estimator="stl").mean()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            elbo = bounds.elbo(model, guide, x, num_samples, form="mc").item()
            iwae = bounds.iwae(model, guide, x, num_samples).item()
            kl = kl_divergence(exact.as_multivariate_normal(guide()), model.posterior(x)).item()
        rows.append({"family": name, "elbo": elbo, "iwae": iwae, "log_evidence": log_evidence, "kl": kl})
    return rows


def digits_demo(*, out="runs/demo", seed: int = 0, epochs: int = 500, num_samples: int = 5000,
                progress: bool = True) -> dict:
    """Train a small VAE (ELBO) and an IWAE (K = 5) with the same architecture (64-64-64-8, tanh) on scikit-learn's
    8x8 digits, dynamically binarized, into ``out/vae`` and ``out/iwae-5`` (replacing their run files), and
    evaluate each on the test set: ELBO, IWAE-50, ``log p(x)`` by IWAE with ``num_samples`` samples, active units;
    then write each run's ``report.html`` (with its ELBO surgery over the training set).

    Returns ``rows`` (``name``, ``path``, ``train_seconds``, ``evaluation``, ``report``) and the sizes of the data.
    """
    from .configs import TrainConfig
    from .evaluate import evaluate_run
    from .kinds import load_data
    from .models.images.config import VAEConfig
    from .report import write_report
    from .train import train

    architecture = VAEConfig(latent_dims=(8,), hidden_dims=((64, 64),))
    rows = []
    models = (("VAE", "elbo", 1), ("IWAE (K=5)", "iwae", 5))
    for name, objective, k in tqdm(models, desc=f"digits: train ({epochs} epochs) and evaluate", unit="model",
                                   disable=not progress, leave=False):
        config = TrainConfig(data="digits", model=architecture, objective=objective, num_samples=k, epochs=epochs,
                             batch_size=100, seed=seed)
        path = Path(out) / ("vae" if objective == "elbo" else f"iwae-{k}")
        started = time.perf_counter()
        train(config, path, force=True, progress=False)  # its per-epoch lines would bury the table
        train_seconds = time.perf_counter() - started
        evaluation = evaluate_run(path, num_samples=num_samples, iwae_samples=(50,), seed=seed)
        report = write_report(path, compute=True, seed=seed)
        rows.append({"name": name, "path": str(path), "train_seconds": train_seconds, "evaluation": evaluation,
                     "report": str(report)})
    images = load_data("digits")
    return {"rows": rows, "epochs": epochs, "num_samples": num_samples, "num_train": len(images.train),
            "num_test": len(images.test)}
