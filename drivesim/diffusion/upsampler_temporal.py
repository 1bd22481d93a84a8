"""The temporally aligned video upsampler: the image upsampler g plus temporal layers (Sec. 3.4).

`TemporalUpsampler` wraps a frozen `Upsampler` (it does not copy it). Its spatial blocks see
a clip's frames as a batch `(b t) c h w`; through the upsampler's temporal hook, after
every spatial block of a kind in `temporal_after` at a level in `temporal_levels`, a 3-D-conv
residual block (`TemporalConvBlock`, shared with the temporal decoder) runs over the frames
and is merged with the spatial output by a learned `AlphaBlender`:

    h <- alpha * h + (1 - alpha) * TemporalConv(h)          (Video LDM, Eq. (2) style blending)

Every frame is conditioned on its own noise-augmented low-res frame (concatenated to the
input, Eq. (5)); the temporal layers mix the features of all frames of the clip, so each
output frame is conditioned on the whole low-res sequence within the layers' receptive
field. The per-frame embedding (diffusion time + tau_gamma) modulates the temporal blocks.
The temporal blocks start as the identity (zero-initialised last conv), and with every
alpha = 1 (`set_alpha(1.0)`) the model equals the frame-by-frame image model exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from drivesim.diffusion.parameterization import Target
from drivesim.diffusion.schedule import NoiseSchedule
from drivesim.diffusion.upsampler import (
    Upsampler,
    UpsamplerConfig,
    check_clip,
    config_from_dict,
    read_stage,
)
from drivesim.nn.alpha_blender import BLEND_MODES, AlphaBlender
from drivesim.nn.temporal_conv import TemporalConvBlock

UPSAMPLER_TEMPORAL_STAGE = "upsampler_temporal"
SITE_KINDS: tuple[str, ...] = ("res", "down", "up", "attn")


@dataclass
class TemporalUpsamplerConfig:
    """Where the temporal layers go and how they start.

    temporal_after: kinds of spatial blocks followed by a temporal block (SITE_KINDS).
    temporal_levels: UNet levels (0 = the finest) that get temporal blocks.
    kernel_size: (t, h, w) of the 3-D convolutions (odd); (3, 1, 1) mixes frames only, which is
        cheap on a CPU (a 3x3x3 kernel at the finest level costs ~4x the whole image model);
        the spatial blocks in between spread it spatially.
    init_alpha / blend_mode: the AlphaBlenders' start value and parameterisation.
    use_embedding: modulate the temporal blocks by the diffusion-time + tau_gamma embedding.
    """

    temporal_after: tuple[str, ...] = ("res",)
    temporal_levels: tuple[int, ...] = (0, 1, 2)
    kernel_size: tuple[int, int, int] = (3, 1, 1)
    init_alpha: float = 0.5
    blend_mode: str = "sigmoid"
    use_embedding: bool = True

    def __post_init__(self) -> None:
        self.temporal_after = tuple(str(k) for k in self.temporal_after)
        self.temporal_levels = tuple(sorted({int(v) for v in self.temporal_levels}))
        self.kernel_size = tuple(int(k) for k in self.kernel_size)  # type: ignore[assignment]
        bad = [k for k in self.temporal_after if k not in SITE_KINDS]
        if bad or not self.temporal_after:
            raise ValueError(
                f"TemporalUpsamplerConfig.temporal_after={list(self.temporal_after)} must be a non-empty "
                f"subset of {list(SITE_KINDS)}"
            )
        if not self.temporal_levels or min(self.temporal_levels) < 0:
            raise ValueError(
                f"TemporalUpsamplerConfig.temporal_levels={list(self.temporal_levels)} must be non-empty, >= 0"
            )
        if len(self.kernel_size) != 3 or any(k < 1 or k % 2 == 0 for k in self.kernel_size):
            raise ValueError(f"TemporalUpsamplerConfig.kernel_size={list(self.kernel_size)} must be 3 odd ints")
        if self.blend_mode not in BLEND_MODES:
            raise ValueError(
                f"TemporalUpsamplerConfig.blend_mode={self.blend_mode!r} is not allowed; expected one of "
                f"{BLEND_MODES}"
            )
        if not 0.0 <= self.init_alpha <= 1.0:
            raise ValueError(f"TemporalUpsamplerConfig.init_alpha={self.init_alpha} must be in [0, 1]")


class TemporalSite(nn.Module):
    """One temporal layer after a spatial block: alpha * h + (1 - alpha) * conv3d_block(h)."""

    def __init__(self, channels: int, emb_dim: int | None, cfg: TemporalUpsamplerConfig) -> None:
        super().__init__()
        self.conv = TemporalConvBlock(channels, cfg.kernel_size, emb_channels=emb_dim)
        self.blend = AlphaBlender(cfg.init_alpha, cfg.blend_mode)

    def forward(self, h: Tensor, num_frames: int, emb: Tensor | None) -> Tensor:
        return self.blend(h, self.conv(h, num_frames, emb))  # alpha * z + (1 - alpha) * z'


class TemporalUpsampler(nn.Module):
    """forward_video(z (b,t,3,H,W), tau (b,), cond (b,t,3,H,W), noise_level (b,)) -> (b,t,3,H,W)."""

    is_temporal = True

    def __init__(self, image_model: Upsampler, config: TemporalUpsamplerConfig | None = None) -> None:
        super().__init__()
        cfg = config or TemporalUpsamplerConfig()
        self.config = cfg
        self.image_model = image_model
        levels = len(image_model.config.channel_mults)
        bad = [v for v in cfg.temporal_levels if v >= levels]
        if bad:
            raise ValueError(
                f"TemporalUpsamplerConfig.temporal_levels={list(cfg.temporal_levels)}: {bad} not in 0..{levels - 1}"
            )
        specs = [
            s
            for s in image_model.block_specs
            if s.kind in cfg.temporal_after and s.level in cfg.temporal_levels
        ]
        if not specs:
            raise ValueError(
                f"no spatial block of kind {list(cfg.temporal_after)} at levels {list(cfg.temporal_levels)}"
            )
        self.site_blocks: tuple[int, ...] = tuple(s.index for s in specs)
        self._site_of_block = {block: j for j, block in enumerate(self.site_blocks)}
        emb_dim = image_model.emb_dim if cfg.use_embedding else None
        self.sites = nn.ModuleList(TemporalSite(s.out_channels, emb_dim, cfg) for s in specs)
        self.image_model.requires_grad_(False)
        self.image_model.eval()

    @property
    def schedule(self) -> NoiseSchedule:
        return self.image_model.schedule

    @property
    def target(self) -> Target:
        return self.image_model.target

    @property
    def scale(self) -> int:
        return self.image_model.scale

    def train(self, mode: bool = True) -> TemporalUpsampler:
        super().train(mode)
        self.image_model.eval()  # the spatial weights stay a frozen inference-mode image model
        return self

    def blenders(self) -> list[AlphaBlender]:
        return [site.blend for site in self.sites]

    @torch.no_grad()
    def set_alpha(self, value: float) -> None:
        """Set every blender's alpha (1.0 turns the model back into the frame-by-frame model)."""
        for blender in self.blenders():
            blender.set_alpha(value)

    def alphas(self) -> dict[str, float]:
        return {f"block{b}": float(site.blend.alpha().detach()) for b, site in zip(self.site_blocks, self.sites)}

    def temporal_parameters(self) -> list[nn.Parameter]:
        """phi: the parameters of the temporal sites (the image model stays frozen)."""
        return [p for p in self.sites.parameters() if p.requires_grad]

    def _hook(self, block_index: int, h: Tensor, emb: Tensor, num_frames: int) -> Tensor:
        site = self._site_of_block.get(block_index)
        if site is None:
            return h
        return self.sites[site](h, num_frames, emb if self.config.use_embedding else None)

    def forward_video(self, z: Tensor, tau: Tensor, cond: Tensor, noise_level: Tensor) -> Tensor:
        b, t = check_clip(z, cond)
        out = self.image_model(
            rearrange(z, "b t c h w -> (b t) c h w"),
            repeat(tau, "b -> (b t)", t=t),
            rearrange(cond, "b t c h w -> (b t) c h w"),
            repeat(noise_level, "b -> (b t)", t=t),
            temporal=self._hook,
            num_frames=t,
        )  # ((b t), 3, H, W)
        return rearrange(out, "(b t) c h w -> b t c h w", b=b)

    def forward(self, z: Tensor, tau: Tensor, cond: Tensor, noise_level: Tensor) -> Tensor:
        return self.forward_video(z, tau, cond, noise_level)


def stage_config(model: TemporalUpsampler) -> dict[str, object]:
    """What `save_stage` records for stage "upsampler_temporal"."""
    return {
        "upsampler": dataclasses.asdict(model.image_model.config),
        "temporal": dataclasses.asdict(model.config),
    }


def load_temporal_upsampler(folder: str | Path) -> TemporalUpsampler:
    """The video upsampler (stage "upsampler_temporal", spatial weights included), in eval mode."""
    stored = read_stage(folder, UPSAMPLER_TEMPORAL_STAGE)
    where = f"{folder}/config.yaml [{UPSAMPLER_TEMPORAL_STAGE}]"
    image_cfg = config_from_dict(UpsamplerConfig, stored.config.get("upsampler"), f"{where}.upsampler")
    temporal_cfg = config_from_dict(TemporalUpsamplerConfig, stored.config.get("temporal"), f"{where}.temporal")
    model = TemporalUpsampler(Upsampler(image_cfg), temporal_cfg)  # type: ignore[arg-type]
    model.load_state_dict(stored.state_dict)
    return model.eval()
