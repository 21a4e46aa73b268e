"""Atomic writes: the old file or the new one, and no temporary file left behind either way."""

import os

import pytest

from elbo._files import write_atomically


def test_a_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "metrics.jsonl"
    write_atomically(path, b"old\n")
    write_atomically(path, b"new\n")
    assert path.read_bytes() == b"new\n" and list(tmp_path.iterdir()) == [path]


def test_a_failed_rename_keeps_the_old_file_and_removes_the_temporary_one(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    write_atomically(path, b"epoch 1")

    def full_disk(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, b"epoch 2")
    assert path.read_bytes() == b"epoch 1" and list(tmp_path.iterdir()) == [path]


def test_an_interrupted_write_removes_the_temporary_file(tmp_path, monkeypatch):
    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(tmp_path / "report.html", b"<html>")
    assert list(tmp_path.iterdir()) == []


def test_the_file_has_the_permissions_of_a_new_file(tmp_path):
    umask = os.umask(0o027)
    try:
        write_atomically(tmp_path / "report.html", b"<html>")
    finally:
        os.umask(umask)
    assert (tmp_path / "report.html").stat().st_mode & 0o777 == 0o640  # 0o666 less the umask, not 0o600
