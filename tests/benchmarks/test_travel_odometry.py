"""benchmarks/travel_odometry.py: its clip cache (the pairs: tests/eval/test_travel_reading.py)."""

import numpy as np

from tests.benchmarks import load_benchmark


def test_clip_data_writes_its_cache_once_and_refuses_one_of_other_settings(tmp_path, monkeypatch):
    import argparse
    from types import SimpleNamespace

    import pytest

    bench = load_benchmark("travel_odometry")
    made = []

    def fake_clips(seed_base, count, seconds, size, fps, driver_seed):
        made.append(count)
        frames = np.full((count, 3, 4, 8, 3), seed_base % 251, np.uint8)
        return SimpleNamespace(frames=frames, speed=np.full((count, 3), 10.0, np.float32))

    monkeypatch.setattr(bench, "driven_clips", fake_clips)
    monkeypatch.setattr(bench, "decoded", lambda world, engine, frames: frames // 2)
    world, engine = SimpleNamespace(fps=30.0), SimpleNamespace(frame_size=(4, 8))
    args = argparse.Namespace(model=str(tmp_path / "m"), clips=2, val_clips=1, seconds=0.1)
    cache = tmp_path / "c.npz"
    first = bench.clip_data(world, engine, args, cache)
    again = bench.clip_data(world, engine, args, cache)
    assert made == [2, 1] and cache.is_file()  # the second call read the cache
    for name in ("train", "train_dec", "train_speed", "val", "val_dec", "val_speed"):
        np.testing.assert_array_equal(again[name], first[name])
    with pytest.raises(SystemExit, match="holds clips of"):
        bench.clip_data(world, engine, argparse.Namespace(**{**vars(args), "clips": 3}), cache)
