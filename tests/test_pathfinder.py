"""Pathfinder and batch and match on Gaussian targets, where the answer is exact."""

import torch

from elbo import bam, pathfinder


def _gaussian_target(dim, seed=0):
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, dim, generator=generator)
    cov = a @ a.T / dim + 0.1 * torch.eye(dim)
    loc = torch.randn(dim, generator=generator)
    precision = torch.linalg.inv(cov)
    return loc, cov, lambda z: -0.5 * ((z - loc) @ precision * (z - loc)).sum(-1)


def test_lbfgs_finds_the_mode_of_a_gaussian():
    loc, _, log_density = _gaussian_target(10)
    path = pathfinder.lbfgs(log_density, torch.zeros(10))
    torch.testing.assert_close(path.z[-1], loc, rtol=0, atol=1e-5)
    assert path.num_evals >= len(path.z), "one evaluation per iterate at least"
    assert bool((path.log_p[1:] >= path.log_p[:-1]).all()), "every accepted step raises log p"


def test_inverse_hessian_satisfies_the_newest_secant_condition_and_is_positive_definite():
    _, _, log_density = _gaussian_target(6)
    path = pathfinder.lbfgs(log_density, torch.zeros(6))
    h = pathfinder.inverse_hessian(path.pairs[-6:], 6)
    _, s, y = path.pairs[-1]
    torch.testing.assert_close(h @ y, s, rtol=1e-6, atol=1e-12)
    assert bool((torch.linalg.eigvalsh(h) > 0).all())


def test_pathfinder_is_close_to_a_gaussian_target_but_not_exact():
    """Pathfinder's Gaussian at iterate l is a Newton step with the L-BFGS inverse-Hessian estimate, which is exact
    only with exact line searches: on this 10-dimensional Gaussian the best q's mean is within 0.05 target sds of
    the mode and its ELBO within 1 nat of log Z (seen: 0.1 to 0.2 sd for the mean, 0.55 nats), not exact; BaM is. The
    estimate is a Monte Carlo ELBO of 10 draws, so it may exceed log Z by a little."""
    loc, cov, log_density = _gaussian_target(10)
    result = pathfinder.pathfinder(log_density, torch.zeros(10))
    assert ((result.loc - loc).abs() / cov.diagonal().sqrt()).max() < 0.05
    log_z = 0.5 * torch.logdet(2 * torch.pi * cov)  # the ELBO of q = the target
    assert log_z - 1 < result.elbo < log_z + 0.5 and result.num_grad_evals == result.path.num_evals


def test_bam_reaches_a_gaussian_target_exactly():
    """Cai et al. (2024), Theorem 3.1: with exact scores BaM's fixed point is the target, reached exponentially
    fast; from a poor start (N(0, I)), 15 steps with B = 2D + 2 draws give the target's mean and covariance to
    1e-10."""
    dim = 8
    loc, cov, log_density = _gaussian_target(dim, seed=3)
    q_loc, q_cov = torch.zeros(dim), torch.eye(dim)
    for t in range(15):
        z = torch.distributions.MultivariateNormal(q_loc, q_cov).sample((2 * dim + 2,))
        _, grad = pathfinder.value_and_grad(log_density, z)
        q_loc, q_cov = bam.bam_step(q_loc, q_cov, z, grad, (2 * dim + 2) * dim / (t + 1))
    torch.testing.assert_close(q_loc, loc, rtol=0, atol=1e-10)
    torch.testing.assert_close(q_cov, cov, rtol=0, atol=1e-10)


def test_bam_step_is_symmetric_positive_definite_from_noisy_scores():
    z = torch.randn(5, 4)
    new_loc, new_cov = bam.bam_step(torch.zeros(4), torch.eye(4), z, 10 * torch.randn(5, 4), 1.0)
    torch.testing.assert_close(new_cov, new_cov.T, rtol=0, atol=0)
    assert bool((torch.linalg.eigvalsh(new_cov) > 0).all()) and new_loc.shape == (4,)


def test_a_start_at_the_mode_stops_at_once():
    """A zero gradient at the initial point (z = 0 is the mode): L-BFGS stops there, Pathfinder has no pair to
    build a Gaussian from and falls back to N(z0, I), and elbo.fit goes on from it to the exact answer."""
    import elbo

    path = pathfinder.lbfgs(lambda z: -0.5 * (z**2).sum(-1), torch.zeros(2))
    assert len(path.z) == 1 and "gradient" in path.reason
    result = pathfinder.pathfinder(lambda z: -0.5 * (z**2).sum(-1), torch.zeros(2))
    assert result.elbo == float("-inf") and torch.equal(result.scale_tril, torch.eye(2))
    model = elbo.Model(params={"x": elbo.Param(())}, log_joint=lambda p: -0.5 * p["x"] ** 2, vectorize=True)
    fit = elbo.fit(model, num_draws=100, seed=0, progress=False)
    assert fit.converged and abs(fit.q.stddev.item() - 1) < 1e-6


def test_a_long_path_scores_fewer_iterates_and_its_last():
    """On a path of a few hundred iterates (an ill-conditioned 60-dimensional Gaussian, condition number 10⁶, two
    pairs of history), Pathfinder scores all of the first 64 iterates, then half as densely with each doubling, and
    always the last: 10 draws for each scored iterate, O(log L) of them past the start, against L before."""
    dim = 60
    sd = torch.logspace(-3, 0, dim)
    result = pathfinder.pathfinder(lambda z: -0.5 * ((z / sd) ** 2).sum(-1), torch.ones(dim), history=2,
                                   max_iters=400)
    num_iterates = result.path.num_iterates
    expected = [index for index in range(1, num_iterates) if pathfinder.scored(index)]
    if expected[-1] != num_iterates - 1:
        expected.append(num_iterates - 1)
    assert num_iterates > 200 and result.num_density_evals == 10 * len(expected) < 10 * num_iterates / 2
    assert [pathfinder.scored(i) for i in (63, 64, 65, 130, 132, 260, 264)] == [True, True, False, False, True,
                                                                                False, True]
