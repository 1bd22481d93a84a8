"""The bundled evaluation probes (drivesim/assets/probes): they load and judge world frames."""

import numpy as np
import torch

from drivesim.eval.checks import uint8_to_video
from drivesim.eval.probe_io import load_probes
from drivesim.model_bundle import folder_megabytes
from drivesim.paths import default_probes_dir
from drivesim.world import World, WorldConfig
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
