"""The spatial latent UNet theta of the image LDM (paper Sec. 3, stage 3 of DESIGN.md §1).

Input: noisy latents z (b, C, h, w), integer diffusion time tau (b,) and a `Conditioning`
(or None = everything null). Output: the denoiser's prediction (b, C, h, w) in the
parameterisation it was trained for (eps or v); preconditioning stays outside.

Conditioning: time-of-day and crowdedness embeddings are added to the timestep embedding
(the ResBlocks' scale/shift input); boxes enter as cross-attention tokens in every
`SpatialTransformer` ("tokens"), as a per-class layout map concatenated to the input
("layout"), or both.

Structure, and how temporal layers go in (Video LDM, paper Sec. 3.1, Fig. 4)
------------------------------------------------------------------------
``conv_in`` is followed by one flat `nn.ModuleList` ``self.blocks`` of `UNetBlock`s, run
in order; ``self.block_specs[i]`` describes block i (kind "res" / "attn" / "down" / "up",
stage "down" / "mid" / "up", level = number of downsamplings above it, in/out channels,
and whether it pops a skip connection before / pushes one after). The order is:

    for each level l = 0..L-1:  num_res_blocks x [res (+ attn if l in attention_levels)], down (not last)
    middle:                     res, attn (if mid_attention), res
    for each level l = L-1..0:  (num_res_blocks + 1) x [res with skip concat (+ attn)], up (not level 0)

``forward(z, tau, cond, temporal=None, num_frames=1, extra_embedding=None)``: when ``temporal``
is given it is called after every block as ``h = temporal(i, h, emb, num_frames)`` with h the block's
output ((b t) c H W, frames of a video contiguous: batch index = video * num_frames +
frame), emb the (b t, emb_dim) embedding. A skip connection is pushed after the hook, so
the decoder sees temporally mixed features, as in the paper. With ``temporal=None`` (or a
hook that returns h unchanged, e.g. every alpha = 1) the output is exactly the image
model's. Build per-block temporal layers from ``block_specs[i].out_channels``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drivesim.diffusion.condition_encoder import BOX_CONDITIONING, BoxConditioning, ConditionEncoder
from drivesim.diffusion.conditioning import Conditioning
from drivesim.diffusion.unet_blocks import (
    Downsample,
    ResBlock,
    SpatialTransformer,
    UNetBlock,
    Upsample,
    group_norm,
    zero_,
)
from drivesim.nn.embeddings import TimestepEmbedding
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY, VEHICLE_CLASSES

BlockKind = Literal["res", "attn", "down", "up"]
BlockStage = Literal["down", "mid", "up"]


@dataclass(frozen=True)
class UNetConfig:
    """Sizes of the spatial UNet. Defaults: ~10M parameters, fine on a CPU at 16x32 latents."""

    latent_channels: int = 4
    base_channels: int = 64
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 2
    attention_levels: tuple[int, ...] = (1, 2)
    mid_attention: bool = True
    attention_head_dim: int = 32
    context_dim: int = 128
    norm_groups: int = 32
    dropout: float = 0.0
    box_conditioning: BoxConditioning = "both"
    num_time_of_day: int = len(TIME_OF_DAY)
    num_crowdedness: int = len(CROWDEDNESS)
    num_box_classes: int = len(VEHICLE_CLASSES)
    box_fourier_frequencies: int = 8
    zero_init: bool = True

    def __post_init__(self) -> None:
        # Hydra/OmegaConf hands lists; keep the dataclass hashable and comparable.
        object.__setattr__(self, "channel_mults", tuple(int(m) for m in self.channel_mults))
        object.__setattr__(self, "attention_levels", tuple(int(a) for a in self.attention_levels))
        if not self.channel_mults or min(self.channel_mults) < 1:
            raise ValueError(f"UNetConfig.channel_mults={self.channel_mults} must be non-empty positive ints")
        levels = len(self.channel_mults)
        bad = [a for a in self.attention_levels if not 0 <= a < levels]
        if bad:
            raise ValueError(
                f"UNetConfig.attention_levels={self.attention_levels}: {bad} not in 0..{levels - 1}"
            )
        if self.num_res_blocks < 1:
            raise ValueError(f"UNetConfig.num_res_blocks={self.num_res_blocks} must be >= 1")
        if self.box_conditioning not in BOX_CONDITIONING:
            raise ValueError(
                f"UNetConfig.box_conditioning={self.box_conditioning!r} is not allowed; expected one of "
                f"{BOX_CONDITIONING}"
            )
        for m in self.channel_mults:
            ch = self.base_channels * m
            if ch % self.norm_groups:
                raise ValueError(f"UNetConfig: channels {ch} not divisible by norm_groups={self.norm_groups}")
            if ch % self.attention_head_dim:
                raise ValueError(
                    f"UNetConfig: channels {ch} not divisible by attention_head_dim={self.attention_head_dim}"
                )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"UNetConfig.dropout={self.dropout} must be in [0, 1)")

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.channel_mults) - 1)

    @classmethod
    def tiny(cls) -> UNetConfig:
        """A few hundred thousand parameters, for tests."""
        return cls(
            base_channels=16,
            channel_mults=(1, 2),
            num_res_blocks=1,
            attention_levels=(1,),
            attention_head_dim=8,
            context_dim=32,
            norm_groups=8,
            box_fourier_frequencies=4,
        )


@dataclass(frozen=True)
class BlockSpec:
    """Where block i sits and what it does (see the module docstring for the order)."""

    index: int
    kind: BlockKind
    stage: BlockStage
    level: int
    in_channels: int
    out_channels: int
    concat_skip: bool
    push_skip: bool


class TemporalHook(Protocol):
    """Called after spatial block `block_index`; returns h of the same shape ((b t), c, H, W)."""

    def __call__(self, block_index: int, h: Tensor, emb: Tensor, num_frames: int) -> Tensor: ...


class SpatialUNet(nn.Module):
    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        cfg = config or UNetConfig()
        self.config = cfg
        base = cfg.base_channels
        emb_dim = 4 * base
        self.emb_dim = emb_dim  # width of the timestep+label embedding handed to blocks and hooks
        self.time_embedding = TimestepEmbedding(base, emb_dim)
        self.conditioner = ConditionEncoder(
            emb_dim=emb_dim,
            context_dim=cfg.context_dim,
            num_time_of_day=cfg.num_time_of_day,
            num_crowdedness=cfg.num_crowdedness,
            num_box_classes=cfg.num_box_classes,
            box_conditioning=cfg.box_conditioning,
            fourier_frequencies=cfg.box_fourier_frequencies,
        )
        context_dim = cfg.context_dim if self.conditioner.uses_tokens else None
        self.conv_in = nn.Conv2d(cfg.latent_channels + self.conditioner.layout_channels, base, 3, padding=1)

        blocks: list[UNetBlock] = []
        specs: list[BlockSpec] = []

        def add(
            block: UNetBlock,
            kind: BlockKind,
            stage: BlockStage,
            level: int,
            c_in: int,
            c_out: int,
            concat_skip: bool = False,
        ) -> None:
            specs.append(BlockSpec(len(blocks), kind, stage, level, c_in, c_out, concat_skip, False))
            blocks.append(block)

        def mark_push() -> None:
            specs[-1] = dataclasses.replace(specs[-1], push_skip=True)

        def res(c_in: int, c_out: int) -> ResBlock:
            return ResBlock(c_in, c_out, emb_dim, cfg.norm_groups, cfg.dropout, cfg.zero_init)

        def attn(ch: int) -> SpatialTransformer:
            return SpatialTransformer(ch, cfg.attention_head_dim, context_dim, cfg.norm_groups, cfg.zero_init)

        ch = base
        skip_channels = [ch]  # conv_in output is the first skip
        last = len(cfg.channel_mults) - 1
        for level, mult in enumerate(cfg.channel_mults):
            out = base * mult
            for _ in range(cfg.num_res_blocks):
                add(res(ch, out), "res", "down", level, ch, out)
                ch = out
                if level in cfg.attention_levels:
                    add(attn(ch), "attn", "down", level, ch, ch)
                mark_push()
                skip_channels.append(ch)
            if level != last:
                add(Downsample(ch), "down", "down", level, ch, ch)
                mark_push()
                skip_channels.append(ch)
        add(res(ch, ch), "res", "mid", last, ch, ch)
        if cfg.mid_attention:
            add(attn(ch), "attn", "mid", last, ch, ch)
        add(res(ch, ch), "res", "mid", last, ch, ch)
        for level in reversed(range(len(cfg.channel_mults))):
            out = base * cfg.channel_mults[level]
            for _ in range(cfg.num_res_blocks + 1):
                c_in = ch + skip_channels.pop()
                add(res(c_in, out), "res", "up", level, c_in, out, concat_skip=True)
                ch = out
                if level in cfg.attention_levels:
                    add(attn(ch), "attn", "up", level, ch, ch)
            if level != 0:
                add(Upsample(ch), "up", "up", level, ch, ch)
        self.blocks = nn.ModuleList(blocks)
        self.block_specs: tuple[BlockSpec, ...] = tuple(specs)
        self.norm_out = group_norm(ch, cfg.norm_groups)
        self.conv_out = nn.Conv2d(ch, cfg.latent_channels, 3, padding=1)
        if cfg.zero_init:
            zero_(self.conv_out)

    def forward(
        self,
        z: Tensor,
        tau: Tensor,
        cond: Conditioning | None = None,
        temporal: TemporalHook | None = None,
        num_frames: int = 1,
        extra_embedding: Tensor | None = None,
    ) -> Tensor:
        """z (b, C, h, w), tau (b,) -> prediction (b, C, h, w). See the module docstring.

        extra_embedding: (b, emb_dim) added to the time+label embedding of every block (e.g. the
        video model's per-frame action embedding); None adds nothing."""
        cfg = self.config
        if z.ndim != 4 or z.shape[1] != cfg.latent_channels:
            raise ValueError(f"z has shape {tuple(z.shape)}; expected (b, {cfg.latent_channels}, h, w)")
        b, _, height, width = z.shape
        f = cfg.downsample_factor
        if height % f or width % f:
            raise ValueError(f"latent size {height}x{width} must be divisible by {f} (2 ** (levels - 1))")
        if tau.shape != (b,):
            raise ValueError(f"tau has shape {tuple(tau.shape)}; expected ({b},)")
        if num_frames < 1 or b % num_frames:
            raise ValueError(f"num_frames={num_frames} must be >= 1 and divide the batch {b}")
        enc = self.conditioner(cond, b, height, width, z.device)
        emb = self.time_embedding(tau) + enc.label_embedding  # (b, emb_dim)
        if extra_embedding is not None:
            if extra_embedding.shape != emb.shape:
                raise ValueError(
                    f"extra_embedding has shape {tuple(extra_embedding.shape)}; expected {tuple(emb.shape)} "
                    "(b, emb_dim)"
                )
            emb = emb + extra_embedding.to(emb.dtype)
        emb = emb.to(z.dtype)
        x = (
            z if enc.layout is None else torch.cat([z, enc.layout.to(z.dtype)], dim=1)
        )  # (b, C + layout, h, w)
        h = self.conv_in(x)  # (b, base, h, w)
        skips = [h]
        for i, (block, spec) in enumerate(zip(self.blocks, self.block_specs)):
            if spec.concat_skip:
                h = torch.cat([h, skips.pop()], dim=1)  # (b, c + c_skip, H, W)
            h = block(h, emb, enc.box_tokens)
            if temporal is not None:
                h = temporal(i, h, emb, num_frames)
            if spec.push_skip:
                skips.append(h)
        return self.conv_out(F.silu(self.norm_out(h)))  # (b, C, h, w)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
