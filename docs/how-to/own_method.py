# # A black-box VI method of your own: the Laplace approximation
#
# A method of `elbo.fit` is a function `run(start) -> MethodResult` (`elbo.bbvi.methods`) and an entry in the table
# `elbo.bbvi.config.METHODS`. Everything around it is the driver's: the initial point, the start (Pathfinder by
# default), the draws of q, PSIS k̂, the evidence and the summaries. This method puts a full-rank Gaussian at the
# start's mean with the inverse of the negative Hessian of `log p` there as its covariance: the Laplace
# approximation, exact for a Gaussian posterior.
#
# Run it: `python docs/how-to/own_method.py` (a few seconds).

import os

import torch
from torch.distributions import Normal

import elbo
from elbo import exact
from elbo.bbvi.config import METHODS, Method
from elbo.bbvi.gaussians import make_guide
from elbo.bbvi.methods import MethodResult, Start

QUICK = os.environ.get("ELBO_TUTORIAL_QUICK") == "1"  # the fit takes well under a second either way
torch.set_default_dtype(torch.float64)


def run(start: Start) -> MethodResult:
    """`start.log_density(z)`: the model's log density in the unconstrained space, `z: (S, D)` -> `(S,)`, with the
    log-Jacobians of the constraints (it counts the gradients taken); `start.loc` `(D,)` and `start.scale_tril`
    `(D, D)`: the Gaussian the fit starts from."""
    hessian = torch.autograd.functional.hessian(lambda z: start.log_density(z.unsqueeze(0))[0], start.loc)  # (D, D)
    scale_tril = torch.linalg.cholesky(torch.linalg.inv(-hessian))
    guide = make_guide(start.config, start.model.dim, start.loc, scale_tril)  # q of the fit's family, batch (1,)
    return MethodResult(guide, elbo_trace=[], converged=True, reason="the Laplace approximation at the start")


METHODS.register("laplace", Method(run, families=("fullrank",), help="Laplace at the start (full rank)"),
                 replace=True)

# A posterior with a closed form to hold it against: `w ~ N(0, I_3)`, `y_n ~ N(x_n · w, 0.5²)`.

torch.manual_seed(0)
X = torch.randn(50, 3)
y = X @ torch.tensor([1.0, -2.0, 0.5]) + 0.5 * torch.randn(50)
model = elbo.Model(params={"w": elbo.Param((3,))},
                   log_joint=lambda p: Normal(0.0, 1.0).log_prob(p["w"]).sum(-1)
                   + Normal(p["w"] @ X.T, 0.5).log_prob(y).sum(-1))
fit = elbo.fit(model, method="laplace", seed=0, progress=False)
posterior = exact.LinearGaussian(X, torch.zeros(50), noise_scale=0.5).posterior(y.unsqueeze(0))
sd_error = (fit.summary()["w[0]"]["sd"] / posterior.covariance_matrix[0, 0, 0].sqrt() - 1).abs().item()
print(f"laplace: {fit.reason}; k̂ = {fit.khat:.2f}; relative error of w[0]'s sd {sd_error:.3f}")
