"""The Video LDM denoiser: a frozen image UNet theta with temporal layers phi (paper Sec. 3.1).

`VideoUNet` wraps a `SpatialUNet` (it does not copy it): the spatial blocks see the clip's
frames as a batch of images `(b t) c h w`; after every spatial block of a kind in
`VideoUNetConfig.temporal_after` (by default the residual and attention blocks) the UNet's
temporal hook runs this site's temporal layers, each merged with the spatial output as
`alpha * z + (1 - alpha) * z'` with its own learned alpha (`AlphaBlender`):

- "attention": temporal self-attention over frames with sinusoidal frame positions;
- "attention+conv3d": a 3-D-conv residual block (`TemporalConvBlock`) and then temporal
  attention, each with its own alpha.

What feeds the temporal layers (phi, trained; theta stays frozen unless `freeze_image` is
False, the "from scratch" ablation):
- a per-frame embedding: the image UNet's time+label embedding plus the ego-action
  embedding (learned null when unknown), the context-noise level tau_c (when
  `context_noise`) and the frame-rate flag (when `num_frame_rates` > 0);
- with `spatial_actions`, the action embedding also goes, through a zero-initialised
  projection (a new conditioning path, trained), into the image UNet's own time+label
  embedding of each frame, so every spatial ResBlock of theta is modulated by that frame's
  action (as the labels modulate it), not only the temporal layers;
- the masked context c_S = (m_S ∘ z, m_S) (Eq. (3)) through the learnable downsampling
  `ContextEncoder`, added to the input of every temporal layer at its resolution;
- with `action_forecast`, a deterministic action-conditioned forecast of the frames after the
  last context frame (`ActionForecast`, trained by its own MSE, detached here) as a second
  masked context (v ∘ z^, v) through its own `ContextEncoder`, added the same way.
With `clean_context` the given frames also enter the spatial blocks as given (clean, or at the context-noise level),
at their own diffusion time, instead of noised with the frames to predict.

Every new output projection starts at zero, so a fresh VideoUNet equals the image model
for any alpha; with every alpha = 1 it equals it exactly for any phi (`set_alpha(1.0)`).
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from drivesim.diffusion.action_embedding import ActionEmbedding
from drivesim.diffusion.action_forecast import ActionForecast
from drivesim.diffusion.blend_residual import BlendShift, blend_given_frames
from drivesim.diffusion.context import ContextEncoder, ContextSite, context_condition
from drivesim.diffusion.ego_warp import warp_valid
from drivesim.diffusion.speed_embedding import SpeedEmbedding
from drivesim.diffusion.temporal_site import TemporalSite
from drivesim.diffusion.unet import SpatialUNet
from drivesim.diffusion.video_conditioning import VideoConditioning
from drivesim.diffusion.video_unet_config import VideoUNetConfig
from drivesim.nn.alpha_blender import AlphaBlender
from drivesim.nn.embeddings import LabelEmbedding, TimestepEmbedding
from drivesim.nn.resblock import zero_module
from drivesim.nn.value_checks import value_checks_on


class VideoUNet(nn.Module):
    """forward(z (b, t, c, h, w), tau (b,), cond: VideoConditioning) -> (b, t, c, h, w).

    blend_shift: the schedule's input / output shifts, given exactly when `config.blend_residual`.
    """

    def __init__(
        self, image_unet: SpatialUNet, config: VideoUNetConfig | None = None, blend_shift: BlendShift | None = None
    ) -> None:
        super().__init__()
        cfg = config or VideoUNetConfig()
        if cfg.blend_residual != (blend_shift is not None):
            raise ValueError(
                f"VideoUNetConfig.blend_residual={cfg.blend_residual} needs blend_shift "
                f"{'(the image model schedule and target)' if cfg.blend_residual else 'None'}"
            )
        self.config = cfg
        self.blend_shift = blend_shift
        self.image_unet = image_unet
        emb_dim = image_unet.time_embedding.mlp[-1].out_features
        self.emb_dim = emb_dim
        specs = [s for s in image_unet.block_specs if s.kind in cfg.temporal_after]
        self.site_blocks: tuple[int, ...] = tuple(s.index for s in specs)
        self._site_of_block = {block: j for j, block in enumerate(self.site_blocks)}
        self.sites = nn.ModuleList(TemporalSite(s.out_channels, emb_dim, cfg) for s in specs)
        latent_channels = image_unet.config.latent_channels
        context_sites = [ContextSite(channels=s.out_channels, level=s.level) for s in specs]
        self.context_encoder = (
            ContextEncoder(latent_channels, context_sites, cfg.context_hidden_channels, zero_init=cfg.zero_init)
            if cfg.use_context
            else None
        )
        self.action_forecast: ActionForecast | None = None
        self.forecast_encoder: ContextEncoder | None = None
        if cfg.action_forecast:
            self.action_forecast = ActionForecast(
                latent_channels, cfg.forecast_channels, cfg.forecast_levels, speed=cfg.speed_conditioning
            )
            self.forecast_encoder = ContextEncoder(
                latent_channels, context_sites, cfg.context_hidden_channels, zero_init=cfg.zero_init
            )
        self.warp_encoder: ContextEncoder | None = None
        if cfg.ego_warp:
            if not cfg.warp_interval > 0.0:
                raise ValueError(
                    f"VideoUNetConfig.warp_interval={cfg.warp_interval}: ego_warp needs the seconds between the "
                    "window's frames (> 0; training sets it to frame_stride / fps of the data)"
                )
            self.warp_encoder = ContextEncoder(
                latent_channels, context_sites, cfg.context_hidden_channels, zero_init=cfg.zero_init
            )
        self.action_embedding = (
            ActionEmbedding(emb_dim, cfg.action_frequencies, zero_init=cfg.zero_init_actions)
            if cfg.use_actions
            else None
        )
        self.speed_embedding = (
            SpeedEmbedding(emb_dim, cfg.action_frequencies, zero_init=cfg.zero_init) if cfg.speed_conditioning else None
        )
        self.spatial_action: nn.Linear | None = None
        if cfg.spatial_actions:
            self.spatial_action = nn.Linear(emb_dim, emb_dim)
            if cfg.zero_init:
                zero_module(self.spatial_action)
        self.noise_level_embedding = (
            TimestepEmbedding(image_unet.config.base_channels, emb_dim) if cfg.context_noise else None
        )
        if self.noise_level_embedding is not None and cfg.zero_init:
            zero_module(self.noise_level_embedding.mlp[-1])  # a model told tau_c starts as one that is not
        self.frame_rate_embedding = (
            LabelEmbedding("frame_rate", cfg.num_frame_rates, emb_dim) if cfg.num_frame_rates else None
        )
        if cfg.freeze_image:
            self.image_unet.requires_grad_(False)
            self.image_unet.eval()

    @property
    def latent_channels(self) -> int:
        return int(self.image_unet.config.latent_channels)

    def train(self, mode: bool = True) -> VideoUNet:
        super().train(mode)
        if self.config.freeze_image:
            self.image_unet.eval()  # theta stays an inference-mode image model
        return self

    def blenders(self) -> list[AlphaBlender]:
        return [b for site in self.sites for b in site.blenders()]

    @torch.no_grad()
    def set_alpha(self, value: float) -> None:
        """Set every blender's alpha (1.0 turns the model back into the image model)."""
        for blender in self.blenders():
            blender.set_alpha(value)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """phi (and theta when not frozen): the parameters with requires_grad."""
        return [p for p in self.parameters() if p.requires_grad]

    def _check_cond(self, z: Tensor, cond: VideoConditioning) -> None:
        b, t = z.shape[:2]
        if cond.batch_size != b or tuple(cond.context_latents.shape[1:]) != tuple(z.shape[1:]):
            raise ValueError(
                f"VideoConditioning context_latents {tuple(cond.context_latents.shape)} do not match z "
                f"{tuple(z.shape)}"
            )
        if value_checks_on():  # features this model lacks, given anyway (these read values)
            if self.context_encoder is None and bool(cond.context_mask.any()):
                raise ValueError("context_mask marks given frames but this VideoUNet has use_context=False")
            if self.noise_level_embedding is None and bool((cond.context_noise_level != 0).any()):
                raise ValueError("context_noise_level is non-zero but this VideoUNet has context_noise=False")
            if self.action_embedding is None and bool(cond.actions_given.any()):
                raise ValueError("actions are given but this VideoUNet has use_actions=False; pass actions=None")
            if self.warp_encoder is None and bool(cond.warp_latents.any()):
                raise ValueError("warp_latents are given but this VideoUNet has ego_warp=False; leave them zero")
            if self.frame_rate_embedding is None and bool((cond.frame_rate != -1).any()):
                raise ValueError(
                    "frame_rate is set but this VideoUNet has num_frame_rates=0; pass frame_rate=None"
                )

    def frame_embedding(self, cond: VideoConditioning, dtype: torch.dtype) -> tuple[Tensor | None, Tensor | None]:
        """(sum of the per-frame embeddings the temporal layers add to the UNet's one, the
        part that goes into theta's own embedding with `spatial_actions`): each ((b t), emb_dim)
        or None."""
        b, t = cond.batch_size, cond.num_frames
        parts: list[Tensor] = []
        spatial: Tensor | None = None
        if self.action_embedding is not None:
            action = self.action_embedding(cond.actions, b, t, drop=~cond.actions_given)  # (b t) e
            if self.speed_embedding is not None:
                action = action + self.speed_embedding(cond.ego_speed, cond.actions_given)  # (b t) e
            parts.append(action)
            if self.spatial_action is not None:
                spatial = self.spatial_action(action).to(dtype)  # (b t) e
        per_clip: list[Tensor] = []
        if self.noise_level_embedding is not None:
            per_clip.append(self.noise_level_embedding(cond.context_noise_level))  # b e
        if self.frame_rate_embedding is not None:
            per_clip.append(self.frame_rate_embedding(cond.frame_rate))  # b e
        for e in per_clip:
            parts.append(repeat(e, "b e -> (b t) e", t=t))
        if not parts:
            return None, spatial
        return torch.stack(parts).sum(dim=0).to(dtype), spatial  # (b t) e

    def forecast(self, cond: VideoConditioning, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
        """The action forecast of cond's frames after its last context frame:
        (b, t, c, h, w) and valid (b, t). Needs `action_forecast`."""
        if self.action_forecast is None:
            raise ValueError("this VideoUNet has action_forecast=False; it makes no forecast")
        return self.action_forecast(
            cond.context_latents.to(dtype), cond.context_mask, cond.actions.to(dtype), cond.actions_given,
            cond.ego_speed.to(dtype),
        )

    def forward(self, z: Tensor, tau: Tensor, cond: VideoConditioning) -> Tensor:
        if z.ndim != 5 or z.shape[2] != self.latent_channels:
            raise ValueError(f"z has shape {tuple(z.shape)}; expected (b, t, {self.latent_channels}, h, w)")
        b, t = z.shape[:2]
        if tau.shape != (b,):
            raise ValueError(f"tau has shape {tuple(tau.shape)}; expected ({b},), one tau per clip")
        cond = cond.to(z.device)
        self._check_cond(z, cond)
        shift, mu = self.blend_shift, None
        if shift is not None:  # denoise z - mu (drivesim.diffusion.blend_residual)
            mu = blend_given_frames(cond.context_latents.to(z.dtype), cond.context_mask)  # b t c h w
            z = shift.shift_input(z, tau, mu)
        tau_frames = repeat(tau, "b -> (b t)", t=t)  # (b t,)
        if self.config.clean_context:  # given frames as given, at their own time tau_c (VideoUNetConfig)
            given = cond.context_mask.to(torch.bool)  # b t
            z = torch.where(rearrange(given, "b t -> b t 1 1 1"), cond.context_latents.to(z.dtype), z)
            tau_given = repeat(cond.context_noise_level.to(tau.dtype), "b -> (b t)", t=t)
            tau_frames = torch.where(rearrange(given, "b t -> (b t)"), tau_given, tau_frames)
        frames = rearrange(z, "b t c h w -> (b t) c h w")
        image_cond = cond.image if cond.image.batch_size == b * t else cond.image.repeat_frames(t)
        extra, spatial = self.frame_embedding(cond, z.dtype)
        context: list[Tensor] | None = None
        if self.context_encoder is not None:
            # Eq. (3): c_S = (m_S ∘ z, m_S)
            c_s = context_condition(cond.context_latents.to(z.dtype), cond.context_mask)  # b t (c+1) h w
            context = self.context_encoder(rearrange(c_s, "b t c h w -> (b t) c h w"))
            if self.action_forecast is not None and self.forecast_encoder is not None:
                forecast, valid = self.forecast(cond, z.dtype)
                c_f = context_condition(forecast.detach(), valid)  # (v ∘ z^, v): b t (c+1) h w
                extra_context = self.forecast_encoder(rearrange(c_f, "b t c h w -> (b t) c h w"))
                context = [a + f for a, f in zip(context, extra_context)]
            if self.warp_encoder is not None:
                valid = warp_valid(cond.context_mask, cond.actions_given)  # b t
                c_w = context_condition(cond.warp_latents.to(z.dtype), valid.float())  # (v ∘ warp(z_L), v)
                warp_context = self.warp_encoder(rearrange(c_w, "b t c h w -> (b t) c h w"))
                context = [a + f for a, f in zip(context, warp_context)]

        def hook(block_index: int, h: Tensor, emb: Tensor, num_frames: int) -> Tensor:
            j = self._site_of_block.get(block_index)
            if j is None:
                return h
            frame_emb = emb if extra is None else emb + extra
            site_context = None if context is None else context[j].to(h.dtype)
            if site_context is not None and site_context.shape != h.shape:
                raise ValueError(
                    f"context features {tuple(site_context.shape)} do not match block {block_index} "
                    f"output {tuple(h.shape)}"
                )
            return self.sites[j](h, num_frames, frame_emb, site_context)

        out = self.image_unet(frames, tau_frames, image_cond, temporal=hook, num_frames=t, extra_embedding=spatial)
        out = rearrange(out, "(b t) c h w -> b t c h w", t=t)
        return out if shift is None or mu is None else shift.shift_output(out, tau, mu)
