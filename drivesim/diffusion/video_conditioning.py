"""Conditions of the video models: image conditions, masked context, actions, frame-rate flag.

`VideoConditioning` holds everything the `VideoUNet` is conditioned on for b clips of t
frames. It implements the `Guidable` protocol of `drivesim.sampling.guidance`
(`nulled(names)`, `cat`, and `contrasted(label)`), so classifier-free guidance over any subset of
`VIDEO_CONDITION_NAMES` works with the generic sampler code:

- "context": the masked context c_S; null = S = 0 (all-zero mask, zero latents). Guidance
  over "context" alone is the paper's context guidance f(z) + s (f(z; c_S) - f(z)).
- "actions": per-frame ego actions and ego speed; null = the learned "action unknown"
  embedding (and no speed).
- "time_of_day", "crowdedness", "boxes": the image model's conditions (`Conditioning`).

The image conditions either hold one row per clip (b rows, the same for every frame) or
one row per frame ((b t) rows, clip-major: row = clip * t + frame), e.g. per-frame boxes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import torch
from einops import rearrange, repeat
from torch import Tensor

from drivesim.diffusion.action_embedding import check_actions
from drivesim.diffusion.conditioning import CONDITION_NAMES, Conditioning
from drivesim.diffusion.context import check_mask
from drivesim.diffusion.speed_embedding import check_speed
from drivesim.nn.value_checks import value_checks_on

VIDEO_CONDITION_NAMES: tuple[str, ...] = ("context", "actions", *CONDITION_NAMES)


def check_video_condition_names(names: Collection[str]) -> None:
    bad = [n for n in names if n not in VIDEO_CONDITION_NAMES]
    if bad:
        raise ValueError(
            f"condition names {bad} are not allowed; expected a subset of {list(VIDEO_CONDITION_NAMES)}"
        )


@dataclass(frozen=True)
class VideoConditioning:
    """Per-clip conditions of b clips with t frames and latents of c x h x w.

    image: the image model's conditions, b or (b t) rows.
    context_latents: (b, t, c, h, w) clean latents of the given frames (other frames ignored).
    context_mask: (b, t) float, 1 = frame given (m_S); all zero = no context.
    context_noise_level: (b,) long tau_c the given latents were noised with (0 = clean).
    actions: (b, t, 2) [steer, accel] in [-1, 1].
    actions_given: (b,) bool, False = actions unknown (null, for guidance).
    ego_speed: (b, t) float ego speed in m/s (read only by a model with speed conditioning;
        zeros otherwise); part of the "actions" condition.
    frame_rate: (b,) long frame-rate flag of the interpolation model (0: T->4T, 1: 4T->16T),
        -1 = none (a model without the flag ignores it only when -1).
    warp_latents: (b, t, c, h, w) the last context frame moved forward by the ego speed to each
        later frame (`drivesim.diffusion.ego_warp.warp_context_latents`), zeros elsewhere; read only
        by a model with `ego_warp`. It needs the context and the actions, so nulling either zeroes it.
    """

    image: Conditioning
    context_latents: Tensor
    context_mask: Tensor
    context_noise_level: Tensor
    actions: Tensor
    actions_given: Tensor
    ego_speed: Tensor
    frame_rate: Tensor
    warp_latents: Tensor

    def __post_init__(self) -> None:
        if self.context_latents.ndim != 5:
            raise ValueError(
                f"VideoConditioning.context_latents has shape {tuple(self.context_latents.shape)}; "
                "expected (b, t, c, h, w)"
            )
        b, t = self.context_latents.shape[:2]
        if self.warp_latents.shape != self.context_latents.shape:
            raise ValueError(
                f"VideoConditioning.warp_latents has shape {tuple(self.warp_latents.shape)}; expected "
                f"{tuple(self.context_latents.shape)} like context_latents"
            )
        check_mask(self.context_mask, b, t)
        check_actions(self.actions, b, t)
        check_speed(self.ego_speed, b, t)
        for name in ("context_noise_level", "actions_given", "frame_rate"):
            got = tuple(getattr(self, name).shape)
            if got != (b,):
                raise ValueError(f"VideoConditioning.{name} has shape {got}; expected ({b},)")
        if self.actions_given.dtype != torch.bool:
            raise ValueError(f"VideoConditioning.actions_given must be bool, got {self.actions_given.dtype}")
        if self.image.batch_size not in (b, b * t):
            raise ValueError(
                f"VideoConditioning.image has {self.image.batch_size} rows; expected b={b} (per clip) "
                f"or b*t={b * t} (per frame)"
            )

    @property
    def batch_size(self) -> int:
        return int(self.context_latents.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.context_latents.shape[1])

    @property
    def device(self) -> torch.device:
        return self.context_latents.device

    @property
    def num_context(self) -> Tensor:
        """S per clip: (b,) long."""
        return self.context_mask.sum(dim=1).long()

    @classmethod
    def create(
        cls,
        batch: int,
        num_frames: int,
        latent_shape: tuple[int, int, int],
        image: Conditioning | None = None,
        context_latents: Tensor | None = None,
        context_mask: Tensor | None = None,
        context_noise_level: Tensor | None = None,
        actions: Tensor | None = None,
        frame_rate: Tensor | int | None = None,
        device: torch.device | str = "cpu",
        ego_speed: Tensor | None = None,
        warp_latents: Tensor | None = None,
    ) -> VideoConditioning:
        """Fill every omitted condition with its null (no context, unknown actions, no flag).

        latent_shape: (c, h, w) of one frame's latents; ego_speed (b, t) m/s, zeros if omitted;
        warp_latents (b, t, c, h, w), zeros (no warp) if omitted.
        """
        c, h, w = latent_shape
        dev = torch.device(device)
        if context_latents is None:
            if context_mask is not None and value_checks_on() and bool(context_mask.any()):
                raise ValueError("context_mask marks given frames but context_latents is None")
            context_latents = torch.zeros((batch, num_frames, c, h, w), device=dev)
        if context_mask is None:
            context_mask = torch.zeros((batch, num_frames), device=dev)
        if context_noise_level is None:
            context_noise_level = torch.zeros((batch,), dtype=torch.long, device=dev)
        actions_given = torch.full((batch,), actions is not None, dtype=torch.bool, device=dev)
        if actions is None:
            actions = torch.zeros((batch, num_frames, 2), device=dev)
        if ego_speed is None:
            ego_speed = torch.zeros((batch, num_frames), device=dev)
        if warp_latents is None:
            warp_latents = torch.zeros_like(context_latents, device=dev)
        if frame_rate is None:
            frame_rate = -1
        if isinstance(frame_rate, int):
            frame_rate = torch.full((batch,), frame_rate, dtype=torch.long, device=dev)
        return cls(
            image=(image if image is not None else Conditioning.null(batch, dev)).to(dev),
            context_latents=context_latents.to(dev),
            context_mask=context_mask.to(dev).float(),
            context_noise_level=context_noise_level.to(dev).long(),
            actions=actions.to(dev).float(),
            actions_given=actions_given,
            ego_speed=ego_speed.to(dev).float(),
            frame_rate=frame_rate.to(dev).long(),
            warp_latents=warp_latents.to(device=dev, dtype=context_latents.dtype),
        )

    def to(self, device: torch.device | str) -> VideoConditioning:
        return dataclasses.replace(
            self,
            image=self.image.to(device),
            **{
                f.name: getattr(self, f.name).to(device)
                for f in dataclasses.fields(self)
                if f.name != "image"
            },
        )

    def null_where(self, names: Collection[str], which: Tensor) -> VideoConditioning:
        """Null the named conditions for the clips where `which` (b,) bool is True."""
        check_video_condition_names(names)
        which = which.to(device=self.device, dtype=torch.bool)
        if which.shape != (self.batch_size,):
            raise ValueError(f"which has shape {tuple(which.shape)}; expected ({self.batch_size},)")
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if "context" in names:
            keep = (~which).to(self.context_mask.dtype)  # (b,)
            out["context_mask"] = self.context_mask * rearrange(keep, "b -> b 1")
            out["context_latents"] = self.context_latents * rearrange(keep, "b -> b 1 1 1 1").to(
                self.context_latents.dtype
            )
        if "context" in names or "actions" in names:  # the warp needs both
            out["warp_latents"] = self.warp_latents * rearrange((~which).to(self.warp_latents.dtype), "b -> b 1 1 1 1")
        if "actions" in names:
            out["actions_given"] = self.actions_given & ~which
            out["actions"] = self.actions * rearrange((~which).to(self.actions.dtype), "b -> b 1 1")
            out["ego_speed"] = self.ego_speed * rearrange((~which).to(self.ego_speed.dtype), "b -> b 1")
        image_names = [n for n in names if n in CONDITION_NAMES]
        if image_names:
            rows = which
            if self.image.batch_size != self.batch_size:
                rows = repeat(which, "b -> (b t)", t=self.num_frames)  # (b t,)
            out["image"] = self.image.null_where(image_names, rows)
        return VideoConditioning(**out)

    def contrasted(self, name: str) -> VideoConditioning:
        """A copy whose image label `name` is replaced by its contrast label (`Conditioning.contrasted`), for
        contrast guidance (`drivesim.sampling.guidance`)."""
        return dataclasses.replace(self, image=self.image.contrasted(name))

    def nulled(self, names: Collection[str]) -> VideoConditioning:
        """A copy with the named conditions null for every clip."""
        return self.null_where(names, torch.ones(self.batch_size, dtype=torch.bool, device=self.device))

    @classmethod
    def cat(cls, conds: Sequence[VideoConditioning]) -> VideoConditioning:
        """Concatenate along the clip axis (all must have per-clip or all per-frame image rows)."""
        if not conds:
            raise ValueError("VideoConditioning.cat needs at least one VideoConditioning")
        per_frame = {c.image.batch_size != c.batch_size for c in conds}
        if len(per_frame) != 1:
            raise ValueError("VideoConditioning.cat: mixing per-clip and per-frame image conditions")
        fields = {
            f.name: torch.cat([getattr(c, f.name) for c in conds])
            for f in dataclasses.fields(cls)
            if f.name != "image"
        }
        return cls(image=Conditioning.cat([c.image for c in conds]), **fields)
