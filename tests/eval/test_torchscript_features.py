import numpy as np
import pytest
import torch
from torch import nn

from drivesim.eval.checks import uint8_to_video
from drivesim.eval.torchscript_features import TorchScriptFeatureConfig, TorchScriptFeatures

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


class FrameNet(nn.Module):
    """Stand-in for Inception: (b, 3, h, w) in 0..255 -> (b, 6) features (channel means and stds)."""

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        feats = torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)
        if return_features:
            return feats
        return feats[:, :1]


class ClipNet(nn.Module):
    """Stand-in for I3D: (b, 3, t, h, w) -> (b, 4, 1, 1, 1) (mean, and mean |temporal difference| ...)."""

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = True) -> torch.Tensor:
        motion = (x[:, :, 1:] - x[:, :, :-1]).abs().mean(dim=(1, 2, 3, 4))
        out = torch.stack([x.mean(dim=(1, 2, 3, 4)), motion, x.amax(dim=(1, 2, 3, 4)), x.amin(dim=(1, 2, 3, 4))], 1)
        return out[:, :, None, None, None]


def _save(module: nn.Module, path) -> str:
    torch.jit.script(module).save(str(path))
    return str(path)


def test_frame_network_features_and_range(tmp_path):
    path = _save(FrameNet(), tmp_path / "inception.pt")
    net = TorchScriptFeatures(
        TorchScriptFeatureConfig(path=path, layout="frames", input_range="uint8", kwargs={"return_features": True})
    )
    black = -torch.ones(2, 3, 3, 16, 16)
    feats = net(black)
    assert feats.shape == (6, 6) and feats.dtype == np.float64
    np.testing.assert_allclose(feats[:, :3], 0.0, atol=1e-6)
    white = net(torch.ones(1, 2, 3, 16, 16))
    np.testing.assert_allclose(white[:, :3], 255.0, atol=1e-3)
    resized = TorchScriptFeatures(
        TorchScriptFeatureConfig(path=path, height=8, width=8, input_range="unit", kwargs={"return_features": True})
    )
    np.testing.assert_allclose(resized(torch.ones(1, 1, 3, 16, 16))[:, :3], 1.0, atol=1e-6)


def test_clip_network_windows(tmp_path, clips):
    path = _save(ClipNet(), tmp_path / "i3d.pt")
    cfg = TorchScriptFeatureConfig(
        path=path, layout="clips", input_range="symmetric", num_frames=4, kwargs={"rescale": False, "resize": True}
    )
    feats = TorchScriptFeatures(cfg)(uint8_to_video(clips[:2]), hop=4)  # 12 frames: windows at 0, 4, 8
    assert feats.shape == (6, 4)
    static = TorchScriptFeatures(cfg)(torch.zeros(1, 8, 3, 8, 8), hop=4)
    np.testing.assert_allclose(static[:, 1], 0.0)


def test_bad_networks_and_configs(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a file"):
        TorchScriptFeatures(TorchScriptFeatureConfig(path=str(tmp_path / "missing.pt")))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torchscript archive")
    with pytest.raises(ValueError, match="not a loadable TorchScript"):
        TorchScriptFeatures(TorchScriptFeatureConfig(path=str(junk)))
    with pytest.raises(ValueError, match="layout"):
        TorchScriptFeatureConfig(layout="video")
    with pytest.raises(ValueError, match="input_range"):
        TorchScriptFeatureConfig(input_range="0..1")
    with pytest.raises(ValueError, match="both set"):
        TorchScriptFeatureConfig(height=299)
