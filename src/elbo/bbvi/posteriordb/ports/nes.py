"""nes.stan: partyid7 ~ N(beta[1] + beta[2] real_ideo + beta[3] race_adj + beta[4] age30_44 + beta[5] age45_64
+ beta[6] age65up + beta[7] educ1 + beta[8] gender + beta[9] income, sigma), with the age indicators
age30_44 = [age_discrete == 2], age45_64 = [age_discrete == 3], age65up = [age_discrete == 4]; beta and
sigma > 0 flat."""

from . import _regression as regression

POSTERIORS = ("nes1972-nes", "nes1976-nes", "nes2000-nes")

params = regression.params


def transform_data(data):
    age = data["age_discrete"]
    return regression.design(data["partyid7"], data["real_ideo"], data["race_adj"], age == 2, age == 3, age == 4,
                             data["educ1"], data["gender"], data["income"])


def log_density(ops, p, data):
    return regression.log_likelihood(ops, p, data)
