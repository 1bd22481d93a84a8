"""The bundled default model: present, small, loadable, and it rolls out (fast settings)."""

import json

import numpy as np
import torch

import drivesim
from drivesim.model_bundle import folder_megabytes
from drivesim.paths import default_model_dir
from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.types import SceneRequest


def test_bundled_default_is_complete_and_small():
    folder = default_model_dir()
    assert folder_megabytes(folder) <= 60.0
    metrics = json.loads((folder / "metrics.json").read_text())
    assert {"autoencoder", "image_ldm", "commands"} <= set(metrics)
    wm = drivesim.load()
    assert wm.interpolation is not None and wm.reward is not None and wm.upsampler is not None
    assert wm.pose is not None and wm.pose.config.pose and wm.pose_stride == 4  # env info lateral_offset, heading
    assert wm.layout_prior is not None  # `drivesim compose` and env resets without boxes draw from it
    assert set(wm.layout_prior.mean_counts()) == {"low", "medium", "high"}


def test_bundled_default_rolls_out_a_step():
    torch.set_num_threads(1)
    fast = EngineConfig(keyframe_steps=2, first_frame_steps=2, interpolation_steps=1)
    engine = LearnedEngine(drivesim.load(), fast)
    out = engine.start([SceneRequest(time_of_day=1, crowdedness=2, seed=0)])  # night, high
    step = engine.step(out.state, np.array([[0.0, 0.5]], np.float32))
    h, w = engine.frame_size
    assert step.frames.shape == (1, engine.frames_per_step, h, w, 3) and step.frames.dtype == np.uint8
    assert engine.frames_per_step == 16 and (h, w) == (64, 128)
    assert step.frames.std() > 1.0  # a picture, not a constant
    assert step.pose.shape == (1, 2) and abs(step.pose[0, 0]) < 3.0  # lane widths: on or near the 3-lane road


def test_the_bundled_stride4_prediction_stage_rolls_out_four_frames_a_step():
    torch.set_num_threads(1)
    world = drivesim.load()
    assert world.prediction_stages() == ["video_ldm", "video_ldm_stride4"]
    fast = EngineConfig(prediction="video_ldm_stride4", keyframe_steps=2, first_frame_steps=2, interpolation_steps=1,
                        context_guidance=1.0)  # fmt: skip
    engine = LearnedEngine(world, fast)
    assert engine.keyframe_stride == 4 and engine.frames_per_step == 4
    out = engine.start([SceneRequest(time_of_day=0, crowdedness=1, seed=0)])
    step = engine.step(out.state, np.array([[0.3, 0.0]], np.float32))
    assert step.frames.shape == (1, 4, 64, 128, 3) and step.frames.std() > 1.0


def test_the_registered_steer_env_runs_the_stride4_stage_with_partial_engine_overrides():
    import gymnasium as gym

    torch.set_num_threads(1)
    fast = {"first_frame_steps": 1, "interpolation_steps": 1, "keyframe_steps": 1}  # keys of its own only
    env = gym.make("drivesim/DriveWorldSteer-v0", engine_config=fast)
    engine = env.unwrapped.engine
    assert engine.config.prediction == "video_ldm_stride4" and engine.config.context_guidance == 1.0  # the YAML's
    assert engine.config.keyframe_steps == 1 and engine.frames_per_step == 4  # the caller's
    env.reset(seed=0)
    obs, _, _, _, info = env.step(np.array([0.5, 0.0], np.float32))
    assert obs.shape == (64, 128, 3) and info["frames"].shape == (4, 64, 128, 3)
    assert np.isfinite(info["lateral_offset"])


def test_registered_learned_env_on_the_bundled_default_passes_check_env():
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    torch.set_num_threads(1)
    fast = {"keyframe_steps": 1, "first_frame_steps": 1, "interpolation_steps": 1}
    env = gym.make("drivesim/DriveWorld-v0", engine_config=fast)  # no model=: the bundled default
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 128, 3)
