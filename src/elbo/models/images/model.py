"""Variational autoencoders (Kingma & Welling 2013; Rezende et al. 2014) with one or more stochastic layers.

One stochastic layer (``VAE``), the model interface of ``elbo.bounds`` with ``prior()`` and ``likelihood(z)``:

    p(z) = N(0, I),   p(x|z) = decoder head(f_θ(z)),   q(z|x) = N(loc_φ(x), diag(scale_φ(x)²)).

L ≥ 2 stochastic layers (``HierarchicalVAE``, Burda et al. 2015 §5), which has no single prior over all the
latents, so it gives the log joint ``log_prob(x, z)`` of ``z = [z_1, ..., z_L]`` (concatenated) instead:

    p(z_L) = N(0, I),  p(z_l | z_{l+1}) = N(loc_θ(z_{l+1}), diag(scale_θ(z_{l+1})²)),  p(x | z_1) = head(f_θ(z_1)),
    q(z_1 | x) q(z_2 | z_1) ... q(z_L | z_{L-1}),  each a diagonal Gaussian from a network.

The guide of either is the bound method ``model.guide``: ``bounds.iwae(model, model.guide, x, K)``. The
hierarchical model's ELBO is estimated by Monte Carlo (``form="mc"``): there is no closed-form KL for it.

``PRESETS`` holds the architectures of Burda et al. (2015): ``"burda1"`` is 784-200-200-50 and ``"burda2"`` is
784-[200,200]-100-[100,100]-50 (brackets: the deterministic layers between stochastic ones), tanh, the decoder
mirroring the encoder; ``init_from_data`` starts the output bias at the logit of the mean training pixel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal, constraints

from ...errors import InputError
from ...families import with_detached_parameters
from ...likelihoods import likelihood_head
from ...protocols import InitFromData
from .config import VAEConfig
from .networks import network

__all__ = ["VAE", "HierarchicalVAE", "GaussianChain", "make_vae"]


def _diagonal_gaussian(params: torch.Tensor) -> Distribution:
    """``(..., 2d)`` network output ``[loc, log_scale]`` → ``N(loc, diag(exp(log_scale)²))``, event ``(d,)``."""
    loc, log_scale = params.chunk(2, dim=-1)
    return Independent(Normal(loc, log_scale.exp(), validate_args=False), 1)


class _Amortized(nn.Module):
    """What every VAE here shares: the config, the likelihood head, and the decoder into x."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        if config.image_shape is None or config.likelihood is None:
            raise InputError(f"VAEConfig needs image_shape and likelihood to build a model, got "
                             f"image_shape={config.image_shape!r}, likelihood={config.likelihood!r}")
        self.config = config
        self.data_dim = math.prod(config.image_shape)
        self.head = likelihood_head(config.likelihood, self.data_dim, config)

    @property
    def latent_dims(self) -> tuple[int, ...]:
        return self.config.latent_dims

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The parameters of ``q(z|x)`` (modules ``encoder`` / ``encoders``); the rest belong to the decoder."""
        return [p for name, p in self.named_parameters() if name.startswith(("encoder.", "encoders."))]

    def _network(self, in_features, hidden, out_features, *, role, on_image):
        kind = self.config.network if on_image else "mlp"  # convolutions only where the input or output is x
        return network(kind, in_features, hidden, out_features, activation=self.config.activation,
                       image_shape=self.config.image_shape, role=role)

    def check_data(self, x: torch.Tensor) -> None:
        """Refuse data this model cannot score: wrong shape, NaN pixels, values outside [0, 1] for a Bernoulli."""
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.data_dim:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InputError(f"x must have shape (N, {self.data_dim}) (flattened {self.config.image_shape} images), "
                             f"got {shape}")
        if len(x):  # an empty split (no validation images) has nothing to refuse
            self.head.check(x)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """Start the output bias at the mean training image (its logit for a Bernoulli), and a learned Gaussian
        ``σ`` at the data's standard deviation, so training starts from the data's marginal statistics."""
        self.x_decoder.output_bias.copy_(self.head.output_bias(x.mean(0)))
        if isinstance(self.head, InitFromData):
            self.head.init_from_data(x)


class VAE(_Amortized):
    """One stochastic layer: ``prior()``, ``likelihood(z)`` and the encoder ``guide(x)``.

    ``guide(x)`` for ``x: (B, D)`` is ``Independent(Normal(loc, scale), 1)`` with batch ``(B,)``, event ``(d,)``;
    ``likelihood(z)`` for ``z: (K, B, d)`` has batch ``(K, B)`` and event ``(D,)``.
    """

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        if len(config.latent_dims) != 1:
            raise InputError(f"VAE has one stochastic layer, got latent_dims={config.latent_dims}: "
                             f"use HierarchicalVAE (or make_vae)")
        (latent_dim,), (hidden,) = config.latent_dims, config.hidden_dims
        self.encoder = self._network(self.data_dim, hidden, 2 * latent_dim, role="encoder", on_image=True)
        self.decoder = self._network(latent_dim, hidden[::-1], self.data_dim, role="decoder", on_image=True)

    @property
    def x_decoder(self) -> nn.Module:
        return self.decoder

    def prior(self) -> Distribution:
        zeros = self.decoder.output_bias.new_zeros(self.latent_dims[0])  # device and dtype of the parameters
        return Independent(Normal(zeros, torch.ones_like(zeros), validate_args=False), 1)

    def likelihood(self, z: torch.Tensor) -> Distribution:
        return self.head(self.decoder(z))

    def guide(self, x: torch.Tensor) -> Distribution:
        return _diagonal_gaussian(self.encoder(x))


class HierarchicalVAE(_Amortized):
    """L ≥ 2 stochastic layers: ``log_prob(x, z)`` of shape ``(K, B)`` for ``z = [z_1, ..., z_L]`` of shape
    ``(K, B, Σ_l d_l)``, and ``guide(x)``, a ``GaussianChain`` over the same concatenated ``z``."""

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        if len(config.latent_dims) < 2:
            raise InputError(f"HierarchicalVAE needs at least two stochastic layers, got "
                             f"latent_dims={config.latent_dims}: use VAE (or make_vae)")
        below = (self.data_dim, *config.latent_dims[:-1])  # the input of each encoder, the output of each decoder
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()  # decoders[0]: z_1 -> x;  decoders[l]: z_{l+1} -> p(z_l | z_{l+1})
        for level, (n_below, latent_dim, hidden) in enumerate(zip(below, config.latent_dims, config.hidden_dims)):
            out_features = n_below if level == 0 else 2 * n_below
            self.encoders.append(self._network(n_below, hidden, 2 * latent_dim, role="encoder", on_image=level == 0))
            self.decoders.append(self._network(latent_dim, hidden[::-1], out_features, role="decoder",
                                               on_image=level == 0))

    @property
    def x_decoder(self) -> nn.Module:
        return self.decoders[0]

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``log p(x, z) = log p(z_L) + Σ_{l<L} log p(z_l | z_{l+1}) + log p(x | z_1)``, shape ``z.shape[:-1]``."""
        zs = z.split(self.latent_dims, dim=-1)
        top = zs[-1]
        log_p = Normal(torch.zeros_like(top), torch.ones_like(top), validate_args=False).log_prob(top).sum(-1)
        for decoder, z_below, z_above in zip(self.decoders[1:], zs[:-1], zs[1:]):
            log_p = log_p + _diagonal_gaussian(decoder(z_above)).log_prob(z_below)
        return log_p + self.head(self.decoders[0](zs[0])).log_prob(x)

    def guide(self, x: torch.Tensor) -> GaussianChain:
        return GaussianChain(x, list(self.encoders), self.latent_dims)


class GaussianChain(Distribution):
    """``q(z_1, ..., z_L | x) = q(z_1 | x) Π_{l>1} q(z_l | z_{l-1})`` over ``z = [z_1, ..., z_L]`` (concatenated);
    each factor is ``N(loc, diag(scale²))`` with ``[loc, log scale] = encoders[l](input)``.

    Batch shape ``(B,)``, event shape ``(Σ_l d_l,)``; ``rsample`` is ancestral and reparameterized.
    """

    arg_constraints = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, x: torch.Tensor, encoders: Sequence[Callable], latent_dims: Sequence[int]):
        self.x, self.encoders, self.latent_dims = x, list(encoders), tuple(latent_dims)
        self.first = _diagonal_gaussian(self.encoders[0](x))  # q(z_1 | x), batch (B,)
        super().__init__(batch_shape=x.shape[:1], event_shape=(sum(self.latent_dims),), validate_args=False)

    def rsample(self, sample_shape=()) -> torch.Tensor:
        z = self.first.rsample(sample_shape)  # (*sample_shape, B, d_1)
        zs = [z]
        for encode in self.encoders[1:]:
            z = _diagonal_gaussian(encode(z)).rsample()
            zs.append(z)
        return torch.cat(zs, dim=-1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        zs = z.split(self.latent_dims, dim=-1)
        log_q = self.first.log_prob(zs[0])
        for encode, z_below, z_above in zip(self.encoders[1:], zs[:-1], zs[1:]):
            log_q = log_q + _diagonal_gaussian(encode(z_below)).log_prob(z_above)
        return log_q

    def expand(self, batch_shape, _instance=None) -> GaussianChain:
        """The same chain with batch shape ``batch_shape`` (ending in B): ``q(z_1 | x)`` expanded (a view of its
        parameters), the upper factors computed from the draws as before."""
        batch_shape = torch.Size(batch_shape)
        new = self._get_checked_instance(GaussianChain, _instance)
        new.x = self.x.expand(*batch_shape, *self.x.shape[1:])
        new.encoders, new.latent_dims = self.encoders, self.latent_dims
        new.first = self.first.expand(batch_shape)
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        return new

    def stop_gradient(self) -> GaussianChain:
        """The same ``q`` with the encoders' parameters cut from the graph (``elbo.estimators.stop_gradient``)."""
        return GaussianChain(self.x, [with_detached_parameters(e) for e in self.encoders], self.latent_dims)

    def mean_estimate(self, num_samples: int = 1000) -> torch.Tensor:
        """``E_q[z]``, shape ``(B, Σ_l d_l)``: exact for ``z_1``; for ``l > 1``, ``E_q[z_l] = E_q[loc_l(z_{l-1})]``
        averaged over ``num_samples`` ancestral draws of ``z_{l-1}`` (the inner expectation taken exactly)."""
        means = [self.first.mean]
        z = self.first.sample((num_samples,))
        for encode in self.encoders[1:]:
            q = _diagonal_gaussian(encode(z))
            means.append(q.mean.mean(0))
            z = q.sample()
        return torch.cat(means, dim=-1)


def make_vae(config: VAEConfig) -> VAE | HierarchicalVAE:
    """``VAE`` for one stochastic layer, ``HierarchicalVAE`` for more."""
    return VAE(config) if len(config.latent_dims) == 1 else HierarchicalVAE(config)
