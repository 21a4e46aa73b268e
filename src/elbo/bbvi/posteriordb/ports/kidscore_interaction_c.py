"""kidscore_interaction_c.stan: with the centered predictors c_mom_hs = mom_hs - mean(mom_hs) and c_mom_iq = mom_iq -
mean(mom_iq), kid_score ~ N(beta[1] + beta[2] c_mom_hs + beta[3] c_mom_iq + beta[4] c_mom_hs c_mom_iq, sigma);
beta and sigma > 0 flat."""

from . import _regression as regression

POSTERIORS = ("kidiq_with_mom_work-kidscore_interaction_c",)

params = regression.params


def transform_data(data):
    c_mom_hs = data["mom_hs"] - data["mom_hs"].mean()
    c_mom_iq = data["mom_iq"] - data["mom_iq"].mean()
    return regression.design(data["kid_score"], c_mom_hs, c_mom_iq, c_mom_hs * c_mom_iq)


def log_density(ops, p, data):
    return regression.log_likelihood(ops, p, data)
