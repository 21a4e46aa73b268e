"""The images kind: variational autoencoders with one or two stochastic layers on images stored flat, ``(N, H*W)``.

``config`` (``VAEConfig``, ``PRESETS``; no torch), ``model`` (``VAE``, ``HierarchicalVAE``, ``make_vae``),
``networks`` (MLP and convolutional encoders and decoders), ``datasets`` (digits, MNIST, binarized MNIST, Frey
faces), ``own`` (your own images: an array file or a folder of image files) and ``figures`` (reconstructions, samples,
traversals, the 2-D manifold: the report's figures). Registered in ``elbo.registry`` as kind ``"images"`` with its
five data sets; results are in nats per image.
"""

from __future__ import annotations

import dataclasses

from ...errors import InputError
from ...kinds import Dataset, Kind
from .config import PRESETS, VAEConfig

__all__ = ["KIND", "VAEConfig", "PRESETS", "configure", "DIGITS", "MNIST", "BINARIZED_MNIST", "FREY", "IMAGES"]


def configure(config: VAEConfig, data) -> VAEConfig:
    """The config with the data's image shape, and its likelihood where the config names none; a Gaussian head's
    settings changed from their defaults for another likelihood are refused, not ignored."""
    likelihood = config.likelihood or data.likelihood
    gaussian = [name for name in ("gaussian_scale", "fixed_scale")
                if getattr(config, name) != getattr(VAEConfig, name)]
    if likelihood != "gaussian" and gaussian:
        raise InputError(f"{' and '.join(gaussian)}: settings of a gaussian likelihood, and this run's is "
                         f"{likelihood} (data set {data.name!r}): leave them out, or ask for likelihood 'gaussian'",
                         argument=gaussian[0])
    return dataclasses.replace(config, image_shape=data.image_shape, likelihood=likelihood)


KIND = Kind(name="images", config=VAEConfig, unit="image", configure=configure,
            build="elbo.models.images.model:make_vae", figures="elbo.models.images.figures:figures",
            add_arguments="elbo.models.images.options:add_arguments",
            config_from_arguments="elbo.models.images.options:config_from_arguments",
            description="VAEs and IWAEs on images (Burda et al. 2015's architectures)")

_DATASETS = "elbo.models.images.datasets"
DIGITS = Dataset("images", f"{_DATASETS}:load_digits", "scikit-learn's 8x8 digits, dynamically binarized",
                 reads_files=False)
MNIST = Dataset("images", f"{_DATASETS}:load_mnist", "MNIST, dynamically binarized")
BINARIZED_MNIST = Dataset("images", f"{_DATASETS}:load_binarized_mnist", "MNIST, Larochelle's fixed binarization")
IMAGES = Dataset("images", "elbo.models.images.own:load_images",
                 "your own images: --data-dir FILE.npy, FILE.npz (array 'images', optionally 'labels') or a folder of "
                 "image files (PNG, JPEG, ...; or one subfolder a class), one size, grey or colour (read as grey)")
FREY = Dataset("images", f"{_DATASETS}:load_frey", "Frey faces, grey levels, Gaussian likelihood")
