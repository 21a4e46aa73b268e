"""The images kind's configuration: ``VAEConfig`` and the tables of its choices (no torch at import)."""

from __future__ import annotations

from dataclasses import dataclass

from ..._checks import check_positive_float, one_of
from ..._files import tuples_from_json
from ...errors import InputError
from ...registry import GAUSSIAN_SCALES, LIKELIHOODS

__all__ = ["VAEConfig", "PRESETS", "ACTIVATIONS", "NETWORKS"]

ACTIVATIONS = ("tanh", "relu", "softplus")
NETWORKS = ("mlp", "conv")


@dataclass(frozen=True)
class VAEConfig:
    """Architecture of a VAE. ``latent_dims[l]`` is the size of stochastic layer ``l`` (bottom first) and
    ``hidden_dims[l]`` the deterministic layers of the encoder below it (the decoder uses them reversed).

    ``image_shape`` (height, width) and ``likelihood`` (one of ``elbo.registry.LIKELIHOODS``) describe the data;
    ``None`` means "from the data set" and is filled in (``elbo.models.images.configure``) before the model is built.
    ``gaussian_scale``: ``"fixed"`` (``σ = fixed_scale``), ``"shared"`` or ``"per_pixel"`` (learned).
    """

    latent_dims: tuple[int, ...] = (50,)
    hidden_dims: tuple[tuple[int, ...], ...] = ((200, 200),)
    activation: str = "tanh"
    network: str = "mlp"
    likelihood: str | None = None
    gaussian_scale: str = "per_pixel"
    fixed_scale: float = 1.0
    image_shape: tuple[int, int] | None = None

    def __post_init__(self):
        latent, hidden = self.latent_dims, self.hidden_dims
        if not (isinstance(latent, tuple) and latent and all(_positive(d) for d in latent)):
            raise InputError(f"latent_dims must be a non-empty tuple of positive integers, got {latent!r}",
                             argument="latent_dims")
        if not (isinstance(hidden, tuple) and len(hidden) == len(latent)
                and all(isinstance(h, tuple) and all(_positive(n) for n in h) for h in hidden)):
            raise InputError(f"hidden_dims must be a tuple of {len(latent)} tuple(s) of positive integers (one per "
                             f"stochastic layer, to match latent_dims={latent}), got {hidden!r}",
                             argument="hidden_dims")
        one_of("activation", self.activation, ACTIVATIONS)
        one_of("network", self.network, NETWORKS)
        one_of("gaussian_scale", self.gaussian_scale, GAUSSIAN_SCALES)
        if self.likelihood is not None:
            LIKELIHOODS.check(self.likelihood)
        check_positive_float(fixed_scale=self.fixed_scale)
        if self.image_shape is not None and not (
                isinstance(self.image_shape, tuple) and len(self.image_shape) == 2
                and all(_positive(n) for n in self.image_shape)):
            raise InputError(f"image_shape must be (height, width), got {self.image_shape!r}", argument="image_shape")

    @classmethod
    def from_dict(cls, values: dict) -> VAEConfig:
        """Inverse of ``dataclasses.asdict`` after a JSON round trip (lists back to tuples)."""
        return cls(**{key: tuples_from_json(value) for key, value in values.items()})


def _positive(n) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 1


PRESETS = {
    "burda1": VAEConfig(latent_dims=(50,), hidden_dims=((200, 200),)),
    "burda2": VAEConfig(latent_dims=(100, 50), hidden_dims=((200, 200), (100, 100))),
}
