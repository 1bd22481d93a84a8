"""The engine flags the rollout benchmarks share, and `--env ID`: a learned env id's YAML gives them.

Without `--env` a flag not given takes the script's default (EngineConfig's: context guidance 1.5 at
every step), which is not what `DriveWorldSteer-v0` runs (guidance off); sessions 20-21 measured the
wrong setting that way. `engine_settings(args)` resolves each flag given, else the `--env` YAML's value,
else the default; the scripts print and record what ran.
"""

from __future__ import annotations

import argparse

from drivesim.registration import engine_defaults, learned_env_ids
from drivesim.rollout.compute_dtype import DTYPE_CHOICES
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.keyframe_fill import FILLS
from drivesim.rollout.layout import LAYOUT_CHOICES
from drivesim.sampling.ddim import SPACINGS

LEARNED_ENVS = learned_env_ids()


def add_engine_args(parser: argparse.ArgumentParser, keyframe_steps: int = 4, interpolation_steps: int = 2) -> None:
    """--env and the engine flags (default None: resolved by `engine_settings`); `keyframe_steps` and
    `interpolation_steps` are the script's own defaults for those two."""
    parser.set_defaults(_engine_defaults={
        "prediction": EngineConfig.prediction, "keyframe_steps": keyframe_steps,
        "interpolation_steps": interpolation_steps, "spacing": EngineConfig.spacing,
        "context_guidance": EngineConfig.context_guidance, "context_interval": list(EngineConfig.context_interval),
        "context_noise": EngineConfig.context_noise, "context_keys": EngineConfig.context_keys,
        "dtype": EngineConfig.dtype, "layout": EngineConfig.layout, "fill": EngineConfig.fill,
        "anchor_travel": EngineConfig.anchor_travel, "anchor_gain": EngineConfig.anchor_gain,
        "road_from_warp": EngineConfig.road_from_warp, "action_guidance": EngineConfig.action_guidance,
        "keyframe_eta": EngineConfig.keyframe_eta,
        "keyframe_crowdedness_guidance": EngineConfig.keyframe_crowdedness_guidance,
        "keyframe_crowdedness_interval": list(EngineConfig.keyframe_crowdedness_interval),
    })  # fmt: skip
    parser.add_argument("--env", default=None, choices=LEARNED_ENVS,
                        help="engine settings from this env id's YAML (the flags below override them)")
    parser.add_argument("--prediction", default=None,
                        help="keyframe-prediction stage of each model folder (e.g. video_ldm_stride4)")
    parser.add_argument("--keyframe-steps", type=int, default=None, help=f"default {keyframe_steps}")
    parser.add_argument("--interpolation-steps", type=int, default=None, help=f"default {interpolation_steps}")
    parser.add_argument("--spacing", default=None, choices=SPACINGS, help="DDIM times")
    parser.add_argument("--keyframe-eta", type=float, default=None,
                        help=f"eta of the keyframe sampler (0 = DDIM; default {EngineConfig.keyframe_eta})")
    parser.add_argument("--context-guidance", type=float, default=None,
                        help=f"s of context guidance (1 = off; default {EngineConfig.context_guidance})")
    parser.add_argument("--action-guidance", type=float, default=None,
                        help=f"s of action guidance (1 = off; default {EngineConfig.action_guidance})")
    parser.add_argument("--keyframe-crowdedness-guidance", type=float, default=None,
                        help="crowdedness guidance of the keyframes (1 = off; EngineConfig.keyframe_crowdedness_"
                        f"guidance, default {EngineConfig.keyframe_crowdedness_guidance})")
    parser.add_argument("--keyframe-crowdedness-interval", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                        help="fractions of the diffusion times where the keyframes' crowdedness guidance acts")
    parser.add_argument("--context-interval", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                        help="fractions of the diffusion times where context guidance acts")
    parser.add_argument("--context-noise", type=float, default=None,
                        help="context-noise level told a model trained with it (-1: its trained default)")
    parser.add_argument("--context-keys", type=int, default=None, choices=(1, 2),
                        help=f"past keyframes the prediction stage is given (default {EngineConfig.context_keys})")
    parser.add_argument("--dtype", default=None, choices=list(DTYPE_CHOICES),
                        help=f"the engine's compute dtype (EngineConfig.dtype; default {EngineConfig.dtype})")
    parser.add_argument("--layout", default=None, choices=list(LAYOUT_CHOICES),
                        help=f"the networks' convolution weights (EngineConfig.layout; default {EngineConfig.layout})")
    parser.add_argument("--fill", default=None, choices=list(FILLS),
                        help=f"frames between keyframes (EngineConfig.fill; default {EngineConfig.fill})")
    parser.add_argument("--anchor-travel", action="store_const", const=True, default=None,
                        help="new keyframes moved to where the ego speed puts them (EngineConfig.anchor_travel)")
    parser.add_argument("--anchor-gain", type=float, default=None,
                        help=f"fraction of the travel error anchoring corrects (default {EngineConfig.anchor_gain})")
    parser.add_argument("--road-from-warp", type=float, default=None,
                        help="the ego warp's weight in the road rows of new keyframes (EngineConfig.road_from_warp; "
                        f"default {EngineConfig.road_from_warp})")


def engine_settings(args: argparse.Namespace) -> dict:
    """The run's engine settings: each flag given, else the `--env` YAML's value, else the script's default."""
    settings = dict(args._engine_defaults)
    if args.env is not None:
        settings.update({k: v for k, v in engine_defaults(args.env).items() if k in settings})
    settings.update({k: getattr(args, k) for k in settings if getattr(args, k) is not None})
    for key in ("context_interval", "keyframe_crowdedness_interval"):
        settings[key] = list(settings[key])
    return settings


def resolve_engine_args(args: argparse.Namespace) -> dict:
    """Write the resolved settings into `args` (so the script's own code and JSON see them) and return them."""
    settings = engine_settings(args)
    for key, value in settings.items():
        setattr(args, key, value)
    return settings


def engine_config(args: argparse.Namespace, **more) -> EngineConfig:
    """The EngineConfig of the resolved settings (`resolve_engine_args` first) and the script's own `more`."""
    settings = {k: getattr(args, k) for k in args._engine_defaults}
    return EngineConfig(**settings, **more)  # EngineConfig takes the intervals as lists
