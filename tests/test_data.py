"""Loaders on small generated files in each format (and a checksum failure), splits, dynamic binarization, and
the real files in ../shared/data."""

import gzip
import os
import re
import warnings

import numpy as np
import pytest
import torch

from elbo import train
from elbo._downloads import decompressed
from elbo.kinds import load_data
from elbo.models.images import datasets as data
from helpers import NUM_SE, SHARED_DATA, random_mnist, trust, write_amat, write_frey, write_idx


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_files_load_as_pixels_over_255(tmp_path, monkeypatch, gz):
    rng = np.random.default_rng(1)
    train, test = rng.integers(0, 256, (30, 28, 28)), rng.integers(0, 256, (10, 28, 28))
    paths = (write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte", train, gz=gz),
             write_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte", test, gz=gz))
    trust(monkeypatch, *paths)
    images = load_data("mnist", data_dir=tmp_path, val_size=5, download=False)
    assert images.image_shape == (28, 28) and images.likelihood == "bernoulli" and images.dynamic_binarization
    torch.testing.assert_close(images.train, torch.as_tensor(train[:25].reshape(25, 784) / 255.0), rtol=0, atol=0)
    # validation and test images are binarized once, with a fixed seed: binary, and the same on every load
    assert set(images.val.unique().tolist()) <= {0.0, 1.0} and images.test.shape == (10, 784)
    again = load_data("mnist", data_dir=tmp_path, val_size=5, download=False)
    assert torch.equal(images.test, again.test) and torch.equal(images.val, again.val)
    # the grey levels the test images were drawn from are kept beside them (for figures that show both)
    torch.testing.assert_close(images.test_grey, torch.as_tensor(test.reshape(10, 784) / 255.0), rtol=0, atol=0)


def test_mnist_labels_are_read_when_their_files_are_there(tmp_path, monkeypatch):
    """Labels follow their images through the validation split; without the label files there are none."""
    paths = random_mnist(tmp_path, num_train=30, num_test=10)
    trust(monkeypatch, *paths)
    assert load_data("mnist", data_dir=tmp_path, val_size=5, download=False).train_labels is None
    rng = np.random.default_rng(2)
    train, test = rng.integers(0, 10, 30), rng.integers(0, 10, 10)
    trust(monkeypatch, write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte", train, gz=True),
          write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte", test))
    images = load_data("mnist", data_dir=tmp_path, val_size=5, download=False)
    assert images.train_labels.tolist() == train[:25].tolist() and images.val_labels.tolist() == train[25:].tolist()
    assert images.test_labels.tolist() == test.tolist() and images.test_labels.dtype == torch.int64
    trust(monkeypatch, write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte", test[:9]))
    with pytest.raises(ValueError, match="holds 9 labels for 10 images"):
        load_data("mnist", data_dir=tmp_path, val_size=5, download=False)


def test_mnist_with_one_labels_file_labels_its_splits_only(tmp_path, monkeypatch):
    """The two labels files come separately; either alone labels the splits it covers, the others have None."""
    trust(monkeypatch, *random_mnist(tmp_path, num_train=30, num_test=10))
    train, test = np.arange(30) % 10, np.arange(10)[::-1]
    train_path = write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte", train)
    trust(monkeypatch, train_path)
    images = load_data("mnist", data_dir=tmp_path, val_size=5, download=False)
    assert images.train_labels.tolist() == train[:25].tolist() and images.val_labels.tolist() == train[25:].tolist()
    assert images.test_labels is None
    train_path.unlink()
    trust(monkeypatch, write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte", test))
    images = load_data("mnist", data_dir=tmp_path, val_size=5, download=False)
    assert images.train_labels is None and images.val_labels is None and images.test_labels.tolist() == test.tolist()


def test_files_are_also_found_directly_in_the_data_dir(tmp_path, monkeypatch):
    paths = random_mnist(tmp_path)
    for path in paths:
        path.rename(tmp_path / path.name)
    trust(monkeypatch, *(tmp_path / p.name for p in paths))
    assert load_data("mnist", data_dir=tmp_path, val_size=0, download=False).train.shape == (30, 784)


def test_checksum_failure_names_the_file(tmp_path, monkeypatch):
    paths = random_mnist(tmp_path)
    trust(monkeypatch, *paths)
    monkeypatch.setitem(data.SHA256, "t10k-images-idx3-ubyte", "0" * 64)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz: SHA-256 of the content is .* expected 0000"):
        load_data("mnist", data_dir=tmp_path, download=False)


def test_corrupt_gzip_is_refused(tmp_path):
    random_mnist(tmp_path)
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="cannot decompress"):
        load_data("mnist", data_dir=tmp_path, download=False)


def test_missing_file_is_one_line_saying_what_and_where(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_data("binarized_mnist", data_dir=tmp_path, download=False)
    message = str(error.value)
    assert "\n" not in message
    assert "binarized_mnist_train.amat" in message and str(tmp_path / "binarized_mnist") in message


def test_download_fetches_verifies_and_keeps_the_file(tmp_path, monkeypatch):
    """The canonical sources replaced by file:// URLs of generated files (no network in tests)."""
    source = tmp_path / "source"
    frey = write_frey(source / "frey_rawface.mat", np.random.default_rng(0).integers(0, 256, (560, 400), np.uint8))
    trust(monkeypatch, frey)
    monkeypatch.setitem(data.URLS, "frey_rawface.mat", [frey.as_uri()])
    images = load_data("frey", data_dir=tmp_path / "data")
    assert (tmp_path / "data" / "frey_faces" / "frey_rawface.mat").read_bytes() == frey.read_bytes()
    assert len(images.train) + len(images.val) + len(images.test) == 400


def test_download_with_the_wrong_content_is_refused_and_not_kept(tmp_path, monkeypatch):
    source = write_frey(tmp_path / "source" / "frey_rawface.mat", np.zeros((560, 400), np.uint8))
    monkeypatch.setitem(data.URLS, "frey_rawface.mat", [source.as_uri(), (tmp_path / "nowhere.mat").as_uri()])
    with pytest.raises(FileNotFoundError, match="could not be downloaded .*wrong SHA-256.*nowhere.mat") as error:
        load_data("frey", data_dir=tmp_path / "data")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "data" / "frey_faces").exists()  # not even an empty folder


def test_a_download_that_cannot_be_written_leaves_no_temporary_file(tmp_path, monkeypatch):
    frey = write_frey(tmp_path / "source" / "frey_rawface.mat", np.zeros((560, 400), np.uint8))
    trust(monkeypatch, frey)
    monkeypatch.setitem(data.URLS, "frey_rawface.mat", [frey.as_uri()])

    def full_disk(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)  # the temporary file is written; renaming it fails
    with pytest.raises(FileNotFoundError, match="could not be downloaded .*No space left on device"):
        load_data("frey", data_dir=tmp_path / "data")
    assert list((tmp_path / "data" / "frey_faces").iterdir()) == []


def _mnist_source(directory, monkeypatch, *, train_labels, test_labels):
    """Generated MNIST files (gzipped, as on the mirrors) in ``directory``, trusted, and each file's URLs pointed at
    them: a first mirror that does not answer, then ``directory``. Returns the four paths by name."""
    paths = {path.name.removesuffix(".gz"): path for path in random_mnist(directory, num_train=30, num_test=10)}
    for name, labels in (("train-labels-idx1-ubyte", train_labels), ("t10k-labels-idx1-ubyte", test_labels)):
        paths[name] = write_idx(directory / "mnist" / name, labels, gz=True)
    trust(monkeypatch, *paths.values())
    for name, path in paths.items():
        monkeypatch.setitem(data.URLS, name, [(directory / "offline" / path.name).as_uri(), path.as_uri()])
    return paths


def test_download_fetches_mnist_labels_with_its_images(tmp_path, monkeypatch):
    """A user who downloads MNIST gets its labels; labels missing beside images already there are fetched too."""
    train, test = np.arange(30) % 10, np.arange(10)[::-1]
    source = _mnist_source(tmp_path / "source", monkeypatch, train_labels=train, test_labels=test)
    folder = tmp_path / "data" / "mnist"
    images = load_data("mnist", data_dir=tmp_path / "data", val_size=5)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in source.values())
    for path in source.values():
        assert (folder / path.name).read_bytes() == path.read_bytes()
    assert images.train_labels.tolist() == train[:25].tolist() and images.val_labels.tolist() == train[25:].tolist()
    assert images.test_labels.tolist() == test.tolist()
    (folder / "train-labels-idx1-ubyte.gz").unlink()  # as an older elbo, which fetched only the images, left it
    assert load_data("mnist", data_dir=tmp_path / "data", val_size=5).train_labels.tolist() == train[:25].tolist()
    assert (folder / "train-labels-idx1-ubyte.gz").read_bytes() == source["train-labels-idx1-ubyte"].read_bytes()


def test_a_wrong_labels_download_warns_and_is_not_kept_a_corrupt_labels_file_is_an_error(tmp_path, monkeypatch):
    """Labels only colour figures: a failed download of them is one warning line and no labels, not an error, and
    leaves no file; a labels file that is there but corrupt is an error, downloading or not."""
    _mnist_source(tmp_path / "source", monkeypatch, train_labels=np.arange(30) % 10, test_labels=np.arange(10))
    monkeypatch.setitem(data.SHA256, "t10k-labels-idx1-ubyte", "0" * 64)
    folder = tmp_path / "data" / "mnist"
    with pytest.warns(UserWarning) as caught:
        images = load_data("mnist", data_dir=tmp_path / "data", val_size=5)
    message = str(caught[0].message)
    assert len(caught) == 1 and "\n" not in message and caught[0].filename == __file__  # stacklevel: the caller
    assert re.search(r"t10k-labels-idx1-ubyte \(or .*\) is missing from .* could not be downloaded "
                     r"\(.*offline.*; .*t10k-labels-idx1-ubyte.gz: wrong SHA-256\).* without labels", message)
    assert images.test_labels is None and images.train_labels is not None
    assert sorted(p.name for p in folder.iterdir()) == ["t10k-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz",
                                                         "train-labels-idx1-ubyte.gz"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not downloading: a missing labels file is no error and no warning
        assert load_data("mnist", data_dir=tmp_path / "data", val_size=5, download=False).test_labels is None
    write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(10), gz=True)  # there, but not the expected content
    for download in (False, True):
        with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz: SHA-256 of the content is .* expected 0000"
                           ) as error:
            load_data("mnist", data_dir=tmp_path / "data", val_size=5, download=download)
        assert "\n" not in str(error.value)


@pytest.mark.parametrize("gz", [False, True])
def test_binarized_mnist_amat_keeps_the_files_split(tmp_path, monkeypatch, gz):
    rng = np.random.default_rng(2)
    splits = {split: rng.integers(0, 2, (n, 784)) for split, n in (("train", 12), ("valid", 4), ("test", 5))}
    paths = [write_amat(tmp_path / "binarized_mnist" / f"binarized_mnist_{split}.amat", x, gz=gz)
             for split, x in splits.items()]
    trust(monkeypatch, *paths)
    images = load_data("binarized_mnist", data_dir=tmp_path, val_size=4, download=False)
    for split, loaded in (("train", images.train), ("valid", images.val), ("test", images.test)):
        torch.testing.assert_close(loaded, torch.as_tensor(splits[split], dtype=torch.float64), rtol=0, atol=0)
    assert not images.dynamic_binarization


def test_malformed_amat_is_refused(tmp_path, monkeypatch):
    x = np.zeros((3, 784), int)
    x[1, 5] = 2
    paths = [write_amat(tmp_path / f"binarized_mnist_{split}.amat", x) for split in ("train", "valid", "test")]
    trust(monkeypatch, *paths)
    with pytest.raises(ValueError, match="784 space-separated 0/1 values"):
        load_data("binarized_mnist", data_dir=tmp_path, val_size=1, download=False)


def test_frey_columns_are_28_by_20_images(tmp_path, monkeypatch):
    ff = np.random.default_rng(3).integers(0, 256, (560, 50), np.uint8)
    trust(monkeypatch, write_frey(tmp_path / "frey_faces" / "frey_rawface.mat", ff))
    monkeypatch.setitem(data._TEST_SIZE, "frey", 10)
    images = load_data("frey", data_dir=tmp_path, val_size=5, download=False)
    assert images.image_shape == (28, 20) and images.likelihood == "gaussian"
    assert (len(images.train), len(images.val), len(images.test)) == (35, 5, 10)
    loaded = torch.cat([images.train, images.val, images.test]).numpy()
    expected = ff.T / 255.0  # column i is image i
    assert np.array_equal(np.sort(loaded, axis=0), np.sort(expected, axis=0))
    assert {tuple(row) for row in loaded} == {tuple(row) for row in expected}


def test_digits_are_bundled_and_split_the_same_way_every_time():
    first, second = load_data("digits"), load_data("digits", val_size=300)
    assert (len(first.train), len(first.val), len(first.test)) == (1350, 150, 297)
    assert (len(second.train), len(second.val)) == (1200, 300)
    assert torch.equal(first.test, second.test)
    assert first.train.min() >= 0 and first.train.max() <= 1 and len(first.train.unique()) == 17  # 0..16 / 16
    assert set(first.test.unique().tolist()) == {0.0, 1.0}
    # the labels are permuted with their images: each training image's label is sklearn's for that image
    from sklearn.datasets import load_digits

    digits = load_digits()
    label_of = {tuple(row): int(t) for row, t in zip(digits.data / 16.0, digits.target)}
    assert [label_of[tuple(row)] for row in first.train.tolist()] == first.train_labels.tolist()
    assert len(first.val_labels) == 150 and len(first.test_labels) == 297


def test_bad_names_and_sizes_are_refused():
    with pytest.raises(ValueError, match="data set must be one of .* got 'cifar'"):
        load_data("cifar")
    with pytest.raises(ValueError, match=r"val_size must be an integer in \[0, 1500\) .* got 1500"):
        load_data("digits", val_size=1500)


def test_epoch_batches_visit_every_image_once():
    x = torch.arange(23.0).reshape(23, 1)
    batches = list(train.epoch_batches(x, 5, shuffle=torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    assert torch.equal(torch.cat(batches).flatten().sort().values, x.flatten())


def test_dynamic_binarization_is_unbiased_fresh_each_epoch_and_reproducible():
    """Over E epochs the mean of each binarized pixel estimates its grey level p with standard error
    sqrt(p(1-p)/E). 20 pixels at NUM_SE: false-failure probability below 20 * 6.8e-6."""
    grey = torch.linspace(0.05, 0.95, 20).reshape(4, 5)

    def epochs(seed, count):
        binarize = torch.Generator().manual_seed(seed)
        def resample(batch):
            return torch.bernoulli(batch, generator=binarize)

        return torch.stack([torch.cat(list(train.epoch_batches(grey, 4, shuffle=torch.Generator().manual_seed(0),
                                                                resample=resample)))
                            for _ in range(count)])

    draws = epochs(0, 2000)  # (E, 4, 5); the shuffle is fixed so every epoch lists the images in the same order
    assert set(draws.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(draws[0], draws[1])
    assert torch.equal(draws[:3], epochs(0, 3))
    order = torch.cat(list(train.epoch_batches(torch.arange(4.0).reshape(4, 1), 4,
                                              shuffle=torch.Generator().manual_seed(0)))).flatten().long()
    p = grey[order]
    z = (draws.mean(0) - p).abs() / (p * (1 - p) / len(draws)).sqrt()
    assert z.max() < NUM_SE, z.max()


real_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="the shared data directory ../shared/data is absent")


@real_data
def test_real_mnist_matches_its_checksums_and_known_statistics():
    images = load_data("mnist", data_dir=SHARED_DATA, val_size=0, download=False)
    pixels = images.train  # all 60000 training images, as grey levels (validation images would be binarized)
    assert pixels.shape == (60000, 784) and images.test.shape == (10000, 784) and len(images.val) == 0
    assert abs(float(pixels.mean()) - 0.1307) < 5e-5 and abs(float(pixels.std()) - 0.3081) < 5e-5
    assert images.train_labels[:5].tolist() == [5, 0, 4, 1, 9] and images.test_labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert torch.bincount(images.train_labels).tolist()[:2] == [5923, 6742]  # zeros and ones in MNIST's training set


@real_data
def test_real_binarized_mnist_and_frey():
    binary = load_data("binarized_mnist", data_dir=SHARED_DATA, download=False)
    assert [len(binary.train), len(binary.val), len(binary.test)] == [50000, 10000, 10000]
    assert set(binary.test.unique().tolist()) == {0.0, 1.0}
    frey = load_data("frey", data_dir=SHARED_DATA, download=False)
    everything = torch.cat([frey.train, frey.val, frey.test])
    assert everything.shape == (1965, 560)
    assert round(float(everything.min()) * 255) == 8 and round(float(everything.max()) * 255) == 238


def test_gzip_module_round_trip_is_what_the_loader_checksums(tmp_path):
    """Re-compressing a file changes its bytes, not its checksum: the loader hashes the decompressed content."""
    path = write_idx(tmp_path / "a", np.ones((2, 3, 3)), gz=True)
    recompressed = tmp_path / "b.gz"
    recompressed.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1))
    assert recompressed.read_bytes() != path.read_bytes()
    assert decompressed(recompressed) == decompressed(path)
