"""Shared pieces of the tests: the linear-Gaussian model, comparisons stated in standard errors, small data files,
and the ``elbo`` command run in this process."""

import contextlib
import gzip
import hashlib
import io
import math
import os
import random
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np
import torch

from elbo import cli, exact

# A two-sided normal test at 4.5 standard errors fails by chance with probability 6.8e-6 per comparison;
# a test making n comparisons at this level has a false-failure probability below n * 6.8e-6.
NUM_SE = 4.5


def linear_gaussian(latent_dim=2, data_dim=3, noise_scale=0.7, *, diagonal_posterior=False, seed=1):
    """A linear-Gaussian model and one data point x of shape (1, data_dim) drawn from it."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(data_dim, latent_dim, generator=generator)
    if diagonal_posterior:  # orthogonal columns make WᵀW, hence the posterior covariance, diagonal
        q, _ = torch.linalg.qr(weight)
        weight = q * torch.linspace(0.5, 2.0, latent_dim)
    bias = torch.randn(data_dim, generator=generator)
    model = exact.LinearGaussian(weight, bias, noise_scale)
    x = model.marginal().sample((1,))
    return model, x.detach()


def mean_and_stderr(samples: torch.Tensor):
    """Mean and standard error over dimension 0."""
    samples = samples.detach()
    return samples.mean(0), samples.std(0) / math.sqrt(samples.shape[0])


def assert_within_se(estimate, stderr, expected, num_se=NUM_SE, what="value"):
    estimate, stderr, expected = (torch.as_tensor(v, dtype=torch.float64) for v in (estimate, stderr, expected))
    z = (estimate - expected).abs() / stderr.clamp_min(1e-300)
    assert bool((z <= num_se).all()), (
        f"{what}: estimate {estimate.tolist()} differs from {expected.tolist()} by {z.max().item():.2f} "
        f"standard errors (> {num_se}); stderr {stderr.tolist()}"
    )


# --- small generated data files in each format the loaders read -----------------------------------------------

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def write_idx(path, images, *, gz=False):
    """An idx-ubyte file of uint8 images (N, H, W) (idx3) or labels (N,) (idx1); ``gz`` compresses it. Returns the
    path."""
    images = np.asarray(images, dtype=np.uint8)
    header = b"\x00\x00\x08" + bytes([images.ndim]) + b"".join(n.to_bytes(4, "big") for n in images.shape)
    content = header + images.tobytes()
    path = Path(f"{path}.gz" if gz else path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content) if gz else content)
    return path


def write_amat(path, images, *, gz=False):
    """Larochelle's .amat text: one line of 784 space-separated 0/1 values per image."""
    content = "".join(" ".join(str(int(v)) for v in row) + "\n" for row in np.asarray(images)).encode()
    path = Path(f"{path}.gz" if gz else path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content) if gz else content)
    return path


def write_frey(path, ff):
    """A MATLAB file with variable ``ff`` (560 x N)."""
    import scipy.io

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"ff": ff})
    return path


def trust(monkeypatch, *paths):
    """Make ``elbo.models.images.datasets`` accept these generated files: their content's SHA-256 becomes the expected
    one."""
    from elbo.models.images import datasets as data

    for path in paths:
        path = Path(path)
        content = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        name = path.name.removesuffix(".gz")
        monkeypatch.setitem(data.SHA256, name, hashlib.sha256(content).hexdigest())


def random_mnist(directory, *, num_train=30, num_test=10, seed=0, gz=True):
    """Generated idx files of 28x28 images in ``directory/mnist``: (train path, test path)."""
    rng = np.random.default_rng(seed)
    return (write_idx(Path(directory) / "mnist" / "train-images-idx3-ubyte",
                      rng.integers(0, 256, (num_train, 28, 28)), gz=gz),
            write_idx(Path(directory) / "mnist" / "t10k-images-idx3-ubyte",
                      rng.integers(0, 256, (num_test, 28, 28)), gz=gz))


# --- the `elbo` command in this process ----------------------------------------------------------------------------

# Python's own warning filters (``python -W`` unset, not a debug build): what `python -m elbo` starts with, in the
# order Python lists them (the first that matches applies).
PYTHON_WARNING_FILTERS = (("default", DeprecationWarning, "__main__"), ("ignore", DeprecationWarning, ""),
                          ("ignore", PendingDeprecationWarning, ""), ("ignore", ImportWarning, ""),
                          ("ignore", ResourceWarning, ""))


def _print_warning(message, category, filename, lineno, file=None, line=None):
    """Python's own ``showwarning``: the warning, as ``warnings.formatwarning`` words it then, on stderr."""
    (file or sys.stderr).write(warnings.formatwarning(message, category, filename, lineno, line))


@contextlib.contextmanager
def fresh_process(env=None, cwd=None):
    """Inside, the state that `python -m elbo` starts from, as this test process's state allows: torch's default
    dtype float32, Python's warning filters with warnings printed on stderr (not recorded by pytest), the environment
    with ``env`` added and ``COLUMNS`` as a pipe gives argparse (80, unless set), the working directory ``cwd``. After,
    the caller's state as it was: those, torch's threads (``--threads``) and the random states of torch, numpy and
    ``random``."""
    environment, directory = dict(os.environ), os.getcwd()
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    states = torch.random.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        with warnings.catch_warnings():
            warnings.resetwarnings()
            for action, category, module in reversed(PYTHON_WARNING_FILTERS):
                warnings.filterwarnings(action, category=category, module=module)
            warnings.showwarning = _print_warning
            os.environ.update(env or {})
            os.environ.setdefault("COLUMNS", "80")
            if cwd is not None:
                os.chdir(cwd)
            torch.set_default_dtype(torch.float32)
            yield
    finally:
        os.chdir(directory)
        for name in set(os.environ) - set(environment):
            del os.environ[name]
        os.environ.update(environment)
        torch.set_default_dtype(dtype)
        torch.set_num_threads(threads)
        torch.random.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])


def _text(stream: io.StringIO) -> str:
    """What ``subprocess.run(..., text=True)`` reads: universal newlines."""
    return stream.getvalue().replace("\r\n", "\n").replace("\r", "\n")


def elbo_in_process(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    """``python -m elbo ARGS`` as ``subprocess.run(..., capture_output=True, text=True)`` returns it, run in this
    process by ``elbo.cli.main`` (``fresh_process``): its stdout, its stderr and its exit code (``main``'s return
    value, a ``SystemExit``'s code as Python turns it into one, or 1 with the traceback on stderr for an exception
    that escapes). For the tests whose point is not the process: exit codes of the real process, signals, locks
    between processes, ``sys.path`` and torchrun stay in subprocesses."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with fresh_process(env, cwd), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = cli.main(list(args))
        except SystemExit as exit_:
            code = exit_.code
            if code is not None and not isinstance(code, int):
                print(code, file=sys.stderr)
                code = 1
        except Exception:
            traceback.print_exc()
            code = 1
    return subprocess.CompletedProcess([sys.executable, "-m", "elbo", *args], code or 0, _text(stdout),
                                       _text(stderr))
