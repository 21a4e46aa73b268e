# # Your own images, as a registered data set
#
# A data set of the images kind is a loader that returns `elbo.models.images.datasets.ImageData` (flat images in [0, 1],
# split into train, validation and test), registered in `elbo.registry.DATASETS` under a name that `TrainConfig`
# then accepts. Here the images are an `(N, H, W)` array in a `.npy` file; any reader will do.
#
# Run it: `python docs/how-to/own_images.py [OUT]` (a few seconds; `ELBO_TUTORIAL_QUICK=1` trains for 2 epochs).

import os
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

from elbo import evaluate, registry, train
from elbo.configs import TrainConfig
from elbo.kinds import Dataset
from elbo.models.images import VAEConfig
from elbo.models.images.datasets import ImageData

QUICK = os.environ.get("ELBO_TUTORIAL_QUICK") == "1"
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/how-to-own-images")
OUT.mkdir(parents=True, exist_ok=True)

# Some images to stand for yours: grey levels in [0, 1], shape (N, H, W).
np.save(OUT / "images.npy", load_digits().images / 16.0)


def load_my_images(*, data_dir=None, val_size=None, download=True):
    """The loader's keywords are those every loader takes; `download` means nothing for files of your own."""
    images = torch.as_tensor(np.load(Path(data_dir) / "images.npy"), dtype=torch.get_default_dtype())
    n, height, width = images.shape
    x = images.reshape(n, height * width)  # flat, (N, H*W)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))  # a fixed split
    test, val = x[order[:n // 10]], x[order[n // 10:n // 5]]
    return ImageData(name="my_images", train=x[order[n // 5:]], val=torch.bernoulli(val), test=torch.bernoulli(test),
                     image_shape=(height, width), likelihood="bernoulli", dynamic_binarization=True)


# With `dynamic_binarization=True` the training images are grey levels that each epoch draws binary images from;
# the validation and test images are binarized once, here, so that every run is scored on the same ones. For
# real-valued images, give `likelihood="gaussian"` and `dynamic_binarization=False`.

registry.DATASETS.register("my_images", Dataset("images", load_my_images), replace=True)
config = TrainConfig(data="my_images", data_dir=str(OUT), model=VAEConfig(latent_dims=(8,), hidden_dims=((64,),)),
                     epochs=2 if QUICK else 100, batch_size=100)
train.train(config, OUT / "vae", force=True, progress=False)
result = evaluate.evaluate_run(OUT / "vae", num_samples=100, iwae_samples=())
print(f"my_images: test ELBO {result['elbo']['mean']:.2f}, log p(x) {result['log_likelihood']['mean']:.2f} "
      f"nats per image, {result['num_points']} test images")
