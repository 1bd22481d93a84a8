import json
import shutil

import pytest
import torch

from drivesim.eval.clip_probe import ClipProbeConfig
from drivesim.eval.frame_probe import FrameProbeConfig
from drivesim.eval.probe_data import EpisodeConfig
from drivesim.eval.probe_io import load_probes
from drivesim.training.probes import ProbeTrainConfig, train


def _config(tmp_path, name: str) -> ProbeTrainConfig:
    return ProbeTrainConfig(
        out=str(tmp_path / name / "model"),
        run_dir=str(tmp_path / name / "run"),
        train_episodes=6,
        heldout_episodes=6,
        episode=EpisodeConfig(height=32, width=64, num_frames=12, warmup_frames=4),
        frame=FrameProbeConfig(height=32, width=64, widths=[8, 8, 8, 16], head_width=8),
        clip=ClipProbeConfig(height=32, width=64, num_frames=4, frame_stride=2, widths=[8, 8, 8, 16]),
        steps=6,
        frame_batch=4,
        clip_batch=2,
        warmup_steps=2,
        log_every=1,
        checkpoint_every=2,
    )


def test_tiny_training_writes_loadable_probes_and_resumes_exactly(tmp_path):
    straight = train(_config(tmp_path, "straight"))
    probes = load_probes(straight.out)
    assert probes.frame.config.height == 32 and probes.clip.config.num_frames == 4
    assert straight.accuracy is not None and 0.0 <= straight.accuracy.time_of_day_accuracy <= 1.0
    assert straight.cpu_seconds > 0
    run = tmp_path / "straight" / "run"
    assert (run / "losses.png").exists() and (run / "probe_accuracy.json").exists()
    assert json.loads((run / "probe_accuracy.json").read_text())["accuracy"]["num_frames"] > 0

    # Same run, interrupted after step 4: drop the last checkpoint and the exported model, rerun.
    cfg = _config(tmp_path, "resumed")
    train(cfg)
    ckpts = tmp_path / "resumed" / "run" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["step_00000004", "step_00000006"]
    shutil.rmtree(ckpts / "step_00000006")
    shutil.rmtree(cfg.out)
    train(cfg)
    resumed = load_probes(cfg.out)
    for a, b in zip(probes.frame.state_dict().values(), resumed.frame.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(probes.clip.state_dict().values(), resumed.clip.state_dict().values()):
        assert torch.equal(a, b)
    steps = [
        json.loads(line)["step"] for line in (tmp_path / "resumed" / "run" / "losses.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    "change, match",
    [
        ({"steps": 0}, "steps"),
        ({"clip": ClipProbeConfig(fps=10.0)}, "clip.fps"),
        ({"episode": EpisodeConfig(num_frames=8)}, "shorter than one clip-probe window"),
    ],
)
def test_bad_configs_raise(change, match):
    with pytest.raises(ValueError, match=match):
        ProbeTrainConfig(**change)
