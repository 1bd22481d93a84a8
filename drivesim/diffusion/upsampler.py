"""The pixel-space video upsampler g (paper Sec. 3.4, stage 7 of DESIGN.md §1), image model.

A diffusion UNet on RGB pixels that upsamples x`scale` (default 4: 64x128 -> 256x512). It is
conditioned by concatenation on the bilinearly upsampled low-resolution frame after noise
augmentation (Eq. (5)):

    c = alpha_gamma * up(x_low) + sigma_gamma * eps,    eps ~ N(0, I)

with the augmentation level tau_gamma (an index into the same variance-preserving schedule
as the diffusion itself) sampled in training and fixed to a small value at sampling; the
model is told tau_gamma through an embedding added to the diffusion-time embedding, so it
learns how much to trust c. Input of the UNet: [z_tau, c] (6 channels); output: 3 channels
in the `target` parameterisation (eps or v); preconditioning stays in the samplers.

The network is fully convolutional (no attention by default): trained on random patches,
it runs on whole frames of any size divisible by `UpsamplerConfig.divisor`. For CPU speed
the UNet works on p x p pixel blocks folded into channels (`pixel_unshuffle`, default 2:
[z, c] (6, H, W) -> (24, H/2, W/2), output unfolded back), i.e. 4x fewer positions.

Reuse of the spatial UNet. The residual/down/up blocks, their order and skip bookkeeping,
the timestep embedding and the output head are those of `SpatialUNet` (built from a
`UNetConfig` with `latent_channels=3`); `SpatialUNet.forward` cannot take the 3 extra input
channels nor the tau_gamma embedding, so `Upsampler` keeps the UNet's blocks and runs them
itself, with its own 6-channel input convolution and noise-level embedding. The temporal
hook has the UNet's contract: `temporal(block_index, h, emb, num_frames) -> h` after every
block, frames of a video contiguous in the batch (see `drivesim.diffusion.unet`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from einops import pack, rearrange, repeat, unpack
from safetensors.torch import load_file
from torch import Tensor, nn

from drivesim.diffusion.parameterization import TARGETS, Target, check_target
from drivesim.diffusion.schedule import SCHEDULE_KINDS, NoiseSchedule, ScheduleConfig
from drivesim.diffusion.unet import SpatialUNet, TemporalHook, UNetConfig
from drivesim.nn.embeddings import TimestepEmbedding

UPSAMPLER_STAGE = "upsampler"
IMAGE_CHANNELS = 3


@dataclass
class UpsamplerConfig:
    """Sizes of the upsampler UNet, its diffusion schedule and noise augmentation.

    scale: upsampling factor (low-res h, w -> scale * h, scale * w).
    pixel_unshuffle: p; the UNet runs on p x p pixel blocks folded into channels (H/p, W/p)
        and unfolds its output again (1 = plain pixels; 2 = 4x fewer positions, the default).
    base_channels / channel_mults / num_res_blocks / norm_groups / dropout: the UNet (see
        `UNetConfig`); attention_levels / mid_attention: self-attention, off by default (cost
        grows with the square of the number of pixels).
    target: "eps" or "v". schedule / beta_start / beta_end / diffusion_steps: the VP schedule
        (pixel space: the DDPM linear schedule by default).
    max_noise_level: tau_gamma ~ U{0..max_noise_level} in training (Eq. (5)).
    sample_noise_level: the fixed small tau_gamma used at sampling unless one is given.
    """

    scale: int = 4
    pixel_unshuffle: int = 2
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    norm_groups: int = 8
    dropout: float = 0.0
    attention_levels: tuple[int, ...] = ()
    mid_attention: bool = False
    attention_head_dim: int = 32
    target: str = "v"
    schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 2e-2
    diffusion_steps: int = 1000
    max_noise_level: int = 150
    sample_noise_level: int = 20
    zero_init: bool = True

    def __post_init__(self) -> None:
        self.channel_mults = tuple(int(m) for m in self.channel_mults)
        self.attention_levels = tuple(int(a) for a in self.attention_levels)
        if self.scale < 1:
            raise ValueError(f"UpsamplerConfig.scale={self.scale} must be >= 1")
        if self.pixel_unshuffle < 1:
            raise ValueError(f"UpsamplerConfig.pixel_unshuffle={self.pixel_unshuffle} must be >= 1")
        if self.target not in TARGETS:
            raise ValueError(f"UpsamplerConfig.target={self.target!r} is not allowed; expected one of {TARGETS}")
        if self.schedule not in SCHEDULE_KINDS:
            raise ValueError(
                f"UpsamplerConfig.schedule={self.schedule!r} is not allowed; expected one of {SCHEDULE_KINDS}"
            )
        for name in ("max_noise_level", "sample_noise_level"):
            value = getattr(self, name)
            if not 0 <= value < self.diffusion_steps:
                raise ValueError(f"UpsamplerConfig.{name}={value} must be in 0..{self.diffusion_steps - 1}")
        self.unet_config()  # validates the UNet sizes now, with the UNet's own messages

    def unet_config(self) -> UNetConfig:
        return UNetConfig(
            latent_channels=IMAGE_CHANNELS * self.pixel_unshuffle**2,
            base_channels=self.base_channels,
            channel_mults=self.channel_mults,
            num_res_blocks=self.num_res_blocks,
            attention_levels=self.attention_levels,
            mid_attention=self.mid_attention,
            attention_head_dim=self.attention_head_dim,
            norm_groups=self.norm_groups,
            dropout=self.dropout,
            box_conditioning="layout",  # no box tokens: attention (if any) is plain self-attention
            zero_init=self.zero_init,
        )

    def schedule_config(self) -> ScheduleConfig:
        return ScheduleConfig(
            num_steps=self.diffusion_steps, kind=self.schedule, beta_start=self.beta_start, beta_end=self.beta_end
        )

    @property
    def divisor(self) -> int:
        """High-res height and width must be multiples of this."""
        return self.pixel_unshuffle * 2 ** (len(self.channel_mults) - 1)

    @classmethod
    def tiny(cls, **overrides: object) -> UpsamplerConfig:
        """A few ten thousand parameters, for tests."""
        values: dict[str, object] = dict(
            base_channels=8, channel_mults=(1, 2), num_res_blocks=1, norm_groups=4, attention_head_dim=8
        )
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def upsample_bilinear(low_res: Tensor, scale: int) -> Tensor:
    """Bilinear x`scale` upsampling of (..., c, h, w) images -> (..., c, scale*h, scale*w)."""
    if low_res.ndim < 3:
        raise ValueError(f"low_res must have shape (..., c, h, w), got {tuple(low_res.shape)}")
    flat, packed = pack([low_res], "* c h w")  # (n, c, h, w)
    up = F.interpolate(flat, scale_factor=float(scale), mode="bilinear", align_corners=False)  # (n, c, sh, sw)
    return unpack(up, packed, "* c h w")[0]  # (..., c, sh, sw)


def check_noise_level(noise_level: Tensor, batch: int, num_steps: int) -> Tensor:
    if noise_level.dtype not in (torch.int32, torch.int64) or noise_level.shape != (batch,):
        raise ValueError(
            f"noise_level (tau_gamma) must be an integer tensor of shape ({batch},), got "
            f"{noise_level.dtype} {tuple(noise_level.shape)}"
        )
    if noise_level.numel() and (int(noise_level.min()) < 0 or int(noise_level.max()) >= num_steps):
        raise ValueError(
            f"noise_level (tau_gamma) has values in [{int(noise_level.min())}, {int(noise_level.max())}]; "
            f"allowed 0..{num_steps - 1}"
        )
    return noise_level


class Upsampler(nn.Module):
    """forward(z (n,3,H,W), tau (n,), cond (n,3,H,W), noise_level (n,)) -> (n,3,H,W).

    `cond` is the noise-augmented, upsampled low-res frame c of Eq. (5) (see `augment`).
    `forward_video` is the same on `b t c h w` clips, frame by frame (the image model).
    """

    is_temporal = False

    def __init__(self, config: UpsamplerConfig | None = None) -> None:
        super().__init__()
        cfg = config or UpsamplerConfig()
        self.config = cfg
        unet = SpatialUNet(cfg.unet_config())
        self.emb_dim = unet.emb_dim
        self.time_embedding = unet.time_embedding
        self.noise_level_embedding = TimestepEmbedding(cfg.base_channels, unet.emb_dim)
        self.conv_in = nn.Conv2d(2 * IMAGE_CHANNELS * cfg.pixel_unshuffle**2, cfg.base_channels, 3, padding=1)
        self.blocks = unet.blocks
        self.block_specs = unet.block_specs
        self.norm_out = unet.norm_out
        self.conv_out = unet.conv_out
        self.schedule = NoiseSchedule(cfg.schedule_config())

    @property
    def target(self) -> Target:
        return check_target(self.config.target)

    @property
    def scale(self) -> int:
        return self.config.scale

    @property
    def image_model(self) -> Upsampler:
        return self

    def noise_augment(self, up: Tensor, noise_level: Tensor, noise: Tensor) -> Tensor:
        """Eq. (5) on an already upsampled condition: c = alpha_gamma * up + sigma_gamma * noise.

        up (n, 3, H, W) or (n, t, 3, H, W); noise of the same shape; noise_level tau_gamma (n,).
        """
        if noise.shape != up.shape:
            raise ValueError(f"noise shape {tuple(noise.shape)} differs from the condition's {tuple(up.shape)}")
        check_noise_level(noise_level, up.shape[0], self.schedule.num_steps)
        return self.schedule.add_noise(up, noise, noise_level)

    def augment(self, low_res: Tensor, noise_level: Tensor, noise: Tensor) -> Tensor:
        """Eq. (5): c = alpha_gamma * up(x_low) + sigma_gamma * noise, up = bilinear x`scale`.

        low_res (n, 3, h, w) or (n, t, 3, h, w); noise of the upsampled shape; noise_level (n,).
        """
        return self.noise_augment(upsample_bilinear(low_res, self.scale), noise_level, noise)

    def forward(
        self,
        z: Tensor,
        tau: Tensor,
        cond: Tensor,
        noise_level: Tensor,
        temporal: TemporalHook | None = None,
        num_frames: int = 1,
    ) -> Tensor:
        if z.ndim != 4 or z.shape[1] != IMAGE_CHANNELS:
            raise ValueError(f"z has shape {tuple(z.shape)}; expected (n, {IMAGE_CHANNELS}, H, W)")
        if cond.shape != z.shape:
            raise ValueError(f"cond has shape {tuple(cond.shape)}; expected z's shape {tuple(z.shape)}")
        n, _, height, width = z.shape
        f = self.config.divisor
        if height % f or width % f:
            raise ValueError(
                f"image size {height}x{width} must be divisible by {f} (pixel_unshuffle * 2 ** (levels - 1))"
            )
        if tau.shape != (n,):
            raise ValueError(f"tau has shape {tuple(tau.shape)}; expected ({n},)")
        check_noise_level(noise_level, n, self.schedule.num_steps)
        if num_frames < 1 or n % num_frames:
            raise ValueError(f"num_frames={num_frames} must be >= 1 and divide the batch {n}")
        emb = self.time_embedding(tau) + self.noise_level_embedding(noise_level)  # (n, emb_dim)
        emb = emb.to(z.dtype)
        p = self.config.pixel_unshuffle
        x = rearrange(torch.cat([z, cond], dim=1), "n c (h p) (w q) -> n (c p q) h w", p=p, q=p)  # (n, 6pp, H/p, W/p)
        h = self.conv_in(x)  # (n, base, H/p, W/p)
        skips = [h]
        for i, (block, spec) in enumerate(zip(self.blocks, self.block_specs)):
            if spec.concat_skip:
                h = torch.cat([h, skips.pop()], dim=1)  # (n, c + c_skip, H', W')
            h = block(h, emb, None)
            if temporal is not None:
                h = temporal(i, h, emb, num_frames)
            if spec.push_skip:
                skips.append(h)
        out = self.conv_out(F.silu(self.norm_out(h)))  # (n, 3pp, H/p, W/p)
        return rearrange(out, "n (c p q) h w -> n c (h p) (w q)", p=p, q=p)  # (n, 3, H, W)

    def forward_video(self, z: Tensor, tau: Tensor, cond: Tensor, noise_level: Tensor) -> Tensor:
        """Clips z, cond (b, t, 3, H, W), tau and noise_level (b,) -> (b, t, 3, H, W), frame by frame."""
        b, t = check_clip(z, cond)
        out = self(
            rearrange(z, "b t c h w -> (b t) c h w"),
            repeat(tau, "b -> (b t)", t=t),
            rearrange(cond, "b t c h w -> (b t) c h w"),
            repeat(noise_level, "b -> (b t)", t=t),
        )  # ((b t), 3, H, W)
        return rearrange(out, "(b t) c h w -> b t c h w", b=b)


def check_clip(z: Tensor, cond: Tensor) -> tuple[int, int]:
    """(b, t) of a `b t c h w` clip z whose condition has the same shape."""
    if z.ndim != 5 or z.shape[2] != IMAGE_CHANNELS:
        raise ValueError(f"z has shape {tuple(z.shape)}; expected (b, t, {IMAGE_CHANNELS}, H, W)")
    if cond.shape != z.shape:
        raise ValueError(f"cond has shape {tuple(cond.shape)}; expected z's shape {tuple(z.shape)}")
    return int(z.shape[0]), int(z.shape[1])


def config_from_dict(cls: type, values: object, where: str) -> object:
    """A config dataclass from a stored dict; unknown keys raise a ValueError naming them."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping of {cls.__name__} fields, got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown {cls.__name__} field(s) {unknown}; known {sorted(known)}")
    return cls(**values)


@dataclass(frozen=True)
class StoredStage:
    """One stage of a model folder: its `config` mapping and float32 state dict."""

    config: dict[str, Any]
    state_dict: dict[str, Tensor]


def read_stage(folder: str | Path, stage: str) -> StoredStage:
    """Read `folder/<stage>.safetensors` and its entry in `config.yaml` (YAML + safetensors only)."""
    folder = Path(folder)
    cfg_path, weights = folder / "config.yaml", folder / f"{stage}.safetensors"
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist")
    data = yaml.safe_load(cfg_path.read_text()) if cfg_path.exists() else None
    entry = data.get(stage) if isinstance(data, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict) or not weights.exists():
        have = sorted(p.stem for p in folder.glob("*.safetensors"))
        raise FileNotFoundError(
            f"{folder}: stage {stage!r} not found (train it with `drivesim train stage={stage}`); "
            f"stages present: {have}"
        )
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in load_file(str(weights)).items()}
    return StoredStage(config=entry["config"], state_dict=state)


def load_upsampler(folder: str | Path) -> Upsampler:
    """The image upsampler (stage "upsampler") of a model folder, in eval mode."""
    stored = read_stage(folder, UPSAMPLER_STAGE)
    where = f"{folder}/config.yaml [{UPSAMPLER_STAGE}].upsampler"
    cfg = config_from_dict(UpsamplerConfig, stored.config.get("upsampler"), where)
    model = Upsampler(cfg)  # type: ignore[arg-type]
    model.load_state_dict(stored.state_dict)
    return model.eval()
