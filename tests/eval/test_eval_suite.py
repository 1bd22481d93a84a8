import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from drivesim.eval.checks import uint8_to_video, video_to_uint8
from drivesim.eval.degrade import add_noise
from drivesim.eval.report import plot_drift, plot_storyboard, write_json
from drivesim.eval.suite import EvalOptions, evaluate
from drivesim.eval.video_sets import EvalClip, VideoSet
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY

OPTIONS = EvalOptions(frame_step=1, clip_hop=2, window_seconds=0.8, min_box_height=0.0)


def _set(frames: np.ndarray, prefix: str, fps: float = 10.0) -> VideoSet:
    clips = []
    for i, f in enumerate(frames):
        t = f.shape[0]
        boxes = [np.array([[0.1, 0.2, 0.5, 0.7]], np.float32)] * t
        actions = np.stack([np.linspace(-1, 1, t), np.full(t, 0.1 * i)], 1).astype(np.float32)
        clips.append(EvalClip(f"{prefix}{i}", f, fps, TIME_OF_DAY[i % 2], CROWDEDNESS[i % 3], boxes, actions))
    return VideoSet(tuple(clips), prefix)


def _noisy(frames: np.ndarray, std: float) -> np.ndarray:
    return video_to_uint8(add_noise(uint8_to_video(frames), std, torch.Generator().manual_seed(0)))


def test_identical_sets_are_perfect_and_paired(tiny_probes, make_clips, tmp_path):
    frames = make_clips(6, 16)
    real = _set(frames, "c")
    report = evaluate(real, _set(frames, "c"), tiny_probes, replace(OPTIONS, paired=True))
    assert evaluate(real, _set(frames, "c"), tiny_probes, OPTIONS).temporal.num_paired_clips == 0
    assert report.frechet.fid_probe == pytest.approx(0.0, abs=1e-6)
    assert report.frechet.fvd_probe == pytest.approx(0.0, abs=1e-6)
    assert report.frechet.fid_probe_real_halves is not None
    t = report.temporal
    assert t.num_paired_clips == 6 and t.psnr == pytest.approx(100.0) and t.ssim == pytest.approx(1.0)
    assert t.flicker == 0.0 and t.paired_delta_error == 0.0
    assert 0.0 <= report.condition.both <= 1.0 and report.condition.num_clips == 6
    assert report.box.num_boxes == 6 * 16
    assert report.action.num_windows > 0
    assert len(report.drift) == 2 and report.drift[0].end_s == pytest.approx(0.8)
    assert report.drift[1].psnr == pytest.approx(100.0)

    path = write_json(tmp_path / "report.json", report)
    data = json.loads(path.read_text())
    assert data["frechet"]["fid_probe"] == pytest.approx(0.0, abs=1e-6) and len(data["drift"]) == 2
    assert plot_drift(report, tmp_path / "drift.png").stat().st_size > 1000
    assert plot_storyboard(real, real, tmp_path / "story.png", num_clips=2, num_frames=4).stat().st_size > 1000


def test_noise_orders_frechet_and_flicker(tiny_probes, make_clips):
    # 16 clips a set: with 8 the finite-sample part of the Fréchet distance between two different
    # clean sets is as large as what noise std 0.2 adds through the (untrained) clip probe
    real = _set(make_clips(16, 12, seed=0), "r")
    clean = make_clips(16, 12, seed=1)
    reports = [evaluate(real, _set(_noisy(clean, s), "g"), tiny_probes, OPTIONS) for s in (0.0, 0.2, 0.5)]
    fid = [r.frechet.fid_probe for r in reports]
    fvd = [r.frechet.fvd_probe for r in reports]
    flick = [r.temporal.flicker for r in reports]
    assert fid[0] < fid[1] < fid[2]
    assert fvd[0] < fvd[1] < fvd[2]
    assert flick[0] < flick[1] < flick[2]
    assert reports[0].temporal.num_paired_clips == 0 and reports[0].temporal.psnr is None


def test_bad_inputs(tiny_probes, make_clips):
    frames = make_clips(2, 8)
    real = _set(frames, "c")
    with pytest.raises(ValueError, match="fps"):
        evaluate(real, _set(frames, "g", fps=25.0), tiny_probes, OPTIONS)
    single = VideoSet((EvalClip("s", frames[0, :1], 10.0),), "single")
    with pytest.raises(ValueError, match="at least 2 frames"):
        evaluate(single, single, tiny_probes, OPTIONS)
    with pytest.raises(ValueError, match="frame_step"):
        EvalOptions(frame_step=0)


def test_short_drift_windows_keep_every_clip_window(tiny_probes, make_clips):
    real = _set(make_clips(4, 16), "c")
    generated = _set(make_clips(4, 16, seed=3), "g")
    whole = evaluate(real, generated, tiny_probes, replace(OPTIONS, window_seconds=100.0))
    short = evaluate(real, generated, tiny_probes, replace(OPTIONS, window_seconds=0.2))  # 2 frames < probe span 4
    assert whole.action.num_windows == short.action.num_windows == 4 * 7
    assert short.frechet.fvd_probe == pytest.approx(whole.frechet.fvd_probe, rel=1e-6)
    assert len(short.drift) == 8 and short.drift[-1].action is None  # windows starting at 14 do not fit
