from __future__ import annotations

import cv2
import numpy as np
import pytest

from drivesim.world.storyboard import storyboard
from tests.world.helpers import rollout


def test_storyboard_grid_with_boxes_and_captions(tmp_path):
    _, frames = rollout(seed=1, steps=6, crowdedness="high")
    images = [f.image for f in frames]
    grid = storyboard(images, [f.boxes for f in frames], [f"t={i}" for i in range(len(frames))], cols=3)
    assert grid.dtype == np.uint8 and grid.ndim == 3
    assert grid.shape[1] == 3 * (128 + 2) + 2 and grid.shape[0] == 3 * (64 + 14 + 2) + 2
    plain = storyboard(images, None, None, cols=3)
    assert plain.shape[0] < grid.shape[0]
    path = tmp_path / "board.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    assert cv2.imread(str(path)).shape == grid.shape


def test_storyboard_errors():
    with pytest.raises(ValueError, match="frames"):
        storyboard([])
    with pytest.raises(ValueError, match="labels"):
        storyboard([np.zeros((8, 16, 3), np.uint8)], labels=["a", "b"])
