"""The demo: fit q on a model with a known answer and put every bound next to the exact log p(x)."""

from __future__ import annotations

import torch
from torch.distributions import kl_divergence
from tqdm.auto import tqdm

from . import bounds, exact, families

__all__ = ["linear_gaussian_demo"]


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
