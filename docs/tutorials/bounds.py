# # Bounds and gradient estimators
#
# A model with a closed-form posterior and evidence, `elbo.exact.LinearGaussian`, lets every bound be held
# against the number it bounds. We fit a mean-field and a full-rank q to one data point, watch the IWAE bound
# close the gap that the ELBO leaves, and measure what the gradient estimators do to the variance.
#
# Run it: `python docs/tutorials/bounds.py` (a few seconds; `ELBO_TUTORIAL_QUICK=1` takes fewer steps).

import os

import torch

from elbo import bounds, exact, families

QUICK = os.environ.get("ELBO_TUTORIAL_QUICK") == "1"
STEPS = 300 if QUICK else 1000
torch.set_default_dtype(torch.float64)  # the exact checks below are to many decimal places
torch.manual_seed(0)

# ## The model and its answers
#
# `z ~ N(0, I_2)`, `x | z ~ N(W z + b, 0.5² I_5)`. The two columns of `W` are nearly parallel, so the data pin
# down `z_1 + z_2` far better than `z_1 - z_2`: the posterior `p(z|x)` is a strongly correlated Gaussian, and its
# evidence `log p(x)` is known exactly. Data is `(B, D_x)`: here one data point, `B = 1`.

direction = torch.randn(5, 1)
weight = torch.cat([direction, direction + 0.3 * torch.randn(5, 1)], 1)  # (D_x, D) = (5, 2)
model = exact.LinearGaussian(weight, torch.randn(5), noise_scale=0.5)
x = model.marginal().sample((1,))  # (1, 5)
log_px = model.log_evidence(x)  # (1,)
print(f"log p(x) = {log_px.item():.4f} (exact)")

# ## Fitting q by the ELBO
#
# A guide is a module that returns a torch Distribution with batch shape `(B,)`. Bounds return one value per
# data point, shape `(B,)`, in nats, not negated: the training loss is `-bound.mean()`, written here once.
# The gradient estimator is sticking the landing (`stl`, below), whose noise vanishes as q reaches the
# posterior, so that a constant learning rate still converges.


def fit(guide, steps=STEPS):
    optimizer = torch.optim.Adam(guide.parameters(), lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = -bounds.elbo(model, guide, x, num_samples=8, form="mc", estimator="stl").mean()
        loss.backward()
        optimizer.step()
    return guide


mean_field = fit(families.MeanField(2, batch_shape=(1,)))
full_rank = fit(families.FullRank(2, batch_shape=(1,)))

# ## The gap is the KL to the posterior
#
# `ELBO = log p(x) - KL(q ‖ p(z|x))`. `exact.exact_elbo` computes the right-hand side in closed form; the
# Monte Carlo ELBO with many samples agrees with it. A mean-field q cannot represent the posterior's
# correlation, so its gap stays open; a full-rank q closes it.

print(f"{'family':<10} {'ELBO (MC)':>10} {'exact ELBO':>11} {'KL(q‖p(z|x))':>13}")
with torch.no_grad():
    for name, guide in [("meanfield", mean_field), ("fullrank", full_rank)]:
        mc = bounds.elbo(model, guide, x, num_samples=20000, form="mc").item()
        exact_value = exact.exact_elbo(model, guide(x), x).item()
        print(f"{name:<10} {mc:>10.4f} {exact_value:>11.4f} {log_px.item() - exact_value:>13.5f}")

# ## The IWAE bound tightens with K
#
# `L_K = E[log (1/K) Σ_k w_k]` with `L_1 = ELBO ≤ L_K ≤ L_{K+1} → log p(x)` (Burda et al. 2015). Each number is
# an average over repeated estimates, so that the ordering is visible over the Monte Carlo noise.

print("IWAE bound of the mean-field q, by K:")
with torch.no_grad():
    xs = x.expand(2000, -1)  # 2000 independent estimates of L_K at once, one per row
    guide = families.MeanField(2, batch_shape=(2000,))
    guide.load_state_dict({k: v.expand(2000, *v.shape[1:]) for k, v in mean_field.state_dict().items()})
    for k in (1, 10, 100, 1000):
        print(f"  L_{k:<4} = {bounds.iwae(model, guide, xs, num_samples=k).mean().item():.4f}")
print(f"  log p(x) = {log_px.item():.4f}")

# ## Gradient estimators
#
# The value of a bound is always its Monte Carlo estimate; its gradient is the estimator's. At the exact
# posterior, sticking the landing (`stl`, Roeder et al. 2017) drops the score term of `log q`, whose expectation
# is zero, and its gradient has zero variance; the plain reparameterization gradient does not.


def gradient_variance(guide, bound, repeats=100 if QUICK else 1000):
    grads = []
    for _ in range(repeats):
        guide.zero_grad()
        bound(guide).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in guide.parameters()]))
    return torch.stack(grads).var(0).sum().item()


exact_q = families.FullRank(2, batch_shape=(1,))
with torch.no_grad():  # q set to the exact posterior N(m, L Lᵀ)
    posterior = model.posterior(x)
    exact_q.loc.copy_(posterior.loc)
    exact_q.log_diag.copy_(posterior.scale_tril.diagonal(dim1=-2, dim2=-1).log())
    exact_q.off_diag.copy_(posterior.scale_tril)
print("ELBO gradient variance at the exact posterior:")
for estimator in ("reparam", "stl"):
    variance = gradient_variance(exact_q, lambda g, e=estimator: bounds.elbo(model, g, x, 1, form="mc", estimator=e))
    print(f"  {estimator:<8} {variance:.3e}")

# For the IWAE bound, the doubly reparameterized estimator (`dreg`, Tucker et al. 2018) drops the same kind of
# zero-mean term from the guide's gradient; near the posterior (here the fitted full-rank q) its variance is far
# below the reparameterization gradient's, which is why it keeps the guide learning as K grows.

print("IWAE (K = 64) guide-gradient variance of the full-rank q:")
for estimator in ("reparam", "dreg"):
    variance = gradient_variance(full_rank, lambda g, e=estimator: bounds.iwae(model, g, x, 64, estimator=e))
    print(f"  {estimator:<8} {variance:.3e}")
