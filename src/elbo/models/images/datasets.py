"""The images kind's data sets as tensors, checked by SHA-256 of their decompressed content.

Each data set has a loader, ``load_<name>(data_dir=..., val_size=..., download=...)`` (registered in
``elbo.registry.DATASETS``; ``elbo.kinds.load_data(name, ...)`` calls it), which returns ``ImageData``: flat images
``(N, H*W)`` with values in
``[0, 1]``, split into train / validation / test, with the likelihood that suits them:

- ``"digits"``: scikit-learn's bundled 8x8 digits (1797 images, grey levels 0..16 / 16); needs no files. A fixed
  permutation (seed 0) puts 297 images in the test set. Bernoulli likelihood, dynamic binarization.
- ``"mnist"``: the idx files (``train-images-idx3-ubyte`` and ``t10k-images-idx3-ubyte``, gzipped or not), pixels
  / 255. Bernoulli likelihood with dynamic binarization (Burda et al. 2015): each epoch sees a fresh
  ``x ~ Bernoulli(pixels)``; the validation and test images are binarized once, with a fixed seed, so every
  run and every epoch is scored on the same binary images.
- ``"binarized_mnist"``: the fixed binarization of Larochelle & Murray (2011), ``binarized_mnist_{train,valid,
  test}.amat`` (or ``.amat.gz``): 0/1 values, Bernoulli likelihood, no resampling.
- ``"frey"``: Frey faces, ``frey_rawface.mat`` (variable ``ff``, 560 x 1965 uint8, one 28 x 20 image per column),
  pixels / 255, Gaussian likelihood (Kingma & Welling 2013). A fixed permutation puts 365 images in the test set.

Class labels (``train_labels``, ``val_labels``, ``test_labels``; they only colour figures) come with the digits, and
with MNIST from ``train-labels-idx1-ubyte`` and ``t10k-labels-idx1-ubyte``, looked for, downloaded and verified like its
images; the other data sets have none. MNIST without its labels is no error: when a labels file is missing and is not
downloaded (``download`` is false), or cannot be (a warning says why), the splits it covers (train and validation, or
test) have labels ``None``; a labels file that is there but corrupt is an error, as for images.

Files are looked for in ``data_dir/<folder>/`` and ``data_dir/`` (``folder`` as in ``FOLDERS``, the layout of the
project's shared data directory). A missing file is downloaded from its canonical source when ``download`` is
true and the machine can reach it, then verified; otherwise ``load`` fails (MNIST's labels aside) with one line
naming the file and the directory to put it in. The validation set is the last ``val_size`` images of the non-test data.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..._checks import check_val_size, one_of
from ..._downloads import DataFiles
from ...errors import InputError
from ...kinds import SPLITS

__all__ = ["ImageData", "load_digits", "load_mnist", "load_binarized_mnist", "load_frey", "binarize", "SHA256", "URLS"]

DEFAULT_DATA_DIR = "data"
FOLDERS = {"mnist": "mnist", "binarized_mnist": "binarized_mnist", "frey": "frey_faces"}

# SHA-256 of the decompressed content (robust to re-compression).
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    "binarized_mnist_train.amat": "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
    "binarized_mnist_valid.amat": "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
    "binarized_mnist_test.amat": "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
    "frey_rawface.mat": "1ee1273b3facb0f0cea8a5175c495f7c66076c1ef32d32bf9f7f56acfd0f065c",
}

_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")
_LAROCHELLE = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
_MNIST_FILES = ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte",
                "train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte")
URLS = {
    **{name: [m + name + ".gz" for m in _MNIST_MIRRORS] for name in _MNIST_FILES},
    "binarized_mnist_train.amat": [_LAROCHELLE + "binarized_mnist_train.amat"],
    "binarized_mnist_valid.amat": [_LAROCHELLE + "binarized_mnist_valid.amat"],
    "binarized_mnist_test.amat": [_LAROCHELLE + "binarized_mnist_test.amat"],
    "frey_rawface.mat": ["https://cs.nyu.edu/~roweis/data/frey_rawface.mat"],
}

FILES = DataFiles(sha256=SHA256, urls=URLS, folders=FOLDERS)
_TEST_SIZE = {"digits": 297, "frey": 365}  # data sets without a test file: a fixed share becomes the test set
_FIXED_SEED = 0  # the permutation of digits and frey, and the binarization of validation and test images


@dataclass(frozen=True, eq=False)
class ImageData:
    """Images as flat tensors ``(N, H*W)`` in ``[0, 1]``.

    ``dynamic_binarization``: train on ``x ~ Bernoulli(train)``, resampled every epoch (``epoch_batches``);
    ``val`` and ``test`` are then already binary. ``likelihood``: the decoder this data calls for.
    ``*_labels``: the class of each image (int64, ``(N,)``), or ``None`` where the data set has no labels.
    ``test_grey``: the grey-level images the binary ``test`` images were drawn from (``None`` for data that is not
    dynamically binarized), for figures that show both.
    """

    name: str
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    image_shape: tuple[int, int]
    likelihood: str
    dynamic_binarization: bool
    train_labels: torch.Tensor | None = None
    val_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    test_grey: torch.Tensor | None = None

    def scored(self, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The images of ``split`` (``"train"``, ``"val"`` or ``"test"``) as a model is scored on them, and their
        labels (or ``None``): dynamically binarized training images are binarized once, with a fixed seed, like the
        validation and test images, so that every measurement of a run sees the same binary images."""
        x = getattr(self, one_of("split", split, SPLITS))
        if split == "train" and self.dynamic_binarization:
            x = binarize(x, seed=_FIXED_SEED + 2)  # + 0 and + 1 binarize the validation and test images
        return x, getattr(self, f"{split}_labels")

    def resample(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A training batch as the model sees it this epoch: ``Bernoulli(batch)`` with dynamic binarization,
        drawn with ``generator`` (on the data's device), else the batch itself."""
        return torch.bernoulli(batch, generator=generator) if self.dynamic_binarization else batch


def load_digits(*, data_dir=None, val_size: int | None = None, download: bool = True) -> ImageData:
    """scikit-learn's 8x8 digits; ``data_dir`` and ``download`` are not used (the images come with scikit-learn)."""
    images, labels = _digits()
    (pool, test), (pool_labels, test_labels) = (_split_off_test(a, _TEST_SIZE["digits"]) for a in (images, labels))
    return _image_data("digits", pool, test, (8, 8), "bernoulli", True, val_size, pool_labels, test_labels)


def load_mnist(*, data_dir=None, val_size: int | None = None, download: bool = True) -> ImageData:
    """MNIST's idx files, with its labels where they are found (or downloaded)."""
    directory = _directory(data_dir)
    pool, image_shape = _idx_images(_read(directory, "mnist", "train-images-idx3-ubyte", download))
    test, _ = _idx_images(_read(directory, "mnist", "t10k-images-idx3-ubyte", download))
    pool_labels = _optional_labels(directory, "train-labels-idx1-ubyte", len(pool), download)
    test_labels = _optional_labels(directory, "t10k-labels-idx1-ubyte", len(test), download)
    return _image_data("mnist", pool, test, image_shape, "bernoulli", True, val_size, pool_labels, test_labels)


def load_binarized_mnist(*, data_dir=None, val_size: int | None = None, download: bool = True) -> ImageData:
    """Larochelle and Murray's fixed binarization of MNIST."""
    directory, name = _directory(data_dir), "binarized_mnist"
    train, valid, test = (_amat(_read(directory, name, f"binarized_mnist_{split}.amat", download), split)
                          for split in ("train", "valid", "test"))
    return _image_data(name, np.concatenate([train, valid]), test, (28, 28), "bernoulli", False, val_size)


def load_frey(*, data_dir=None, val_size: int | None = None, download: bool = True) -> ImageData:
    """Frey faces, grey levels with a Gaussian likelihood."""
    faces = _frey(_read(_directory(data_dir), "frey", "frey_rawface.mat", download))
    pool, test = _split_off_test(faces, _TEST_SIZE["frey"])
    return _image_data("frey", pool, test, (28, 20), "gaussian", False, val_size)


def _directory(data_dir) -> Path:
    """The data directory; a file given for it is refused (the built-in data sets read their own files in it)."""
    directory = Path(DEFAULT_DATA_DIR if data_dir is None else data_dir)
    if directory.is_file():
        raise InputError(f"data_dir: {directory} is a file, and this data set reads its own files from a directory; "
                         f"your own images in an array file are data set 'images'", argument="data_dir")
    return directory


def _image_data(name: str, pool: np.ndarray, test: np.ndarray, image_shape, likelihood: str, dynamic: bool,
                val_size: int | None, pool_labels=None, test_labels=None) -> ImageData:
    """``ImageData`` from the non-test images (``pool``, the last ``val_size`` of which validate) and the test
    images, in the default dtype; dynamically binarized data has its validation and test images binarized once."""
    val_size = check_val_size(val_size, len(pool), default=10000 if "mnist" in name else len(pool) // 10,
                              points="non-test images")
    cut = len(pool) - val_size  # the validation set is the last val_size non-test images
    dtype = torch.get_default_dtype()
    train, val, test = (torch.as_tensor(a, dtype=dtype) for a in (pool[:cut], pool[cut:], test))
    test_grey = test if dynamic else None
    if dynamic:
        val, test = binarize(val, seed=_FIXED_SEED), binarize(test, seed=_FIXED_SEED + 1)
    # MNIST's two labels files come separately: either may be missing, and each split has labels or None
    split_labels = (None, None) if pool_labels is None else (pool_labels[:cut], pool_labels[cut:])
    labels = (None if a is None else torch.as_tensor(a, dtype=torch.int64) for a in (*split_labels, test_labels))
    return ImageData(name, train, val, test, image_shape, likelihood, dynamic, *labels, test_grey=test_grey)


def binarize(x: torch.Tensor, *, seed: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x ~ Bernoulli(pixels)``: binary images whose expectation is the grey-level image."""
    if seed is not None:
        generator = torch.Generator(x.device).manual_seed(seed)
    return torch.bernoulli(x, generator=generator)


# --- files -------------------------------------------------------------------------------------------------------

def _read(directory: Path, dataset: str, name: str, download: bool) -> bytes:
    """The verified, decompressed content of file ``name`` (found as ``name`` or ``name.gz``, or downloaded)."""
    return FILES.read(directory, dataset, name, download)[1]


def _optional_labels(directory: Path, name: str, count: int, download: bool) -> np.ndarray | None:
    """MNIST's labels from idx1-ubyte file ``name``, found or downloaded like the images and verified; ``None`` when
    the file is missing and not downloaded. Labels only colour figures, so a failed download is a warning, not an
    error; a file that is there is checked as strictly as an image file."""
    try:
        path = FILES.find_or_download(directory, "mnist", name, download)
    except FileNotFoundError as error:
        if download:
            warnings.warn(f"{error}; MNIST is loaded without labels", stacklevel=4)
        return None
    labels = _idx_labels(FILES.verified(path, name))
    if len(labels) != count:
        raise InputError(f"{path} holds {len(labels)} labels for {count} images")
    return labels


# --- formats -----------------------------------------------------------------------------------------------------

def _idx_images(content: bytes) -> tuple[np.ndarray, tuple[int, int]]:
    """An idx3-ubyte file (LeCun's format: magic 0x00000803, then N, H, W as big-endian int32, then N*H*W bytes)
    as ``(N, H*W)`` floats in ``[0, 1]``."""
    if len(content) < 16 or content[:4] != b"\x00\x00\x08\x03":
        raise InputError(f"not an idx3-ubyte image file (magic {content[:4].hex()}, expected 00000803)")
    count, height, width = (int.from_bytes(content[i:i + 4], "big") for i in (4, 8, 12))
    pixels = np.frombuffer(content, dtype=np.uint8, offset=16)
    if pixels.size != count * height * width:
        raise InputError(f"idx3-ubyte file holds {pixels.size} pixels, its header says {count}x{height}x{width}")
    return pixels.reshape(count, height * width) / 255.0, (height, width)


def _idx_labels(content: bytes) -> np.ndarray:
    """An idx1-ubyte file (magic 0x00000801, then N as big-endian int32, then N bytes) as ``(N,)`` integers."""
    if len(content) < 8 or content[:4] != b"\x00\x00\x08\x01":
        raise InputError(f"not an idx1-ubyte label file (magic {content[:4].hex()}, expected 00000801)")
    labels, count = np.frombuffer(content, dtype=np.uint8, offset=8), int.from_bytes(content[4:8], "big")
    if labels.size != count:
        raise InputError(f"idx1-ubyte file holds {labels.size} labels, its header says {count}")
    return labels.astype(np.int64)


def _amat(content: bytes, split: str) -> np.ndarray:
    """Larochelle's ``.amat`` text: one image per line, 784 values 0 or 1 separated by spaces."""
    chars = np.frombuffer(content, dtype=np.uint8)
    digits = chars[(chars != ord(" ")) & (chars != ord("\n")) & (chars != ord("\r"))]
    lines = content.count(b"\n") + (not content.endswith(b"\n"))
    if digits.size != lines * 784 or not np.isin(digits, (ord("0"), ord("1"))).all():
        raise InputError(f"binarized_mnist_{split}.amat is not {lines} lines of 784 space-separated 0/1 values")
    return (digits - ord("0")).reshape(lines, 784).astype(np.float64)


def _frey(content: bytes) -> np.ndarray:
    """``ff``: 560 x N, one 28 x 20 image per column (row-major); uint8 values are divided by 255."""
    import scipy.io

    try:
        ff = scipy.io.loadmat(io.BytesIO(content))["ff"]
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(f"frey_rawface.mat: cannot read variable 'ff' ({error})") from None
    if ff.ndim != 2 or ff.shape[0] != 28 * 20:
        raise InputError(f"frey_rawface.mat: 'ff' must be 560 x N (one 28x20 image per column), got {ff.shape}")
    images = ff.T.astype(np.float64)
    return images / 255.0 if np.issubdtype(ff.dtype, np.integer) else images


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data / 16.0, digits.target


def _split_off_test(images: np.ndarray, test_size: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed permutation (the same on every machine), then the last ``test_size`` images are the test set."""
    if len(images) <= test_size:
        raise InputError(f"the data has {len(images)} images, too few to hold out {test_size} for testing")
    order = np.random.default_rng(_FIXED_SEED).permutation(len(images))
    images = images[order]
    return images[:-test_size], images[-test_size:]
