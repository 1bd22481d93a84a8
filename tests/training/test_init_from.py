"""drivesim/training/init_from.py: a video stage loaded into a model whose temporal 3-D kernels grew."""

import dataclasses

import pytest
import torch

from drivesim.diffusion.unet import SpatialUNet, UNetConfig
from drivesim.diffusion.video_conditioning import VideoConditioning
from drivesim.diffusion.video_unet import VideoUNet, VideoUNetConfig
from drivesim.training.checkpoint import save_stage
from drivesim.training.init_from import init_from_stage, widen_kernel

C, H, W = 4, 8, 16
UNET = dataclasses.replace(UNetConfig.tiny(), zero_init=False)


def _model(kernel: tuple[int, int, int]) -> VideoUNet:
    torch.manual_seed(0)
    return VideoUNet(SpatialUNet(UNET), VideoUNetConfig.tiny(conv_kernel=kernel, use_actions=False)).eval()


def test_a_stage_with_frame_only_kernels_starts_a_wider_kernel_model_as_itself(tmp_path):
    narrow = _model((3, 1, 1))
    with torch.no_grad():  # trained-looking temporal convolutions (their output layers start at zero)
        for name, p in narrow.named_parameters():
            if ".conv." in name and name.endswith("weight") and p.ndim == 5:
                p.normal_(0.0, 0.05)
    save_stage(tmp_path, "video_ldm", narrow, {"video": "narrow"})
    wide = _model((3, 3, 3))
    init_from_stage(wide, tmp_path, "video_ldm", theta=True)
    z, tau = torch.randn(2, 3, C, H, W), torch.tensor([300, 700])
    cond = VideoConditioning.create(2, 3, (C, H, W))
    with torch.no_grad():
        torch.testing.assert_close(wide(z, tau, cond), narrow(z, tau, cond), atol=1e-5, rtol=1e-5)
    convs = [p for n, p in wide.named_parameters() if ".conv." in n and n.endswith("weight") and p.ndim == 5]
    assert convs and all(p.shape[2:] == (3, 3, 3) for p in convs)
    assert all(float(p.detach()[:, :, :, 0].abs().max()) == 0.0 for p in convs)  # zero around the centre: free to train
    with pytest.raises(ValueError, match="other shapes"):  # narrowing loses weights: refused
        init_from_stage(_model((3, 1, 1)), _saved(tmp_path / "wide", wide), "video_ldm", theta=True)


def _saved(folder, model):
    save_stage(folder, "video_ldm", model, {"video": "wide"})
    return folder


def test_widen_kernel_centres_the_weight_and_refuses_what_is_not_a_widening():
    w = torch.randn(2, 3, 3, 1, 1)
    out = widen_kernel(w, torch.Size((2, 3, 3, 3, 5)))
    assert torch.equal(out[:, :, :, 1:2, 2:3], w) and float(out.abs().sum()) == pytest.approx(float(w.abs().sum()))
    assert widen_kernel(w, torch.Size((2, 3, 3, 2, 1))) is None  # an odd kernel cannot grow by one
    assert widen_kernel(w, torch.Size((4, 3, 3, 3, 3))) is None  # other channels
    assert widen_kernel(torch.randn(2, 3, 3, 3), torch.Size((2, 3, 5, 5))) is None  # not a 3-D convolution
