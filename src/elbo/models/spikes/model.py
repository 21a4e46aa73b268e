"""A Gaussian-process latent-trajectory model of spike counts, fitted by amortized VI: counts ``x: (B, T, N)``
(trials × bins × neurons), latents ``z: (B, T, d)`` (one trajectory a trial; the issue's ``x_t``).

- Prior: each latent dimension a GP over the bins' times ``t_k = k Δ``, the squared-exponential kernel with unit
  variance, one learned timescale ``ℓ_j`` per dimension and a jitter (``distributions.GaussianProcess``; GPFA's
  prior, Yu et al. 2009).
- Likelihood: ``x_tn ~ Poisson(exp(c_n · z_t + d_n) Δ)``, independent over bins and neurons: ``exp(c_n · z_t + d_n)``
  is neuron ``n``'s firing rate in spikes/s and ``Δ`` the bin size (``PoissonHead``; the readout covers all ``N``
  neurons).
- Guide: ``q(z | x_in) = MarkovGaussian``, each dimension a Gauss–Markov chain (tridiagonal precision), from a
  bidirectional GRU over the counts of the ``held_in`` first neurons (LFADS's encoder, Sussillo et al. 2016). The
  held-out neurons never enter the encoder, so rates predicted for them from ``q`` are co-smoothing predictions
  (Pei et al. 2021); their counts in the training trials enter the ELBO through the likelihood only, which trains
  their rows of the readout, as the Neural Latents Benchmark does.

The ELBO's KL between q and the GP prior is in closed form (``kl_divergence`` is registered for the pair), so
``elbo.bounds.elbo(form="analytic")`` uses it; IWAE and the ``"mc"`` form use ``log p(z) - log q(z)`` of the draws.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Poisson

from ...errors import InputError
from .config import SpikeConfig
from .distributions import GaussianProcess, MarkovGaussian, squared_exponential

__all__ = ["PoissonGPVAE", "TrialEncoder", "PoissonHead", "make_spike_model", "check_counts"]


def check_counts(x: torch.Tensor, *, num_bins: int, num_neurons: int, name: str = "x") -> None:
    """Refuse what is not spike counts ``(M, num_bins, num_neurons)``: floating point, finite, integers >= 0."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or tuple(x.shape[1:]) != (num_bins, num_neurons):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"{name} must have shape (M, {num_bins}, {num_neurons}) (trials, bins, neurons), got "
                         f"{shape}", argument=name)
    if not x.is_floating_point():
        raise InputError(f"{name} must be a floating-point tensor of spike counts, got dtype {x.dtype}: convert it "
                         f"with {name}.float()", argument=name)
    bad = ~torch.isfinite(x) | (x < 0) | (x != x.round())
    if bad.any():
        raise InputError(f"{name} must hold spike counts (finite integers >= 0): {int(bad.sum())} of its "
                         f"{x.numel()} values are not", argument=name)


class PoissonHead(nn.Module):
    """``log rate: (..., T, N) -> Independent(Poisson(exp(log rate) Δ), 2)``, event ``(T, N)``; no validation in
    ``forward`` (the hot path): the data are checked once, by ``check``."""

    def __init__(self, bin_size: float):
        super().__init__()
        self.log_bin_size = math.log(bin_size)

    def forward(self, log_rate: torch.Tensor) -> Distribution:
        return Independent(Poisson((log_rate + self.log_bin_size).exp(), validate_args=False), 2)


class TrialEncoder(nn.Module):
    """``x_in: (B, T, N_in) -> MarkovGaussian``, batch ``(B,)``, event ``(T, d)``: a bidirectional GRU over
    ``log(1 + x_in)`` (bounded inputs whatever the bin size), then one linear map per bin to the mean ``μ_t``, the
    diagonal ``a_t = softplus(·) + 1e-3`` of the precision's bidiagonal factor and its sub-diagonal ``b_t`` (bins
    ``t < T - 1``, any real: every tridiagonal precision is reachable).

    The biases start at ``a ≈ 10``, ``b ≈ -9``: ``(Bᵀ r)_t = a_t (r_t - 0.9 r_{t+1})``, a smooth, narrow q (marginal
    standard deviation about 0.2 prior units). A wide, rough q would pay ``½ σ² tr(K⁻¹)`` in the KL, tens of
    thousands of nats with the GP's many eigenvalues near ``ε``, and spend its first hundreds of steps shrinking.
    """

    MIN_DIAG = 1e-3  # q's standard deviation at most ~1000 prior units
    INIT_DIAG, INIT_SUB = 10.0, -9.0

    def __init__(self, held_in: int, latent_dim: int, hidden_size: int):
        super().__init__()
        self.rnn = nn.GRU(held_in, hidden_size, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden_size, 3 * latent_dim)
        with torch.no_grad():
            self.out.bias[latent_dim:2 * latent_dim] = math.log(math.expm1(self.INIT_DIAG))  # softplus⁻¹
            self.out.bias[2 * latent_dim:] = self.INIT_SUB

    def forward(self, x: torch.Tensor) -> MarkovGaussian:
        h, _ = self.rnn(torch.log1p(x))  # (B, T, 2H)
        loc, diag, sub = self.out(h).chunk(3, dim=-1)  # (B, T, d) each
        return MarkovGaussian(loc, nn.functional.softplus(diag) + self.MIN_DIAG, sub[:, :-1])


class PoissonGPVAE(nn.Module):
    """GP prior over each trial's latent trajectory, Poisson readout of all neurons, Markov-Gaussian q from the
    held-in neurons (module docstring). ``readout``: ``log rate = C z + d`` (``C: (N, d)``, ``d: (N,)``);
    ``log_timescale``: ``log ℓ_j`` in seconds, ``(d,)``."""

    def __init__(self, config: SpikeConfig):
        super().__init__()
        if not isinstance(config, SpikeConfig):
            raise InputError(f"config must be a SpikeConfig, got {type(config).__name__}", argument="config")
        missing = [name for name in ("num_neurons", "held_in", "num_bins", "bin_size") if getattr(config, name) is None]
        if missing:
            raise InputError(f"SpikeConfig.{missing[0]} is None: it comes from the data set (configure(config, data) "
                             f"fills it in before a model is built)", argument=missing[0])
        self.config = config
        self.held_in, self.num_neurons, self.num_bins = config.held_in, config.num_neurons, config.num_bins
        self.encoder = TrialEncoder(config.held_in, config.latent_dim, config.hidden_size)
        self.readout = nn.Linear(config.latent_dim, config.num_neurons)
        self.head = PoissonHead(config.bin_size)
        self.log_timescale = nn.Parameter(torch.full((config.latent_dim,), config.log_timescale))
        self.register_buffer("times", torch.arange(config.num_bins, dtype=torch.get_default_dtype())
                             * config.bin_size)

    def prior(self) -> GaussianProcess:
        """``p(z)``, event ``(T, d)``: the GP with this model's timescales."""
        return GaussianProcess(squared_exponential(self.times, self.log_timescale.exp(), jitter=self.config.jitter))

    def likelihood(self, z: torch.Tensor) -> Distribution:
        """``p(x | z)`` for ``z: (..., T, d)``, event ``(T, N)``."""
        return self.head(self.readout(z))

    def guide(self, x: torch.Tensor) -> MarkovGaussian:
        """``q(z | x_in)``, batch ``(B,)``, event ``(T, d)``, from the held-in neurons of ``x: (B, T, N)``."""
        return self.encoder(x[..., :self.held_in])

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The parameters of ``q`` (module ``encoder``); the rest belong to the model."""
        return list(self.encoder.parameters())

    def check_data(self, x: torch.Tensor) -> None:
        """Refuse data this model cannot score: not ``(M, T, N)`` floating-point spike counts."""
        check_counts(x, num_bins=self.num_bins, num_neurons=self.num_neurons)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """Start the readout's bias at each neuron's log mean rate in ``x`` (spikes/s; a silent neuron at 0.1 spike
        in all of ``x``). The weights keep their initialisation: shrinking them (tried, by 10) leaves the latents
        without influence on the likelihood at first, and training then waits at that saddle for a hundred steps or
        more."""
        trials = max(len(x), 1)
        count = x.sum((0, 1)).clamp_min(0.1) / (trials * self.num_bins)
        self.readout.bias.copy_(count.log() - self.head.log_bin_size)

    def rates(self, q: MarkovGaussian) -> torch.Tensor:
        """Each neuron's rate under ``q``, ``E_q[exp(c_n · z_t + d_n)] = exp(c_n · μ_t + d_n + ½ Σ_j c_nj² σ²_tj)``
        (spikes/s, ``(B, T, N)``): ``z_t``'s marginal under q is ``N(μ_t, diag σ²_t)``."""
        return (self.readout(q.mean) + 0.5 * q.variance @ self.readout.weight.square().T).exp()

    @torch.no_grad()
    def firing_rates(self, x: torch.Tensor) -> torch.Tensor:
        """``rates(guide(x))``: the rates (spikes/s, ``(B, T, N)``) of all neurons from the held-in ones of ``x``."""
        return self.rates(self.guide(x))

    @torch.no_grad()
    def latents(self, x: torch.Tensor) -> torch.Tensor:
        """``E_q[z]``, ``(B, T, d)``."""
        return self.guide(x).mean


def make_spike_model(config: SpikeConfig) -> PoissonGPVAE:
    """The spikes kind's model (``Kind.build``)."""
    return PoissonGPVAE(config)
