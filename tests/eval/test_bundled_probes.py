"""The bundled evaluation probes (drivesim/assets/probes): they load and judge world frames."""

import numpy as np
import torch

from drivesim.eval.checks import uint8_to_video
from drivesim.eval.probe_io import load_probes
from drivesim.model_bundle import folder_megabytes
from drivesim.paths import default_probes_dir
from drivesim.world import World, WorldConfig
from drivesim.world.policy import tracking_steer
from drivesim.world.types import TIME_OF_DAY


def test_bundled_probes_tell_day_from_night_on_fresh_world_frames():
    torch.set_num_threads(1)
    assert folder_megabytes(default_probes_dir()) <= 5.0
    probes = load_probes(default_probes_dir())
    cfg = probes.frame.config
    frames, labels = [], []
    for seed in range(4):
        for tod in TIME_OF_DAY:
            world = World(WorldConfig(height=cfg.height, width=cfg.width))
            frame = world.reset(seed=900_000 + seed, time_of_day=tod, crowdedness="medium")
            for _ in range(10):
                frame = world.step(np.zeros(2, np.float32))
            frames.append(frame.image)
            labels.append(TIME_OF_DAY.index(tod))
    video = uint8_to_video(np.stack(frames)[:, None])  # (8, 1, 3, h, w)
    with torch.no_grad():
        out = probes.frame(video[:, 0])
    assert out.time_of_day_logits.argmax(-1).tolist() == labels
    assert len(probes.frame.detect(video[:, 0])) == len(labels)


def test_bundled_action_probe_reads_throttle_above_brake_on_world_clips():
    torch.set_num_threads(1)
    probes = load_probes(default_probes_dir())
    assert probes.action is not None and probes.action_reader is probes.action
    cfg = probes.action.config
    readings = {}
    for accel in (0.8, -0.6):
        world = World(WorldConfig(height=cfg.height, width=cfg.width))
        world.reset(seed=910_000, time_of_day="day", crowdedness="low")
        shots = []
        for _ in range(cfg.span):
            centre = float(world.config.lane_centres()[1])
            shots.append(world.step(np.array([np.clip(tracking_steer(world, centre), -1, 1), accel], np.float32)).image)
        clip = uint8_to_video(np.stack(shots)[:: cfg.frame_stride][None])  # (1, num_frames, 3, h, w)
        with torch.no_grad():
            readings[accel] = float(probes.action(clip).actions[0, 1])
    assert readings[0.8] > 0.2 and readings[-0.6] < -0.2, readings
