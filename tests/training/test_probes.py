import json
import shutil

import numpy as np
import pytest
import torch

from drivesim.eval.clip_probe import ClipProbeConfig
from drivesim.eval.frame_probe import FrameProbeConfig
from drivesim.eval.probe_data import TRAIN_SEED_BASE, EpisodeConfig, render_episodes
from drivesim.eval.probe_io import load_probes
from drivesim.model_folder import load_stage
from drivesim.training.probes import ProbeTrainConfig, mirror_clips, pair_targets, sample_clips, train


def _config(tmp_path, name: str) -> ProbeTrainConfig:
    return ProbeTrainConfig(
        out=str(tmp_path / name / "model"),
        run_dir=str(tmp_path / name / "run"),
        train_episodes=6,
        heldout_episodes=6,
        episode=EpisodeConfig(height=32, width=64, num_frames=12, warmup_frames=4),
        frame=FrameProbeConfig(height=32, width=64, widths=[8, 8, 8, 16], head_width=8),
        clip=ClipProbeConfig(height=32, width=64, num_frames=4, frame_stride=2, widths=[8, 8, 8, 16], temporal_width=8),
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


def test_frame_from_keeps_that_frame_probe_and_trains_only_the_clip_probe(tmp_path):
    source = load_probes(train(_config(tmp_path, "both")).out)
    cfg = _config(tmp_path, "clip_only")
    cfg.frame_from = str(tmp_path / "both" / "model")
    cfg.seed = 1
    out = load_probes(train(cfg).out)
    for a, b in zip(source.frame.state_dict().values(), out.frame.state_dict().values()):
        assert torch.equal(a, b)  # not trained, batch-norm statistics included
    changed = [not torch.equal(a, b) for a, b in zip(source.clip.state_dict().values(), out.clip.state_dict().values())]
    assert any(changed)
    source_extra = load_stage(tmp_path / "both" / "model", "frame_probe").extra
    kept_extra = load_stage(tmp_path / "clip_only" / "model", "frame_probe").extra
    assert kept_extra["steps"] == source_extra["steps"] and kept_extra["kept_from"] == cfg.frame_from
    assert load_stage(tmp_path / "clip_only" / "model", "clip_probe").extra["frame_from"] == cfg.frame_from
    logged = json.loads((tmp_path / "clip_only" / "run" / "losses.jsonl").read_text().splitlines()[-1])
    assert "clip_loss" in logged and "frame_loss" not in logged


def test_pair_targets_average_to_the_window_targets():
    rng = np.random.default_rng(0)
    stride, frames = 3, 4
    span = (frames - 1) * stride + 1
    actions, speed = rng.normal(size=(span, 2)), rng.uniform(5, 30, span)
    pair_actions, pair_speed = pair_targets(actions, speed, stride)
    assert pair_actions.shape == (frames - 1, 2) and pair_speed.shape == (frames - 1,)
    np.testing.assert_allclose(pair_actions.mean(0), actions[1:].mean(0))  # the window's target, exactly
    np.testing.assert_allclose(pair_actions[1], actions[stride + 1 : 2 * stride + 1].mean(0))
    np.testing.assert_allclose(pair_speed[0], speed[:stride].mean())


def test_sampled_clips_carry_pair_targets_and_mirroring_negates_every_steer():
    eps = render_episodes(EpisodeConfig(height=32, width=64, num_frames=12, warmup_frames=4), TRAIN_SEED_BASE, 2)
    cfg = ClipProbeConfig(height=32, width=64, num_frames=4, frame_stride=2)
    batch = sample_clips(eps, np.random.default_rng(0), 3, cfg)
    assert batch.pair_actions.shape == (3, 3, 2) and batch.pair_speed.shape == (3, 3)
    torch.testing.assert_close(batch.pair_actions.mean(1), batch.actions)
    flipped = mirror_clips(batch, np.array([True, False, True]))
    torch.testing.assert_close(flipped.pair_actions[[0, 2], :, 0], -batch.pair_actions[[0, 2], :, 0])
    torch.testing.assert_close(flipped.pair_actions[1], batch.pair_actions[1])
    torch.testing.assert_close(flipped.pair_actions[..., 1], batch.pair_actions[..., 1])
