"""kidscore_interaction.stan: kid_score ~ N(beta[1] + beta[2] mom_hs + beta[3] mom_iq + beta[4] mom_hs mom_iq,
sigma), sigma ~ Cauchy⁺(0, 2.5), beta flat."""

from . import _regression as regression

POSTERIORS = ("kidiq-kidscore_interaction",)

params = regression.params


def transform_data(data):
    mom_hs, mom_iq = data["mom_hs"], data["mom_iq"]
    return regression.design(data["kid_score"], mom_hs, mom_iq, mom_hs * mom_iq)


def log_density(ops, p, data):
    return ops.cauchy(p["sigma"], 0.0, 2.5) + regression.log_likelihood(ops, p, data)
