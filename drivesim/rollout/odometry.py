"""A learned travel reader: how far the camera moved along the road between two frames (visual odometry).

Beyond the paper, for the simulator (issue 6: the accel must show as a change of forward motion).
`ego_warp.fit_travel` measures the travel between two keyframes by the forward warp that matches
best; on world keyframes 4 source frames apart it is as noisy as the motion it should correct
(docs/results.md, *Where the accel is lost*). This reader is a small network over the two frames, trained
on world pairs with the true travel (`benchmarks/travel_odometry.py`). Two heads:

- "dense": convolutions over [A, B, B - A] and a dense layer over the whole feature map (rows matter: a
  metre of travel moves the road near the bonnet more pixels than near the horizon). It learns the
  travel as a regression, so it can fall back on the training mean (held-out slope 0.42, session 31).
- "profile": the camera's ground geometry with learned features. A small convolution stack makes
  feature maps of A and of B (the same weights); each is averaged over `bands` column strips into a row
  profile (n, c*bands, H); A's profile is moved by every candidate travel d of a grid the way the
  ground rows move (`ego_warp.ground_warp`: the row now at distance r was at r + d) and compared with
  B's on the road rows (learned row weights); the reading is the softmin-weighted mean of the grid.
  The reading is a matching, not a regression: a pair it has not seen still reads by where its road
  went. The source span of each band follows the warp's horizontal scaling about the image centre;
  wide bands change little under the small sideways shifts of steering.

Shapes: frames (n, 3, H, W) in [-1, 1] -> travel (n,) metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import Tensor, nn

from drivesim.diffusion.ego_warp import GroundCamera, ground_rows, ground_warp
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
    head: Literal["dense", "profile"] = "dense"  # see the module docstring
    bands: int = 4  # profile: column strips averaged into row profiles
    max_travel: float = 8.0  # profile: the candidate travels 0 .. max_travel metres
    travel_step: float = 0.1  # profile: candidate spacing (m)

    def __post_init__(self) -> None:
        if self.head not in ("dense", "profile"):
            raise ValueError(f"TravelReaderConfig.head={self.head!r}; allowed: 'dense' or 'profile'")
        if self.head == "profile":
            if self.bands < 1 or self.width % self.bands:
                raise ValueError(f"TravelReaderConfig.bands={self.bands} must be >= 1 and divide width={self.width}")
            if not 0.0 < self.travel_step < self.max_travel:
                raise ValueError(f"TravelReaderConfig: travel_step={self.travel_step} must be in (0, "
                                 f"max_travel={self.max_travel})")
        down = 2 ** (len(self.channels) - 1) if self.head == "dense" else 1
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
        if config.head == "profile":
            self._init_profile(config)
            return
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

    def _init_profile(self, config: TravelReaderConfig) -> None:
        layers, c_in = [], 3
        for i, c in enumerate(config.channels):
            layers.append(nn.Conv2d(c_in, c, 3, padding=1))
            if i < len(config.channels) - 1:
                layers += [nn.GroupNorm(8, c), nn.SiLU()]
            c_in = c
        self.features = nn.Sequential(*layers)
        camera, h, w, k = GroundCamera(), config.height, config.width, config.bands
        travel = torch.arange(0.0, config.max_travel + 1e-6, config.travel_step)  # g
        grid, valid = ground_warp(travel, h, w, camera)  # (g, H, W, 2), (g, H)
        src = ((grid[:, :, 0, 1] + 1.0) * 0.5 * h - 0.5).clamp(0.0, h - 1.0)  # g H: source row of each row
        x0 = (grid[:, :, 0, 0] + 1.0) * 0.5 * w  # g H: source column of the first pixel centre (0.5)
        ratio = (x0 - 0.5 * w) / (0.5 - 0.5 * w)  # g H: horizontal scale of each row's source about the centre
        edges = torch.linspace(0.0, w, k + 1)  # band edges (pixels)
        span = 0.5 * w + rearrange(edges - 0.5 * w, "e -> 1 1 e") * rearrange(ratio, "g h -> g h 1")  # g H (k+1)
        road = valid & rearrange(ground_rows(h, camera), "h -> 1 h")  # g H: road rows that match
        keep = road.any(dim=0)  # only rows that see the road for some travel are compared (r of them)
        self.register_buffer("rows", torch.nonzero(keep)[:, 0], persistent=False)  # r
        self.register_buffer("travel", travel, persistent=False)
        self.register_buffer("source_row", src[:, keep], persistent=False)  # g r
        self.register_buffer("source_span", span[:, keep].clamp(0.0, float(w)), persistent=False)  # g r (k+1)
        self.register_buffer("road", road[:, keep].float(), persistent=False)  # g r
        self.row_weight = nn.Parameter(torch.zeros(int(keep.sum())))  # softplus -> per-row weight of the match
        self.log_temperature = nn.Parameter(torch.tensor(-2.0))  # softmin over the match costs

    def _band_means(self, prefix: Tensor, rows: Tensor) -> Tensor:
        """prefix (n, c, H, W + 1) running sums along the width -> (n, c, g, r, k): the mean of source row
        `rows` (g, r) long over each band's source span (self.source_span) for the compared rows r."""
        w = prefix.shape[-1] - 1
        flat = rearrange(prefix, "n c h v -> n c (h v)")
        at = []
        for u in (self.source_span[..., 1:], self.source_span[..., :-1]):  # g r k: band ends, band starts
            col = u.floor().long().clamp(0, w - 1)
            idx = rearrange(rows, "g r -> g r 1") * (w + 1) + col  # g r k
            s0, s1 = flat[:, :, idx], flat[:, :, idx + 1]
            at.append(s0 + (s1 - s0) * (u - col))
        length = (self.source_span[..., 1:] - self.source_span[..., :-1]).clamp_min(1e-3)
        return (at[0] - at[1]) / length

    def _profile_travel(self, before: Tensor, after: Tensor) -> Tensor:
        n, k = before.shape[0], self.config.bands
        feats = self.features(torch.cat([before, after]))  # (2n) c H W
        prof = reduce(feats, "n c h (k w) -> n c h k", "mean", k=k)
        scale = (prof.pow(2).mean(dim=(1, 2, 3)) + 1e-6).rsqrt()  # (2n): unit scale per frame
        b = rearrange(prof[n:, :, self.rows] * rearrange(scale[n:], "n -> n 1 1 1"), "n c r k -> n c 1 r k")
        prefix = F.pad(torch.cumsum(feats[:n], dim=-1), (1, 0))  # n c H (W+1)
        lo = self.source_row.floor().long()  # g r
        frac = self.source_row - lo
        lower, upper = self._band_means(prefix, lo), self._band_means(prefix, (lo + 1).clamp_max(prefix.shape[2] - 1))
        moved = (lower + (upper - lower) * frac[..., None]) * rearrange(scale[:n], "n -> n 1 1 1 1")  # n c g r k
        err = reduce((moved - b) ** 2, "n c g r k -> n g r", "mean")  # A moved by each travel against B
        weight = F.softplus(self.row_weight) * self.road  # g r
        cost = (err * weight).sum(dim=-1) / weight.sum(dim=-1).clamp_min(1e-6)  # n g
        p = torch.softmax(-cost / self.log_temperature.exp(), dim=1)
        return p @ self.travel

    def forward(self, before: Tensor, after: Tensor) -> Tensor:
        """before, after (n, 3, H, W) in [-1, 1] -> (n,) metres travelled from before to after. Runs in float32
        whatever autocast is on around it (the profile head's running sums need it; the reader is small)."""
        c = self.config
        if before.shape != after.shape or before.shape[1:] != (3, c.height, c.width):
            shapes = f"{tuple(before.shape)} / {tuple(after.shape)}"
            raise ValueError(f"frames {shapes}; expected both (n, 3, {c.height}, {c.width})")
        with torch.autocast(before.device.type, enabled=False):
            return self._read(before.float(), after.float())

    def _read(self, before: Tensor, after: Tensor) -> Tensor:
        c = self.config
        if c.head == "profile":
            return self._profile_travel(before, after)
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
