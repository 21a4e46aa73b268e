"""torch.compile where it works, and the function itself, with a warning, where it does not."""

import pytest
import torch

from elbo._compiler import compiled


def test_without_a_working_compiler_the_function_runs_as_it_is(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nmore detail")

    monkeypatch.setattr(torch, "compile", broken)
    fn = torch.tanh
    with pytest.warns(UserWarning, match=r"torch.compile does not work on this machine \(InvalidCxxCompiler: No "
                                         r"working C\+\+ compiler found\); running without it"):
        assert compiled(fn, torch.device("cpu")) is fn
