import pytest

import drivesim


def test_load_missing_folder_and_missing_stages(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        drivesim.load(tmp_path / "nope")
    (tmp_path / "m").mkdir()
    with pytest.raises(FileNotFoundError, match="lacks stage"):
        drivesim.load(tmp_path / "m")


def test_load_random_model_folder(tmp_path):
    from drivesim.rollout.random_model import RandomModelSpec, build_random_model

    folder = build_random_model(tmp_path / "m", RandomModelSpec(interpolation=False, reward=False))
    wm = drivesim.load(folder)
    assert wm.interpolation is None and wm.reward is None and wm.temporal_decoder is not None
