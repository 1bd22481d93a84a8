"""`init_from`: start a video-model run from another model folder's stage (`init_stage`, by default
the stage being trained).

The stage's weights load into a new `VideoUNet`; only modules the stage cannot have (the action
forecast's, the spatial action projection, the speed embedding and the context-noise level embedding,
`NEW_MODULES`; the action embedding too when `zero_init_actions`) may be missing and keep their
initialisation, whose zero output projections make the run start exactly as the model it came from.
A stage trained on another image model theta, or with other shapes, is an error that names what differs.
"""

from __future__ import annotations

from pathlib import Path

import torch

from drivesim.diffusion.video_unet import VideoUNet
from drivesim.model_folder import load_stage

# may be missing from an init_from stage (each starts with a zero output projection)
NEW_MODULES = (
    "action_forecast.", "forecast_encoder.", "spatial_action.", "speed_embedding.", "noise_level_embedding.",
    "warp_encoder.",
)


def init_from_stage(model: VideoUNet, folder: Path, stage: str, theta: bool = False) -> None:
    """Load `stage` of model folder `folder` into `model`; only `NEW_MODULES` may
    be absent from it (they keep their initialisation). Anything else that does not fit, or a
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
    reshaped = [k for k, v in state.items() if k in own and v.shape != own[k].shape]
    if missing or unexpected or reshaped:
        raise ValueError(
            f"init_from={folder} stage {stage!r} does not fit this model: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, other shapes {reshaped[:5]} (only {list(new)} may be missing; "
            "action_embedding. too with video.zero_init_actions=true)"
        )
    result = model.load_state_dict(state, strict=False)
    print(f"{stage}: initialised from {folder} ({len(result.missing_keys)} new tensors keep their init)")
