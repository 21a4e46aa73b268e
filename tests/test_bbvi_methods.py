"""A black-box VI method added from outside the package: one function and one table entry (``METHODS.register``),
as ARCHITECTURE.md's "How to add a black-box VI method" says; and the table's own rules (families, minibatches)."""

import pytest
import torch

import elbo
from elbo.bbvi import METHODS, Method
from elbo.bbvi.gaussians import make_guide
from elbo.bbvi.methods import MethodResult, Start
from elbo.bbvi.pathfinder import lbfgs


def laplace(start: Start) -> MethodResult:
    """q = N(mode, (-∇² log p(mode))⁻¹): the mode by L-BFGS from the start's mean, the Hessian by autograd."""
    mode = lbfgs(start.log_density, start.loc).z[-1]
    hessian = torch.autograd.functional.hessian(lambda z: start.log_density(z[None])[0], mode)
    scale_tril = torch.linalg.cholesky(torch.linalg.inv(-hessian))
    guide = make_guide(start.config, start.model.dim, mode, scale_tril)
    return MethodResult(guide, [], True, "the Laplace approximation at the mode")


@pytest.fixture
def with_laplace():
    METHODS.register("laplace", Method(laplace, ("fullrank",), help="the Laplace approximation"))
    yield
    METHODS.unregister("laplace")


LOC = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
COV = torch.tensor([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]], dtype=torch.float64)
LOG_NORMALIZER = 4.0  # log p(x) of the target below, exactly


def _gaussian_model():
    target = torch.distributions.MultivariateNormal(LOC, COV)
    return elbo.Model(params={"z": elbo.Param((3,))}, log_joint=lambda p: target.log_prob(p["z"]) + LOG_NORMALIZER)


def test_a_method_registered_from_outside_fits_exactly_on_a_gaussian_target(with_laplace):
    """On a Gaussian target the Laplace approximation is the posterior: q's mean and covariance are exact, every
    log-weight equals log p(x), up to the L-BFGS tolerance of the mode."""
    fit = elbo.fit(_gaussian_model(), method="laplace", init="point", dtype=torch.float64, num_draws=200, seed=0,
                   progress=False)
    q = fit.q
    assert torch.allclose(q.mean[0], LOC, atol=1e-6)
    assert torch.allclose(q.covariance_matrix[0], COV, atol=1e-6)
    assert fit.log_evidence == pytest.approx(LOG_NORMALIZER, abs=1e-6)
    assert fit.log_weights.std().item() < 1e-5
    assert fit.config.method == "laplace" and "Laplace" in fit.reason


def test_the_table_decides_families_and_minibatches(with_laplace):
    with pytest.raises(ValueError, match="method='laplace' fits a full-rank Gaussian: use family='fullrank'"):
        elbo.fit(_gaussian_model(), family="meanfield", method="laplace")
    with pytest.raises(ValueError, match="batch_size .* needs method 'advi'; method='laplace' uses all data"):
        elbo.bbvi.FitConfig(method="laplace", batch_size=10)
    with pytest.raises(ValueError, match="method must be one of 'bam', 'advi', 'pathfinder', 'flow', 'laplace'"):
        elbo.bbvi.FitConfig(method="lapalce")


def test_the_built_in_methods_are_the_table():
    assert METHODS.names() == ("bam", "advi", "pathfinder", "flow")
    assert METHODS["advi"].families == elbo.bbvi.FAMILIES
    assert METHODS["advi"].minibatch and not METHODS["bam"].minibatch
