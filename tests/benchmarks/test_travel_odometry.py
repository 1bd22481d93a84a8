"""benchmarks/travel_odometry.py: the pairs and their true travel."""

import numpy as np

from tests.benchmarks import load_benchmark


def test_pairs_carry_the_trapezoid_travel_between_their_frames():
    pairs = load_benchmark("travel_odometry").pairs
    speed = np.stack([np.full(7, 30.0), np.arange(7) * 3.0]).astype(np.float32)  # m/s per frame, 2 clips
    idx, travel = pairs(speed, 4, 30.0)
    assert idx.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]
    np.testing.assert_allclose(travel[:3], 4.0, rtol=1e-6)  # 30 m/s for 4 frames at 30 fps
    np.testing.assert_allclose(travel[3], (0.0 + 12.0) / 2 * 4 / 30, rtol=1e-6)  # speed rising linearly 0 -> 12
