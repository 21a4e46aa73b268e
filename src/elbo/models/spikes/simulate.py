"""The Lorenz benchmark of latent-trajectory models (Sussillo et al. 2016, LFADS, §3.1), generated from a seed with the
truth known (numpy only, no torch).

The Lorenz system ``dx/dt = σ (y - x)``, ``dy/dt = x (ρ - z) - y``, ``dz/dt = x y - β z`` (σ = 10, ρ = 28,
β = 8/3) is integrated by Euler steps of ``dt = 0.006`` from one random initial state per condition, run
``burn_in`` steps onto the attractor first. A trial of ``num_bins`` bins samples the state every
``steps_per_bin`` steps (by default 100 steps of 0.006 per 1 s trial: 50 bins of 20 ms, two steps each). Each
condition's trajectory ``x: (T, 3)`` is centred (its mean over time removed, per dimension) and scaled so that its
largest absolute value is 1. The neurons' firing rates are ``r_t = exp(W x_t + b)`` spikes/s, with
``W_nj ~ N(0, weight_scale²)`` and ``b_n = log base_rate``; every trial of a condition shares its latents and rates
and draws its own counts ``y_tn ~ Poisson(r_tn Δ)`` in bins of ``Δ = bin_size`` seconds.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from ..._checks import check_positive, check_positive_float, check_seed
from ..._files import write_atomically
from ...errors import InputError

__all__ = ["simulate_lorenz", "save_simulation", "lorenz_trajectories", "SIGMA", "RHO", "BETA", "DT"]

SIGMA, RHO, BETA, DT = 10.0, 28.0, 8.0 / 3.0, 0.006


def _lorenz_step(state: np.ndarray, dt: float) -> np.ndarray:
    """One Euler step of the Lorenz system for states ``(C, 3)``."""
    x, y, z = state[:, 0], state[:, 1], state[:, 2]
    derivative = np.stack([SIGMA * (y - x), x * (RHO - z) - y, x * y - BETA * z], axis=1)
    return state + dt * derivative


def lorenz_trajectories(initial: np.ndarray, *, num_bins: int, steps_per_bin: int, burn_in: int,
                        dt: float = DT) -> np.ndarray:
    """The Lorenz states ``(C, num_bins, 3)`` sampled every ``steps_per_bin`` Euler steps after ``burn_in`` steps,
    from the initial states ``initial: (C, 3)``."""
    state = np.asarray(initial, dtype=np.float64)
    for _ in range(burn_in):
        state = _lorenz_step(state, dt)
    states = []
    for _ in range(num_bins):
        states.append(state)
        for _ in range(steps_per_bin):
            state = _lorenz_step(state, dt)
    return np.stack(states, axis=1)


def _centred_and_scaled(trajectories: np.ndarray) -> np.ndarray:
    """Each trajectory ``(T, 3)`` of ``(C, T, 3)`` less its mean over time, divided by its largest absolute value."""
    centred = trajectories - trajectories.mean(axis=1, keepdims=True)
    return centred / np.abs(centred).max(axis=(1, 2), keepdims=True)


def simulate_lorenz(seed: int = 0, *, num_neurons: int = 30, num_conditions: int = 65, trials_per_condition: int = 4,
                    num_bins: int = 50, bin_size: float = 0.02, steps_per_bin: int = 2, burn_in: int = 1000,
                    base_rate: float = 5.0, weight_scale: float = 1.0) -> dict:
    """Spike counts from the Lorenz system with known latents and rates (module docstring), from ``seed`` alone.

    Returns numpy arrays: ``counts`` (int64, ``(M, T, N)``, ``M = num_conditions · trials_per_condition`` trials,
    condition-major), ``rates`` (spikes/s, ``(M, T, N)``), ``latents`` (``(M, T, 3)``), ``W`` (``(N, 3)``), ``b``
    (``(N,)``), ``bin_size`` (s, a 0-d array), ``condition`` (int64, ``(M,)``) and ``time`` (each bin's centre, s,
    ``(T,)``). Initial states are drawn uniformly from the box ``[-15, 15] × [-20, 20] × [5, 45]`` around the
    attractor.
    """
    check_seed(seed)
    check_positive(num_neurons=num_neurons, num_conditions=num_conditions, trials_per_condition=trials_per_condition,
                   num_bins=num_bins, steps_per_bin=steps_per_bin)
    check_positive_float(bin_size=bin_size, base_rate=base_rate, weight_scale=weight_scale)
    if not isinstance(burn_in, int) or isinstance(burn_in, bool) or burn_in < 0:
        raise InputError(f"burn_in must be an integer >= 0, got {burn_in!r}", argument="burn_in")
    rng = np.random.default_rng(seed)
    initial = rng.uniform([-15.0, -20.0, 5.0], [15.0, 20.0, 45.0], size=(num_conditions, 3))
    paths = _centred_and_scaled(lorenz_trajectories(initial, num_bins=num_bins, steps_per_bin=steps_per_bin,
                                                    burn_in=burn_in))
    weights = rng.normal(0.0, weight_scale, size=(num_neurons, 3))
    bias = np.full(num_neurons, math.log(base_rate))
    condition = np.repeat(np.arange(num_conditions), trials_per_condition)
    latents = paths[condition]  # (M, T, 3)
    rates = np.exp(latents @ weights.T + bias)
    counts = rng.poisson(rates * bin_size).astype(np.int64)
    return {"counts": counts, "rates": rates, "latents": latents, "W": weights, "b": bias,
            "bin_size": np.asarray(float(bin_size)), "condition": condition,
            "time": (np.arange(num_bins) + 0.5) * bin_size}


def save_simulation(path, seed: int = 0, *, force: bool = False, **settings) -> dict:
    """``simulate_lorenz(seed, **settings)`` written to the ``.npz`` file ``path`` (exactly that name, atomically):
    the counts, ``bin_size``, ``condition`` and ``time`` a recording has (what ``load_npz`` reads), with the truth
    beside them (``rates``, ``latents``, ``W``, ``b``). An existing ``path`` is refused unless ``force``. Returns the
    simulation."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a .npz file to write", argument="path")
    if path.exists() and not force:
        raise InputError(f"{path} exists already: pass force=True to replace it", argument="path")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: no such directory", argument="path")
    simulation = simulate_lorenz(seed, **settings)
    buffer = io.BytesIO()
    np.savez(buffer, **simulation)
    write_atomically(path, buffer.getvalue())
    return simulation
