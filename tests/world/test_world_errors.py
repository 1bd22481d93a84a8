from __future__ import annotations

import numpy as np
import pytest

from drivesim.world import World, WorldConfig


def _world() -> World:
    world = World(WorldConfig())
    world.reset(seed=0)
    return world


@pytest.mark.parametrize("kwargs, field", [
    ({"time_of_day": "dusk"}, "time_of_day"),
    ({"crowdedness": "jammed"}, "crowdedness"),
    ({"boxes": np.zeros((2, 3))}, "boxes"),
    ({"boxes": np.array([[0.5, 0.5, 0.4, 0.6]])}, "boxes"),
    ({"boxes": np.array([[0.1, 0.1, np.nan, 0.6]])}, "boxes"),
    ({"boxes": np.array([[0.1, 0.1, 1.5, 0.6]])}, "boxes"),
])
def test_bad_reset_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        World(WorldConfig()).reset(seed=0, **kwargs)


def test_bad_label_lists_the_allowed_values():
    with pytest.raises(ValueError, match=r"\['day', 'night'\]"):
        World(WorldConfig()).reset(seed=0, time_of_day="evening")


@pytest.mark.parametrize("action", [np.zeros(3), np.zeros((1, 2)), np.array([np.nan, 0.0]), np.array([0.0, np.inf])])
def test_bad_actions_raise(action):
    with pytest.raises(ValueError, match="action"):
        _world().step(action)


def test_bad_config_and_render_size_raise():
    with pytest.raises(ValueError, match="height"):
        WorldConfig(height=4)
    with pytest.raises(ValueError, match="fps"):
        WorldConfig(fps=0)
    with pytest.raises(ValueError, match="render size"):
        _world().render(8, 16)


def test_step_before_reset_raises():
    with pytest.raises(RuntimeError, match="reset"):
        World().step(np.zeros(2, np.float32))
