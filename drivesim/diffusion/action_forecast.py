"""Action forecast: a deterministic guess of the frames to predict, from the last context frame and the actions.

Beyond the paper, for the simulator. Measured (docs/results.md, metrics.json `video`): with the ego
action only a per-frame embedding inside temporal layers that mix frames at the same latent
pixel, the prediction model barely uses it (action r <= 0.2), although the world's next
keyframe depends strongly on it. Moving content across the image is what steering does, and
the frozen spatial backbone never sees the action.

`ActionForecast` F is a small convolutional UNet that, per frame j after the last given
context frame L, maps

    (z_L, z_L - z_{L-1}, [steer, accel] of frame j, mean of the actions L+1..j, the action
     that led into L, (j - L) / 4, actions-known flag)   (all as planes)

(with `speed`, also the ego speed of frame j and of frame L, as `SpeedEmbedding` scales them,
through a zero-initialised 1x1 convolution added to the stem) to a forecast z^_j = z_L + F(...),
trained with a direct mean-squared error against the true latents (`forecast_error`): a
dense signal that the denoising loss is not. The video UNet gets
the forecast (detached) as a second masked context, (v ∘ z^, v) with v = 1 on forecast frames,
through its own `ContextEncoder`, so the denoiser only has to refine content that is already
in place, as in residual video diffusion (Yang, Srivastava & Mandt, 2022). With actions unknown
(guidance null), F forecasts the action-agnostic mean, so action guidance contrasts two forecasts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, reduce, repeat
from torch import Tensor, nn

from drivesim.diffusion.action_embedding import ACTION_DIM
from drivesim.diffusion.speed_embedding import SPEED_SCALE, check_speed
from drivesim.nn.resblock import Downsample, ResBlock, Upsample, group_norm, zero_module

STEP_SCALE = 4.0  # (j - L) is given as (j - L) / STEP_SCALE


def forecast_frames(mask: Tensor) -> tuple[Tensor, Tensor]:
    """The last given frame L per clip and the frames to forecast.

    mask (b, t) 0/1 -> last (b,) long (0 where no frame is given), valid (b, t) float:
    1 on frames after L in clips with at least one given frame.
    """
    b, t = mask.shape
    frames = torch.arange(t, device=mask.device)  # (t,)
    given = mask > 0.5
    last = torch.where(given, rearrange(frames, "t -> 1 t"), -1).amax(dim=1)  # (b,), -1 = none
    valid = (rearrange(frames, "t -> 1 t") > rearrange(last, "b -> b 1")) & rearrange(last >= 0, "b -> b 1")
    return last.clamp_min(0), valid.float()


def forecast_planes(latents: Tensor, mask: Tensor, actions: Tensor, actions_given: Tensor) -> tuple[Tensor, Tensor]:
    """The forecaster's input per frame and which frames are forecast.

    latents (b, t, c, h, w) given context latents (others ignored); mask (b, t); actions
    (b, t, 2) with actions[:, j] leading from frame j - 1 to j; actions_given (b,) bool.
    Returns planes (b, t, 2c + 9, h, w) and valid (b, t) float (`forecast_frames`).
    """
    b, t, c, h, w = latents.shape
    last, valid = forecast_frames(mask)
    rows = torch.arange(b, device=latents.device)
    z_last = latents[rows, last]  # b c h w
    prev = (last - 1).clamp_min(0)
    has_prev = (last >= 1) & (mask[rows, prev] > 0.5)  # (b,)
    delta = (z_last - latents[rows, prev]) * rearrange(has_prev.to(latents.dtype), "b -> b 1 1 1")  # b c h w
    known = actions_given.to(actions.dtype)  # (b,)
    acts = actions * rearrange(known, "b -> b 1 1")  # b t 2, zero when unknown
    frames = torch.arange(t, device=latents.device)
    after = (rearrange(frames, "t -> 1 t") > rearrange(last, "b -> b 1")).to(acts.dtype)  # b t
    ahead = torch.cumsum(after, dim=1)  # b t: j - L after L, 0 before
    mean_since = torch.cumsum(acts * rearrange(after, "b t -> b t 1"), dim=1) / rearrange(
        ahead.clamp_min(1.0), "b t -> b t 1"
    )  # b t 2
    into_last = acts[rows, last]  # b 2
    vectors = torch.cat(
        [
            acts,
            mean_since,
            repeat(into_last, "b k -> b t k", t=t),
            rearrange(ahead / STEP_SCALE, "b t -> b t 1"),
            repeat(known, "b -> b t 1", t=t),
        ],
        dim=2,
    )  # b t 8
    image_planes = repeat(
        torch.cat([z_last, delta, repeat(has_prev.to(latents.dtype), "b -> b 1 h w", h=h, w=w)], dim=1),
        "b k h w -> b t k h w",
        t=t,
    )  # b t (2c+1) h w
    planes = torch.cat([image_planes, repeat(vectors, "b t k -> b t k h w", h=h, w=w)], dim=2)
    return planes, valid


class ActionForecast(nn.Module):
    """forward(latents, mask, actions, actions_given[, speed]) -> (forecast (b, t, c, h, w), valid (b, t)).

    A UNet over `levels` halvings (latent sizes divisible by 2**levels) with `channels` wide
    residual blocks; the output convolution starts at zero, so a new forecaster copies z_L.
    The forecast is zero on frames that are not forecast (valid = 0).
    """

    def __init__(self, latent_channels: int, channels: int = 64, levels: int = 2, speed: bool = False) -> None:
        super().__init__()
        if latent_channels < 1 or channels < 1 or levels < 0:
            raise ValueError(
                f"ActionForecast latent_channels={latent_channels}, channels={channels} must be >= 1 and "
                f"levels={levels} >= 0"
            )
        self.latent_channels = latent_channels
        self.levels = levels
        self.in_channels = 2 * latent_channels + 1 + 4 * ACTION_DIM
        self.stem = nn.Conv2d(self.in_channels, channels, 3, padding=1)
        self.speed_stem = zero_module(nn.Conv2d(2, channels, 1)) if speed else None
        self.enc = nn.ModuleList(ResBlock(channels) for _ in range(levels + 1))
        self.down = nn.ModuleList(Downsample(channels) for _ in range(levels))
        self.mid = ResBlock(channels)
        self.up = nn.ModuleList(Upsample(channels) for _ in range(levels))
        self.dec = nn.ModuleList(ResBlock(2 * channels, channels) for _ in range(levels))
        self.out = nn.Sequential(
            group_norm(channels), nn.SiLU(), zero_module(nn.Conv2d(channels, latent_channels, 3, padding=1))
        )

    def forward(
        self, latents: Tensor, mask: Tensor, actions: Tensor, actions_given: Tensor, speed: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """speed (b, t) m/s: needed when built with speed=True, ignored otherwise."""
        b, t, c, h, w = latents.shape
        if c != self.latent_channels:
            raise ValueError(f"ActionForecast expects {self.latent_channels} latent channels, got {c}")
        scale = 2**self.levels
        if h % scale or w % scale:
            raise ValueError(f"ActionForecast with levels={self.levels} needs h, w divisible by {scale}; got {h}x{w}")
        planes, valid = forecast_planes(latents, mask, actions, actions_given)
        x = self.stem(rearrange(planes, "b t k h w -> (b t) k h w"))  # (b t) ch h w
        if self.speed_stem is not None:
            if speed is None:
                raise ValueError("this ActionForecast was built with speed=True; pass speed (b, t) in m/s")
            x = x + self.speed_stem(self._speed_planes(speed.to(x.dtype), mask, actions_given, h, w))
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x)
            if i < self.levels:
                skips.append(x)
                x = self.down[i](x)  # (b t) ch h/2 w/2
        x = self.mid(x)
        for up, block in zip(self.up, self.dec):
            x = block(torch.cat([up(x), skips.pop()], dim=1))  # (b t) ch 2h 2w
        residual = rearrange(self.out(x), "(b t) c h w -> b t c h w", t=t)
        z_last = planes[:, :, :c]  # b t c h w
        v = rearrange(valid, "b t -> b t 1 1 1").to(latents.dtype)
        return (z_last + residual) * v, valid

    def _speed_planes(self, speed: Tensor, mask: Tensor, actions_given: Tensor, h: int, w: int) -> Tensor:
        """((b t), 2, h, w): frame j's and the last given frame's speed / SPEED_SCALE, zero where
        the actions (and so the speed) are unknown."""
        b, t = mask.shape
        check_speed(speed, b, t)
        last, _ = forecast_frames(mask)
        known = rearrange(actions_given.to(speed.dtype), "b -> b 1")
        v = (speed / SPEED_SCALE).clamp(0.0, 1.0) * known  # b t
        v_last = repeat(v[torch.arange(b, device=v.device), last], "b -> b t", t=t)
        return repeat(torch.stack([v, v_last], dim=2), "b t k -> (b t) k h w", h=h, w=w)


def forecast_error(forecast: Tensor, valid: Tensor, target: Tensor) -> Tensor:
    """Mean squared error of the forecast over the forecast frames (0 with none, keeping the graph).

    forecast, target (b, t, c, h, w); valid (b, t).
    """
    err = reduce(F.mse_loss(forecast, target.to(forecast.dtype), reduction="none"), "b t c h w -> b t", "mean")
    return (err * valid).sum() / valid.sum().clamp_min(1.0)
