"""What a trained spike-train model says about recordings: each trial's posterior latents and firing rates, with
their standard deviations under q (``elbo infer``).

Under ``q(z | x_in)`` bin ``t``'s latent is ``N(μ_t, diag σ²_t)`` (each dimension a Gauss–Markov chain), so neuron
``n``'s log-rate ``η_tn = c_n · z_t + d_n`` is ``N(m_tn, s²_tn)`` with ``m = c_n · μ_t + d_n`` and ``s² = Σ_j c_nj²
σ²_tj``, and its rate ``exp(η)`` is log-normal: mean ``exp(m + s²/2)`` (``PoissonGPVAE.rates``) and standard
deviation ``mean · sqrt(exp(s²) - 1)``. Everything in closed form, one pass of the encoder.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch

from ..._files import write_atomically
from ...errors import InputError
from .datasets import read_recording
from .model import PoissonGPVAE

__all__ = ["infer", "infer_file"]

_BATCH = 500  # trials per pass of the encoder


@torch.no_grad()
def infer(model: PoissonGPVAE, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The posterior summaries of the trials ``x: (M, T, N)`` (counts, on the model's device and in its dtype), on
    the CPU: ``rates`` and ``rates_sd`` (spikes/s, ``(M, T, N)``), ``latents`` and ``latents_sd`` (``(M, T, d)``),
    the mean and standard deviation under q (module docstring). Only the held-in neurons of ``x`` are read."""
    model.check_data(x)
    parts: dict[str, list] = {"rates": [], "rates_sd": [], "latents": [], "latents_sd": []}
    for start in range(0, len(x), _BATCH):
        q = model.guide(x[start:start + _BATCH])
        rates = model.rates(q)
        log_rate_variance = q.variance @ model.readout.weight.square().T  # s² (B, T, N)
        for name, value in (("rates", rates), ("rates_sd", rates * torch.expm1(log_rate_variance).sqrt()),
                            ("latents", q.mean), ("latents_sd", q.variance.sqrt())):
            parts[name].append(value.cpu())
    return {name: torch.cat(values) for name, values in parts.items()}


def infer_file(model: PoissonGPVAE, data, out, *, force: bool = False, run: str = "the run") -> dict:
    """``infer`` on every trial of the recordings ``data`` (a ``.npz`` file, ``datasets.read_recording``), written to
    the ``.npz`` file ``out`` (atomically; an existing one refused unless ``force``) with the recordings' ``time``,
    ``bin_size`` and ``condition`` (where they have one), ``held_in`` (the neurons the encoder read) and the model's
    ``timescales`` (seconds). ``run`` names the model in errors. Returns what was written, as numpy arrays.

    Refused, in one line: a model that is not of spike trains, recordings whose trials have another number of bins
    or neurons than the model's, or another bin size."""
    if not isinstance(model, PoissonGPVAE):
        raise InputError(f"{run} holds a {type(model).__name__}, not a model of spike trains: infer needs a run of "
                         f"kind 'spikes'", argument="run")
    out = Path(out)
    if out.exists() and not force:
        raise InputError(f"{out} exists already: pass force=True to replace it", argument="out")
    if not out.parent.is_dir():
        raise InputError(f"{out.parent}: no such directory", argument="out")
    recording = read_recording(data, argument="data", bin_size=model.config.bin_size)  # spike times: the run's bins
    _check_fits(recording, model.config, data, run)
    parameter = next(model.parameters())
    counts = torch.as_tensor(recording["counts"], dtype=parameter.dtype, device=parameter.device)
    result = {name: value.numpy() for name, value in infer(model, counts).items()}
    result |= {"time": recording["time"], "bin_size": np.asarray(recording["bin_size"]),
               "held_in": np.asarray(model.held_in), "timescales": model.log_timescale.detach().exp().cpu().numpy()}
    if recording["condition"] is not None:
        result["condition"] = recording["condition"]
    buffer = io.BytesIO()
    np.savez(buffer, **result)
    write_atomically(out, buffer.getvalue())
    return result


def _check_fits(recording: dict, config, data, run: str) -> None:
    """The recordings' bins, neurons and bin size must be the model's."""
    _, num_bins, num_neurons = recording["counts"].shape
    if (num_bins, num_neurons) != (config.num_bins, config.num_neurons):
        raise InputError(f"{data}: its trials have {num_bins} bins and {num_neurons} neurons, but {run}'s model was "
                         f"trained on {config.num_bins} bins and {config.num_neurons} neurons (the first "
                         f"{config.held_in} held in)", argument="data")
    if not math.isclose(recording["bin_size"], config.bin_size, rel_tol=1e-9):
        raise InputError(f"{data}: its bins are {recording['bin_size']:g} s, but {run}'s model was trained on bins of "
                         f"{config.bin_size:g} s", argument="data")
