"""Every shipped YAML composes and validates against its typed config dataclass."""

import dataclasses

import pytest

from drivesim.cli.main import COMMANDS, compose
from drivesim.cli.train_cmds import STAGES
from drivesim.cli.typed_config import UsageError, to_dataclass


def _video_experiment(name: str):
    """The video_ldm training config of experiment default/<name>."""
    from drivesim.training.video_config import VideoLDMTrainConfig

    return to_dataclass(compose("train/video_ldm", [f"experiment=default/{name}"]), VideoLDMTrainConfig)


def _train_config_classes():
    from drivesim.training.autoencoder import AutoencoderTrainConfig
    from drivesim.training.image_ldm import ImageLDMTrainConfig
    from drivesim.training.interpolation import InterpolationTrainConfig
    from drivesim.training.layout_prior import LayoutPriorTrainConfig
    from drivesim.training.probes import ProbeTrainConfig
    from drivesim.training.reward import RewardTrainConfig
    from drivesim.training.temporal_decoder import TemporalDecoderTrainConfig
    from drivesim.training.upsampler import UpsamplerTrainConfig
    from drivesim.training.upsampler_temporal import UpsamplerTemporalTrainConfig
    from drivesim.training.video_config import VideoLDMTrainConfig

    return {
        "probes": ProbeTrainConfig,
        "autoencoder": AutoencoderTrainConfig,
        "temporal_decoder": TemporalDecoderTrainConfig,
        "image_ldm": ImageLDMTrainConfig,
        "video_ldm": VideoLDMTrainConfig,
        "interpolation": InterpolationTrainConfig,
        "upsampler": UpsamplerTrainConfig,
        "upsampler_temporal": UpsamplerTemporalTrainConfig,
        "reward": RewardTrainConfig,
        "layout_prior": LayoutPriorTrainConfig,
    }


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_train_stage_yaml_validates(stage):
    classes = _train_config_classes()
    assert set(classes) == set(STAGES)
    cfg = compose(f"train/{stage}", [])
    to_dataclass(cfg, classes[stage])


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_default_recipe_experiment_validates(stage):
    """scripts/train_default.sh runs `train stage=S experiment=default/S` for every stage."""
    cfg = compose(f"train/{stage}", [f"experiment=default/{stage}"])
    to_dataclass(cfg, _train_config_classes()[stage])
    assert str(cfg.get("run_dir", "")).startswith("runs/default/")


def test_default_recipe_covers_every_stage_and_data_step():
    from pathlib import Path

    from drivesim.paths import conf_dir

    script = (Path(__file__).parents[2] / "scripts" / "train_default.sh").read_text()
    for stage in STAGES:
        assert f"stage={stage} experiment=default/{stage}" in script
        assert (conf_dir() / "experiment" / "default" / f"{stage}.yaml").is_file()
    for extra in (
        "stage=reward experiment=default/pose_heads",
        "stage=video_ldm experiment=default/video_ldm_stride4",
        "stage=probes experiment=default/action_probe",
    ):
        assert extra in script  # the bundle's "pose" and "video_ldm_stride4" stages, the probes' "action_probe"
    assert compose("data_synth", ["experiment=default/data"]).num_clips == 300
    assert compose("data_latents", ["experiment=default/latents"]).out == "data/world_latents"


@pytest.mark.parametrize("words", [w for w in COMMANDS if w != ("train",)])
def test_command_yaml_composes(words):
    cfg = compose(COMMANDS[words].config_name, [])
    assert len(cfg) > 0


def test_unknown_key_and_bad_type_are_named():
    from drivesim.training.reward import RewardTrainConfig

    with pytest.raises(UsageError, match="warp"):
        compose("train/reward", ["warp=1"])
    with pytest.raises(UsageError, match="max_steps"):
        to_dataclass(compose("train/reward", ["max_steps=lots"]), RewardTrainConfig)


def test_action_probe_experiment_validates():
    from drivesim.training.probes import ProbeTrainConfig

    cfg = to_dataclass(compose("train/probes", ["experiment=default/action_probe"]), ProbeTrainConfig)
    assert cfg.clip_role == "action" and cfg.clip_from == "drivesim/assets/probes"
    assert cfg.episode.pattern_fraction == 0.5 and cfg.clip.num_frames == 16


def test_action_forecast_experiment_validates():
    """The opt-in recipe of docs/results.md's Action forecast section."""
    from drivesim.training.video_config import VideoLDMTrainConfig

    cfg = to_dataclass(compose("train/video_ldm", ["experiment=default/video_ldm_forecast"]), VideoLDMTrainConfig)
    assert cfg.video.action_forecast and cfg.init_from == "runs/models/default"
    assert cfg.latent_cache == "data/world_explore_latents" and cfg.model_dir != cfg.init_from


def test_action_consistency_experiment_validates():
    """The opt-in recipe of docs/results.md's Action consistency section: the forecast recipe plus g's score."""
    from drivesim.training.video_config import VideoLDMTrainConfig

    cfg = to_dataclass(compose("train/video_ldm", ["experiment=default/video_ldm_consistency"]), VideoLDMTrainConfig)
    assert cfg.video.action_forecast and cfg.init_theta and cfg.init_from == "drivesim/assets/default_model"
    assert (cfg.action_consistency_weight, cfg.action_consistency_start) == (1.0, 200)
    assert (cfg.num_frames, cfg.batch_size, cfg.lr, cfg.max_steps) == (3, 8, 1e-4, 1500)
    assert cfg.latent_cache == "data/world_explore_latents" and cfg.model_dir != cfg.init_from


def test_stride4_experiment_validates():
    """The recipe of the bundled video_ldm_stride4 stage: the forecast recipe at stride 4, written beside
    the prediction model it starts from."""
    from drivesim.training.video_config import VideoLDMTrainConfig

    cfg = to_dataclass(compose("train/video_ldm", ["experiment=default/video_ldm_stride4"]), VideoLDMTrainConfig)
    assert cfg.frame_stride == 4 and cfg.video.action_forecast and cfg.action_consistency_weight == 0.0
    assert cfg.init_theta and cfg.init_from == cfg.model_dir == "runs/models/default"
    assert cfg.export_stage == "video_ldm_stride4"  # not over the video_ldm it starts from
    assert (cfg.num_frames, cfg.batch_size, cfg.lr, cfg.max_steps) == (3, 8, 1e-4, 1500)


def test_video_ldm_nobox_experiment_trains_the_default_stage_on_as_the_env_runs_it():
    """The bundled video_ldm since session 46: default/video_ldm's stage, in place, trained on with no boxes given
    (the env gives the prediction steps none), same window and data; the recipe runs it after default/video_ldm."""
    from pathlib import Path

    base, nobox = _video_experiment("video_ldm"), _video_experiment("video_ldm_nobox")
    assert nobox.box_drop == 1.0 and base.box_drop == 0.1
    assert nobox.init_from == nobox.model_dir == base.model_dir
    assert nobox.init_stage == nobox.export_stage == "video_ldm"
    assert (nobox.num_frames, nobox.frame_stride, nobox.latent_cache) == (base.num_frames, base.frame_stride,
                                                                         base.latent_cache)  # fmt: skip
    assert nobox.run_dir != base.run_dir and nobox.video == base.video
    script = (Path(__file__).parents[2] / "scripts" / "train_default.sh").read_text()
    assert script.index("experiment=default/video_ldm\n") < script.index("experiment=default/video_ldm_nobox")
    # the stride-4 stage starts from runs/models/default's video_ldm: the plain one, as the shipped stage did
    stride4 = _video_experiment("video_ldm_stride4")
    assert (stride4.init_from, stride4.init_stage or "video_ldm") == (base.model_dir, "video_ldm")
    assert script.index("experiment=default/video_ldm_stride4 ") < script.index("experiment=default/video_ldm_nobox")


def test_video_ldm_nobox_cars_experiment_continues_the_bundled_stage_with_the_cars_weighted():
    """Opt-in (session 47): the bundled video_ldm trained on with the cells under the true vehicle boxes weighing 3;
    otherwise default/video_ldm_nobox's run, into its own folders, not the recipe's model."""
    nobox, cars = _video_experiment("video_ldm_nobox"), _video_experiment("video_ldm_nobox_cars")
    assert cars.box_weight == 3.0 and nobox.box_weight == 1.0 and cars.box_drop == 1.0
    assert cars.init_from == "drivesim/assets/default_model" and cars.init_stage == "video_ldm"
    assert cars.model_dir not in (nobox.model_dir, cars.init_from) and cars.run_dir != nobox.run_dir
    fields = ("run_dir", "model_dir", "init_from", "seed", "box_weight")
    assert {k: v for k, v in vars(cars).items() if k not in fields} == {
        k: v for k, v in vars(nobox).items() if k not in fields
    }


def test_stride4_speed_experiment_differs_from_stride4_only_by_the_speed_and_its_folders():
    """Issue 6, accel: the stride-4 recipe with the prediction model told the ego speed, same budget."""
    base, speed = _video_experiment("video_ldm_stride4"), _video_experiment("video_ldm_stride4_speed")
    assert speed.video.speed_conditioning and not base.video.speed_conditioning
    assert speed.model_dir != base.model_dir and speed.run_dir != base.run_dir
    fields = ("model_dir", "run_dir", "init_from", "export_stage", "video")
    assert {k: v for k, v in vars(speed).items() if k not in fields} == {
        k: v for k, v in vars(base).items() if k not in fields
    }
    assert dataclasses.replace(speed.video, speed_conditioning=False) == base.video


def test_stride4_noise_experiment_continues_the_bundled_stage_and_its_control_differs_only_by_the_noise():
    """Issue 6, drift: the bundled stride-4 stage trained on with context noise; the control arm's overrides
    (in the experiment file) give the same run without it."""
    from drivesim.paths import conf_dir
    from drivesim.training.video_config import VideoLDMTrainConfig

    def load(extra: list[str]) -> VideoLDMTrainConfig:
        return to_dataclass(compose("train/video_ldm", ["experiment=default/video_ldm_stride4_noise", *extra]),
                            VideoLDMTrainConfig)  # fmt: skip

    noise = load([])
    more = load(["video.context_noise=false", "run_dir=runs/default/video_ldm_stride4_more",
                 "model_dir=runs/models/stride4_more"])  # fmt: skip
    assert noise.video.context_noise and not more.video.context_noise
    assert noise.init_from == "drivesim/assets/default_model" and noise.init_stage == noise.export_stage
    assert noise.export_stage == "video_ldm_stride4" and noise.init_theta and noise.frame_stride == 4
    assert noise.model_dir != more.model_dir and noise.run_dir != more.run_dir
    fields = ("model_dir", "run_dir", "video")
    assert {k: v for k, v in vars(noise).items() if k not in fields} == {
        k: v for k, v in vars(more).items() if k not in fields
    }
    text = (conf_dir() / "experiment" / "default" / "video_ldm_stride4_noise.yaml").read_text()
    assert "video.context_noise=false" in text and "runs/models/stride4_more" in text


def test_stride4_boxes_experiment_differs_from_the_noise_control_only_by_the_box_weight():
    """Issues 6 and 9, traffic: the box-weighted stride-4 run against session 21's equal-budget control."""
    from drivesim.training.video_config import VideoLDMTrainConfig

    def load(name: str, extra: list[str]) -> VideoLDMTrainConfig:
        return to_dataclass(compose("train/video_ldm", [f"experiment=default/{name}", *extra]), VideoLDMTrainConfig)

    boxes = load("video_ldm_stride4_boxes", [])
    control = load("video_ldm_stride4_noise", ["video.context_noise=false"])
    assert boxes.box_weight == 10.0 and control.box_weight == 1.0 and not boxes.video.context_noise
    assert boxes.model_dir == "runs/models/stride4_boxes" and boxes.init_stage == "video_ldm_stride4"
    fields = ("model_dir", "run_dir", "box_weight", "num_threads")  # threads change speed, not the run
    assert {k: v for k, v in vars(boxes).items() if k not in fields} == {
        k: v for k, v in vars(control).items() if k not in fields
    }


def test_stride4_own_context_experiment_differs_from_the_noise_control_only_by_own_context():
    """Issue 6, drift: own-rollout context against session 21's equal-budget control (no context noise)."""
    from drivesim.training.video_config import VideoLDMTrainConfig

    def load(name: str, extra: list[str]) -> VideoLDMTrainConfig:
        return to_dataclass(compose("train/video_ldm", [f"experiment=default/{name}", *extra]), VideoLDMTrainConfig)

    own = load("video_ldm_stride4_own", [])
    control = load("video_ldm_stride4_noise", ["video.context_noise=false"])
    assert own.own_context == 0.5 and own.own_context_steps == 2 and control.own_context == 0.0
    assert own.model_dir == "runs/models/stride4_own" and own.init_stage == "video_ldm_stride4"
    fields = ("model_dir", "run_dir", "own_context", "num_threads")  # threads change speed, not the run
    assert {k: v for k, v in vars(own).items() if k not in fields} == {
        k: v for k, v in vars(control).items() if k not in fields
    }


def test_warp_own_context_experiment_differs_from_the_ego_warp_run_only_by_own_context_and_its_start():
    """Issue 6, accel: own-rollout context on session 31's ego-warp stage; its control: the same, own_context=0."""
    from drivesim.training.video_config import VideoLDMTrainConfig

    def load(name: str, extra: list[str]) -> VideoLDMTrainConfig:
        return to_dataclass(compose("train/video_ldm", [f"experiment=default/{name}", *extra]), VideoLDMTrainConfig)

    own = load("video_ldm_stride4_warp_own", [])
    warp = load("video_ldm_stride4_warp", ["init_from=runs/models/stride4_warp_long"])
    assert own.own_context == 0.5 and own.own_context_steps == 2 and own.video.ego_warp and warp.own_context == 0.0
    assert own.model_dir == "runs/models/warp_own" and own.init_from == "runs/models/stride4_warp_long"
    fields = ("model_dir", "run_dir", "own_context")
    assert {k: v for k, v in vars(own).items() if k not in fields} == {
        k: v for k, v in vars(warp).items() if k not in fields
    }


def test_interpolation_speed_experiment_starts_from_the_bundle_with_actions_and_speed():
    """Issue 6, motion: the bundled interpolation model taught each frame's actions and ego speed."""
    from drivesim.training.interpolation import InterpolationTrainConfig

    def load(extra: list[str]) -> InterpolationTrainConfig:
        return to_dataclass(compose("train/interpolation", extra), InterpolationTrainConfig)

    base, speed = load(["experiment=default/interpolation"]), load(["experiment=default/interpolation_speed"])
    assert speed.video.use_actions and speed.video.speed_conditioning and speed.video.zero_init_actions
    assert speed.init_from == "drivesim/assets/default_model" and speed.init_theta
    assert speed.model_dir not in (base.model_dir, speed.init_from) and speed.run_dir != base.run_dir
    plain = dataclasses.replace(speed.video, use_actions=False, speed_conditioning=False, zero_init_actions=False)
    assert plain == base.video and (speed.num_frames, speed.factor, speed.rate_probs) == (9, 4, [0.5, 0.5])


def test_interpolation_residual_experiment_starts_from_the_bundle_on_the_blend_residual():
    """Issue 6, the fine rate: the bundled interpolation model trained end to end on z - blend."""
    from drivesim.training.interpolation import InterpolationTrainConfig

    def load(extra: list[str]) -> InterpolationTrainConfig:
        return to_dataclass(compose("train/interpolation", extra), InterpolationTrainConfig)

    base, resid = load(["experiment=default/interpolation"]), load(["experiment=default/interpolation_residual"])
    assert resid.video.blend_residual and not base.video.blend_residual and resid.from_scratch
    assert resid.init_from == "drivesim/assets/default_model" and resid.init_theta
    assert resid.model_dir not in (base.model_dir, resid.init_from) and resid.run_dir != base.run_dir
    assert dataclasses.replace(resid.video, blend_residual=False) == base.video
    assert (resid.rate_probs, resid.latent_cache, resid.max_steps) == ([0.25, 0.75], "data/world_explore_latents", 3000)


def test_image_ldm_finetune_experiment_validates():
    """How the shipped image LDM was brought to the current world (docs/results.md)."""
    from drivesim.training.image_ldm import ImageLDMTrainConfig

    cfg = to_dataclass(compose("train/image_ldm", ["experiment=default/image_ldm_finetune"]), ImageLDMTrainConfig)
    assert cfg.init_from == "drivesim/assets/default_model" and cfg.latent_cache == "data/world_latents"
    assert (cfg.lr, cfg.max_steps, cfg.batch_size, cfg.box_drop) == (2e-4, 4000, 32, 0.25)
    assert cfg.model_dir != cfg.init_from


@pytest.mark.parametrize(
    "switch, field, value",
    [
        (None, None, None),
        ("video.temporal_layers=attention", "temporal_layers", "attention"),
        ("video.context_noise=true", "context_noise", True),
        ("from_scratch=true", "from_scratch", True),
    ],
)
def test_video_ablation_experiment_validates(switch, field, value):
    """Issue 6's ablation table: every variant on one budget, differing only by its switch."""
    from drivesim.training.video_config import VideoLDMTrainConfig

    base = to_dataclass(compose("train/video_ldm", ["experiment=ablation/video_ldm"]), VideoLDMTrainConfig)
    overrides = ["experiment=ablation/video_ldm"] + ([switch] if switch else [])
    cfg = to_dataclass(compose("train/video_ldm", overrides), VideoLDMTrainConfig)
    assert (cfg.max_steps, cfg.batch_size, cfg.num_frames, cfg.lr, cfg.seed) == (1000, 8, 3, 2e-4, 0)
    assert cfg.latent_cache == "data/world_latents" and cfg.run_dir.startswith("runs/ablation/")
    if field == "from_scratch":
        assert cfg.from_scratch is True and cfg.video == base.video
    elif field is not None:
        assert getattr(cfg.video, field) == value and getattr(base.video, field) != value
        assert cfg.from_scratch is False


def test_reward_pose_experiment_differs_from_the_default_only_by_the_design_and_its_folders():
    """Issue 9, info: reward heads that also read lateral offset and heading (docs/results.md, Reward heads)."""
    from drivesim.training.reward import RewardTrainConfig

    def load(name: str) -> RewardTrainConfig:
        return to_dataclass(compose("train/reward", [f"experiment=default/{name}"]), RewardTrainConfig)

    base, pose = load("reward"), load("reward_pose")
    assert pose.model.pose and pose.model.difference_input and pose.model.pool_grid == (4, 8)
    assert not base.model.pose and base.model.pool_grid is None
    assert pose.model_dir != base.model_dir and pose.run_dir != base.run_dir
    fields = ("model_dir", "run_dir", "model")
    assert {k: v for k, v in vars(pose).items() if k not in fields} == {
        k: v for k, v in vars(base).items() if k not in fields
    }
