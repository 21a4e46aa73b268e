"""logearn_height.stan: log(earn) ~ N(beta[1] + beta[2] height, sigma); beta and sigma > 0 flat."""

import numpy as np

from . import _regression as regression

POSTERIORS = ("earnings-logearn_height",)

params = regression.params
transform_data, log_density = regression.one_predictor("earn", "height", transform=np.log)
