"""Shared pieces of the tests: the linear-Gaussian model, and comparisons stated in standard errors."""

import math

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
