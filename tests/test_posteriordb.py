"""posteriordb's ports: each log density against its reference draws by Stein's identities, the torch and JAX
versions of each port against each other, and the loader's errors."""

import math
import warnings

import numpy as np
import pytest
import torch

import elbo
from elbo import posteriordb
from helpers import SHARED_DATA

DATA_DIR = SHARED_DATA / "posteriordb"
# Two-sided normal tests at 5.5 standard errors fail by chance with probability 3.8e-8 each; over the (at most
# 2 x 150) coordinates of each of the ~30 posteriors, the suite's false-failure probability is below 4e-4.
NUM_SE = 5.5


@pytest.fixture(scope="module", params=sorted(posteriordb.POSTERIORS))
def posterior(request):
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield posteriordb.load(request.param, DATA_DIR)
    torch.set_default_dtype(dtype)


def test_the_port_satisfies_steins_identities_at_the_reference_draws(posterior):
    """At posterior draws, E[∇ log p(z)] = 0 and E[(z_i - E z_i) ∂_i log p(z)] = -1 in every unconstrained
    coordinate; a port whose log density is wrong by more than a constant breaks one or the other."""
    check = posterior.score_check()
    assert check["mean_score"] < NUM_SE and check["stein"] < NUM_SE, check


def test_the_port_gives_every_reference_quantity(posterior):
    params = {name: value[:5] for name, value in posterior.reference_params().items()}
    quantities = posterior.quantities(params)
    assert set(quantities) == set(posterior.reference)
    for key, value in quantities.items():  # the reference draws map back to themselves
        np.testing.assert_allclose(value.numpy(), posterior.reference[key][:5], rtol=1e-8, atol=1e-8, err_msg=key)


def test_torch_and_jax_ports_agree(posterior):
    """The NumPyro peers of benchmarks/posteriordb.py run the same port in JAX: the same log density, to rounding."""
    pytest.importorskip("jax")
    import jax
    from elbo.posteriordb._ops import TORCH, jax_ops

    ops = jax_ops()
    params = {name: value[:20] for name, value in posterior.reference_params().items()}
    expected = torch.func.vmap(posterior.log_density_fn(TORCH))(params)
    jax_params = {name: jax.numpy.asarray(value.numpy()) for name, value in params.items()}
    actual = jax.vmap(posterior.log_density_fn(ops))(jax_params)
    np.testing.assert_allclose(np.asarray(actual), expected.numpy(), rtol=1e-9, atol=1e-9)
    assert np.all(np.isfinite(np.asarray(actual)))


def test_an_unknown_name_or_a_missing_directory_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no port of posterior 'nope'"):
        posteriordb.load("nope", DATA_DIR)
    with pytest.raises(FileNotFoundError, match="no posteriordb posterior eight_schools"):
        posteriordb.load("eight_schools-eight_schools_noncentered", tmp_path)


def test_errors_are_in_reference_sds():
    """Draws equal to the reference draws have zero error; shifting one quantity by a known amount moves only it."""
    posterior = posteriordb.load("eight_schools-eight_schools_noncentered", DATA_DIR)
    params = posterior.reference_params()
    rows = posterior.errors(params)
    assert max(abs(row["mean_error"]) for row in rows.values()) < 1e-9
    shifted = dict(params, mu=params["mu"] + 0.5 * float(np.std(posterior.reference["mu"], ddof=1)))
    rows = posterior.errors(shifted)
    assert math.isclose(rows["mu"]["mean_error"], 0.5, abs_tol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["eight_schools-eight_schools_noncentered", "kidiq-kidscore_momiq", "arK-arK"])
def test_the_default_fit_reports_estimates_within_a_fifth_of_a_reference_sd(name):
    """Issue 11's promise on three reference posteriors: where the default fit (Pathfinder, then batch and match)
    reports k̂ < 0.7, its PSIS-reweighted means and sds are within 0.2 reference sds of the 10,000 gold-standard
    draws' (seen with seed 0: k̂ 0.31 and 0.43 for kidiq and arK, errors at most 0.03). Eight schools sits at
    k̂ ≈ 0.7, on either side by the draws (0.72 with the dense Pathfinder, 0.61 with the compact one, errors 0.075
    and 0.077 reweighted): where k̂ ≥ 0.7 the fit must warn and is held to its raw draws, where k̂ < 0.7 it must
    not warn and is held to its reweighted ones."""
    posterior = posteriordb.load(name, DATA_DIR)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = elbo.fit(posterior.model, seed=0, progress=False)
    assert bool(caught) == (fit.khat >= 0.7), [str(w.message) for w in caught]
    weights = fit.psis_log_weights.exp() if fit.khat < 0.7 else None
    rows = posterior.errors(fit.draws, weights)
    assert max(abs(row["mean_error"]) for row in rows.values()) < 0.2
    assert max(abs(row["sd_error"]) for row in rows.values()) < 0.2

