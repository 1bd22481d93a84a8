"""Standard FID / FVD feature networks loaded from TorchScript files the user supplies by path.

Nothing is downloaded here. Settings for the two widely used files:
- Inception-v3 (FID), NVlabs `inception-2015-12-05.pt`: layout "frames", input_range "uint8"
  (float 0..255), size None (it resizes to 299 itself), kwargs {return_features: true} -> 2048-d.
- I3D (FVD), StyleGAN-V `i3d_torchscript.pt`: layout "clips" (b c t h w), input_range "symmetric"
  ([-1, 1]), num_frames 16, kwargs {rescale: false, resize: true, return_features: true} -> 400-d.
Any TorchScript module that maps such a batch to (b, d) features (or (b, d, 1, 1, ...)) works.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from drivesim.eval.checks import check_video
from drivesim.eval.features import clip_windows

LAYOUTS: tuple[str, ...] = ("frames", "clips")
INPUT_RANGES: tuple[str, ...] = ("uint8", "unit", "symmetric")


@dataclass
class TorchScriptFeatureConfig:
    path: str = ""
    layout: str = "frames"  # "frames": (b c h w) per frame; "clips": (b c t h w) windows
    input_range: str = "uint8"  # "uint8": 0..255 floats, "unit": 0..1, "symmetric": -1..1
    height: int | None = None  # resize frames to this size before the network (None: keep)
    width: int | None = None
    num_frames: int = 16  # clip window length for layout "clips"
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout={self.layout!r} is not allowed; expected one of {list(LAYOUTS)}")
        if self.input_range not in INPUT_RANGES:
            raise ValueError(f"input_range={self.input_range!r} is not allowed; expected one of {list(INPUT_RANGES)}")
        if (self.height is None) != (self.width is None):
            raise ValueError(f"height={self.height} and width={self.width} must be both set or both None")
        if self.num_frames < 1:
            raise ValueError(f"num_frames={self.num_frames} must be >= 1")


class TorchScriptFeatures:
    """Wraps a `torch.jit.load`-ed network as a feature extractor over `b t c h w` videos."""

    def __init__(self, config: TorchScriptFeatureConfig, device: str = "cpu") -> None:
        path = Path(config.path)
        if not config.path or not path.is_file():
            raise FileNotFoundError(f"TorchScript feature network path={config.path!r} is not a file")
        try:
            with warnings.catch_warnings():  # the standard FID/FVD networks only exist as TorchScript
                warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit.load.*")
                self.network = torch.jit.load(str(path), map_location=device).eval()
        except RuntimeError as exc:
            raise ValueError(f"{path} is not a loadable TorchScript file: {exc}") from None
        self.config = config
        self.device = device

    def _prepare(self, frames: torch.Tensor) -> torch.Tensor:
        """(n, c, h, w) in [-1, 1] -> network range and size."""
        cfg = self.config
        if cfg.height is not None and cfg.width is not None and frames.shape[-2:] != (cfg.height, cfg.width):
            frames = F.interpolate(frames, size=(cfg.height, cfg.width), mode="bilinear", align_corners=False)
        if cfg.input_range == "uint8":
            return (frames + 1.0) * 127.5
        if cfg.input_range == "unit":
            return (frames + 1.0) * 0.5
        return frames

    def _run(self, batch: torch.Tensor) -> torch.Tensor:
        out = self.network(batch.to(self.device), **self.config.kwargs)
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"{self.config.path}: network returned {type(out).__name__}, expected a tensor")
        return rearrange(out.float(), "b ... -> b (...)").double().cpu()  # (b, d)

    @torch.no_grad()
    def __call__(
        self, video: torch.Tensor, hop: int = 8, batch_size: int = 32, max_start: int | None = None
    ) -> np.ndarray:
        """Features (n, d): one per frame (layout "frames") or per clip window (layout "clips",
        windows starting before `max_start`)."""
        check_video("video", video)
        if self.config.layout == "frames":
            frames = self._prepare(rearrange(video, "b t c h w -> (b t) c h w"))  # (b*t, c, h', w')
            outs = [self._run(frames[i : i + batch_size]) for i in range(0, frames.shape[0], batch_size)]
            return torch.cat(outs).numpy()
        windows = clip_windows(video, self.config.num_frames, 1, hop, max_start)  # (n, t, c, h, w)
        n = windows.shape[0]
        frames = self._prepare(rearrange(windows, "n t c h w -> (n t) c h w"))  # (n*t, c, h', w')
        windows = rearrange(frames, "(n t) c h w -> n c t h w", n=n)  # (n, c, t, h', w')
        outs = [self._run(windows[i : i + batch_size]) for i in range(0, n, batch_size)]
        return torch.cat(outs).numpy()
