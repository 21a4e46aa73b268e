"""Decoder heads: their log densities against the formulas, and the data they refuse."""

import math

import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli, Independent

from elbo.likelihoods import BernoulliLikelihood, GaussianLikelihood


def test_bernoulli_from_logits_is_stable_where_sigmoid_would_saturate():
    """log p(x|z) = Σ_i x_i h_i - softplus(h_i), finite even at logits ±80 where sigmoid rounds to 0 or 1."""
    logits = torch.tensor([[-80.0, -3.0, 0.0, 2.5, 80.0]])
    x = torch.tensor([[1.0, 0.0, 1.0, 0.3, 0.0]])
    p = BernoulliLikelihood()(logits)
    assert p.batch_shape == (1,) and p.event_shape == (5,)
    expected = (x * logits - nn.functional.softplus(logits)).sum(-1)
    torch.testing.assert_close(p.log_prob(x), expected, rtol=0, atol=1e-12)
    assert torch.isfinite(p.log_prob(x)).all() and float(p.log_prob(x)) < -159


def test_bernoulli_log_prob_is_torchs_and_so_is_its_gradient():
    """The fused log-likelihood equals Independent(Bernoulli(logits), 1).log_prob, value and gradient, for K samples
    of logits against one batch of images, binary or grey (grey levels read as probabilities)."""
    logits = (4 * torch.randn(3, 5, 7)).requires_grad_()
    for x in (torch.bernoulli(torch.rand(5, 7)), torch.rand(5, 7)):
        fused = BernoulliLikelihood()(logits)
        reference = Independent(Bernoulli(logits=logits, validate_args=False), 1)
        assert fused.batch_shape == reference.batch_shape == (3, 5) and fused.event_shape == (7,)
        torch.testing.assert_close(fused.log_prob(x), reference.log_prob(x), rtol=0, atol=1e-12)
        (gradient,) = torch.autograd.grad(fused.log_prob(x).sum(), logits)
        (expected,) = torch.autograd.grad(reference.log_prob(x).sum(), logits)
        torch.testing.assert_close(gradient, expected, rtol=0, atol=1e-12)
        torch.testing.assert_close(fused.mean, torch.sigmoid(logits))


def test_bernoulli_output_bias_is_the_logit_of_the_mean_pixel():
    mean = torch.tensor([0.0, 0.25, 0.5, 1.0])
    bias = BernoulliLikelihood().output_bias(mean)
    torch.testing.assert_close(torch.sigmoid(bias), torch.tensor([1e-3, 0.25, 0.5, 1 - 1e-3]))


def test_bernoulli_refuses_nan_and_values_outside_the_unit_interval():
    head = BernoulliLikelihood()
    head.check(torch.tensor([[0.0, 0.4, 1.0]]))
    with pytest.raises(ValueError, match=r"1 NaN or infinite pixel values \(first in image 1\)"):
        head.check(torch.tensor([[0.0, 1.0], [math.nan, 0.5]]))
    with pytest.raises(ValueError, match=r"values in \[0, 1\], but 2 values lie outside \(min -0.5, max 2\)"):
        head.check(torch.tensor([[-0.5, 2.0, 0.5]]))


@pytest.mark.parametrize("scale, learned_shape", [("fixed", None), ("shared", ()), ("per_pixel", (3,))])
def test_gaussian_scale_is_fixed_shared_or_per_pixel(scale, learned_shape):
    """log N(x; h, σ²) = Σ_i -(x_i - h_i)²/(2σ_i²) - log σ_i - ½ log 2π."""
    head = GaussianLikelihood(3, scale=scale, fixed_scale=0.2)
    parameters = list(head.parameters())
    assert [tuple(p.shape) for p in parameters] == ([] if learned_shape is None else [learned_shape])
    if learned_shape is not None:
        with torch.no_grad():
            parameters[0].copy_(torch.tensor([0.1, -0.5, 0.3]) if scale == "per_pixel" else torch.tensor(-1.0))
    sigma = head.log_scale.exp().expand(3)
    loc, x = torch.randn(4, 2, 3), torch.randn(2, 3)
    expected = (-(x - loc) ** 2 / (2 * sigma**2) - sigma.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
    torch.testing.assert_close(head(loc).log_prob(x), expected)
    if scale == "fixed":
        torch.testing.assert_close(sigma, torch.full((3,), 0.2))


def test_learned_gaussian_scale_starts_at_the_data_spread():
    x = torch.randn(500, 3) * torch.tensor([0.1, 0.5, 2.0])
    per_pixel, shared = GaussianLikelihood(3, scale="per_pixel"), GaussianLikelihood(3, scale="shared")
    per_pixel.init_from_data(x)
    shared.init_from_data(x)
    torch.testing.assert_close(per_pixel.log_scale.exp(), x.std(0))
    torch.testing.assert_close(shared.log_scale.exp(), x.std())
    with pytest.raises(ValueError, match="NaN"):
        shared.check(torch.tensor([[math.inf]]))
    with pytest.raises(ValueError, match="scale must be one of .* got 'diagonal'"):
        GaussianLikelihood(3, scale="diagonal")
