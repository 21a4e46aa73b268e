"""kidscore_momhs.stan: kid_score ~ N(beta[1] + beta[2] mom_hs, sigma), sigma ~ Cauchy⁺(0, 2.5), beta flat."""

from . import _regression as regression

POSTERIORS = ("kidiq-kidscore_momhs",)

params = regression.params
transform_data, log_density = regression.one_predictor("kid_score", "mom_hs", sigma_cauchy_scale=2.5)
