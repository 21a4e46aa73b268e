"""Shared pieces of the tests: the linear-Gaussian model, and comparisons stated in standard errors."""

import gzip
import hashlib
import math
from pathlib import Path

import numpy as np
import torch

from elbo import exact

# A two-sided normal test at 4.5 standard errors fails by chance with probability 6.8e-6 per comparison;
# a test making n comparisons at this level has a false-failure probability below n * 6.8e-6.
NUM_SE = 4.5


def linear_gaussian(latent_dim=2, data_dim=3, noise_scale=0.7, *, diagonal_posterior=False, seed=1):
    """A linear-Gaussian model and one data point x of shape (1, data_dim) drawn from it."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(data_dim, latent_dim, generator=generator)
    if diagonal_posterior:  # orthogonal columns make WᵀW, hence the posterior covariance, diagonal
        q, _ = torch.linalg.qr(weight)
        weight = q * torch.linspace(0.5, 2.0, latent_dim)
    bias = torch.randn(data_dim, generator=generator)
    model = exact.LinearGaussian(weight, bias, noise_scale)
    x = model.marginal().sample((1,))
    return model, x.detach()


def mean_and_stderr(samples: torch.Tensor):
    """Mean and standard error over dimension 0."""
    samples = samples.detach()
    return samples.mean(0), samples.std(0) / math.sqrt(samples.shape[0])


def assert_within_se(estimate, stderr, expected, num_se=NUM_SE, what="value"):
    estimate, stderr, expected = (torch.as_tensor(v, dtype=torch.float64) for v in (estimate, stderr, expected))
    z = (estimate - expected).abs() / stderr.clamp_min(1e-300)
    assert bool((z <= num_se).all()), (
        f"{what}: estimate {estimate.tolist()} differs from {expected.tolist()} by {z.max().item():.2f} "
        f"standard errors (> {num_se}); stderr {stderr.tolist()}"
    )


# --- small generated data files in each format the loaders read -----------------------------------------------

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def write_idx(path, images, *, gz=False):
    """An idx-ubyte file of uint8 images (N, H, W) (idx3) or labels (N,) (idx1); ``gz`` compresses it. Returns the
    path."""
    images = np.asarray(images, dtype=np.uint8)
    header = b"\x00\x00\x08" + bytes([images.ndim]) + b"".join(n.to_bytes(4, "big") for n in images.shape)
    content = header + images.tobytes()
    path = Path(f"{path}.gz" if gz else path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content) if gz else content)
    return path


def write_amat(path, images, *, gz=False):
    """Larochelle's .amat text: one line of 784 space-separated 0/1 values per image."""
    content = "".join(" ".join(str(int(v)) for v in row) + "\n" for row in np.asarray(images)).encode()
    path = Path(f"{path}.gz" if gz else path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content) if gz else content)
    return path


def write_frey(path, ff):
    """A MATLAB file with variable ``ff`` (560 x N)."""
    import scipy.io

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"ff": ff})
    return path


def trust(monkeypatch, *paths):
    """Make ``elbo.models.images.datasets`` accept these generated files: their content's SHA-256 becomes the expected
    one."""
    from elbo.models.images import datasets as data

    for path in paths:
        path = Path(path)
        content = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        name = path.name.removesuffix(".gz")
        monkeypatch.setitem(data.SHA256, name, hashlib.sha256(content).hexdigest())


def random_mnist(directory, *, num_train=30, num_test=10, seed=0, gz=True):
    """Generated idx files of 28x28 images in ``directory/mnist``: (train path, test path)."""
    rng = np.random.default_rng(seed)
    return (write_idx(Path(directory) / "mnist" / "train-images-idx3-ubyte",
                      rng.integers(0, 256, (num_train, 28, 28)), gz=gz),
            write_idx(Path(directory) / "mnist" / "t10k-images-idx3-ubyte",
                      rng.integers(0, 256, (num_test, 28, 28)), gz=gz))
