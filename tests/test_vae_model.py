"""VAEs: the presets' architectures, the model interface, and the densities of the two-layer model and its
guide checked against quadrature."""

import dataclasses
import math

import pytest
import torch
from torch.distributions import Independent, Normal

from elbo import bounds
from elbo.models.images.config import PRESETS, VAEConfig
from elbo.models.images.model import VAE, GaussianChain, HierarchicalVAE, make_vae
from helpers import assert_within_se, mean_and_stderr


def _linear_sizes(module):
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, torch.nn.Linear)]


def _mnist(config):
    return dataclasses.replace(config, image_shape=(28, 28), likelihood="bernoulli")


def test_one_layer_preset_is_784_200_200_50_tanh_with_a_mirrored_decoder():
    model = make_vae(_mnist(PRESETS["burda1"]))
    assert isinstance(model, VAE)
    assert _linear_sizes(model.encoder) == [(784, 200), (200, 200), (200, 100)]  # loc and log scale of 50 units
    assert _linear_sizes(model.decoder) == [(50, 200), (200, 200), (200, 784)]
    assert all(isinstance(m, torch.nn.Tanh) for m in list(model.encoder.layers)[1::2])


def test_two_layer_preset_is_784_200_200_100_100_100_50_with_mirrored_decoders():
    model = make_vae(_mnist(PRESETS["burda2"]))
    assert isinstance(model, HierarchicalVAE)
    assert [_linear_sizes(e) for e in model.encoders] == [[(784, 200), (200, 200), (200, 200)],
                                                          [(100, 100), (100, 100), (100, 100)]]
    assert [_linear_sizes(d) for d in model.decoders] == [[(100, 200), (200, 200), (200, 784)],
                                                          [(50, 100), (100, 100), (100, 200)]]


def test_guide_and_likelihood_shapes():
    model = VAE(_mnist(PRESETS["burda1"]))
    x = torch.rand(3, 784).bernoulli()
    q = model.guide(x)
    assert isinstance(q, Independent) and isinstance(q.base_dist, Normal)
    assert q.batch_shape == (3,) and q.event_shape == (50,)
    z = q.rsample((4,))
    p = model.likelihood(z)
    assert p.batch_shape == (4, 3) and p.event_shape == (784,)
    assert model.prior().event_shape == (50,) and bounds.log_joint(model, x, z).shape == (4, 3)


def test_output_bias_starts_at_the_logit_of_the_mean_training_pixel():
    x = torch.rand(200, 64).bernoulli()
    for config in (VAEConfig(latent_dims=(2,), hidden_dims=((5,),)), VAEConfig(latent_dims=(2,), network="conv"),
                   VAEConfig(latent_dims=(3, 2), hidden_dims=((5,), (4,)))):
        model = make_vae(dataclasses.replace(config, image_shape=(8, 8), likelihood="bernoulli"))
        model.init_from_data(x)
        torch.testing.assert_close(torch.sigmoid(model.x_decoder.output_bias), x.mean(0).clamp(1e-3, 1 - 1e-3))
    gaussian = make_vae(VAEConfig(latent_dims=(2,), image_shape=(8, 8), likelihood="gaussian"))
    gaussian.init_from_data(x)
    torch.testing.assert_close(gaussian.decoder.output_bias, x.mean(0))


def test_models_refuse_data_they_cannot_score():
    model = VAE(VAEConfig(latent_dims=(2,), image_shape=(2, 2), likelihood="bernoulli"))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 4\) \(flattened \(2, 2\) images\), got \(3, 5\)"):
        model.check_data(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="NaN"):
        model.check_data(torch.tensor([[0.0, math.nan, 0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"Bernoulli likelihood needs pixel values in \[0, 1\]"):
        model.check_data(torch.tensor([[0.0, 255.0, 0.0, 1.0]]))


def test_config_is_validated_and_survives_a_json_round_trip():
    with pytest.raises(ValueError, match="hidden_dims must be a tuple of 2 tuple"):
        VAEConfig(latent_dims=(100, 50), hidden_dims=((200, 200),))
    with pytest.raises(ValueError, match="likelihood must be one of .* got 'poisson'"):
        VAEConfig(likelihood="poisson")
    with pytest.raises(ValueError, match="needs image_shape and likelihood"):
        VAE(VAEConfig())
    config = _mnist(PRESETS["burda2"])
    import json
    assert VAEConfig.from_dict(json.loads(json.dumps(dataclasses.asdict(config)))) == config


def test_analytic_and_monte_carlo_elbo_agree():
    """The closed-form KL of the diagonal-Gaussian guide to the prior is registered and right: both forms estimate
    the same ELBO. Difference of two independent means at NUM_SE (3 points): false failure below 3 * 6.8e-6."""
    model = VAE(VAEConfig(latent_dims=(3,), hidden_dims=((16,),), image_shape=(3, 3), likelihood="bernoulli"))
    x = torch.rand(3, 9).bernoulli()
    with torch.no_grad():
        draws = {form: torch.stack([bounds.elbo(model, model.guide, x, 500, form=form) for _ in range(200)])
                 for form in ("analytic", "mc")}
    (mean_a, se_a), (mean_m, se_m) = mean_and_stderr(draws["analytic"]), mean_and_stderr(draws["mc"])
    assert_within_se(mean_a - mean_m, (se_a**2 + se_m**2).sqrt(), torch.zeros(3), what="analytic - mc ELBO")


def _two_layer_model():
    """A hierarchical VAE with scalar z_1 and z_2 (so quadrature is easy) and arbitrary parameters."""
    torch.manual_seed(5)
    model = HierarchicalVAE(VAEConfig(latent_dims=(1, 1), hidden_dims=((8,), (8,)), image_shape=(2, 2),
                                      likelihood="bernoulli"))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]])
    return model, x


def _grid(half_width=16.0, points=1001):
    t = torch.linspace(-half_width, half_width, points)
    z1, z2 = torch.meshgrid(t, t, indexing="ij")
    return torch.stack([z1.flatten(), z2.flatten()], -1), (t[1] - t[0]) ** 2  # (G, 2), the area of a cell


@torch.no_grad()
def test_two_layer_guide_is_a_normalised_density_matching_its_sampler():
    """∫ q(z_1, z_2 | x) dz = 1 by quadrature, and its quadrature mean of z_2 matches ``mean_estimate``
    (Monte Carlo over z_1 with S draws; standard error at most sqrt(Var_q[z_2] / S)). 3 points at NUM_SE."""
    model, x = _two_layer_model()
    q = model.guide(x)
    assert isinstance(q, GaussianChain) and q.batch_shape == (3,) and q.event_shape == (2,)
    grid, area = _grid()
    density = (q.log_prob(grid.unsqueeze(1).expand(-1, 3, -1)).exp() * area)  # (G, 3)
    torch.testing.assert_close(density.sum(0), torch.ones(3), rtol=0, atol=1e-6)
    mean = (density.unsqueeze(-1) * grid.unsqueeze(1)).sum(0)  # (3, 2)
    variance = (density.unsqueeze(-1) * grid.unsqueeze(1) ** 2).sum(0) - mean**2
    num_samples = 20000
    estimate = q.mean_estimate(num_samples)
    torch.testing.assert_close(estimate[:, 0], mean[:, 0], rtol=0, atol=1e-6)  # E[z_1] is exact
    assert_within_se(estimate[:, 1], (variance[:, 1] / num_samples).sqrt(), mean[:, 1], what="E_q[z_2]")


@torch.no_grad()
def test_two_layer_importance_weights_estimate_the_quadrature_evidence():
    """p(x) = ∫∫ p(z_2) p(z_1|z_2) p(x|z_1) dz by quadrature; the weights w = p(x, z)/q(z|x), z ~ q, have mean
    p(x) whatever q is, so their mean over K samples is within NUM_SE standard errors of it (3 points)."""
    model, x = _two_layer_model()
    grid, area = _grid()
    log_evidence = torch.logsumexp(model.log_prob(x, grid.unsqueeze(1).expand(-1, 3, -1)), 0) + area.log()
    log_w, _ = bounds.log_weights(model, model.guide, x, 100_000)
    ratio = (log_w - log_evidence).exp()  # w / p(x), mean 1
    assert_within_se(*mean_and_stderr(ratio), torch.ones(3), what="E[w] / p(x)")


def test_two_layer_stop_gradient_keeps_values_and_the_path_through_z():
    model, x = _two_layer_model()
    q = model.guide(x)
    z = q.rsample((5,))
    cut = q.stop_gradient()
    torch.testing.assert_close(cut.log_prob(z), q.log_prob(z))
    gradients = torch.autograd.grad(cut.log_prob(z).sum(), [z, *model.encoders.parameters()], allow_unused=True)
    assert gradients[0].abs().sum() > 0  # through z (its path to the encoders is kept) ...
    z_fixed = z.detach().requires_grad_()
    direct = torch.autograd.grad(cut.log_prob(z_fixed).sum(), list(model.encoders.parameters()), allow_unused=True)
    assert all(g is None for g in direct)  # ... but not through q's parameters


@pytest.mark.parametrize("estimator", ["reparam", "stl", "dreg"])
def test_iwae_estimators_train_both_model_kinds(estimator):
    """Every IWAE estimator gives finite gradients to every parameter, and its value is the same bound."""
    one = VAE(VAEConfig(latent_dims=(2,), hidden_dims=((6,),), image_shape=(2, 2), likelihood="bernoulli"))
    two, x = _two_layer_model()
    for model in (one, two):
        torch.manual_seed(3)
        value = bounds.iwae(model, model.guide, x, 4, estimator=estimator)
        torch.manual_seed(3)
        torch.testing.assert_close(value, bounds.iwae(model, model.guide, x, 4))
        value.sum().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters()
                   if p.requires_grad and p is not getattr(model.head, "log_scale", None))
