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
from drivesim.training.probes import ProbeTrainConfig, train


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


def test_clip_from_starts_the_clip_probe_from_those_weights(tmp_path):
    source_dir = tmp_path / "source" / "model"
    source = load_probes(train(_config(tmp_path, "source")).out)
    cfg = _config(tmp_path, "tuned")
    cfg.clip_from, cfg.frame_from, cfg.steps, cfg.lr = str(source_dir), str(source_dir), 1, 1e-9
    cfg.episode = EpisodeConfig(height=32, width=64, num_frames=12, warmup_frames=4, pattern_fraction=1.0)
    tuned = load_probes(train(cfg).out)
    tuned_params = dict(tuned.clip.named_parameters())
    for name, a in source.clip.named_parameters():  # one step at lr 1e-9: the source's weights (not batch-norm stats)
        assert torch.allclose(a.float(), tuned_params[name].float(), atol=1e-5), name
    extra = load_stage(tmp_path / "tuned" / "model", "clip_probe").extra
    assert extra["clip_from"] == str(source_dir) and extra["pattern_fraction"] == 1.0
    bad = _config(tmp_path, "bad")
    bad.clip_from = str(source_dir)
    bad.clip = ClipProbeConfig(
        height=32, width=64, num_frames=6, frame_stride=2, widths=[8, 8, 8, 16], temporal_width=8
    )
    with pytest.raises(ValueError, match="clip_from"):
        train(bad)


def test_action_role_keeps_the_clip_probe_and_adds_the_tuned_one_as_the_action_probe(tmp_path):
    source_dir = tmp_path / "source" / "model"
    source = load_probes(train(_config(tmp_path, "source")).out)
    assert source.action is None and source.action_reader is source.clip
    cfg = _config(tmp_path, "action")
    cfg.clip_from, cfg.frame_from, cfg.clip_role = str(source_dir), str(source_dir), "action"
    out = load_probes(train(cfg).out)
    assert out.action is not None and out.action_reader is out.action
    for a, b in zip(source.clip.state_dict().values(), out.clip.state_dict().values()):
        assert torch.equal(a, b)  # the clip probe (FVD-probe features) is the source's
    assert any(
        not torch.equal(a, b) for a, b in zip(source.clip.state_dict().values(), out.action.state_dict().values())
    )
    assert load_stage(tmp_path / "action" / "model", "action_probe").extra["clip_role"] == "action"
    with pytest.raises(ValueError, match="clip_from"):
        ProbeTrainConfig(clip_role="action")
    with pytest.raises(ValueError, match="clip_role"):
        ProbeTrainConfig(clip_role="speed")


def test_pattern_fraction_drives_episodes_with_held_accel_and_zero_changes_nothing():
    base = EpisodeConfig(height=32, width=64, num_frames=40, warmup_frames=4)
    plain = render_episodes(base, TRAIN_SEED_BASE, 3)
    again = render_episodes(EpisodeConfig(height=32, width=64, num_frames=40, warmup_frames=4, pattern_fraction=0.0),
                            TRAIN_SEED_BASE, 3)  # fmt: skip
    assert np.array_equal(plain.frames, again.frames) and np.array_equal(plain.actions, again.actions)
    driven = render_episodes(
        EpisodeConfig(height=32, width=64, num_frames=40, warmup_frames=4, pattern_fraction=1.0), TRAIN_SEED_BASE, 3
    )
    accel = driven.actions[:, 1:, 1]  # after the first kept frame the driver acts
    assert all(len(np.unique(a)) <= 3 for a in accel)  # held values (holds of 0.6 s or more in 1.3 s)
    assert not np.array_equal(driven.actions, plain.actions)
    with pytest.raises(ValueError, match="pattern_fraction"):
        EpisodeConfig(pattern_fraction=1.5)
