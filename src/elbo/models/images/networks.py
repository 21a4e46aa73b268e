"""Encoder and decoder networks: maps ``(..., in_features) -> (..., out_features)`` over any leading dims.

- ``MLP``: fully connected layers with an activation between them (Burda et al. 2015 use ``tanh``).
- ``ConvEncoder`` / ``ConvDecoder``: two stride-2 convolutions (32 and 64 channels) for one-channel images
  stored flat as ``(..., H*W)``, with a dense layer on the other side.

Each network ends in a plain affine layer; ``output_bias`` is that layer's bias (one value per output), so a
VAE can start its decoder at the logit of the mean training pixel.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..._checks import one_of
from ...errors import InputError
from .config import ACTIVATIONS, NETWORKS

__all__ = ["Tanh", "MLP", "ConvEncoder", "ConvDecoder", "network"]


class Tanh(nn.Tanh):
    """``tanh(h)``; inside ``torch.compile`` written ``2 sigmoid(2h) - 1``, the same function, because inductor's CPU
    code for ``tanh`` is about four times slower than its ``sigmoid`` (built from its fast ``exp``): with the IWAE
    paper's networks, 7% of a compiled K = 5000 evaluation on two threads and 16% on one. Eager code calls
    ``torch.tanh`` (there, the sigmoid form is no faster). The two forms differ by float rounding, which is
    absolute near 0: within 2 eps in value and 4 eps in gradient (eps of the dtype; tests/test_vae_networks.py)."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():
            return 2 * torch.sigmoid(2 * h) - 1
        return torch.tanh(h)


_ACTIVATION_CLASSES = dict(zip(ACTIVATIONS, (Tanh, nn.ReLU, nn.Softplus)))  # config.ACTIVATIONS' order


def _activation(name: str) -> nn.Module:
    return _ACTIVATION_CLASSES[one_of("activation", name, ACTIVATIONS)]()


class MLP(nn.Module):
    """``sizes = (n_0, ..., n_L)``: ``Linear(n_0, n_1)``, activation, ..., ``Linear(n_{L-1}, n_L)``."""

    def __init__(self, sizes, *, activation: str = "tanh"):
        super().__init__()
        sizes = tuple(sizes)
        if len(sizes) < 2 or not all(isinstance(n, int) and n >= 1 for n in sizes):
            raise InputError(f"sizes must be at least two positive integers, got {sizes!r}")
        _activation(activation)  # refuse a bad name even when one layer needs none
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            if layers:
                layers.append(_activation(activation))
            layers.append(nn.Linear(n_in, n_out))
        self.layers = nn.Sequential(*layers)

    @property
    def output_bias(self) -> torch.Tensor:
        return self.layers[-1].bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _check_image_shape(image_shape) -> tuple[int, int]:
    shape = tuple(image_shape)
    if len(shape) != 2 or not all(isinstance(n, int) and n >= 1 for n in shape):
        raise InputError(f"image_shape must be (height, width), got {image_shape!r}")
    return shape


def _halved_twice(n: int) -> int:
    """Size after two convolutions with kernel 4, stride 2, padding 1: ``n -> floor(n/2) -> floor(n/4)``."""
    return n // 2 // 2


class ConvEncoder(nn.Module):
    """``(..., H*W) -> (..., out_features)``: conv(32, 4x4, stride 2), conv(64, 4x4, stride 2), then ``Linear``."""

    def __init__(self, image_shape, out_features: int, *, activation: str = "relu", channels=(32, 64)):
        super().__init__()
        self.image_shape = _check_image_shape(image_shape)
        height, width = self.image_shape
        if min(height, width) < 4:
            raise InputError(f"a convolutional encoder needs images of at least 4x4, got {self.image_shape}")
        self.convs = nn.Sequential(nn.Conv2d(1, channels[0], 4, stride=2, padding=1), _activation(activation),
                                   nn.Conv2d(channels[0], channels[1], 4, stride=2, padding=1),
                                   _activation(activation))
        self.linear = nn.Linear(channels[1] * _halved_twice(height) * _halved_twice(width), out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        leading = x.shape[:-1]
        h = self.convs(x.reshape(-1, 1, *self.image_shape))  # (N, C, H/4, W/4)
        return self.linear(h.flatten(1)).reshape(*leading, -1)


class ConvDecoder(nn.Module):
    """``(..., in_features) -> (..., H*W)``: ``Linear`` to 64 maps of ``ceil(H/4) x ceil(W/4)``, two transposed
    convolutions (stride 2) up to at least ``H x W``, a crop, and a learned bias per pixel."""

    def __init__(self, in_features: int, image_shape, *, activation: str = "relu", channels=(64, 32)):
        super().__init__()
        self.image_shape = _check_image_shape(image_shape)
        height, width = self.image_shape
        self.grid = (channels[0], math.ceil(height / 4), math.ceil(width / 4))
        self.linear = nn.Sequential(nn.Linear(in_features, math.prod(self.grid)), _activation(activation))
        self.deconvs = nn.Sequential(nn.ConvTranspose2d(channels[0], channels[1], 4, stride=2, padding=1),
                                     _activation(activation),
                                     nn.ConvTranspose2d(channels[1], 1, 4, stride=2, padding=1, bias=False))
        self.bias = nn.Parameter(torch.zeros(height * width))  # per pixel: a conv bias is per channel

    @property
    def output_bias(self) -> torch.Tensor:
        return self.bias

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        leading = z.shape[:-1]
        h = self.deconvs(self.linear(z).reshape(-1, *self.grid))  # (N, 1, 4*ceil(H/4), 4*ceil(W/4))
        height, width = self.image_shape
        return h[:, 0, :height, :width].reshape(*leading, height * width) + self.bias


def network(kind: str, in_features: int, hidden: tuple[int, ...], out_features: int, *, activation: str,
            image_shape=None, role: str = "encoder") -> nn.Module:
    """An ``MLP(in, *hidden, out)``, or for ``kind="conv"`` a ``ConvEncoder``/``ConvDecoder`` on ``image_shape``
    (``hidden`` is then not used: the convolutions set the width)."""
    one_of("network", kind, NETWORKS)
    if kind == "mlp":
        return MLP((in_features, *hidden, out_features), activation=activation)
    if role == "encoder":
        return ConvEncoder(image_shape, out_features, activation=activation)
    return ConvDecoder(in_features, image_shape, activation=activation)
