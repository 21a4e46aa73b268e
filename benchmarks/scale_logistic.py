"""Black-box VI at scale on logistic regressions without a closed form: ``benchmarks/scale.py``'s contestants and
scoring on MNIST's 784 pixels (D = 785, N = 60,000) and a covtype-shaped synthetic set (D = 55, N = 581,012), each
scored against a reference posterior (``scale.reference``: Laplace + PSIS where its k̂ < 0.7, else NUTS in the
Laplace-whitened space, its R̂ and ESS recorded). A benchmark of its own so that its result, which takes the longest,
is written apart from the exact-posterior models'.

    python benchmarks/scale_logistic.py [--models covtype_logistic,mnist_logistic]
    python benchmarks/scale_logistic.py --render benchmarks/results/scale_logistic.json
"""

from __future__ import annotations

import sys
from dataclasses import replace

from _harness import REPO, Setting, main  # beside this script
from scale import BENCHMARK as SCALE

BENCHMARK = replace(
    SCALE, name="scale_logistic", description=__doc__.split("\n\n")[0],
    settings=SCALE.settings | {
        "models": Setting(["covtype_logistic", "mnist_logistic"], "which models (comma-separated): "
                          "covtype_logistic, mnist_logistic, regression, hierarchical"),
        "figure": Setting(REPO / "docs" / "scale_logistic_error_vs_time.png", "the figure of error against wall time",
                          quick=REPO / "runs" / "bench" / "scale_logistic-quick.png")})

if __name__ == "__main__":
    sys.exit(main(BENCHMARK))
