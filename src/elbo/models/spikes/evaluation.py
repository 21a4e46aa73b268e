"""What ``elbo evaluate`` adds for a model of spike counts: bits per spike of the test trials from their
importance-sampled log-likelihood, co-smoothing bits per spike of the held-out neurons, and, where the data are a
simulation with a known truth, the R² of the inferred rates and latents."""

from __future__ import annotations

import torch

from . import metrics as measures

__all__ = ["metrics", "inferred"]

_BATCH = 500  # trials per pass of the encoder


@torch.no_grad()
def inferred(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's rates (spikes/s, ``(M, T, N)``) and latent means (``(M, T, d)``) of the trials ``x``, on the CPU."""
    rates, latents = [], []
    for start in range(0, len(x), _BATCH):
        batch = x[start:start + _BATCH]
        rates.append(model.firing_rates(batch).cpu())
        latents.append(model.latents(batch).cpu())
    return torch.cat(rates), torch.cat(latents)


def metrics(run, test: torch.Tensor, per_point: dict) -> dict:
    """``bits_per_spike`` (from IWAE-K of every test trial, against each neuron's mean training rate); ``co_bps`` of
    the held-out neurons, where there are any; ``rate_r2`` and ``latent_r2`` against the truth, where it is known."""
    model, data = run.model, run.data
    test, train, held_in = test.cpu(), data.train.cpu(), data.held_in
    rates, latents = inferred(model, test.to(next(model.parameters()).device))
    result = {"bits_per_spike": measures.bits_per_spike(per_point["log_likelihood"].cpu(), test, train,
                                                        bin_size=data.bin_size)}
    if held_in < data.num_neurons:
        result["co_bps"] = measures.co_bps(test[..., held_in:], rates[..., held_in:], train[..., held_in:],
                                           bin_size=data.bin_size)
    true_rates, true_latents = data.truth("test")
    if true_rates is not None:
        result["rate_r2"] = measures.rate_r2(true_rates[:len(test)], rates)
    if true_latents is not None:
        result["latent_r2"] = measures.latent_r2(true_latents[:len(test)], latents)
    return result
