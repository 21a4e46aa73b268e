"""A tall regression streamed from the disk: elbo.fit on minibatches of a data set read row by row
(``elbo.bbvi.read_rows``), against its exact posterior; the passes it made over the data and its peak memory.

The model is ``benchmarks/scale.py``'s regression (y = X β + ε, rows of X equicorrelated 0.5, β ~ N(0, I_D)),
written to ``--data-dir`` as two ``.npy`` files (once; kept for later runs) and never held in memory: the exact
posterior ``N(P⁻¹ Xᵀy, P⁻¹)``, ``P = XᵀX + I``, is accumulated over chunks of rows off the clock. The fit's start sees
a random 2¹⁶ of the rows, held in memory; the control variate's expansion takes one pass, each minibatch its rows,
the diagnostics one pass; ``passes`` is the rows read over N, counted by the reader.

    python benchmarks/scale_stream.py [--rows 10000000] [--dim 100]
    python benchmarks/scale_stream.py --render benchmarks/results/scale_stream.json
"""

from __future__ import annotations

import math
import sys
import time
import warnings

import numpy as np
import torch
from _harness import REPO, Benchmark, Column, Contestant, Setting, main  # beside this script

import elbo
from elbo.bbvi.methods import CostWarning

CHUNK = 100_000  # rows written, and read for the exact posterior, at a time


def files(settings) -> tuple:
    """The data's two files, written chunk by chunk where they are missing (seeded: the same rows every time)."""
    directory = settings.data_dir / f"regression-{settings.rows}x{settings.dim}-seed{settings.seed}"
    x_path, y_path = directory / "x.npy", directory / "y.npy"
    if x_path.is_file() and y_path.is_file():
        return x_path, y_path
    directory.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(settings.seed)
    beta = torch.randn(settings.dim, generator=generator, dtype=torch.float64)
    x_file = np.lib.format.open_memmap(x_path.with_suffix(".part"), "w+", np.float64, (settings.rows, settings.dim))
    y_file = np.lib.format.open_memmap(y_path.with_suffix(".part"), "w+", np.float64, (settings.rows,))
    for start in range(0, settings.rows, CHUNK):
        n = min(CHUNK, settings.rows - start)
        x = math.sqrt(0.5) * torch.randn(n, 1, generator=generator, dtype=torch.float64) + \
            math.sqrt(0.5) * torch.randn(n, settings.dim, generator=generator, dtype=torch.float64)
        x_file[start:start + n] = x.numpy()
        y_file[start:start + n] = (x @ beta + torch.randn(n, generator=generator, dtype=torch.float64)).numpy()
    x_file.flush(), y_file.flush()
    del x_file, y_file
    x_path.with_suffix(".part").rename(x_path)
    y_path.with_suffix(".part").rename(y_path)
    return x_path, y_path


def load(case, settings):
    torch.set_default_dtype(torch.float64)
    x_path, y_path = files(settings)
    x, y = elbo.bbvi.read_rows(x_path), elbo.bbvi.read_rows(y_path)
    precision, xty = torch.eye(settings.dim), torch.zeros(settings.dim)
    for start in range(0, settings.rows, CHUNK):
        rows = slice(start, min(start + CHUNK, settings.rows))
        x_rows = x[rows]  # read once
        precision += x_rows.T @ x_rows
        xty += x_rows.T @ y[rows]
    cov = torch.linalg.inv(precision)
    return x_path, y_path, cov @ xty, cov.diagonal().sqrt()


def run_elbo(data, settings) -> dict:
    x_path, y_path, mean, sd = data
    x, y = elbo.bbvi.read_rows(x_path), elbo.bbvi.read_rows(y_path)
    model = elbo.Model(params={"beta": elbo.Param((settings.dim,))},
                       log_prior=lambda p: -0.5 * (p["beta"] ** 2).sum(-1),
                       log_likelihood=lambda p, batch: -0.5 * (batch[1] - p["beta"] @ batch[0].T) ** 2,
                       data=(x, y))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start, cpu = time.perf_counter(), time.process_time()
        fit = elbo.fit(model, batch_size=settings.batch_size, seed=settings.seed, progress=False)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    found_mean, found_sd = (fit.psis_mean["beta"], fit.psis_sd["beta"]) if fit.khat < 0.7 else \
        (fit.q.mean[0], fit.q.stddev[0])
    mean_error, sd_error = ((found_mean - mean) / sd).abs(), ((found_sd - sd) / sd).abs()
    return {"wall_s": wall, "cpu_s": cpu, "fit_s": fit.seconds, "diagnostics_s": fit.diagnostics_seconds,
            "passes": x.rows_read / settings.rows, "family": fit.config.family, "method": fit.config.method,
            "num_steps": fit.num_steps, "khat": fit.khat, "reason": fit.reason,
            "max_mean": mean_error.max().item(), "median_mean": mean_error.median().item(),
            "max_sd": sd_error.max().item(), "median_sd": sd_error.median().item(),
            "data_mib": settings.rows * (settings.dim + 1) * 8 / 2**20, "dim": settings.dim,
            "warned": any(not issubclass(w.category, CostWarning) for w in caught),
            "warnings": sorted({str(w.message).splitlines()[0][:200] for w in caught})}


BENCHMARK = Benchmark(
    name="scale_stream", description=__doc__.split("\n\n")[0],
    settings={"rows": Setting(10_000_000, "rows of the regression", quick=50_000),
              "dim": Setting(100, "its coefficients", quick=10),
              "batch_size": Setting(1000, "minibatch rows"),
              "data_dir": Setting(REPO / "runs" / "bench" / "stream", "where the data's .npy files are written"),
              "seed": Setting(0, "seed of the data and of the fit")},
    load=load,
    contestants=[Contestant("elbo, minibatches of rows read from the disk", run_elbo, key="elbo-stream")],
    columns=[Column("rows", lambda row: f"{row['data_mib'] * 2**20 / 8 / (row['dim'] + 1):,.0f}"),
             Column("data MiB", "data_mib", ".0f"), Column("wall s", "wall_s", ".1f"), Column("CPU s", "cpu_s", ".1f"),
             Column("diagnostics s", "diagnostics_s", ".1f"), Column("passes", "passes", ".2f"),
             Column("steps", "num_steps", "d"), Column("max |mean err|", "max_mean", ".3f"),
             Column("median |mean err|", "median_mean", ".3f"), Column("max |sd err|", "max_sd", ".3f"),
             Column("median |sd err|", "median_sd", ".3f"), Column("k̂", "khat", ".2f"), Column("warned", "warned")],
    packages=("torch",))

if __name__ == "__main__":
    sys.exit(main(BENCHMARK))
