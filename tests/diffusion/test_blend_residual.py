"""Diffusion on the blend's residual: the blend of the given frames, the exact shifts, and the VideoUNet option."""

import dataclasses

import pytest
import torch

from drivesim.diffusion.blend_residual import BlendShift, blend_given_frames
from drivesim.diffusion.context import keyframe_mask
from drivesim.diffusion.parameterization import v_from_x_eps, v_from_z_x, x_from_z_v
from drivesim.diffusion.schedule import NoiseSchedule, broadcast_to_sample
from drivesim.diffusion.unet import SpatialUNet, UNetConfig
from drivesim.diffusion.video_conditioning import VideoConditioning
from drivesim.diffusion.video_unet import VideoUNet, VideoUNetConfig
from drivesim.sampling.interpolation import blend_keyframes

B, T, C, H, W = 3, 9, 4, 8, 16

pytestmark = pytest.mark.usefixtures("one_thread")


def test_blend_of_keyframes_matches_linear_blending_and_is_zero_without_given_frames():
    z = torch.randn(B, T, C, H, W)
    mask = keyframe_mask(B, T, 4).clone()
    mask[2] = 0.0
    mu = blend_given_frames(z * mask[:, :, None, None, None], mask)
    torch.testing.assert_close(mu[:2], blend_keyframes(z[:2, ::4], 4))
    assert float(mu[2].abs().max()) == 0.0


def test_blend_holds_the_nearest_given_frame_beyond_the_first_and_last():
    z = torch.randn(2, 6, C, H, W)
    mask = torch.tensor([[1.0, 1.0, 0, 0, 0, 0], [0, 0, 1.0, 0, 0, 0]])
    mu = blend_given_frames(z, mask)
    torch.testing.assert_close(mu[0, 2:], z[0, 1:2].expand(4, C, H, W))  # after the last: the last given
    torch.testing.assert_close(mu[1], z[1, 2:3].expand(6, C, H, W))  # before and after: the only one
    torch.testing.assert_close(mu[0, :2], z[0, :2])
    with pytest.raises(ValueError, match="expected"):
        blend_given_frames(z, mask[:, :5])


@pytest.mark.parametrize("target", ["v", "eps"])
def test_shifts_are_exact_for_the_residual_process(target):
    """For the true noise, the output that is exact for y = z - mu at y_tau maps to the one exact for z at z_tau;
    and "no residual" (x_y = 0) gives the blend as the clean estimate."""
    schedule = NoiseSchedule()
    shift = BlendShift(schedule, target)
    z, mu, eps = torch.randn(3, B, T, C, H, W).unbind(0)
    tau = torch.tensor([10, 500, 990])
    a = broadcast_to_sample(schedule.alpha(tau).float(), z)
    s = broadcast_to_sample(schedule.sigma(tau).float(), z)
    z_tau = a * z + s * eps
    y_tau = shift.shift_input(z_tau, tau, mu)
    torch.testing.assert_close(y_tau, a * (z - mu) + s * eps)
    exact_y = eps if target == "eps" else v_from_x_eps(z - mu, eps, a, s)
    exact_z = eps if target == "eps" else v_from_x_eps(z, eps, a, s)
    torch.testing.assert_close(shift.shift_output(exact_y, tau, mu), exact_z, atol=1e-5, rtol=1e-5)
    if target == "v":
        nothing = v_from_z_x(y_tau, torch.zeros_like(z), a, s)  # the output whose clean estimate of y is 0
        torch.testing.assert_close(x_from_z_v(z_tau, shift.shift_output(nothing, tau, mu), a, s), mu,
                                   atol=1e-4, rtol=1e-4)  # fmt: skip


def _unet() -> SpatialUNet:
    torch.manual_seed(0)
    return SpatialUNet(dataclasses.replace(UNetConfig.tiny(), zero_init=False))


def test_video_unet_with_blend_residual_is_the_plain_network_on_the_shifted_process():
    video = VideoUNetConfig.tiny(num_frame_rates=2, use_actions=False, zero_init=False)
    plain = VideoUNet(_unet(), video).eval()
    shift = BlendShift(NoiseSchedule(), "v")
    residual = VideoUNet(_unet(), dataclasses.replace(video, blend_residual=True), blend_shift=shift).eval()
    residual.load_state_dict(plain.state_dict())  # the shift adds no weights
    z = torch.randn(2, 5, C, H, W)
    mask = keyframe_mask(2, 5, 4).clone()
    mask[1] = 0.0  # no keyframes: mu = 0, the plain model
    cond = VideoConditioning.create(2, 5, (C, H, W), context_latents=z * mask[:, :, None, None, None],
                                    context_mask=mask, frame_rate=1)  # fmt: skip
    tau = torch.tensor([300, 300])
    mu = blend_given_frames(cond.context_latents, mask)
    with torch.no_grad():
        expected = shift.shift_output(plain(shift.shift_input(z, tau, mu), tau, cond), tau, mu)
        out = residual(z, tau, cond)
        torch.testing.assert_close(out, expected)
        torch.testing.assert_close(out[1], plain(z, tau, cond)[1])
        assert float((out[0] - plain(z, tau, cond)[0]).abs().max()) > 1e-3


def test_blend_residual_needs_context_and_the_shift():
    with pytest.raises(ValueError, match="use_context"):
        VideoUNetConfig.tiny(blend_residual=True, use_context=False)
    with pytest.raises(ValueError, match="blend_shift"):
        VideoUNet(_unet(), VideoUNetConfig.tiny(blend_residual=True))
    with pytest.raises(ValueError, match="blend_shift"):
        VideoUNet(_unet(), VideoUNetConfig.tiny(), blend_shift=BlendShift(NoiseSchedule(), "v"))
