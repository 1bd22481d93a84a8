"""The ego-motion warp: geometry against the procedural world, travel distances, context latents."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from drivesim.diffusion.ego_warp import (
    GroundCamera,
    fit_travel,
    frames_after_last,
    ground_warp_grid,
    travel_from_last,
    warp_context_latents,
    warp_forward,
    warp_valid,
)
from drivesim.world.config import WorldConfig
from drivesim.world.world import World


def test_the_default_camera_is_the_worlds():
    world, cam = WorldConfig(), GroundCamera()
    assert (cam.horizon, cam.horizontal_fov_deg, cam.camera_height, cam.hood) == (
        world.horizon,
        world.horizontal_fov_deg,
        world.camera_height,
        world.hood,
    )


@pytest.mark.parametrize(
    "field,value", [("horizon", 1.2), ("horizontal_fov_deg", 0.0), ("camera_height", -1.0), ("hood", 0.7)]
)
def test_a_bad_camera_is_refused_by_name(field, value):
    with pytest.raises(ValueError, match=f"GroundCamera.{field}"):
        GroundCamera(**{field: value})


def test_no_travel_is_the_identity_and_sky_and_bonnet_never_move():
    img = torch.randn(2, 3, 32, 64)
    torch.testing.assert_close(warp_forward(img, torch.zeros(2), GroundCamera()), img, atol=1e-5, rtol=0)
    grid = ground_warp_grid(torch.tensor([5.0]), 32, 64, GroundCamera())
    still = ground_warp_grid(torch.tensor([0.0]), 32, 64, GroundCamera())
    sky = int(0.42 * 32)  # rows 0 .. 12 lie above the horizon (13.44)
    bonnet = 29  # rows whose centre (row + 0.5) lies at or below the bonnet top, 0.92 * 32 = 29.44
    torch.testing.assert_close(grid[:, :sky], still[:, :sky])
    torch.testing.assert_close(grid[:, bonnet:], still[:, bonnet:])
    # the road moves towards the viewer: a ground row samples from nearer the horizon and the centre
    assert bool((grid[0, sky + 2 : bonnet, :, 1] < still[0, sky + 2 : bonnet, :, 1]).all())
    assert bool((grid[0, 20, :, 0].abs() <= still[0, 20, :, 0].abs() + 1e-6).all())


def _world_pair(seed: int, frames: int = 4) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Two renders `frames` world steps apart with no traffic in view, and the distance driven."""
    w = World()
    w.reset(seed=seed, crowdedness="low")
    for _ in range(10):
        w.step(np.array([0.0, 0.2], np.float32))
    a, s0 = w.render(64, 128, draw_vehicles=False).image, w._scene().ego.s
    for _ in range(frames):
        w.step(np.array([0.0, 0.2], np.float32))
    b, s1 = w.render(64, 128, draw_vehicles=False).image, w._scene().ego.s

    def t(x):
        return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1).float()[None] / 127.5 - 1.0

    return t(a), t(b), float(s1 - s0)


def test_warping_by_the_distance_driven_predicts_the_next_world_frame():
    errors = {0.0: 0.0, 1.0: 0.0, 2.0: 0.0}
    for seed in range(3):
        a, b, driven = _world_pair(seed)
        assert driven > 1.0
        for scale in errors:
            moved = warp_forward(a, torch.tensor([scale * driven]), GroundCamera())
            errors[scale] += float(F.mse_loss(moved, b))
    assert errors[1.0] < 0.8 * errors[0.0]  # better than not moving
    assert errors[1.0] < errors[2.0]  # and better than moving twice as far


def test_travel_is_integrated_from_the_last_given_frame():
    speed = torch.tensor([[10.0, 20.0, 30.0]] * 3)
    mask = torch.tensor([[1.0, 0, 0], [1.0, 1.0, 0], [0.0, 0, 0]])
    d = travel_from_last(mask, speed, 0.1)
    torch.testing.assert_close(d, torch.tensor([[0.0, 1.5, 4.0], [0.0, 0.0, 2.5], [0.0, 0.0, 0.0]]))
    assert frames_after_last(mask).tolist() == [[False, True, True], [False, False, True], [False] * 3]
    assert warp_valid(mask, torch.tensor([True, False, True])).tolist() == [
        [False, True, True],
        [False] * 3,
        [False] * 3,
    ]
    with pytest.raises(ValueError, match="expected \\(3, 3\\)"):
        travel_from_last(mask, speed[:, :2], 0.1)
    with pytest.raises(ValueError, match="must be > 0 seconds"):
        travel_from_last(mask, speed, 0.0)


class PoolCodec:
    """A stand-in autoencoder: frames are latents upsampled x4, latents are frames pooled /4."""

    def __init__(self) -> None:
        self.decoded = 0

    def decode(self, z):
        self.decoded += z.shape[0]
        return F.interpolate(z, scale_factor=4, mode="nearest")

    def encode(self, x):
        return F.avg_pool2d(x, 4)


def test_context_latents_are_warped_in_pixels_only_where_context_and_actions_are():
    z = torch.randn(3, 3, 3, 16, 32)
    mask = torch.tensor([[1.0, 0, 0], [1.0, 1.0, 0], [1.0, 0, 0]])
    speed = torch.full((3, 3), 20.0)
    given = torch.tensor([True, True, False])
    codec = PoolCodec()
    out = warp_context_latents(z, mask, speed, given, 0.1, GroundCamera(), codec)
    assert codec.decoded == 2  # one decode per clip with something to warp
    cam = GroundCamera()
    frame0 = F.interpolate(z[:1, 0], scale_factor=4, mode="nearest")
    for j, metres in ((1, 2.0), (2, 4.0)):
        expect = F.avg_pool2d(warp_forward(frame0, torch.tensor([metres]), cam), 4)[0]
        torch.testing.assert_close(out[0, j], expect)
    expect = F.avg_pool2d(warp_forward(F.interpolate(z[1:2, 1], scale_factor=4), torch.tensor([2.0]), cam), 4)[0]
    torch.testing.assert_close(out[1, 2], expect)  # clip 1 warps its last given frame, 1
    assert not out[0, 0].any() and not out[1, :2].any() and not out[2].any()  # context frames, no actions


def _frame(world: World) -> torch.Tensor:
    image = world.render(64, 128, draw_vehicles=False).image
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 127.5 - 1.0


def test_fitted_travel_recovers_a_warp_and_orders_real_world_steps():
    cam, grid = GroundCamera(), torch.arange(0.0, 8.01, 0.25)
    world = World()
    world.reset(seed=1, crowdedness="low")
    for _ in range(10):
        world.step(np.array([0.0, 0.0], np.float32))
    first = _frame(world)
    moved = warp_forward(first[None].expand(2, -1, -1, -1), torch.tensor([1.5, 4.0]), cam)
    fitted = fit_travel(first[None].expand(2, -1, -1, -1), moved, grid, cam)
    torch.testing.assert_close(fitted, torch.tensor([1.5, 4.0]))
    frames = [first]
    for _ in range(8):
        world.step(np.array([0.0, 0.0], np.float32))
        frames.append(_frame(world))
    short = fit_travel(torch.stack(frames[0:8:2]), torch.stack(frames[2:9:2]), grid, cam)  # 2 world steps
    long = fit_travel(torch.stack(frames[0:1]), torch.stack(frames[8:9]), grid, cam)  # 8 world steps
    assert 0.0 < float(short.mean()) < float(long.mean())
    with pytest.raises(ValueError, match="must both be \\(n, c, h, w\\)"):
        fit_travel(moved, moved[:1], grid, cam)
