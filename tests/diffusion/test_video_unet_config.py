"""`VideoUNetConfig`: every bad value refused with a message that names the field, and the derived values."""

import pytest

from drivesim.diffusion.ego_warp import GroundCamera
from drivesim.diffusion.video_unet import VideoUNetConfig as ReExported
from drivesim.diffusion.video_unet_config import SITE_KINDS, TEMPORAL_LAYERS, VideoUNetConfig


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(conv_kernel=(3, 2, 3)), "conv_kernel"),
        (dict(temporal_layers="conv"), "temporal_layers"),
        (dict(temporal_after=()), "temporal_after"),
        (dict(temporal_after=("mid",)), "temporal_after"),
        (dict(blend_mode="soft"), "blend_mode"),
        (dict(init_alpha=1.5), "init_alpha"),
        (dict(num_frame_rates=1), "num_frame_rates"),
        (dict(action_forecast=True, use_context=False), "action_forecast"),
        (dict(spatial_actions=True, use_actions=False), "spatial_actions"),
        (dict(speed_conditioning=True, use_actions=False), "speed_conditioning"),
        (dict(ego_warp=True, use_actions=False), "ego_warp"),
        (dict(ego_warp=True, warp_interval=-0.1), "warp_interval"),
        (dict(ego_warp=True, warp_hood=0.9), "hood"),
        (dict(blend_residual=True, use_context=False), "blend_residual"),
        (dict(forecast_channels=0), "forecast_channels"),
        (dict(attention_head_dim=0), "attention_head_dim"),
    ],
)
def test_bad_values_are_refused_by_name(overrides, field):
    with pytest.raises(ValueError, match=field):
        VideoUNetConfig(**overrides)


def test_defaults_validate_and_derived_values():
    cfg = VideoUNetConfig(temporal_after=["res"], conv_kernel=[3, 1, 1])  # lists, as YAML gives them
    assert cfg.temporal_after == ("res",) and cfg.conv_kernel == (3, 1, 1)
    assert cfg.temporal_layers in TEMPORAL_LAYERS and set(VideoUNetConfig().temporal_after) <= set(SITE_KINDS)
    assert isinstance(cfg.camera(), GroundCamera)
    assert not cfg.uses_speed
    assert VideoUNetConfig(ego_warp=True).uses_speed and VideoUNetConfig(speed_conditioning=True).uses_speed
    tiny = VideoUNetConfig.tiny(use_actions=False)
    assert tiny.attention_head_dim == 8 and tiny.use_actions is False


def test_the_video_unet_module_still_exports_it():
    assert ReExported is VideoUNetConfig
