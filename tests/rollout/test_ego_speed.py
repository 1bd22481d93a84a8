"""The simulator's ego speed: the world's own longitudinal dynamics, frame by frame."""

import numpy as np
import pytest

from drivesim.rollout.ego_speed import MAX_SPEED, advance_speed, speed_track
from drivesim.world.ego import EgoCar


@pytest.mark.parametrize("accel", [1.0, 0.3, 0.0, -0.5, -1.0])
def test_advance_matches_the_world_car_on_the_road(accel):
    car = EgoCar(speed=18.0)
    for _ in range(12):
        car.step(0.0, accel, 0.0, 1 / 30, MAX_SPEED, off_road=False)
    got = advance_speed(np.array([18.0]), np.array([accel]), 12, 30.0)
    assert got[0] == pytest.approx(car.speed, abs=1e-4)


def test_throttle_speeds_up_brakes_stop_at_zero_and_the_track_holds_the_accel():
    v = advance_speed(np.array([10.0, 10.0, 1.0]), np.array([1.0, -1.0, -1.0]), 30, 30.0)
    assert v[0] > 12.0 and v[1] < 3.0 and v[2] == 0.0
    track = speed_track(np.array([10.0, 10.0]), np.array([1.0, -0.2]), 3, 4, 30.0)
    assert track.shape == (2, 3) and track.dtype == np.float32
    assert np.all(np.diff(track[0]) > 0) and np.all(np.diff(track[1]) < 0)
    held = advance_speed(np.array([10.0, 10.0]), np.array([1.0, -0.2]), 12, 30.0)
    np.testing.assert_allclose(track[:, 2], held, rtol=1e-5)
    assert speed_track(np.array([5.0]), np.array([0.0]), 0, 4, 30.0).shape == (1, 0)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="shape \\(b,\\)"):
        advance_speed(np.zeros(2), np.zeros(3), 1, 30.0)
    with pytest.raises(ValueError, match="fps"):
        advance_speed(np.zeros(1), np.zeros(1), 1, 0.0)


def test_window_speeds_keep_the_context_and_extend_it_with_the_held_accel():
    import torch

    from drivesim.rollout.ego_speed import window_speeds

    context = torch.tensor([[10.0, 11.0], [20.0, 20.0]])
    actions = torch.tensor([[0.0, 1.0], [0.5, -1.0]])
    out = window_speeds(context, actions, 2, 4, 30.0)
    assert out.shape == (2, 4)
    torch.testing.assert_close(out[:, :2], context)
    want = speed_track(np.array([11.0, 20.0]), np.array([1.0, -1.0]), 2, 4, 30.0)
    np.testing.assert_allclose(out[:, 2:].numpy(), want, rtol=1e-6)


def test_between_keyframes_is_linear_and_keeps_the_keyframe_speeds():
    import torch

    from drivesim.rollout.ego_speed import between_keyframes

    keys = torch.tensor([[10.0, 14.0, 30.0], [5.0, 5.0, 1.0]])
    out = between_keyframes(keys, 4)
    assert out.shape == (2, 9)
    torch.testing.assert_close(out[:, ::4], keys)
    torch.testing.assert_close(out[0, :5], torch.tensor([10.0, 11.0, 12.0, 13.0, 14.0]))
    assert between_keyframes(keys[:, :1], 4).shape == (2, 1)
    with pytest.raises(ValueError, match="key_speeds has shape"):
        between_keyframes(keys[0], 4)
