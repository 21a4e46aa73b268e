"""Amortized models: variational autoencoders with one or two stochastic layers (``model``), their networks
(``networks``) and decoder heads (``likelihoods``)."""

from .likelihoods import BernoulliLikelihood, GaussianLikelihood
from .model import PRESETS, VAE, GaussianChain, HierarchicalVAE, VAEConfig, make_vae
from .networks import MLP, ConvDecoder, ConvEncoder

__all__ = ["VAEConfig", "PRESETS", "VAE", "HierarchicalVAE", "GaussianChain", "make_vae",
           "BernoulliLikelihood", "GaussianLikelihood", "MLP", "ConvEncoder", "ConvDecoder"]
