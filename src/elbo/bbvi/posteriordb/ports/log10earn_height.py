"""log10earn_height.stan: log10(earn) ~ N(beta[1] + beta[2] height, sigma); beta and sigma > 0 flat."""

import numpy as np

from . import _regression as regression

POSTERIORS = ("earnings-log10earn_height",)

params = regression.params
transform_data, log_density = regression.one_predictor("earn", "height", transform=np.log10)
