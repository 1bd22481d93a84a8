import numpy as np
import pytest
import torch

from drivesim.eval.adherence import (
    ConditionPrediction,
    action_adherence,
    box_adherence_from_detections,
    condition_adherence,
    merge_box_adherence,
    predict_conditions,
    recover_actions,
    recover_speed,
    window_action_targets,
)
from drivesim.eval.checks import uint8_to_video
from drivesim.eval.degrade import jitter_boxes, swap_labels
from drivesim.eval.detection import Detections
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY


def _prediction(tod, crowd):
    n = len(tod)
    return ConditionPrediction(tod, crowd, np.full((n, 2), 0.5), np.full((n, 3), 1 / 3))


def test_condition_adherence_falls_with_wrong_requests():
    tod = [TIME_OF_DAY[i % 2] for i in range(12)]
    crowd = [CROWDEDNESS[i % 3] for i in range(12)]
    pred = _prediction(tod, crowd)
    exact = condition_adherence(pred, tod, crowd)
    assert exact.time_of_day == 1.0 and exact.crowdedness == 1.0 and exact.both == 1.0
    values = []
    for fraction in (0.25, 0.5, 1.0):
        gen = torch.Generator().manual_seed(0)
        values.append(condition_adherence(pred, swap_labels(tod, fraction, TIME_OF_DAY, gen), crowd).time_of_day)
    assert values == [0.75, 0.5, 0.0]
    partial = condition_adherence(pred, [None] * 12, crowd)
    assert partial.time_of_day is None and partial.both is None and partial.crowdedness == 1.0


def test_crowdedness_read_counts_where_each_requested_level_went():
    crowd = ["high", "high", "high", "medium", "medium", "low", None]
    pred = _prediction(["day"] * 7, ["high", "medium", "low", "low", "medium", "low", "high"])
    read = condition_adherence(pred, ["day"] * 7, crowd).crowdedness_read
    assert read == {"low": {"low": 1, "medium": 0, "high": 0}, "medium": {"low": 1, "medium": 1, "high": 0},
                    "high": {"low": 1, "medium": 1, "high": 1}}  # the unrequested clip is in no row


def test_condition_adherence_bad_requests():
    pred = _prediction(["day"], ["low"])
    with pytest.raises(ValueError, match="one entry per clip"):
        condition_adherence(pred, ["day", "night"], ["low"])
    with pytest.raises(ValueError, match="dusk"):
        condition_adherence(pred, ["dusk"], ["low"])


def test_predict_conditions_shapes(tiny_probes, clips):
    pred = predict_conditions(tiny_probes.frame, uint8_to_video(clips[:3]))
    assert len(pred.time_of_day) == 3 and pred.time_of_day_probs.shape == (3, 2)
    np.testing.assert_allclose(pred.crowdedness_probs.sum(1), 1.0, atol=1e-5)


def test_box_adherence_orders_box_shift():
    rng = np.random.default_rng(0)
    requested = []
    for _ in range(20):
        xy = rng.uniform(0, 0.6, (3, 2))
        wh = rng.uniform(0.15, 0.35, (3, 2))
        requested.append(np.concatenate([xy, xy + wh], 1).astype(np.float32))
    dets = [Detections(r.copy(), np.ones(len(r), np.float32)) for r in requested]
    exact = box_adherence_from_detections(requested, dets)
    assert exact.recall == 1.0 and exact.mean_iou == pytest.approx(1.0)
    recalls = []
    for shift in (0.2, 0.4, 0.8):
        moved = jitter_boxes(requested, shift, torch.Generator().manual_seed(0))
        recalls.append(box_adherence_from_detections(moved, dets).mean_iou)
    assert 1.0 > recalls[0] > recalls[1] > recalls[2]
    tiny = [np.array([[0.1, 0.1, 0.2, 0.15]], np.float32)]
    assert box_adherence_from_detections(tiny, [dets[0]], min_height=0.125).num_boxes == 0
    merged = merge_box_adherence([exact, box_adherence_from_detections(tiny, [dets[0]], min_height=0.0)])
    assert merged.num_boxes == exact.num_boxes + 1 and merged.recall < 1.0


def test_window_action_targets_average_transitions():
    actions = np.zeros((1, 10, 2), np.float32)
    actions[0, :, 0] = np.arange(10)
    # windows of 4 frames (stride 1) every 3 frames: starts 0, 3, 6; transitions s+1..s+3
    targets = window_action_targets(actions, num_frames=4, frame_stride=1, hop=3)
    np.testing.assert_allclose(targets[:, 0], [2.0, 5.0, 8.0])


def test_action_adherence_perfect_noisy_constant():
    rng = np.random.default_rng(0)
    commanded = rng.uniform(-1, 1, (200, 2))
    perfect = action_adherence(commanded, commanded)
    assert perfect.steer.pearson == pytest.approx(1.0) and perfect.accel.mae == 0.0 and perfect.steer.r2 == 1.0
    noisy = [action_adherence(commanded, commanded + rng.normal(0, s, commanded.shape)) for s in (0.1, 0.3, 1.0)]
    assert [n.steer.pearson for n in noisy] == sorted((n.steer.pearson for n in noisy), reverse=True)
    assert [n.accel.mae for n in noisy] == sorted(n.accel.mae for n in noisy)
    constant = action_adherence(np.zeros((5, 2)), rng.normal(size=(5, 2)))
    assert constant.steer.pearson is None and constant.steer.r2 is None
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        action_adherence(np.zeros((5, 2)), np.zeros((4, 2)))


def test_recover_actions_one_per_window(tiny_probes, clips):
    video = uint8_to_video(clips[:2])  # 12 frames, probe windows of 4
    assert recover_actions(tiny_probes.clip, video, hop=4).shape == (2 * 3, 2)


def test_recover_speed_one_per_window_and_matches_the_probe(tiny_probes, clips):
    video = uint8_to_video(clips[:2])
    speed = recover_speed(tiny_probes.clip, video, hop=4)
    assert speed.shape == (2 * 3,)
    with torch.no_grad():
        first = tiny_probes.clip.eval()(video[:1, :4]).speed
    assert speed[0] == pytest.approx(float(first[0]), rel=1e-5)


def test_clip_bootstrap_interval_holds_the_r_and_widens_with_fewer_agreeing_clips():
    import numpy as np
    import pytest

    from drivesim.eval.adherence import clip_bootstrap_pearson, pearson

    rng = np.random.default_rng(0)
    commanded = rng.normal(size=(8 * 10, 2))
    follows = commanded + rng.normal(0, 0.3, commanded.shape)
    (steer_lo, steer_hi), _ = clip_bootstrap_pearson(commanded, follows, 8, draws=300)
    assert steer_lo <= pearson(commanded[:, 0], follows[:, 0]) <= steer_hi and steer_lo > 0.8
    mixed = follows.copy()
    mixed[40:] = rng.normal(size=(40, 2))  # half the clips read nothing
    (lo, hi), _ = clip_bootstrap_pearson(commanded, mixed, 8, draws=300)
    assert hi - lo > 2 * (steer_hi - steer_lo) and lo < 0.6
    with pytest.raises(ValueError, match="num_clips=3 >= 1 dividing the rows"):
        clip_bootstrap_pearson(commanded, follows, 3)
