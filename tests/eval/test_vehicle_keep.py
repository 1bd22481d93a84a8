"""drivesim/eval/vehicle_keep.py: generated frames scored against the true boxes of the same frames."""

import numpy as np
import pytest
import torch

from drivesim.eval.detection import Detections
from drivesim.eval.probe_data import EpisodeConfig, render_episodes
from drivesim.eval.probe_io import load_probes
from drivesim.eval.vehicle_keep import detect_frames, keep_scores
from drivesim.paths import default_probes_dir


def _det(*boxes) -> Detections:
    xyxy = np.asarray(boxes, np.float32).reshape(-1, 4)
    return Detections(xyxy, np.ones(len(xyxy), np.float32))


def test_recall_counts_tall_true_boxes_and_precision_counts_detections_that_are_any_true_box():
    tall, short = [0.1, 0.4, 0.3, 0.7], [0.6, 0.5, 0.65, 0.55]  # 0.3 and 0.05 of the frame high
    truth = [np.array([tall, short], np.float32), np.array([tall], np.float32)]
    blob = [0.0, 0.3, 1.0, 0.9]  # a smear across the lanes: no true box
    dets = [_det(tall, short, blob), _det()]
    s = keep_scores(dets, truth, iou_threshold=0.5, min_height=0.125)
    assert s.recall == pytest.approx(1 / 2)  # the tall box found in frame 0, missed in 1; the short one not counted
    assert s.precision == pytest.approx(2 / 3)  # the short box's detection is a vehicle; the blob is not
    assert s.detected == pytest.approx(3 / 2) and s.true == pytest.approx(2 / 2) and s.num_frames == 2
    moved = [_det([0.2, 0.4, 0.4, 0.7]), _det()]  # half a box width off: IoU 1/3
    assert keep_scores(moved, truth, 0.5).recall == 0.0 and keep_scores(moved, truth, 0.3).recall == 0.5
    empty = keep_scores([_det()], [np.zeros((0, 4), np.float32)])
    assert empty.recall is None and empty.precision is None


def test_bad_input_is_refused_by_name():
    with pytest.raises(ValueError, match="differ in length"):
        keep_scores([_det()], [])
    with pytest.raises(ValueError, match="iou_threshold=0"):
        keep_scores([_det()], [np.zeros((0, 4))], iou_threshold=0.0)
    with pytest.raises(ValueError, match="min_height=1"):
        keep_scores([_det()], [np.zeros((0, 4))], min_height=1.0)
    with pytest.raises(ValueError, match=r"truth\[0\]"):
        keep_scores([_det()], [np.array([[0.5, 0.5, 0.2, 0.6]])])
    with pytest.raises(ValueError, match=r"\(n, h, w, 3\) uint8"):
        detect_frames(None, np.zeros((2, 8, 8, 3), np.float32))


def test_the_bundled_detector_finds_the_true_cars_and_loses_them_on_other_frames_and_under_blobs():
    torch.set_num_threads(1)
    probe = load_probes(default_probes_dir()).frame
    eps = render_episodes(EpisodeConfig(height=probe.config.height, width=probe.config.width, num_frames=2),
                          930_000, 6)  # cycles the labels: 2 high-traffic episodes
    frames, truth = eps.frames[:, -1], [b[-1] for b in eps.boxes]
    own = keep_scores(detect_frames(probe, frames, batch_size=4), truth)
    assert own.recall is not None and own.recall >= 0.5 and own.precision >= 0.7
    swapped = keep_scores(detect_frames(probe, frames[::-1].copy()), truth)  # other episodes' frames
    assert swapped.recall < own.recall - 0.3
    blobs = frames.copy()
    h, w = frames.shape[1:3]
    for i, boxes in enumerate(truth):  # each true car painted over; an orange smear across the road instead
        for x1, y1, x2, y2 in (boxes * np.array([w, h, w, h])).round().astype(int):
            blobs[i, y1:y2, x1:x2] = frames[i, max(0, y1 - 3) : max(1, y1 - 2), x1:x2].mean((0, 1))
        blobs[i, h // 2 : h // 2 + h // 6, w // 8 : w - w // 8] = (220, 90, 20)
    smeared = keep_scores(detect_frames(probe, blobs), truth)
    assert smeared.recall < own.recall - 0.3
    assert smeared.precision is None or smeared.precision < own.precision - 0.3
