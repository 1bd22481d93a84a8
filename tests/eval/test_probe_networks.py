import pytest
import torch

from drivesim.eval.clip_probe import ClipProbe, ClipProbeConfig
from drivesim.eval.features import clip_features, clip_windows, frame_features
from drivesim.eval.frame_probe import FrameProbe, FrameProbeConfig
from drivesim.eval.probe_io import load_probes, save_probes


def test_frame_probe_shapes_default_size():
    torch.manual_seed(0)
    probe = FrameProbe(FrameProbeConfig()).eval()
    out = probe(torch.rand(3, 3, 64, 128) * 2 - 1)
    assert out.time_of_day_logits.shape == (3, 2)
    assert out.crowdedness_logits.shape == (3, 3)
    assert out.vehicle_count.shape == (3,)
    assert out.heatmap_logits.shape == (3, 1, 16, 32)
    assert out.offset.shape == (3, 2, 16, 32) and out.log_size.shape == (3, 2, 16, 32)
    assert out.features.shape == (3, probe.feature_dim)
    dets = probe.detect(torch.rand(2, 3, 64, 128) * 2 - 1, score_threshold=0.0)
    assert len(dets) == 2 and dets[0].xyxy.shape[1] == 4 and len(dets[0].scores) == len(dets[0].xyxy)


def test_frame_probe_resizes_other_sizes():
    probe = FrameProbe(FrameProbeConfig(height=32, width=64, widths=[8, 8, 8, 16], head_width=8)).eval()
    out = probe(torch.zeros(1, 3, 90, 160))
    assert out.heatmap_logits.shape == (1, 1, 8, 16)


def test_clip_probe_shapes_and_bad_length():
    torch.manual_seed(0)
    cfg = ClipProbeConfig(num_frames=4)
    probe = ClipProbe(cfg).eval()
    out = probe.predict(torch.rand(2, 4, 3, 64, 128) * 2 - 1)
    assert out.actions.shape == (2, 2) and out.speed.shape == (2,)
    assert out.features.shape == (2, probe.feature_dim)
    assert out.pair_actions.shape == (2, 3, 2) and out.pair_speed.shape == (2, 3)
    torch.testing.assert_close(out.actions, out.pair_actions.mean(1))
    torch.testing.assert_close(out.speed, out.pair_speed.mean(1))
    with pytest.raises(ValueError, match="expects"):
        probe(torch.zeros(2, 5, 3, 64, 128))


def test_clip_probe_sees_the_order_of_its_frames():
    """Reversing a clip changes every pair's difference channel, so the outputs move."""
    torch.manual_seed(0)
    probe = ClipProbe(ClipProbeConfig(num_frames=4)).eval()
    clip = torch.rand(1, 4, 3, 64, 128) * 2 - 1
    forward, backward = probe.predict(clip), probe.predict(clip.flip(1))
    assert not torch.allclose(forward.pair_speed, backward.pair_speed.flip(1))


def test_old_clip_probe_weights_give_a_clear_error(tiny_probes, tmp_path):
    from drivesim.model_folder import save_stage

    save_probes(tmp_path, tiny_probes)
    old = torch.nn.Linear(3, 2)  # any state dict that is not the current clip probe's
    save_stage(tmp_path, "clip_probe", old, tiny_probes.clip.config)
    with pytest.raises(ValueError, match="need retraining"):
        load_probes(tmp_path)


def test_feature_helpers_count_windows(tiny_probes):
    video = torch.rand(2, 10, 3, 32, 64) * 2 - 1
    assert frame_features(tiny_probes.frame, video).shape == (20, tiny_probes.frame.feature_dim)
    # windows of 4 frames every 3 frames in 10 frames: starts 0, 3, 6 -> 3 per clip
    assert clip_windows(video, 4, 1, 3).shape == (6, 4, 3, 32, 64)
    assert clip_features(tiny_probes.clip, video, hop=3).shape == (6, tiny_probes.clip.feature_dim)
    assert clip_windows(video, 4, 3, 1).shape == (2, 4, 3, 32, 64)  # span 10
    with pytest.raises(ValueError, match="fewer than one probe window"):
        clip_windows(video, 4, 4, 1)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: FrameProbeConfig(height=60), "multiples of 16"),
        (lambda: FrameProbeConfig(widths=[8, 8]), "4 channel counts"),
        (lambda: ClipProbeConfig(num_frames=1), "num_frames"),
        (lambda: ClipProbeConfig(frame_stride=0), "frame_stride"),
        (lambda: ClipProbeConfig(temporal_width=0), "temporal_width"),
    ],
)
def test_bad_configs_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_save_load_round_trip(tmp_path, tiny_probes):
    save_probes(tmp_path / "probes", tiny_probes, extra={"note": "test"})
    loaded = load_probes(tmp_path / "probes")
    x = torch.rand(2, 3, 32, 64) * 2 - 1
    assert torch.allclose(loaded.frame(x).features, tiny_probes.frame(x).features)
    clip = torch.rand(1, 4, 3, 32, 64) * 2 - 1
    assert torch.allclose(loaded.clip(clip).actions, tiny_probes.clip(clip).actions)
    assert loaded.clip.config == tiny_probes.clip.config
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_probes(tmp_path / "missing")
