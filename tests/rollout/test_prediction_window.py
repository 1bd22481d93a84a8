"""The prediction stage's window: context then frames to draw, their actions, speeds and the ego warp."""

import pytest
import torch

from drivesim.diffusion.ego_warp import GroundCamera, warp_forward
from drivesim.rollout.ego_speed import window_speeds
from drivesim.rollout.prediction_window import WindowSpec, prediction_window


class Identity:
    """A frame codec whose latents are the frames."""

    def decode(self, z):
        return z

    def encode(self, x):
        return x


def _window(spec: WindowSpec, actions=True, speeds=True):
    context = torch.randn(2, 2, 3, 16, 32)
    act = torch.tensor([[0.5, 1.0], [-0.5, -2.0]]) if actions else None
    past = torch.tensor([[[0.1, 0.2], [0.3, 0.4]], [[0.0, 0.0], [0.0, -1.0]]]) if actions else None
    speed = torch.tensor([[8.0, 9.0], [12.0, 11.0]]) if speeds else None
    return context, act, past, speed, prediction_window(context, act, past, speed, spec, GroundCamera(), Identity())


def test_the_window_holds_the_context_then_zeros_with_the_held_action_after_the_context_ones():
    context, act, past, _, w = _window(WindowSpec(5, 4, 10.0, needs_speed=False, needs_warp=False))
    assert w.clip.shape == (2, 5, 3, 16, 32) and w.mask.tolist() == [[1, 1, 0, 0, 0]] * 2
    assert torch.equal(w.clip[:, :2], context) and not w.clip[:, 2:].any()
    assert torch.equal(w.actions[:, :2], past) and torch.equal(w.actions[:, 2:], act[:, None].expand(-1, 3, -1))
    assert w.speeds is None and w.warp is None  # nothing reads them
    _, _, _, _, short = _window(WindowSpec(2, 4, 10.0, needs_speed=False, needs_warp=False))
    assert short.clip.shape[1] == 3  # at least one frame to draw after the context
    *_, untold = _window(WindowSpec(5, 4, 10.0, needs_speed=True, needs_warp=True), actions=False)
    assert untold.actions is None and untold.speeds is None and untold.warp is None  # no accel to integrate


def test_speeds_integrate_the_held_accel_and_the_warp_moves_the_last_context_keyframe_by_them():
    context, act, _, speed, w = _window(WindowSpec(4, 4, 10.0, needs_speed=True, needs_warp=True))
    torch.testing.assert_close(w.speeds, window_speeds(speed, act, 2, 4, 10.0))
    assert not w.warp[:, :2].any()  # the context is given, not warped
    # the first new frame: the last context keyframe moved by the trapezoid of its speed and the next, over 0.4 s
    travel = 0.5 * (w.speeds[:, 1] + w.speeds[:, 2]) * 0.4
    torch.testing.assert_close(w.warp[:, 2], warp_forward(context[:, 1], travel, GroundCamera()))
    *_, speeds_only = _window(WindowSpec(4, 4, 10.0, needs_speed=True, needs_warp=False))
    assert speeds_only.speeds is not None and speeds_only.warp is None


def test_a_bad_spec_is_refused():
    with pytest.raises(ValueError, match="length >= 2"):
        WindowSpec(1, 4, 10.0, needs_speed=False, needs_warp=False)
    with pytest.raises(ValueError, match="fps > 0"):
        WindowSpec(5, 4, 0.0, needs_speed=False, needs_warp=False)


def test_road_from_warp_blends_only_the_road_rows_towards_the_warp():
    from drivesim.diffusion.ego_warp import ground_rows
    from drivesim.rollout.prediction_window import road_from_warp

    drawn, warp = torch.zeros(2, 4, 16, 32), torch.ones(2, 4, 16, 32)
    road = ground_rows(16, GroundCamera())
    assert 0 < int(road.sum()) < 16
    full, half, off = (road_from_warp(drawn, warp, w, GroundCamera()) for w in (1.0, 0.5, 0.0))
    assert (full[:, :, road] == 1).all() and (full[:, :, ~road] == 0).all()  # sky and bonnet stay the drawn ones
    assert (half[:, :, road] == 0.5).all() and torch.equal(off, drawn)
    with pytest.raises(ValueError, match="must match"):
        road_from_warp(drawn, warp[:, :2], 1.0, GroundCamera())
    with pytest.raises(ValueError, match="weight 1.5 must be in \\[0, 1\\]"):
        road_from_warp(drawn, warp, 1.5, GroundCamera())
