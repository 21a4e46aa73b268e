"""Your own images (``elbo.models.images.own``, data set ``images``): each format read to the same pixels in [0, 1],
colour to grey levels by luma, labels from class folders, and every bad file refused in one line; a run trained on
them evaluates, reports and resumes from the command line."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from elbo import cli
from elbo.errors import InputError
from elbo.kinds import load_data
from helpers import elbo_in_process


def _grey_images(count=30, shape=(6, 5), seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(count, *shape), dtype=np.uint8)


def _all(data) -> torch.Tensor:
    return torch.cat([data.train, data.val, data.test])


def _sorted_rows(x) -> np.ndarray:
    x = np.asarray(x)
    return x[np.lexsort(x.T[::-1])]


def test_an_array_and_a_folder_of_the_same_images_give_the_same_pixels(tmp_path):
    images = _grey_images()
    np.save(tmp_path / "x.npy", images)
    (tmp_path / "pngs").mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / "pngs" / f"{i:02d}.png")
    from_array = load_data("images", data_dir=tmp_path / "x.npy")
    from_folder = load_data("images", data_dir=tmp_path / "pngs")
    expected = _sorted_rows(images.reshape(30, -1) / 255.0)
    for data in (from_array, from_folder):
        assert data.image_shape == (6, 5) and data.likelihood == "gaussian" and not data.dynamic_binarization
        assert len(data.test) == 3 and len(data.val) == 2 and len(data.train) == 25  # a tenth, then a tenth of the rest
        np.testing.assert_allclose(_sorted_rows(_all(data)), expected, rtol=0, atol=1e-12)
    assert torch.equal(from_array.test, from_folder.test)  # the same fixed permutation


def test_binary_images_get_a_bernoulli_likelihood_and_npz_labels_are_kept(tmp_path):
    images = (_grey_images() > 127).astype(np.float32)
    labels = np.arange(30) % 4
    np.savez(tmp_path / "x.npz", images=images, labels=labels)
    data = load_data("images", data_dir=tmp_path / "x.npz", val_size=0)
    assert data.likelihood == "bernoulli" and data.val_labels is not None and len(data.val) == 0
    rows = {tuple(row): label for row, label in zip(images.reshape(30, -1).tolist(), labels)}
    for x, y in ((data.train, data.train_labels), (data.test, data.test_labels)):
        assert [rows[tuple(row)] for row in x.tolist()] == y.tolist()


def test_colour_is_read_as_luma_and_class_folders_are_labels(tmp_path):
    colour = np.random.default_rng(1).integers(0, 256, size=(20, 4, 3, 3), dtype=np.uint8)
    for i, image in enumerate(colour):
        folder = tmp_path / ("cats" if i % 2 else "dogs")
        folder.mkdir(exist_ok=True)
        Image.fromarray(image).save(folder / f"{i}.png")
    with pytest.warns(UserWarning, match="colour images are read as grey levels"):
        data = load_data("images", data_dir=tmp_path)
    luma = colour.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0
    rows = {tuple(np.round(row, 9)): "cats" if i % 2 else "dogs" for i, row in enumerate(luma.reshape(20, -1))}
    names = [rows[tuple(np.round(row, 9))] for row in _all(data).numpy()]
    labels = torch.cat([data.train_labels, data.val_labels, data.test_labels]).tolist()
    assert [("cats", "dogs")[label] for label in labels] == names  # sorted folder names: cats 0, dogs 1


@pytest.mark.parametrize("make, message", [
    (lambda d: np.save(d / "x.npy", np.zeros((5, 64))), "is flat; images must be (N, H, W)"),
    (lambda d: np.save(d / "x.npy", np.full((5, 4, 4), 2.0)),
     "values must be in [0, 1] (or integers 0..255), got min 2"),
    (lambda d: np.save(d / "x.npy", np.full((5, 4, 4), 300)), "got min 300 and max 300"),
    (lambda d: np.save(d / "x.npy", np.full((5, 4, 4), np.nan)), "values that are not finite"),
    (lambda d: np.savez(d / "x.npz", a=np.zeros((5, 4, 4)), b=np.zeros(5)), "must be the array 'images'"),
    (lambda d: np.savez(d / "x.npz", images=np.zeros((5, 4, 4)), labels=np.zeros(4, int)), "labels must be 5 integers"),
    (lambda d: (d / "x.npy").write_text("not an array"), "not a readable .npy array"),
])
def test_bad_array_files_are_refused_in_one_line(tmp_path, make, message):
    make(tmp_path)
    path = next(tmp_path.iterdir())
    with pytest.raises(InputError) as error:
        load_data("images", data_dir=path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_bad_folders_are_refused_in_one_line(tmp_path):
    Image.fromarray(_grey_images(1)[0]).save(tmp_path / "a.png")
    Image.fromarray(_grey_images(1, (7, 7))[0]).save(tmp_path / "b.png")
    with pytest.raises(InputError, match=r"b.png is 7x7 pixels and a.png 5x6: the images of .* must have one size"):
        load_data("images", data_dir=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no image files"):
        load_data("images", data_dir=tmp_path / "empty")
    with pytest.raises(InputError, match="data_dir must name a .npy or .npz file or a folder"):
        load_data("images")


def test_a_file_given_as_a_data_directory_is_refused(tmp_path):
    np.save(tmp_path / "frey.npy", np.zeros((3, 4, 4)))
    result = elbo_in_process("train", "--data", "frey", "--data-dir", str(tmp_path / "frey.npy"), "--out",
                             str(tmp_path / "run"))
    assert result.returncode == 2
    assert result.stderr == f"elbo train: error: --data-dir: {tmp_path / 'frey.npy'} is a file, and this data set " \
                            f"reads its own files from a directory; your own images in an array file are data set " \
                            f"'images'\n"


def test_a_run_on_your_own_images_trains_evaluates_reports_and_resumes(tmp_path, capsys):
    (tmp_path / "pngs").mkdir()
    for i, image in enumerate(_grey_images(40, (8, 6))):
        Image.fromarray(image).save(tmp_path / "pngs" / f"{i}.png")
    run = tmp_path / "run"
    train = ["train", "--data", "images", "--data-dir", str(tmp_path / "pngs"), "--latent", "2", "--hidden", "8",
             "--batch-size", "10", "--quiet", "--out", str(run)]
    assert cli.main([*train, "--epochs", "1"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["image_shape"] == [8, 6] and config["model"]["likelihood"] == "gaussian"
    assert cli.main(["evaluate", str(run), "--k", "5", "--quiet"]) == 0
    assert cli.main(["report", str(run), "--quiet"]) == 0
    config["epochs"] = 2
    (run / "config.json").write_text(json.dumps(config))
    assert cli.main(["train", "--resume", str(run), "--quiet"]) == 0
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]
