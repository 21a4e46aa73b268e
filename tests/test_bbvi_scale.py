"""Black-box VI at scale: L-BFGS's compact inverse Hessian against the dense one, the low-rank Gaussian's draws and
density against torch's MultivariateNormal, and the log density by chunks of rows against one pass over all of them.
All in float64, where each identity holds to round-off."""

import math

import pytest
import torch

import elbo
from elbo.bbvi import pathfinder


@pytest.fixture(autouse=True)
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _gaussian_path(dim: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, dim, generator=generator)
    precision = a @ a.T / dim + 0.5 * torch.eye(dim)
    loc = torch.randn(dim, generator=generator)
    return pathfinder.lbfgs(lambda z: -0.5 * ((z - loc) @ precision * (z - loc)).sum(-1), torch.zeros(dim))


@pytest.mark.parametrize("dim", [3, 10, 40])
def test_the_compact_inverse_hessian_is_the_dense_one(dim):
    """Byrd, Nocedal & Schnabel (1994), eq. 2.6: the same BFGS updates of θ I, with 2m > D (dim 3) and 2m < D."""
    pairs = _gaussian_path(dim).pairs[-6:]
    alpha, beta, gamma = pathfinder.compact_inverse_hessian(pairs, dim)
    compact = torch.diag(alpha) + beta @ gamma @ beta.T
    torch.testing.assert_close(compact, pathfinder.inverse_hessian(pairs, dim), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dim", [3, 25])
def test_the_low_rank_gaussian_draws_and_scores_as_its_covariance_says(dim):
    """``log q`` computed from the standard-normal draw ``u`` equals N(loc, Σ)'s density at ``z = loc + S u`` for
    every draw only if ``S Sᵀ = Σ``: the square root, the log-determinant and the mean are all checked."""
    pairs = _gaussian_path(dim, seed=1).pairs[-6:]
    alpha, beta, gamma = pathfinder.compact_inverse_hessian(pairs, dim)
    loc = torch.linspace(-1, 1, dim)
    q = pathfinder.LowRankGaussian(loc, alpha, beta, gamma)
    assert q.positive_definite
    z, log_q = q.sample_and_log_prob(50)
    exact = torch.distributions.MultivariateNormal(loc, covariance_matrix=q.covariance())
    torch.testing.assert_close(log_q, exact.log_prob(z), rtol=1e-10, atol=1e-9)
    torch.testing.assert_close(q.variance, q.covariance().diagonal(), rtol=1e-12, atol=1e-12)


def _regression(num_data: int = 500, dim: int = 4, seed: int = 2):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(num_data, dim, generator=generator)
    y = x @ torch.linspace(-1, 1, dim) + 0.3 * torch.randn(num_data, generator=generator)
    positive = torch.distributions.constraints.positive
    return elbo.Model(params={"beta": elbo.Param((dim,)), "sigma": elbo.Param((), positive)},
                      log_prior=lambda p: torch.distributions.Normal(0, 1).log_prob(p["beta"]).sum(-1)
                      + torch.distributions.HalfNormal(1).log_prob(p["sigma"]),
                      log_likelihood=lambda p, batch: torch.distributions.Normal(
                          batch[0] @ p["beta"].T, p["sigma"]).log_prob(batch[1][:, None]).T,
                      data=(x, y))


def test_the_log_density_by_chunks_of_rows_is_the_one_pass_value_and_gradient():
    model = _regression()
    z = torch.randn(7, model.dim)
    indices = torch.randperm(model.num_data)[:123]
    whole = model.log_density(z), model.log_density(z, indices)
    model.chunk_elements = 7 * 30  # chunks of 30 rows for 7 draws: 17 of them
    assert len(model.row_chunks(7)) == math.ceil(500 / 30)
    torch.testing.assert_close(model.log_density(z), whole[0], rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(model.log_density(z, indices), whole[1], rtol=1e-12, atol=1e-9)
    z_leaf = z.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(elbo.bbvi.Model.log_density(model, z_leaf).sum(), z_leaf)
    value, chunked_grad = model.value_and_grad(z)
    torch.testing.assert_close(value, whole[0], rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(chunked_grad, grad, rtol=1e-10, atol=1e-9)


def test_all_indices_read_the_data_itself_and_give_the_full_value():
    model = _regression()
    z = torch.randn(3, model.dim)
    torch.testing.assert_close(model.log_density(z, torch.randperm(model.num_data)), model.log_density(z),
                               rtol=1e-12, atol=1e-9)


def test_the_default_family_changes_with_dimension_and_says_so():
    config = elbo.bbvi.FitConfig()
    small, why_small = config.for_model(elbo.bbvi.config.FULLRANK_MAX_DIM)
    large, why_large = config.for_model(elbo.bbvi.config.FULLRANK_MAX_DIM + 1)
    assert (small.family, small.method) == ("fullrank", "bam") and "≤ 500" in why_small
    assert (large.family, large.method) == ("meanfield", "advi") and "family='fullrank' asks for it" in why_large
    asked, why = elbo.bbvi.FitConfig(family="fullrank").for_model(10_000)
    assert asked.family == "fullrank" and why == ""


def test_a_fit_that_cannot_fit_in_memory_is_refused_before_it_starts(monkeypatch):
    """Batch and match's memory is checked against what is free: with 1 MiB free, D = 300 (about 7 MiB of D × D
    matrices) is refused in one line naming the stage, its size and what to change."""
    import os

    model = elbo.Model(params={"z": elbo.Param((300,))}, log_joint=lambda p: -0.5 * (p["z"] ** 2).sum(-1))
    real = os.sysconf
    monkeypatch.setattr(os, "sysconf", lambda name: 256 if name == "SC_AVPHYS_PAGES" else real(name))
    with pytest.raises(ValueError, match=r"batch and match on D = 300 \(602 draws a step\) need about .* GiB, more "
                                         r"than the 0.0 GiB free here: use family='meanfield'"):
        elbo.fit(model, init="point", progress=False)


def test_the_diagnostics_take_as_many_draws_as_their_budget_allows():
    from elbo.bbvi.result import MAX_DRAWS, MIN_DRAWS, _draws_in_budget

    assert _draws_in_budget(0.01, 100, 30.0) == MAX_DRAWS  # 0.1 ms a draw
    assert _draws_in_budget(1.0, 100, 30.0) == 3000  # 10 ms a draw: 3000 in 30 s
    assert _draws_in_budget(100.0, 100, 30.0) == MIN_DRAWS  # 1 s a draw: never below the floor
    assert _draws_in_budget(0.01, 100, 30.0, dim=10_000) == 2**24 // 10_000  # memory: 1,677 draws of D = 10^4
    assert _draws_in_budget(0.01, 100, 30.0, dim=10**6) == MIN_DRAWS


def test_a_fit_reports_its_diagnostics_cost_and_the_error_of_khat():
    """A Student-t target (ν = 5) under a Gaussian q: k̂ is above 0 and its bootstrap standard error positive and
    well below k̂'s scale; the draws default to 10,000 on a model this cheap."""
    model = elbo.Model(params={"z": elbo.Param((2,))},
                       log_joint=lambda p: torch.distributions.StudentT(5.0).log_prob(p["z"]).sum(-1))
    fit = elbo.fit(model, seed=0, progress=False)
    diagnostics = fit.diagnostics()
    assert diagnostics["num_draws"] == 10_000 and diagnostics["diagnostics_seconds"] > 0
    assert math.isfinite(fit.khat_stderr) and 0 < fit.khat_stderr < 0.2


def test_the_control_variate_estimate_averages_to_the_full_log_density_over_every_minibatch():
    """Unbiasedness, exactly: over all C(8, 3) = 56 minibatches of 3 of 8 rows (each as likely under sampling
    without replacement), the control-variate estimate's mean is the full-data log density, value and gradient, at
    draws away from the expansion point."""
    import itertools

    from elbo.bbvi.control_variate import ControlVariate
    from elbo.bbvi.methods import CountedDensity

    model = _regression(num_data=8, dim=3)
    estimate = ControlVariate(CountedDensity(model), torch.tensor([0.5, -0.2, 0.1, 0.3]))
    z = torch.randn(4, model.dim)
    subsets = [torch.tensor(rows) for rows in itertools.combinations(range(8), 3)]
    values, grads = zip(*(estimate.value_and_grad(z, rows) for rows in subsets))
    full_value, full_grad = model.value_and_grad(z)
    torch.testing.assert_close(torch.stack(values).mean(0), full_value, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(torch.stack(grads).mean(0), full_grad, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(estimate(z, torch.arange(8)), full_value)  # all rows: the density itself


def test_the_control_variate_leaves_little_noise_near_its_point():
    """At the expansion point itself the estimate is exact whatever the minibatch (the bracket vanishes), while the
    plain N/B-scaled minibatch estimate is not."""
    from elbo.bbvi.control_variate import ControlVariate
    from elbo.bbvi.methods import CountedDensity

    model = _regression(num_data=400, dim=3)
    z_hat = torch.tensor([[0.4, -0.1, 0.2, 0.0]])
    estimate = ControlVariate(CountedDensity(model), z_hat[0])
    rows = torch.randperm(400)[:20]
    torch.testing.assert_close(estimate(z_hat, rows), model.log_density(z_hat), rtol=1e-12, atol=1e-9)
    assert (model.log_density(z_hat, rows) - model.log_density(z_hat)).abs().item() > 1e-3


@pytest.mark.parametrize("on_disk", ["memmap", "read_rows"])
def test_a_data_set_on_the_disk_gives_the_in_memory_log_density(tmp_path, on_disk):
    """Mapped (``memmap``) or read row by row (``read_rows``): the same log density and gradient on all rows, by
    chunks of 64 rows, and on a minibatch of scattered rows; ``read_rows`` counts the rows it read (one pass for the
    value and gradient, the minibatch's rows for the minibatch)."""
    import numpy as np

    model = _regression(num_data=300, dim=3)
    x, y = model.data
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "y.npy", y.numpy())
    read = getattr(elbo.bbvi, on_disk)
    data = (read(tmp_path / "x.npy"), read(tmp_path / "y.npy"))
    mapped = elbo.Model(params=model.params, log_prior=model.log_prior, log_likelihood=model.log_likelihood,
                        data=data)
    mapped.chunk_elements = 5 * 64  # chunks of 64 rows read from the file
    z, rows = torch.randn(5, model.dim), torch.tensor([299, 3, 150, 3, 0])
    torch.testing.assert_close(mapped.value_and_grad(z)[1], model.value_and_grad(z)[1], rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(mapped.log_density(z, rows), model.log_density(z, rows), rtol=1e-12, atol=1e-9)
    if on_disk == "read_rows":
        assert data[0].rows_read == 300 + 5 and mapped.num_data == 300
        mapped.chunk_bytes = 32 * 4 * 8  # rows of 3 + 1 float64s: chunks of 32 rows read whatever the draws
        assert {c.stop - c.start for c in mapped.row_chunks(1)[:-1]} == {32}
        (tmp_path / "text.npy").write_text("not an array")
        with pytest.raises(elbo.InputError, match="not a .npy file"):
            elbo.bbvi.read_rows(tmp_path / "text.npy")


def _exact_regression(num_data: int, seed: int = 5):
    """A regression with independent regressors and known noise sd 1: ``β ~ N(0, I_3)``, posterior exact."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(num_data, 3, generator=generator)
    y = x @ torch.tensor([1.0, -0.5, 0.25]) + torch.randn(num_data, generator=generator)
    model = elbo.Model(params={"beta": elbo.Param((3,))}, log_prior=lambda p: -0.5 * (p["beta"] ** 2).sum(-1),
                       log_likelihood=lambda p, batch: -0.5 * (batch[1] - p["beta"] @ batch[0].T) ** 2,
                       data=(x, y))
    cov = torch.linalg.inv(x.T @ x + torch.eye(3))
    return model, cov @ x.T @ y, cov.diagonal().sqrt()


@pytest.mark.parametrize("init", ["map", "pathfinder"])
def test_minibatch_advi_converges_to_the_exact_posterior_and_does_not_stop_on_noise(init):
    """10,000 rows, minibatches of 100, from the mode or Pathfinder's Gaussian (each with a curvature to whiten by):
    the control variate keeps the ELBO estimates' noise below the progress the window rule looks for, so the fit
    stops on convergence (not at max_steps) with its mean within 0.1 and its sds within 10% of the exact
    posterior's. (Without the control variate the same fits' estimates carry the N/B-scaled noise of 100 rows'
    log-likelihoods, hundreds of nats here.)"""
    model, mean, sd = _exact_regression(10_000)
    fit = elbo.fit(model, family="meanfield", batch_size=100, init=init, seed=0, num_draws=1000, progress=False)
    assert fit.converged and fit.num_steps < fit.config.max_steps
    assert ((fit.q.mean[0] - mean) / sd).abs().max() < 0.1
    assert ((fit.q.stddev[0] / sd) - 1).abs().max() < 0.1


def test_a_full_rank_q_on_minibatches_steps_ten_times_smaller_by_default_and_reaches_the_exact_posterior():
    """ADVI's learning rate left to fit: 0.01 for a full-rank q on minibatches (at 0.1 its factor's entries wander on
    noisy gradients), 0.1 otherwise, the user's where given. With it, minibatches of 100 of 10,000 rows give the
    exact posterior's means within 0.1 sd and its sds within 10%."""
    from elbo.bbvi import FitConfig

    assert FitConfig(family="fullrank", batch_size=10).adam_lr() == 0.01
    assert FitConfig(family="meanfield", batch_size=10).adam_lr() == FitConfig().adam_lr() == 0.1
    assert FitConfig(family="fullrank", batch_size=10, lr=0.5).adam_lr() == 0.5
    model, mean, sd = _exact_regression(10_000)
    fit = elbo.fit(model, batch_size=100, seed=0, num_draws=1000, progress=False)
    assert fit.config.family == "fullrank" and fit.converged
    assert ((fit.q.mean[0] - mean) / sd).abs().max() < 0.1
    assert ((fit.q.stddev[0] / sd) - 1).abs().max() < 0.1


@pytest.mark.slow
def test_a_full_rank_q_of_a_hundred_dimensions_on_minibatches_needs_the_smaller_step():
    """The case that set the default (about a minute a fit): D = 100, 100,000 rows in minibatches of 1,000. At lr
    0.1 the factor's 5,050 entries wander (measured: means 3 to 11 sds off, sds 33 times too wide); at the default
    0.01 the exact posterior's means are within 0.1 sd and its sds within 10%."""
    generator, dim = torch.Generator().manual_seed(0), 100
    x = torch.randn(100_000, dim, generator=generator)
    y = x @ torch.randn(dim, generator=generator) + torch.randn(100_000, generator=generator)
    model = elbo.Model(params={"beta": elbo.Param((dim,))}, log_prior=lambda p: -0.5 * (p["beta"] ** 2).sum(-1),
                       log_likelihood=lambda p, batch: -0.5 * (batch[1] - p["beta"] @ batch[0].T) ** 2,
                       data=(x, y))
    cov = torch.linalg.inv(x.T @ x + torch.eye(dim))
    mean, sd = cov @ x.T @ y, cov.diagonal().sqrt()
    errors = {}
    for lr in (0.1, None):
        fit = elbo.fit(model, family="fullrank", batch_size=1000, lr=lr, seed=0, num_draws=1000, progress=False)
        errors[lr] = (((fit.q.mean[0] - mean) / sd).abs().max().item(), ((fit.q.stddev[0] / sd) - 1).abs().max().item())
    assert errors[0.1][0] > 1 and errors[None][0] < 0.1 and errors[None][1] < 0.1, errors


def test_a_minibatch_fit_of_many_rows_starts_from_a_subsample_and_still_reaches_the_exact_posterior(monkeypatch):
    """With more rows than ``START_ROWS`` (here 1,000 of 10,000), a minibatch fit's start sees a random subsample,
    its log-likelihood scaled by N/n, and not the data: its gradients are those of the subsample (counted), the
    reason says so, and the fit goes on from there to the exact posterior (mean within 0.1 sd, sds within 10%)."""
    from elbo.bbvi import driver

    model, mean, sd = _exact_regression(10_000)
    sub = model.subsample(1000)
    assert sub.num_data == 1000 and abs(sub.log_density(mean[None]) - model.log_density(mean[None])).item() < \
        0.05 * model.log_density(mean[None]).abs().item()  # N/n-scaled: the same order as the full density
    monkeypatch.setattr(driver, "START_ROWS", 1000)
    fit = elbo.fit(model, family="meanfield", batch_size=100, seed=0, num_draws=1000, progress=False)
    assert "on 1,000 of the rows" in fit.reason and fit.converged
    assert ((fit.q.mean[0] - mean) / sd).abs().max() < 0.1
    assert ((fit.q.stddev[0] / sd) - 1).abs().max() < 0.1


def _hierarchical(num_groups: int = 6, rows: int = 2, seed: int = 3):
    """``y = x β + b_g + ε``, ``β ~ N(0, I_2)``, ``b_j ~ N(0, 1)``, ``ε ~ N(0, 1)``, two rows a group: the groups'
    effects and β are strongly correlated a posteriori, which a mean-field q cannot show. Exact by inversion."""
    generator = torch.Generator().manual_seed(seed)
    n = num_groups * rows
    x, group = torch.randn(n, 2, generator=generator), torch.arange(n) % num_groups
    y = x @ torch.tensor([0.5, -1.0]) + torch.randn(num_groups, generator=generator)[group] + \
        torch.randn(n, generator=generator)
    design = torch.cat([x, torch.nn.functional.one_hot(group, num_groups).double()], 1)  # (n, 2 + J)
    cov = torch.linalg.inv(design.T @ design + torch.eye(2 + num_groups))
    model = elbo.Model(params={"beta": elbo.Param((2,)), "b": elbo.Param((num_groups,))},
                       log_prior=lambda p: -0.5 * (p["beta"] ** 2).sum(-1) - 0.5 * (p["b"] ** 2).sum(-1),
                       log_likelihood=lambda p, batch: -0.5 * (
                           batch[2] - p["beta"] @ batch[0].T - p["b"][:, batch[1]]) ** 2, data=(x, group, y))
    return model, cov @ design.T @ y, cov


def test_the_global_local_family_draws_and_scores_as_its_covariance_says():
    from elbo import families

    family = families.GlobalLocal(5, [3, 0], batch_shape=(1,))
    with torch.no_grad():
        for parameter in family.parameters():
            parameter.normal_()
    q = family()
    tril = torch.zeros(5, 5)  # L in z's own order: rows/columns of the globals (0, 3), then the locals (1, 2, 4)
    g, l = family.global_index, family.local_index
    tril[g[:, None], g] = q.global_tril[0]
    tril[l[:, None], g] = q.cross[0]
    tril[l, l] = q.local_scale[0]
    exact = torch.distributions.MultivariateNormal(q.loc, scale_tril=None, covariance_matrix=tril @ tril.T)
    z = q.rsample((7,))
    torch.testing.assert_close(q.log_prob(z), exact.log_prob(z), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(q.entropy(), exact.entropy(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(q.variance, exact.variance, rtol=1e-12, atol=1e-12)


def test_the_hierarchical_family_fits_an_exact_hierarchical_posterior_that_mean_field_cannot():
    """Six groups of two rows: the hierarchical family (chosen by ``local``) reaches the exact posterior's means and
    sds within 0.05 sd, and every correlation (β's with the groups' effects above 0.3) within 0.05; mean-field
    gets sds over 15% too small (it cannot hold the correlations)."""
    model, mean, cov = _hierarchical()
    sd = cov.diagonal().sqrt()
    fit = elbo.fit(model, local=("b",), seed=0, num_draws=2000, progress=False)
    assert fit.config.family == "hierarchical" and "local = b" in fit.reason
    q = fit.q
    assert ((q.mean[0] - mean) / sd).abs().max() < 0.05
    assert ((q.stddev[0] - sd) / sd).abs().max() < 0.05
    exact_corr = cov / torch.outer(sd, sd)
    q_corr = torch.corrcoef(q.sample((20_000,))[:, 0].T)  # 20,000 draws: a correlation's sd is below 0.01
    assert (q_corr - exact_corr).abs().max() < 0.05 and exact_corr[:2, 2:].abs().max() > 0.3
    meanfield = elbo.fit(model, family="meanfield", seed=0, num_draws=2000, progress=False)
    assert ((meanfield.q.stddev[0] - sd) / sd).min() < -0.15


def test_local_is_checked():
    model, _, _ = _hierarchical()
    with pytest.raises(ValueError, match="family='hierarchical' needs local"):
        elbo.fit(model, family="hierarchical")
    with pytest.raises(ValueError, match="local .* is for family='hierarchical', not family='meanfield'"):
        elbo.fit(model, family="meanfield", local=("b",))
    with pytest.raises(ValueError, match=r"local names unknown parameters \['c'\]; the model's are \['beta', 'b'\]"):
        elbo.fit(model, local=("c",), progress=False)


@pytest.mark.e2e
def test_the_command_line_takes_the_local_parameters(tmp_path, capsys):
    from elbo import cli

    path = tmp_path / "model.py"
    path.write_text("import torch\nimport elbo\n"
                    "x = torch.arange(12.0) % 3\ngroup = torch.arange(12) % 4\ny = torch.sin(torch.arange(12.0))\n"
                    "model = elbo.Model(params={'beta': elbo.Param(()), 'b': elbo.Param((4,))},\n"
                    "    log_prior=lambda p: -0.5 * p['beta'] ** 2 - 0.5 * (p['b'] ** 2).sum(-1),\n"
                    "    log_likelihood=lambda p, batch: -0.5 * (batch[2] - p['beta'][:, None] * batch[0]\n"
                    "        - p['b'][:, batch[1]]) ** 2, data=(x, group, y))\n")
    assert cli.main(["fit", str(path), "--local", "b", "--num-draws", "200", "--json"]) == 0
    import json

    result = json.loads(capsys.readouterr().out)
    assert result["family"] == "hierarchical" and result["method"] == "advi" and "local = b" in result["reason"]


REGRESSION_FILE = """\
import torch
import elbo

generator = torch.Generator().manual_seed(1)
x = torch.randn(3001, 3, generator=generator)  # 3001 rows: the two processes' blocks differ by one
y = x @ torch.tensor([1.0, -1.0, 0.5]) + torch.randn(3001, generator=generator)
model = elbo.Model(params={"beta": elbo.Param((3,))}, log_prior=lambda p: -0.5 * (p["beta"] ** 2).sum(-1),
                   log_likelihood=lambda p, batch: -0.5 * (batch[1] - p["beta"] @ batch[0].T) ** 2, data=(x, y))
"""


@pytest.mark.e2e
def test_two_processes_fit_what_one_does(tmp_path, capsys):
    """``elbo fit --nproc 2``: each process sums its block of the rows, every process draws the same q's noise, so
    the fit is the one-process fit to the order of the additions (1e-8 here, where a different seed moves the
    estimates by 1e-2)."""
    import json

    from elbo import cli

    path = tmp_path / "model.py"
    path.write_text(REGRESSION_FILE)
    common = ["fit", str(path), "--num-draws", "500", "--json"]
    results = []
    for extra in ([], ["--nproc", "2"]):
        assert cli.main([*common, *extra]) == 0
        results.append(json.loads(capsys.readouterr().out))
    one, two = results
    assert two["nproc"] == 2 and two["steps"] == one["steps"]
    for row_one, row_two in zip(one["parameters"], two["parameters"]):
        assert row_two["vi_mean"] == pytest.approx(row_one["vi_mean"], abs=1e-8)
        assert row_two["vi_sd"] == pytest.approx(row_one["vi_sd"], rel=1e-8)
    assert two["elbo"] == pytest.approx(one["elbo"], abs=1e-6)


@pytest.mark.e2e
def test_nproc_with_compare_nuts_is_refused(tmp_path, capsys):
    from elbo import cli

    path = tmp_path / "model.py"
    path.write_text(REGRESSION_FILE)
    assert cli.main(["fit", str(path), "--nproc", "2", "--compare-nuts"]) == 2
    assert "--compare-nuts runs NUTS in one process" in capsys.readouterr().err
