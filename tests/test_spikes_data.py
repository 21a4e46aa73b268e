"""The spikes kind's data: the Lorenz simulator (seeded, its truth), the trial and neuron splits, and a user's .npz
recordings, bad ones refused with one line."""

import dataclasses

import numpy as np
import pytest
import torch

from elbo.errors import InputError
from elbo.models.spikes import KIND, LORENZ, RECORDINGS, SpikeConfig, configure
from elbo.models.spikes.datasets import SpikeTrains, load_lorenz, load_npz, load_recordings, split_trials
from elbo.models.spikes.simulate import save_simulation, simulate_lorenz

SMALL = dict(num_conditions=6, trials_per_condition=3, num_neurons=10, num_bins=20)


def test_simulation_is_reproducible_from_its_seed_and_differs_between_seeds():
    a, b, c = simulate_lorenz(3, **SMALL), simulate_lorenz(3, **SMALL), simulate_lorenz(4, **SMALL)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["counts"], c["counts"]) and not np.array_equal(a["latents"], c["latents"])


def test_default_simulation_has_the_issue_shapes_and_its_truth():
    s = simulate_lorenz(0)
    assert s["counts"].shape == s["rates"].shape == (260, 50, 30) and s["counts"].dtype == np.int64
    assert s["latents"].shape == (260, 50, 3) and s["W"].shape == (30, 3) and s["b"].shape == (30,)
    assert float(s["bin_size"]) == 0.02 and s["condition"].shape == (260,) and s["time"].shape == (50,)
    np.testing.assert_allclose(s["rates"], np.exp(s["latents"] @ s["W"].T + s["b"]))
    per_condition = s["latents"].reshape(65, 4, 50, 3)
    np.testing.assert_array_equal(per_condition, per_condition[:, :1].repeat(4, axis=1))  # trials share latents
    trajectories = per_condition[:, 0]
    np.testing.assert_allclose(trajectories.mean(1), 0, atol=1e-12)  # each centred ...
    np.testing.assert_allclose(np.abs(trajectories).max((1, 2)), 1)  # ... and scaled
    assert (s["counts"].sum((1, 2)) > 0).all()


def test_base_rate_is_the_rate_without_latent_modulation():
    # with W ≈ 0, every neuron fires at the base rate: counts ~ Poisson(5 Hz · 0.02 s) in 260·50·30 bins, whose
    # mean has standard error sqrt(0.1 / 390000) ≈ 5e-4 per bin; 4.5 standard errors fail with probability 7e-6
    s = simulate_lorenz(1, base_rate=5.0, weight_scale=1e-9)
    np.testing.assert_allclose(s["rates"], 5.0, rtol=1e-8)
    assert abs(s["counts"].mean() - 0.1) < 4.5 * np.sqrt(0.1 / s["counts"].size)


def test_lorenz_splits_trials_deterministically_stratified_and_holds_out_the_last_fifth_of_neurons():
    data = load_lorenz()
    assert (len(data.train), len(data.val), len(data.test)) == (182, 26, 52)
    assert data.held_in == 24 and data.num_neurons == 30 and data.num_bins == 50 and data.bin_size == 0.02
    assert torch.equal(data.train_labels.bincount(minlength=65).clamp_max(1), torch.ones(65, dtype=torch.int64))
    assert int(data.test_labels.bincount().max()) == 1  # one trial of as many conditions as it can
    again = load_lorenz()
    assert torch.equal(data.train, again.train) and torch.equal(data.test_rates, again.test_rates)
    rates, latents = data.truth("test")
    assert rates.shape == (52, 50, 30) and latents.shape == (52, 50, 3)
    assert data.resample(data.train[:3], torch.Generator()) is not None
    x, labels = data.scored("val")
    assert x is data.val and labels is data.val_labels


def test_split_trials_covers_every_trial_once_and_honours_val_size():
    condition = np.repeat(np.arange(5), 4)
    splits = split_trials(condition, val_size=3, seed=2)
    assert sorted(np.concatenate(list(splits.values())).tolist()) == list(range(20))
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (13, 3, 4)
    assert set(condition[splits["train"]]) == set(range(5))
    assert all(np.array_equal(a, b) for a, b in zip(splits.values(), split_trials(condition, val_size=3, seed=2)
                                                    .values()))
    with pytest.raises(InputError, match="val_size"):
        split_trials(condition, val_size=16)


def test_saved_simulation_loads_back_with_its_truth(tmp_path):
    path = tmp_path / "lorenz.npz"
    simulation = save_simulation(path, 5, **SMALL)
    data = load_npz(path, val_size=2, held_out=3, seed=5)
    assert isinstance(data, SpikeTrains) and data.name == "lorenz" and data.held_in == 7
    splits = split_trials(simulation["condition"], val_size=2, seed=5)
    for split, index in splits.items():
        np.testing.assert_array_equal(getattr(data, split).numpy(), simulation["counts"][index])
        np.testing.assert_allclose(data.truth(split)[0].numpy(), simulation["rates"][index])
    np.testing.assert_allclose(data.weights.numpy(), simulation["W"])
    assert data.train.dtype == torch.get_default_dtype()
    assert load_recordings(data_dir=path).name == "lorenz"
    np.savez(tmp_path / "spikes.npz", counts=simulation["counts"], bin_size=0.02)
    plain = load_recordings(data_dir=tmp_path)
    assert plain.train_rates is None and plain.train_labels is None and plain.weights is None


def _write(path, counts=None, **arrays):
    values = {"counts": np.ones((4, 5, 3)) if counts is None else counts, "bin_size": 0.01} | arrays
    np.savez(path, **{key: value for key, value in values.items() if value is not None})
    return path


def _empty_trial():
    counts = np.ones((4, 5, 3))
    counts[2] = 0
    return counts


BAD = {
    "negative counts": dict(counts=-np.ones((4, 5, 3))),
    "fractional counts": dict(counts=np.full((4, 5, 3), 0.5)),
    "NaN counts": dict(counts=np.full((4, 5, 3), np.nan)),
    "wrong rank": dict(counts=np.ones((4, 5))),
    "no trials": dict(counts=np.ones((0, 5, 3))),
    "empty trial": dict(counts=_empty_trial()),
    "text counts": dict(counts=np.full((4, 5, 3), "a")),
    "no counts": dict(counts=None, other=np.ones(3)),
    "no bin_size": dict(bin_size=None),
    "negative bin_size": dict(bin_size=-0.02),
    "two bin sizes": dict(bin_size=np.array([0.01, 0.02])),
    "condition of the wrong length": dict(condition=np.arange(3)),
    "time not increasing": dict(time=np.array([0, 1, 1, 2, 3.0])),
    "time of the wrong length": dict(time=np.arange(4.0)),
    "rates of the wrong shape": dict(rates=np.ones((4, 5, 2))),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_recording_is_refused_with_one_line_naming_the_file(tmp_path, case):
    arrays = BAD[case]
    if arrays.get("counts", 0) is None:
        path = tmp_path / "bad.npz"
        np.savez(path, **{key: value for key, value in arrays.items() if value is not None})
    else:
        path = _write(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError) as error:
        load_npz(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message, message


def test_a_missing_or_unreadable_file_and_bad_settings_are_refused(tmp_path):
    with pytest.raises(InputError, match="no such file") as error:
        load_npz(tmp_path / "missing.npz")
    assert error.value.argument == "path"
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(InputError, match="not a readable .npz") as error:
        load_npz(tmp_path / "junk.npz")
    assert "\n" not in str(error.value)
    good = _write(tmp_path / "good.npz")
    with pytest.raises(InputError, match="held_out"):
        load_npz(good, held_out=3)
    with pytest.raises(InputError, match="data_dir") as error:
        load_recordings()
    assert error.value.argument == "data_dir"
    with pytest.raises(InputError, match="at least 2"):
        load_npz(_write(tmp_path / "one.npz", counts=np.ones((1, 5, 3))))


def test_string_conditions_become_labels_and_the_kind_configures_from_the_data(tmp_path):
    path = _write(tmp_path / "labelled.npz", counts=np.ones((6, 5, 3)), condition=np.array(list("ababcc")))
    data = load_npz(path, held_out=1)
    assert data.label_names == ("a", "b", "c")
    config = configure(SpikeConfig(), data)
    assert (config.num_neurons, config.held_in, config.num_bins, config.bin_size) == (3, 2, 5, 0.01)
    assert SpikeConfig.from_dict(dataclasses.asdict(config)) == config
    assert KIND.name == "spikes" and KIND.unit == "trial" and LORENZ.kind == RECORDINGS.kind == "spikes"


# ---- spike times, binned by the loader

def _spike_file(path, **extra):
    """Two trials of 0.1 s, three neurons; spikes at known times (the bins of 0.02 s worked out by hand below)."""
    arrays = {"spike_times": np.array([0.0, 0.019, 0.02, 0.055, 0.099, 0.01, 0.03]),
              "spike_trials": np.array([0, 0, 0, 0, 0, 1, 1]), "spike_neurons": np.array([0, 0, 1, 2, 2, 1, 0]),
              "duration": np.array(0.1), **extra}
    np.savez(path, **arrays)
    return path


def test_spike_times_are_binned_exactly_in_the_given_or_the_files_bin_size(tmp_path):
    from elbo.models.spikes.datasets import read_recording

    path = _spike_file(tmp_path / "spikes.npz", num_neurons=np.array(4))
    counts = read_recording(path, bin_size=0.02)["counts"]  # no bin_size in the file: the one given
    expected = np.zeros((2, 5, 4), dtype=np.int64)
    for trial, bin_, neuron in [(0, 0, 0), (0, 0, 0), (0, 1, 1), (0, 2, 2), (0, 4, 2), (1, 0, 1), (1, 1, 0)]:
        expected[trial, bin_, neuron] += 1
    assert counts.shape == (2, 5, 4) and np.array_equal(counts, expected)
    own = _spike_file(tmp_path / "own.npz", bin_size=np.array(0.05))
    recording = read_recording(own, bin_size=0.02)  # the file's own bin size wins in read_recording
    assert recording["bin_size"] == 0.05 and recording["counts"].shape == (2, 2, 3)
    assert recording["counts"].sum() == 7


@pytest.mark.parametrize("extra, match", [
    ({}, "no bin_size|no array 'bin_size'"),
    ({"bin_size": np.array(0.06)}, "make 1 bin"),
    ({"spike_times": np.array([0.0, 0.019, 0.02, 0.055, 0.1, 0.01, 0.03]), "bin_size": np.array(0.02)},
     r"spike 4 \(time 0.1 s"),
    ({"spike_neurons": np.array([0, 0, 1, 2, 2, 1]), "bin_size": np.array(0.02)}, "one entry per spike"),
], ids=["no bin size", "one bin", "a spike at the end", "lengths differ"])
def test_bad_spike_times_are_one_line(tmp_path, extra, match):
    from elbo.models.spikes.datasets import load_npz

    path = _spike_file(tmp_path / "spikes.npz", **extra)
    with pytest.raises(InputError, match=match) as error:
        load_npz(path)
    assert "\n" not in str(error.value)


def test_a_bin_size_for_a_file_of_counts_is_refused(tmp_path):
    from elbo.models.spikes.datasets import load_npz

    path = tmp_path / "counts.npz"
    np.savez(path, counts=np.ones((5, 4, 3), dtype=np.int64), bin_size=np.array(0.02))
    with pytest.raises(InputError, match="already binned"):
        load_npz(path, bin_size=0.01)
