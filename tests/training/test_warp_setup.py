"""The ego-motion warp's training set-up: the frame interval comes from the data."""

import pytest

from drivesim.diffusion.video_unet import VideoUNetConfig
from drivesim.training.video_config import VideoLDMTrainConfig
from drivesim.training.warp_setup import with_warp_interval


def test_the_warp_interval_is_the_frame_stride_over_the_datas_frame_rate():
    cfg = VideoLDMTrainConfig(video=VideoUNetConfig.tiny(ego_warp=True), frame_stride=4)
    assert with_warp_interval(cfg, {30.0}).video.warp_interval == pytest.approx(4 / 30)
    same = VideoLDMTrainConfig(video=VideoUNetConfig.tiny(ego_warp=True, warp_interval=4 / 30), frame_stride=4)
    assert with_warp_interval(same, {30.0}).video.warp_interval == pytest.approx(4 / 30)
    other = VideoLDMTrainConfig(video=VideoUNetConfig.tiny(ego_warp=True, warp_interval=0.5), frame_stride=4)
    with pytest.raises(ValueError, match="video.warp_interval=0.5 s, but frame_stride=4"):
        with_warp_interval(other, {30.0})
    with pytest.raises(ValueError, match="clips of one frame rate"):
        with_warp_interval(cfg, {30.0, 10.0})
