"""Your own images as a data set of the images kind, ``"images"``: ``data_dir`` names an array file or a folder.

- ``.npy``: one array of images, ``(N, H, W)`` or ``(N, H, W, C)`` with ``C`` 1, 3 or 4 (channels last);
- ``.npz``: the same under ``images`` (or as the file's only array), and optionally ``labels``, ``(N,)`` integers;
- a folder of image files (PNG, JPEG, BMP, GIF, TIFF: whatever Pillow reads), in it or, as torchvision's
  ``ImageFolder`` has them, in one subfolder a class (the subfolders' names in sorted order are the labels 0, 1, ...).

Values: an image file's pixels are divided by 255 (16-bit ones by 65535); an array's integers up to 255 by 255 (0/1
integers are kept), and its floating point values must lie in ``[0, 1]``. Colour images become grey levels (ITU-R
601 luma, ``0.299 R + 0.587 G + 0.114 B``, the transparency of RGBA dropped), with a warning: the kind models one
channel. All images must have one size; a file or a folder with
another is refused in one line naming it (resize them first). Images that are all 0 or 1 get a Bernoulli likelihood,
grey levels a Gaussian one (as Frey faces; name the likelihood to choose another). A fixed permutation (seed 0) puts a
tenth of the images (at least one) in the test set; the validation set is the last ``val_size`` of the rest.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ...errors import InputError
from .datasets import ImageData, _image_data, _split_off_test

__all__ = ["load_images", "IMAGE_SUFFIXES", "ARRAY_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".pgm", ".ppm", ".webp")
ARRAY_SUFFIXES = (".npy", ".npz")
_LUMA = np.array([0.299, 0.587, 0.114])


def load_images(*, data_dir=None, val_size: int | None = None, download: bool = True) -> ImageData:
    """The images in ``data_dir`` (a ``.npy`` or ``.npz`` file, or a folder of image files); ``download`` is not
    used (nothing to download)."""
    if data_dir is None:
        raise InputError("data set 'images' is your own images: data_dir must name a .npy or .npz file or a folder of "
                         "image files", argument="data_dir")
    path = Path(data_dir)
    if not path.exists():
        raise InputError(f"data_dir: {path} does not exist (data set 'images' reads a .npy or .npz file or a folder "
                         f"of image files)", argument="data_dir")
    if path.is_dir():
        images, labels, source = _folder(path)
        images = _grey(images, source) / 255.0
    else:
        images, labels, source = _array_file(path)
        images = _grey(_unit_interval(images, source), source)
    if len(images) < 2:
        raise InputError(f"{source}: {len(images)} image(s), too few to hold out a test set", argument="data_dir")
    binary = bool(np.isin(images, (0.0, 1.0)).all())
    test_size = max(1, len(images) // 10)
    pool, test = _split_off_test(images.reshape(len(images), -1), test_size)
    pool_labels, test_labels = (None, None) if labels is None else _split_off_test(labels, test_size)
    return _image_data("images", pool, test, images.shape[1:3], "bernoulli" if binary else "gaussian", False,
                       val_size, pool_labels, test_labels)


def _array_file(path: Path) -> tuple[np.ndarray, np.ndarray | None, str]:
    """``(images, labels or None, how to name the source)`` of a ``.npy`` or ``.npz`` file."""
    if path.suffix.lower() not in ARRAY_SUFFIXES:
        raise InputError(f"data_dir: {path} is a file but not a .npy or .npz array (data set 'images' reads one of "
                         f"those, or a folder of image files)", argument="data_dir")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise InputError(f"{path}: not a readable {path.suffix} array without pickled objects ({error})") from None
    if isinstance(loaded, np.ndarray):
        return _image_array(loaded, str(path)), None, str(path)
    with loaded:
        names = list(loaded.files)
        if "images" not in names and len(names) != 1:
            raise InputError(f"{path}: the images must be the array 'images' (or the file's only array); it holds "
                             f"{', '.join(names)}")
        source = f"{path}:{'images' if 'images' in names else names[0]}"
        images = _image_array(loaded["images" if "images" in names else names[0]], source)
        labels = _labels(loaded["labels"], len(images), f"{path}:labels") if "labels" in names else None
    return images, labels, source


def _image_array(array: np.ndarray, source: str) -> np.ndarray:
    if array.ndim == 2:
        raise InputError(f"{source}: shape {array.shape} is flat; images must be (N, H, W) or (N, H, W, C): reshape "
                         f"it, e.g. x.reshape(N, 28, 28)")
    if array.ndim not in (3, 4) or (array.ndim == 4 and array.shape[-1] not in (1, 3, 4)):
        raise InputError(f"{source}: images must be (N, H, W) or (N, H, W, C) with C 1, 3 or 4 (channels last), got "
                         f"shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise InputError(f"{source}: images must be numbers, got dtype {array.dtype}")
    return array


def _labels(labels: np.ndarray, count: int, source: str) -> np.ndarray:
    if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{source}: labels must be {count} integers (one an image), got shape {labels.shape} of "
                         f"{labels.dtype}")
    return labels.astype(np.int64)


def _folder(path: Path) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The image files of folder ``path``, or of its subfolders (one a class, the labels in their sorted order)."""
    files = _image_files(path)
    classes = sorted(folder for folder in path.iterdir() if folder.is_dir() and _image_files(folder))
    if files and classes:
        raise InputError(f"{path} holds image files and folders of them ({classes[0].name}/): either all the images "
                         f"in it, or one folder a class")
    if not files and not classes:
        raise InputError(f"{path} holds no image files ({', '.join(IMAGE_SUFFIXES)}), in it or in its subfolders",
                         argument="data_dir")
    if files:
        return _read_images(files, path), None, str(path)
    per_class = [_image_files(folder) for folder in classes]
    labels = np.concatenate([np.full(len(names), label) for label, names in enumerate(per_class)])
    return _read_images([name for names in per_class for name in names], path), labels, str(path)


def _image_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def _read_images(files: list[Path], folder: Path) -> np.ndarray:
    """The files' pixels, ``(N, H, W)`` or ``(N, H, W, C)``, on a common scale of 0..255 (16-bit files rescaled)."""
    from PIL import Image, UnidentifiedImageError

    images, first = [], None
    for file in files:
        try:
            with Image.open(file) as image:
                pixels = _pixels(image)
        except (UnidentifiedImageError, OSError) as error:
            raise InputError(f"{file}: not an image Pillow can read ({error})") from None
        if first is not None and pixels.shape[:2] != images[0].shape[:2]:
            raise InputError(f"{file} is {pixels.shape[1]}x{pixels.shape[0]} pixels and {first.name} "
                             f"{images[0].shape[1]}x{images[0].shape[0]}: the images of {folder} must have one size "
                             f"(resize them first)")
        first = first or file
        images.append(pixels)
    channels = {image.ndim for image in images}
    if len(channels) > 1:  # grey and colour files mixed: all as colour
        images = [np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image for image in images]
    return np.stack(images)


def _pixels(image) -> np.ndarray:
    """One image's pixels in 0..255: grey ``(H, W)`` or colour ``(H, W, 3 or 4)``; 16-bit and palette images
    converted."""
    if image.mode in ("I;16", "I;16B", "I"):
        return np.asarray(image, dtype=np.float64) * (255.0 / 65535.0)
    if image.mode not in ("L", "1", "RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "RGB")
    return np.asarray(image.convert("L") if image.mode == "1" else image, dtype=np.float64)


def _grey(images: np.ndarray, source: str) -> np.ndarray:
    """``(N, H, W)``: colour images as grey levels (luma), with a warning."""
    if images.ndim == 3:
        return images
    if images.shape[-1] == 1:
        return images[..., 0]
    warnings.warn(f"{source}: colour images are read as grey levels (0.299 R + 0.587 G + 0.114 B; the images kind "
                  f"models one channel)", stacklevel=4)
    return images[..., :3].astype(np.float64) @ _LUMA


def _unit_interval(images: np.ndarray, source: str) -> np.ndarray:
    """Values in [0, 1]: integers up to 255 divided by 255 (0/1 integers kept), floating point as they are."""
    if not np.isfinite(images).all():
        raise InputError(f"{source}: the images hold {int((~np.isfinite(images)).sum())} values that are not finite")
    low, high = float(images.min()), float(images.max())
    if images.dtype != bool and np.issubdtype(images.dtype, np.integer) and low >= 0 and 1 < high <= 255:
        return images / 255.0
    if low < 0 or high > 1:
        raise InputError(f"{source}: values must be in [0, 1] (or integers 0..255), got min {low:g} and max {high:g}")
    return images.astype(np.float64)
