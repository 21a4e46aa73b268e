"""Data on the disk read by rows: a ``.npy`` file whose rows are read when a chunk or a minibatch asks for them.

``read_rows(path)`` gives ``Model(data=...)`` an array it indexes as it indexes a tensor (``rows[a:b]``,
``rows[indices]``) and sizes by ``len`` and ``shape``. Nothing is mapped into memory and nothing is kept: a slice is
one ``read`` at its offset, a minibatch of scattered rows one ``pread`` a row, so the process holds one chunk at a
time, whatever the file's size (``memmap`` maps the file instead, and the pages it has read count in the process's
resident memory until the system takes them back). ``rows_read`` counts the rows read, so a fit's passes over the
data can be counted.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError

__all__ = ["Rows", "read_rows"]


class Rows:
    """The rows of a C-ordered ``.npy`` file, read on demand; ``shape``, ``dtype`` (torch's), ``device`` (CPU) and
    ``dim()`` as a tensor has them."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as file:
                version = np.lib.format.read_magic(file)
                header = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                          np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = header(file)
                self.offset = file.tell()
        except ValueError as error:
            raise InputError(f"{self.path}: not a .npy file ({error})") from None
        if fortran or not shape or dtype.hasobject:
            raise InputError(f"{self.path}: read_rows needs a C-ordered numeric array of at least one dimension, got "
                             f"shape {shape}{', Fortran order' if fortran else ''}, dtype {dtype}")
        self.numpy_dtype, self.shape = dtype, torch.Size(shape)
        self.dtype, self.device = torch.from_numpy(np.zeros(0, dtype)).dtype, torch.device("cpu")
        self.row_elements = int(np.prod(shape[1:], dtype=np.int64))
        self.row_bytes = self.row_elements * dtype.itemsize
        self.rows_read = 0

    def __len__(self) -> int:
        return self.shape[0]

    def dim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"Rows({str(self.path)!r}, shape={tuple(self.shape)}, dtype={self.dtype})"

    def __getitem__(self, index) -> torch.Tensor:
        """Rows ``index`` (a slice with step 1, or a 1-d tensor or array of row numbers) as a new tensor."""
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise InputError(f"{self!r}: slices of rows have step 1, got {step}")
            count = max(stop - start, 0)
            with open(self.path, "rb") as file:
                file.seek(self.offset + start * self.row_bytes)
                array = np.fromfile(file, self.numpy_dtype, count * self.row_elements)
            self.rows_read += count
            return torch.from_numpy(array.reshape(count, *self.shape[1:]))
        rows = np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index, dtype=np.int64).reshape(-1)
        out = np.empty((len(rows), self.row_bytes), np.uint8)
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            for i, row in enumerate(rows):
                out[i] = np.frombuffer(os.pread(descriptor, self.row_bytes, self.offset + int(row) * self.row_bytes),
                                       np.uint8)
        finally:
            os.close(descriptor)
        self.rows_read += len(rows)
        return torch.from_numpy(out.view(self.numpy_dtype).reshape(len(rows), *self.shape[1:]))


def read_rows(path) -> Rows:
    """A ``.npy`` file as rows read from the disk when asked for, for ``Model(data=...)``: see the module."""
    return Rows(path)
