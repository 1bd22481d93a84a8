"""benchmarks/keyframe_travel.py: the warp distance fitted between frames reads forward travel."""


import numpy as np
import torch

from drivesim.diffusion.ego_warp import GroundCamera, warp_forward
from drivesim.world.world import World
from tests.benchmarks import load_benchmark


def _frame(world: World) -> torch.Tensor:
    image = world.render(64, 128, draw_vehicles=False).image
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 127.5 - 1.0


def test_fitted_travel_recovers_a_warp_and_orders_real_world_steps():
    fitted_travel = load_benchmark("keyframe_travel").fitted_travel
    cam, grid = GroundCamera(), torch.arange(0.0, 8.01, 0.25)
    world = World()
    world.reset(seed=1, crowdedness="low")
    for _ in range(10):
        world.step(np.array([0.0, 0.0], np.float32))
    first = _frame(world)
    moved = warp_forward(first[None].expand(2, -1, -1, -1), torch.tensor([1.5, 4.0]), cam)
    np.testing.assert_allclose(fitted_travel(first[None].expand(2, -1, -1, -1), moved, grid, cam), [1.5, 4.0])
    frames = [first]
    for _ in range(8):
        world.step(np.array([0.0, 0.0], np.float32))
        frames.append(_frame(world))
    short = fitted_travel(torch.stack(frames[0:8:2]), torch.stack(frames[2:9:2]), grid, cam)  # 2 world steps
    long = fitted_travel(torch.stack(frames[0:1]), torch.stack(frames[8:9]), grid, cam)  # 8 world steps
    assert 0.0 < short.mean() < long.mean()
