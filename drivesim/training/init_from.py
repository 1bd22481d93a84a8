"""`init_from`: start a video-model run from another model folder's stage (`init_stage`, by default
the stage being trained).

The stage's weights load into a new `VideoUNet`; only modules the stage cannot have (the action
forecast's, the spatial action projection, the speed embedding and the context-noise level embedding,
`NEW_MODULES`; the action embedding too when `zero_init_actions`) may be missing and keep their
initialisation, whose zero output projections make the run start exactly as the model it came from.
A temporal 3-D convolution whose kernel grew (e.g. `video.conv_kernel` (3, 1, 1) -> (3, 3, 3)) takes the stored
kernel at its centre and zeros around it (`widen_kernel`), which computes the same function, so such a run starts
as the stage too. A stage trained on another image model theta, or with other shapes, is an error that names what
differs. `init_lineage` is what the new stage records of where it started: the source stage's own extra (its
training config and, if it too started from a folder, that lineage in turn), so a chain of fine-tunes stays
readable from the last stage alone, bundling included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from drivesim.diffusion.video_unet import VideoUNet
from drivesim.model_folder import load_stage, read_folder_config

# may be missing from an init_from stage (each starts with a zero output projection)
NEW_MODULES = (
    "action_forecast.", "forecast_encoder.", "spatial_action.", "speed_embedding.", "noise_level_embedding.",
    "warp_encoder.",
)


def widen_kernel(stored: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    """A 3-D convolution weight (out, in, kt, kh, kw) placed at the centre of a zero weight of `shape`, whose kernel
    is as large or larger in every dimension by an even amount (odd kernels with same-padding: the output is
    unchanged); None when `shape` is not such a widening of `stored`."""
    if stored.ndim != 5 or len(shape) != 5 or tuple(stored.shape[:2]) != tuple(shape[:2]):
        return None
    grow = [n - o for o, n in zip(stored.shape[2:], shape[2:])]
    if any(g < 0 or g % 2 for g in grow):
        return None
    out = stored.new_zeros(shape)
    out[:, :, grow[0] // 2 : shape[2] - grow[0] // 2, grow[1] // 2 : shape[3] - grow[1] // 2,
        grow[2] // 2 : shape[4] - grow[2] // 2] = stored  # fmt: skip
    return out


def init_from_stage(model: VideoUNet, folder: Path, stage: str, theta: bool = False) -> None:
    """Load `stage` of model folder `folder` into `model`; only `NEW_MODULES` may
    be absent from it (they keep their initialisation); a temporal 3-D convolution whose kernel grew is
    widened (`widen_kernel`). Anything else that does not fit, or a
    different image model theta, is an error. theta=True takes theta from the stage too (the
    stage's own copy, e.g. the bundled prediction model's, which predates the bundled image LDM)."""
    state = load_stage(folder, stage).state_dict
    own = model.state_dict()
    if theta:
        own = {**own, **{k: v for k, v in state.items() if k.startswith("image_unet.")}}
    differ = [
        k
        for k, v in state.items()
        if k.startswith("image_unet.") and k in own and v.shape == own[k].shape
        and not torch.allclose(v, own[k], atol=1e-3)
    ]
    if differ:
        raise ValueError(
            f"init_from={folder} stage {stage!r} was trained on another image model than this model_dir's "
            f"(e.g. {differ[0]}); use a model folder with the same image_ldm"
        )
    new = NEW_MODULES + (("action_embedding.",) if model.config.zero_init_actions else ())
    missing = [k for k in own if k not in state and not k.startswith(new)]
    unexpected = [k for k in state if k not in own]
    widened = {k: widen_kernel(v, own[k].shape) for k, v in state.items()
               if k in own and v.shape != own[k].shape and not k.startswith("image_unet.")}  # fmt: skip
    state = {**state, **{k: v for k, v in widened.items() if v is not None}}
    reshaped = [k for k, v in state.items() if k in own and v.shape != own[k].shape]
    if missing or unexpected or reshaped:
        raise ValueError(
            f"init_from={folder} stage {stage!r} does not fit this model: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, other shapes {reshaped[:5]} (only {list(new)} may be missing; "
            "action_embedding. too with video.zero_init_actions=true)"
        )
    result = model.load_state_dict(state, strict=False)
    grown = sum(v is not None for v in widened.values())
    print(f"{stage}: initialised from {folder} ({len(result.missing_keys)} new tensors keep their init"
          + (f", {grown} convolution kernels widened" if grown else "") + ")")


def init_lineage(folder: Path, stage: str, theta: bool) -> dict[str, Any]:
    """Where a run that starts from `stage` of model folder `folder` came from: the folder, the stage, whether theta
    came with it, and that stage's extra as recorded there (less its per-layer alphas), which nests the lineage of
    the stage's own start."""
    entry = read_folder_config(Path(folder)).get(stage) or {}
    extra = {k: v for k, v in (entry.get("extra") or {}).items() if k != "alphas"}
    return {"folder": str(folder), "stage": stage, "theta": theta, "extra": extra}
