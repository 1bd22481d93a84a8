"""drivesim/eval/traffic.py: vehicles the frame probe detects per frame, binned over a clip's time."""

import numpy as np
import pytest
import torch

from drivesim.eval.probe_io import load_probes
from drivesim.eval.traffic import binned_means, plot_traffic, traffic_curve, vehicle_counts
from drivesim.paths import default_probes_dir
from drivesim.world import World, WorldConfig


def _world_clip(crowdedness: str, seed: int, frames: int, h: int, w: int) -> np.ndarray:
    world = World(WorldConfig(height=h, width=w))
    frame = world.reset(seed=seed, time_of_day="day", crowdedness=crowdedness)
    out = []
    for _ in range(frames):
        frame = world.step(np.zeros(2, np.float32))
        out.append(frame.image)
    return np.stack(out)  # t h w 3


def test_the_bundled_detector_counts_more_vehicles_in_crowded_world_clips():
    torch.set_num_threads(1)
    probe = load_probes(default_probes_dir()).frame
    h, w = probe.config.height, probe.config.width
    video = np.stack([_world_clip(c, 910_000 + s, 6, h, w) for c in ("low", "high") for s in range(3)])
    counts = vehicle_counts(probe, video, batch_size=7)  # batches that split clips give the same counts
    assert counts.shape == (6, 6) and counts.dtype == np.int64
    np.testing.assert_array_equal(counts, vehicle_counts(probe, video))
    assert counts[3:].mean() > counts[:3].mean() + 1.0  # high traffic: more boxes than low


def test_binned_means_and_the_curve_per_level(tmp_path):
    counts = np.array([[4, 4, 2, 2, 0], [2, 2, 2, 2, 2]])
    assert binned_means(counts, fps=10.0, bin_seconds=0.2) == [3.0, 2.0, 1.0]
    real = np.array([[4, 4, 4], [1, 1, 1]])
    curve = traffic_curve(counts, real, ["high", None], fps=10.0, bin_seconds=0.2)
    assert curve.generated == [3.0, 2.0, 1.0] and curve.real == [2.5, 2.5]
    assert curve.generated_by_level == {"high": [4.0, 2.0, 0.0]} and curve.real_by_level == {"high": [4.0, 4.0]}
    assert plot_traffic(curve, tmp_path / "t" / "traffic.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="one entry per clip"):
        traffic_curve(counts, real[:1], ["high", "low"], fps=10.0)
    with pytest.raises(ValueError, match="bin_seconds=0"):
        binned_means(counts, fps=10.0, bin_seconds=0)
    with pytest.raises(ValueError, match=r"\(n, t, h, w, 3\)"):
        vehicle_counts(None, np.zeros((2, 8, 8, 3), np.uint8))
