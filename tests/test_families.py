"""Variational families: densities, entropies and KLs against closed forms, and fits that reach the exact
posterior of a linear-Gaussian model from a bad start."""

import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from elbo import bounds, estimators, exact, families
from helpers import assert_within_se, linear_gaussian, mean_and_stderr

ALL = [families.MeanField, families.FullRank, families.LowRank, families.Flow]


def _perturbed(family_cls, dim=3, batch_shape=(2,), scale=0.3, seed=4):
    torch.manual_seed(seed)
    family = family_cls(dim, batch_shape=batch_shape)
    with torch.no_grad():
        for p in family.parameters():
            p.add_(scale * torch.randn_like(p))
    return family


@pytest.mark.parametrize("family_cls", ALL)
def test_shapes_and_rsample(family_cls):
    q = _perturbed(family_cls)()
    assert tuple(q.batch_shape) == (2,) and tuple(q.event_shape) == (3,)
    z = q.rsample((5,))
    assert z.shape == (5, 2, 3) and z.requires_grad
    assert q.log_prob(z).shape == (5, 2)


@pytest.mark.parametrize("family_cls", [families.MeanField, families.FullRank, families.LowRank])
def test_gaussian_families_have_the_density_entropy_and_kl_of_their_covariance(family_cls):
    """Against MultivariateNormal built from the family's mean and covariance; the registered KL to a
    diagonal Gaussian against torch's MVN-MVN KL."""
    q = _perturbed(family_cls)()
    reference = exact.as_multivariate_normal(q)
    z = q.sample((10,))
    torch.testing.assert_close(q.log_prob(z), reference.log_prob(z))
    torch.testing.assert_close(q.entropy(), reference.entropy())
    p = Independent(Normal(torch.tensor([0.5, -1.0, 0.0]), torch.tensor([1.0, 2.0, 0.5])), 1)
    torch.testing.assert_close(kl_divergence(q, p), kl_divergence(reference, exact.as_multivariate_normal(p)))


def test_registered_kl_declines_a_non_gaussian_prior():
    q = _perturbed(families.FullRank)()
    laplace = Independent(torch.distributions.Laplace(torch.zeros(3), torch.ones(3)), 1)
    with pytest.raises(NotImplementedError):
        kl_divergence(q, laplace)


def test_flow_density_is_the_change_of_variables():
    """log q(z) = log base(f⁻¹(z)) + log|det ∂f⁻¹/∂z|, with the Jacobian by autograd, and f⁻¹(f(u)) = u."""
    flow = _perturbed(families.Flow, dim=3, batch_shape=(), scale=0.5)
    q = flow()
    base = q.base_dist
    transform = torch.distributions.ComposeTransform(q.transforms)
    u = base.sample((4,))
    z = transform(u)
    torch.testing.assert_close(transform.inv(z.detach().clone()), u, rtol=0, atol=1e-10)
    for z_i, u_i in zip(z.detach(), u):
        jacobian = torch.autograd.functional.jacobian(transform.inv, z_i)
        expected = base.log_prob(u_i) + torch.linalg.slogdet(jacobian)[1]
        torch.testing.assert_close(q.log_prob(z_i.clone()), expected)
    assert any(p.abs().max() > 0.1 for p in flow.nets[0][-1].parameters())  # not the identity flow


def test_flow_entropy_by_monte_carlo_matches_a_gaussian_flow():
    """A flow with zero couplings is its base Gaussian: -E[log q] equals the base entropy (NUM_SE)."""
    flow = families.Flow(3, batch_shape=(1,))
    q = flow()
    z = q.sample((200_000,))
    assert_within_se(*mean_and_stderr(-q.log_prob(z)), q.base_dist.entropy(), what="flow entropy")


@pytest.mark.parametrize("family_cls", ALL)
def test_stop_gradient_keeps_the_value_and_the_path_through_z(family_cls):
    family = _perturbed(family_cls)
    q = family()
    z = q.rsample((3,))
    cut = estimators.stop_gradient(q)
    torch.testing.assert_close(cut.log_prob(z), q.log_prob(z))
    grads = torch.autograd.grad(cut.log_prob(z).sum(), list(family.parameters()), allow_unused=True,
                                retain_graph=True)
    # the parameters are reached only through z, never directly: the gradients equal those via z alone
    z_grad = torch.autograd.grad(cut.log_prob(z).sum(), z, retain_graph=True)[0]
    via_z = torch.autograd.grad(z, list(family.parameters()), grad_outputs=z_grad, allow_unused=True)
    for g, h in zip(grads, via_z):
        if g is None:
            assert h is None or h.abs().max() == 0
        else:
            torch.testing.assert_close(g, h)


@pytest.mark.parametrize(("family_cls", "kwargs", "message"), [
    (families.MeanField, {"dim": 0}, r"dim must be an integer >= 1, got 0"),
    (families.FullRank, {"dim": 2.5}, r"dim must be an integer >= 1, got 2.5"),
    (families.LowRank, {"dim": 3, "rank": 4}, r"rank must be an integer in \[1, dim=3\], got 4"),
    (families.Flow, {"dim": 1}, r"dim must be an integer >= 2, got 1"),
    (families.Flow, {"dim": 2, "num_layers": 0}, r"num_layers must be a positive integer, got 0"),
    (families.MeanField, {"dim": 2, "batch_shape": 3}, r"batch_shape must be a tuple .* got 3"),
])
def test_bad_settings_are_named(family_cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        family_cls(**kwargs)


# --- fits: Adam from a bad start reaches the exact posterior -----------------------------------------------


def _fit(model, guide, x, *, steps, lr, estimator="stl", num_samples=8):
    optimizer = torch.optim.Adam(guide.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = -bounds.elbo(model, guide, x, num_samples, form="mc", estimator=estimator).mean()
        loss.backward()
        optimizer.step()
        scheduler.step()
    return guide


def _bad_start(guide):
    with torch.no_grad():
        for name, p in guide.named_parameters():
            if name.endswith("loc"):
                p.fill_(4.0)
            elif "log" in name:
                p.fill_(math.log(0.1))
    return guide


def test_meanfield_recovers_a_diagonal_posterior():
    model, x = linear_gaussian(diagonal_posterior=True)
    posterior = model.posterior(x)
    covariance = posterior.covariance_matrix.detach()[0]
    assert (covariance - torch.diag(covariance.diagonal())).abs().max() < 1e-12
    guide = _fit(model, _bad_start(families.MeanField(2, batch_shape=(1,))), x, steps=1500, lr=0.05,
                 estimator="reparam")
    torch.testing.assert_close(guide.loc.detach()[0], posterior.loc.detach()[0], rtol=0, atol=0.02)
    torch.testing.assert_close(guide.log_scale.detach().exp()[0] ** 2, covariance.diagonal(), rtol=0.05, atol=0)


def test_fullrank_recovers_a_correlated_posterior():
    model, x = linear_gaussian()
    posterior = model.posterior(x)
    assert posterior.covariance_matrix[0, 0, 1].abs() > 0.05  # correlated: a mean-field q could not
    guide = _fit(model, _bad_start(families.FullRank(2, batch_shape=(1,))), x, steps=1500, lr=0.05)
    q = guide()
    torch.testing.assert_close(q.loc.detach(), posterior.loc.detach(), rtol=0, atol=1e-3)
    torch.testing.assert_close(q.covariance_matrix.detach(), posterior.covariance_matrix.detach(), rtol=0, atol=1e-3)
    assert kl_divergence(q, posterior).item() < 1e-5


def test_lowrank_of_full_rank_recovers_a_correlated_posterior():
    model, x = linear_gaussian(latent_dim=2)
    posterior = model.posterior(x)
    guide = _fit(model, _bad_start(families.LowRank(2, rank=2, batch_shape=(1,))), x, steps=1500, lr=0.05)
    assert kl_divergence(exact.as_multivariate_normal(guide()), posterior).item() < 1e-4


def test_flow_recovers_a_correlated_posterior():
    """The KL to the exact posterior, estimated as log p(x) - ELBO from 10^5 samples, is below 0.01 nats,
    and the flow's moments match the posterior's."""
    model, x = linear_gaussian()
    posterior = model.posterior(x)
    torch.manual_seed(0)
    guide = _fit(model, _bad_start(families.Flow(2, batch_shape=(1,), hidden=16)), x, steps=1500, lr=0.02)
    with torch.no_grad():
        log_w, z = bounds.log_weights(model, guide, x, 100_000)
        kl = (model.log_evidence(x) - log_w.mean(0)).item()
    assert kl < 0.01
    torch.testing.assert_close(z.mean(0), posterior.loc.detach(), rtol=0, atol=0.02)
    flat = z[:, 0]
    covariance = (flat - flat.mean(0)).T @ (flat - flat.mean(0)) / flat.shape[0]
    torch.testing.assert_close(covariance, posterior.covariance_matrix.detach()[0], rtol=0, atol=0.03)


def test_gaussian_posterior_as_mvn_helper_rejects_non_gaussians():
    with pytest.raises(ValueError, match="expected a Gaussian distribution, got TransformedDistribution"):
        exact.as_multivariate_normal(families.Flow(2)())
    assert isinstance(exact.as_multivariate_normal(families.MeanField(2)()), MultivariateNormal)
