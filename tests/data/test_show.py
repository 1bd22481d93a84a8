from pathlib import Path

import numpy as np
import pytest

from drivesim.data.annotations import FrameBoxes
from drivesim.data.dataset import open_dataset
from drivesim.data.show import ShowConfig, clip_storyboard, draw_boxes


def test_storyboard_layout_and_boxes(tiny_dataset: Path) -> None:
    folder = open_dataset(tiny_dataset)
    record = folder.clip("clip_01")
    board = clip_storyboard(folder, record, ShowConfig(dataset=str(tiny_dataset), out="x.png", frames=6, cols=4))
    tile_h, tile_w = 18 + 32 * 6, 64 * 6  # header + frame upscaled x6 (64 px -> 384 px)
    assert board.dtype == np.uint8 and board.shape == (24 + 2 * tile_h, 4 * tile_w, 3)
    assert board[24 + tile_h :, 2 * tile_w :].max() == 0  # two empty tiles pad the second row


def test_draw_boxes_puts_class_colour_on_the_outline() -> None:
    tile = np.zeros((100, 200, 3), np.uint8)
    boxes = FrameBoxes(np.array([[0.1, 0.2, 0.6, 0.9]], np.float32), np.array([0]), np.array([7]))
    out = draw_boxes(tile, boxes)
    assert tile.max() == 0  # the input is not modified
    np.testing.assert_array_equal(out[90, 60], (0, 230, 255))  # bottom-left corner, the "car" colour
    assert out[50:80, 30:110].max() == 0  # inside of the box stays empty


def test_bad_frames_argument(tiny_dataset: Path) -> None:
    folder = open_dataset(tiny_dataset)
    with pytest.raises(ValueError, match="frames=0"):
        clip_storyboard(folder, folder.clips[0], ShowConfig(dataset="d", out="x.png", frames=0))
