"""The spikes kind: latent-trajectory models of spike trains, fitted by amortized VI (issue 16).

``config`` (``SpikeConfig``; no torch), ``simulate`` (the Lorenz benchmark of LFADS, with its truth; numpy only),
``datasets`` (``SpikeTrains``: counts of trials × bins × neurons split into train / validation / test trials and
held-in / held-out neurons; the Lorenz data set and a user's ``.npz`` recordings), ``distributions`` (the GP prior
and the banded Gauss–Markov q over trajectories, with their closed-form KL), ``model`` (``PoissonGPVAE``: GP prior,
Poisson readout, bidirectional-GRU encoder of the held-in neurons), ``metrics`` (Poisson log-likelihood, co-bps,
bits per spike, rate and latent R²), ``baselines`` (kernel smoothing, NLB's smoothing baseline of co-smoothing, the
oracle under the true readout), ``evaluation`` (what ``elbo evaluate`` adds for this kind), ``infer`` (posterior
latents and rates of recordings with their standard deviations; ``elbo infer``) and ``figures`` (the report's
raster, latent trajectories and timescales). Bounds are in nats per trial.

Registered in ``elbo.registry`` as kind ``"spikes"`` and data sets ``"lorenz"`` and ``"spikes"``.
"""

from __future__ import annotations

import dataclasses

from ...kinds import Dataset, Kind
from .config import SpikeConfig, SpikeOptions

__all__ = ["KIND", "SpikeConfig", "configure", "LORENZ", "RECORDINGS"]


def configure(config: SpikeConfig, data) -> SpikeConfig:
    """The config with the data's neurons (all, and the held-in ones), bins and bin size."""
    return dataclasses.replace(config, num_neurons=data.num_neurons, held_in=data.held_in, num_bins=data.num_bins,
                               bin_size=data.bin_size)


_HERE = "elbo.models.spikes"
KIND = Kind(name="spikes", config=SpikeConfig, unit="trial", configure=configure, num_samples=1000,
            build=f"{_HERE}.model:make_spike_model", metrics=f"{_HERE}.evaluation:metrics",
            figures=f"{_HERE}.figures:figures", add_arguments=f"{_HERE}.options:add_model_arguments",
            config_from_arguments=f"{_HERE}.options:config_from_arguments",
            description="Gaussian-process latent trajectories of spike counts (Poisson readout, GRU encoder)")

LORENZ = Dataset("spikes", f"{_HERE}.datasets:load_lorenz",
                 "the Lorenz benchmark of LFADS, generated: 65 conditions x 4 trials of 50 bins of 20 ms, 30 neurons",
                 reads_files=False)
RECORDINGS = Dataset("spikes", f"{_HERE}.datasets:load_recordings",
                     "your own recordings: --data-dir FILE.npz (or a directory holding spikes.npz) with counts "
                     "(trials, bins, neurons), bin_size and, optionally, condition and time; or spike times "
                     "(spike_times, spike_trials, spike_neurons, duration) binned by --bin-size",
                     options=SpikeOptions, add_arguments=f"{_HERE}.options:add_arguments",
                     options_from_arguments=f"{_HERE}.options:options_from_arguments")
