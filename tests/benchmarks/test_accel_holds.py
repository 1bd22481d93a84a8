"""benchmarks/_accel_holds.py: the told accel holds of closed_loop.py --accel-holds, and their recording."""

import numpy as np
import pytest

from tests.benchmarks import load_benchmark


def test_holds_last_hold_s_are_seeded_per_rollout_and_turn_towards_the_speed_band():
    bench = load_benchmark("_accel_holds")
    config = bench.HoldConfig(accel_max=0.8, hold_s=0.4, speed_band=(10.0, 30.0))
    speed = np.array([20.0, 20.0])
    a = bench.AccelHolds([1, 2], config).act(speed, 0.1)
    seq = bench.AccelHolds([1, 2], config)
    steps = np.stack([seq.act(speed, 0.1) for _ in range(12)])  # 1.2 s: three holds of 0.4 s
    assert np.array_equal(steps[0], a)  # the same seeds give the same holds
    assert (np.abs(steps) <= 0.8).all() and steps[0, 0] != steps[0, 1]  # each rollout its own draws
    for k in (0, 4, 8):
        assert (steps[k : k + 4] == steps[k]).all()  # held for 4 steps of 0.1 s
    assert not np.array_equal(steps[0], steps[4])
    slow = bench.AccelHolds(list(range(20)), config).act(np.full(20, 5.0), 0.1)
    fast = bench.AccelHolds(list(range(20)), config).act(np.full(20, 40.0), 0.1)
    assert (slow >= 0).all() and (fast <= 0).all() and np.array_equal(slow, -fast)  # turned back into the band
    with pytest.raises(ValueError, match="accel_max"):
        bench.HoldConfig(accel_max=0.0)


def test_the_recorder_holds_each_action_over_the_frames_it_made():
    bench = load_benchmark("_accel_holds")
    rec = bench.Recorder()
    rec.add("m", np.zeros((2, 4, 8, 16, 3), np.uint8), np.array([[0.1, 0.5], [-0.1, -0.5]]))
    rec.add("m", np.ones((2, 4, 8, 16, 3), np.uint8), np.array([[0.2, 0.0], [0.0, 0.3]]))
    frames, actions = rec.arrays("m")
    assert frames.shape == (2, 8, 8, 16, 3) and actions.shape == (2, 8, 2)
    assert np.allclose(actions[1, :4], [-0.1, -0.5]) and np.allclose(actions[1, 4:], [0.0, 0.3])
    assert (frames[:, 4:] == 1).all()
