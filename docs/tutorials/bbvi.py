# # Black-box VI: `elbo.fit` on a model of your own
#
# Write a model as named, constrained parameters and a log joint density; `elbo.fit` fits a Gaussian q to its
# posterior in the unconstrained space, says how far to trust it (PSIS k̂), and gives draws and summaries in the
# constrained space. First a model whose posterior and evidence are known exactly (a conjugate linear regression),
# to see the fit reach them; then the eight schools, a posterior with a funnel.
#
# Run it: `python docs/tutorials/bbvi.py` (a few seconds, quick or not; `pip install 'elbo[mcmc]'` for k̂).
# From the command line, a model file that defines `model` (see `examples/`):
#
# ```bash
# elbo fit examples/eight_schools.py --compare-nuts
# ```

import os

import torch
from torch.distributions import HalfCauchy, Normal, constraints

import elbo
from elbo import exact

QUICK = os.environ.get("ELBO_TUTORIAL_QUICK") == "1"  # the fits take well under a second either way
torch.set_default_dtype(torch.float64)

# ## A posterior with a closed form
#
# `w ~ N(0, I_3)`, `y_n ~ N(x_n · w, 0.5²)` for 50 points. `log_joint` receives the parameters as a dict, each
# with S draws in front (`p["w"]`: `(S, 3)`), and returns `(S,)`: the log density of every draw at once.

torch.manual_seed(0)
X = torch.randn(50, 3)  # (N, 3)
y = X @ torch.tensor([1.0, -2.0, 0.5]) + 0.5 * torch.randn(50)  # (N,)


def log_joint(p):
    w = p["w"]  # (S, 3)
    return Normal(0.0, 1.0).log_prob(w).sum(-1) + Normal(w @ X.T, 0.5).log_prob(y).sum(-1)  # (S,)


regression = elbo.Model(params={"w": elbo.Param((3,))}, log_joint=log_joint)
fit = elbo.fit(regression, seed=0, progress=False)  # Pathfinder, then batch and match: a full-rank Gaussian q

# The same model as `elbo.exact.LinearGaussian` (`z = w`, weight `X`, bias 0, noise 0.5) gives the exact posterior
# and `log p(y)`. The fit's `log_evidence` is the importance-sampled estimate `log (1/M) Σ_m p(y, w_m) / q(w_m)`.

conjugate = exact.LinearGaussian(X, torch.zeros(50), noise_scale=0.5)
with torch.no_grad():
    posterior = conjugate.posterior(y.unsqueeze(0))  # batch (1,)
    log_evidence = conjugate.log_evidence(y.unsqueeze(0)).item()
summary = fit.summary()
print(f"k̂ = {fit.khat:.2f}; {fit.reason}")
print(f"{'':<6} {'q mean':>8} {'exact':>8} {'q sd':>7} {'exact':>7}")
for i in range(3):
    row = summary[f"w[{i}]"]
    exact_sd = posterior.covariance_matrix[0, i, i].sqrt().item()
    print(f"w[{i}]  {row['mean']:>8.4f} {posterior.loc[0, i].item():>8.4f} {row['sd']:>7.4f} {exact_sd:>7.4f}")
print(f"log p(y): fit {fit.log_evidence:.4f} ± {fit.log_evidence_stderr:.4f}, exact {log_evidence:.4f}")

# ## Eight schools, non-centred
#
# Constraints make parameters live where they must: `tau` is positive, so `elbo.fit` works with `u = log tau`
# and adds the log-Jacobian; `fit.sample` and `fit.summary` give values of `tau` itself.

effects = torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
sigma = torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def schools(p):  # p["mu"], p["tau"]: (S,); p["eta"]: (S, 8)
    # (S,) against (S, 8) needs unsqueeze(-1): without it, S = 8 would broadcast silently draw against school
    theta = p["mu"].unsqueeze(-1) + p["tau"].unsqueeze(-1) * p["eta"]  # (S, 8)
    return (Normal(0.0, 5.0).log_prob(p["mu"]) + HalfCauchy(5.0).log_prob(p["tau"])
            + Normal(0.0, 1.0).log_prob(p["eta"]).sum(-1) + Normal(theta, sigma).log_prob(effects).sum(-1))


model = elbo.Model(params={"mu": elbo.Param(()), "tau": elbo.Param((), constraints.positive),
                           "eta": elbo.Param((8,))}, log_joint=schools)
fit = elbo.fit(model, seed=0, progress=False)
draws = fit.sample(1000)  # constrained: tau > 0
print(f"eight schools: k̂ = {fit.khat:.2f}, {fit.num_steps} steps, {fit.num_grad_evals} gradients")
print(f"tau: mean {fit.summary()['tau']['mean']:.2f}, PSIS-reweighted {fit.summary()['tau']['psis_mean']:.2f}; "
      f"smallest draw {draws['tau'].min().item():.3g} > 0")

# ## How far to trust q
#
# k̂ < 0.5: q is close to the posterior. 0.5 ≤ k̂ < 0.7: q is useful, but report the PSIS-reweighted estimates
# (`psis_mean`, `psis_sd`). k̂ ≥ 0.7: q is unreliable, and `elbo.fit` warns. The funnel of eight schools puts its
# k̂ near 0.7, at the edge between the two; compare with NUTS (`elbo.mcmc.nuts(model)`, or
# `elbo fit --compare-nuts`) to see where q falls short.
