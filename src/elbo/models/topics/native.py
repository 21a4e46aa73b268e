"""The local step of LDA in C (``_native/lda_local.c``), compiled on first use and called through ``ctypes``.

``lda.local_step`` uses it when it is available (``available()``), else its tensor code; both compute the same
updates, stopping rule and floors, and ``tests/test_topics_native.py`` holds them equal. The compiled library is
kept in ``$ELBO_CACHE`` (default ``~/.cache/elbo``), named by a hash of the sources, the compiler command and the
CPU's flags (it is built with ``-march=native``), so a changed source or another machine builds its own. Nothing
is needed beyond a C compiler (``$CC``, default ``cc``); without one, or with ``ELBO_NATIVE=0``, ``available()``
is false and ``reason()`` says why.

It runs on the CPU, on contiguous float32 or float64 tensors. ``local_step`` splits a minibatch into blocks of
documents of about equal numbers of words, one per thread (``torch.get_num_threads()``), and each thread calls
the library on its block: ``ctypes`` releases the GIL during the call.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

__all__ = ["available", "reason", "local_step", "elementwise"]

_SOURCES = Path(__file__).parent / "_native"
_FLAGS = ["-O3", "-march=native", "-fopenmp-simd", "-shared", "-fPIC"]
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_lock = threading.Lock()
_state: dict = {}  # "library" (a ctypes.CDLL or None) and "reason" once loading was tried


def _cpu_flags() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return next((line for line in lines if line.startswith(("flags", "Features"))), platform.processor())


def _build() -> ctypes.CDLL:
    compiler = os.environ.get("CC", "cc")
    if shutil.which(compiler) is None:
        raise OSError(f"no C compiler {compiler!r} on the PATH (set CC)")
    sources = sorted(_SOURCES.glob("*.[ch]"))
    key = hashlib.sha256()
    for part in [compiler, *_FLAGS, platform.machine(), _cpu_flags(), *(p.read_bytes() for p in sources)]:
        key.update(part if isinstance(part, bytes) else part.encode())
    cache = Path(os.environ.get("ELBO_CACHE", Path.home() / ".cache" / "elbo"))
    library = cache / f"lda_local-{key.hexdigest()[:16]}.so"
    if not library.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as folder:  # built aside and renamed: processes may race
            built = Path(folder) / library.name
            result = subprocess.run([compiler, *_FLAGS, "-o", str(built), str(_SOURCES / "lda_local.c"), "-lm"],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise OSError(f"{compiler} failed: {result.stderr.strip().splitlines()[-1:] or result.returncode}")
            os.replace(built, library)
    loaded = ctypes.CDLL(str(library))
    pointer, integer, real = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double
    for suffix in _SUFFIX.values():
        function = getattr(loaded, f"elbo_lda_local_step_{suffix}")
        function.argtypes = [integer, integer, integer, pointer, pointer, pointer, pointer, real, integer, real, real,
                             real, pointer, pointer, pointer, pointer]
        function.restype = integer
    for name in ("digamma", "log", "exp"):
        function = getattr(loaded, f"elbo_{name}_f64")
        function.argtypes, function.restype = [real], real
    return loaded


def _library() -> ctypes.CDLL | None:
    with _lock:
        if "library" not in _state:
            if os.environ.get("ELBO_NATIVE", "1") == "0":
                _state.update(library=None, reason="turned off by ELBO_NATIVE=0")
            else:
                try:
                    _state.update(library=_build(), reason=None)
                except OSError as error:
                    _state.update(library=None, reason=str(error))
        return _state["library"]


def available() -> bool:
    """Whether the compiled local step can be used (building it, the first time, if it must)."""
    return _library() is not None


def reason() -> str | None:
    """Why it cannot be (``None`` if it can)."""
    _library()
    return _state["reason"]


def elementwise(name: str, x: torch.Tensor) -> torch.Tensor:
    """The library's ``name`` (``"digamma"``, ``"log"`` or ``"exp"``) of each element of ``x`` (for the tests)."""
    function = getattr(_library(), f"elbo_{name}_f64")
    return torch.tensor([function(float(v)) for v in x.reshape(-1)], dtype=torch.float64).reshape(x.shape)


def _blocks(offsets: torch.Tensor, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous blocks of documents with about equal numbers of places."""
    count = offsets.numel() - 1
    targets = torch.linspace(0, int(offsets[-1]), parts + 1)[1:-1]
    cuts = [0, *torch.searchsorted(offsets[1:].to(torch.float64), targets.to(torch.float64)).tolist(), count]
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def local_step(offsets, ids, counts, beta_t, alpha: float, max_iter: int, tol: float, log_floor: float, eps: float,
               gamma: torch.Tensor, threads: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``γ`` (updated in place from its initial value), and the weights ``n_dw / (ε + Σ_k exp(E[log θ_dk])
    β̃_kw)`` ``(nnz,)`` and ``exp(E[log θ])`` ``(B, K)`` at the final ``γ``. ``beta_t``: ``β̃ᵀ`` ``(V, K)``, floored;
    every tensor contiguous, on the CPU, in ``gamma``'s dtype; ``offsets`` and ``ids`` int64."""
    dtype, (count, topics) = gamma.dtype, gamma.shape
    function = getattr(_library(), f"elbo_lda_local_step_{_SUFFIX[dtype]}")
    etheta, weights = torch.empty_like(gamma), torch.empty_like(counts)
    blocks = _blocks(offsets, max(1, min(threads or torch.get_num_threads(), count)))
    pointers = [t.data_ptr() for t in (offsets, ids, counts, beta_t)]

    def run(block):
        scratch = torch.empty(topics, dtype=dtype)
        return function(block[0], block[1], topics, *pointers, alpha, max_iter, tol, log_floor, eps,
                        gamma.data_ptr(), etheta.data_ptr(), weights.data_ptr(), scratch.data_ptr())

    if len(blocks) == 1:
        run(blocks[0])
    else:
        with ThreadPoolExecutor(len(blocks)) as pool:
            list(pool.map(run, blocks))
    return weights, etheta
