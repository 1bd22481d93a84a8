"""A learned travel reader: how far the camera moved along the road between two frames (visual odometry).

Beyond the paper, for the simulator (issue 6: the accel must show as a change of forward motion).
`ego_warp.fit_travel` measures the travel between two keyframes by the forward warp that matches
best; on world keyframes 4 source frames apart it is as noisy as the motion it should correct
(docs/results.md, *Where the accel is lost*). This reader is a small CNN over the two frames and their
difference, trained on world pairs with the true travel (`benchmarks/travel_odometry.py`). Rows matter
(a metre of travel moves the road near the bonnet more pixels than near the horizon), so it ends in a
dense layer over the whole feature map, not a global pool.

Shapes: frames (n, 3, H, W) in [-1, 1] -> travel (n,) metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from drivesim.model_folder import config_from_dict, read_folder_config, stage_state

ODOMETRY_STAGE = "odometry"  # model-folder stage of a TravelReader; extra["stride"]: source frames per pair


@dataclass(frozen=True)
class TravelReaderConfig:
    height: int = 64
    width: int = 128
    channels: tuple[int, ...] = (32, 48, 64, 96, 128)  # each after a stride-2 convolution but the first
    hidden: int = 256
    mean: float = 0.0  # metres: the training travel's mean and spread (the output's scale)
    std: float = 1.0

    def __post_init__(self) -> None:
        down = 2 ** (len(self.channels) - 1)
        if self.height % down or self.width % down:
            raise ValueError(f"TravelReaderConfig: {self.height}x{self.width} frames must divide by {down}")
        if any(c % 8 for c in self.channels):
            raise ValueError(f"TravelReaderConfig.channels={self.channels}: each must be a multiple of 8 (GroupNorm)")
        if self.std <= 0:
            raise ValueError(f"TravelReaderConfig.std={self.std} must be > 0")


class TravelReader(nn.Module):
    def __init__(self, config: TravelReaderConfig) -> None:
        super().__init__()
        self.config = config
        layers, c_in = [], 9
        for i, c in enumerate(config.channels):
            layers += [nn.Conv2d(c_in, c, 3, stride=1 if i == 0 else 2, padding=1), nn.GroupNorm(8, c), nn.SiLU()]
            c_in = c
        self.features = nn.Sequential(*layers)
        down = 2 ** (len(config.channels) - 1)
        self.head = nn.Sequential(
            nn.Linear(c_in * (config.height // down) * (config.width // down), config.hidden),
            nn.SiLU(),
            nn.Linear(config.hidden, 1),
        )

    def forward(self, before: Tensor, after: Tensor) -> Tensor:
        """before, after (n, 3, H, W) in [-1, 1] -> (n,) metres travelled from before to after."""
        c = self.config
        if before.shape != after.shape or before.shape[1:] != (3, c.height, c.width):
            shapes = f"{tuple(before.shape)} / {tuple(after.shape)}"
            raise ValueError(f"frames {shapes}; expected both (n, 3, {c.height}, {c.width})")
        x = torch.cat([before, after, after - before], dim=1)  # n 9 H W
        h = rearrange(self.features(x), "n c h w -> n (c h w)")
        return rearrange(self.head(h), "n 1 -> n") * c.std + c.mean

    def loss(self, before: Tensor, after: Tensor, travel: Tensor) -> Tensor:
        """Mean squared error in units of the training spread."""
        return F.mse_loss((self(before, after) - self.config.mean) / self.config.std,
                          (travel - self.config.mean) / self.config.std)  # fmt: skip


def load_travel_reader(folder: str | Path) -> tuple[TravelReader, int] | None:
    """The folder's "odometry" stage (eval mode) and the source frames between the frames it was trained on;
    None when the folder has none."""
    folder = Path(folder)
    if not (folder / f"{ODOMETRY_STAGE}.safetensors").is_file():
        return None
    entry = read_folder_config(folder)[ODOMETRY_STAGE]
    reader = TravelReader(config_from_dict(TravelReaderConfig, entry["config"], f"{folder} [{ODOMETRY_STAGE}]"))
    reader.load_state_dict(stage_state(folder, ODOMETRY_STAGE))
    return reader.eval(), int(entry.get("extra", {}).get("stride", 4))
