import numpy as np
import pytest
import torch

from drivesim.eval.detection import (
    box_iou,
    center_loss,
    center_targets,
    check_boxes,
    decode_detections,
    match_boxes,
)


def test_box_iou_known_values():
    a = np.array([[0.0, 0.0, 0.5, 0.5]])
    b = np.array([[0.0, 0.0, 0.5, 0.5], [0.25, 0.0, 0.75, 0.5], [0.6, 0.6, 0.9, 0.9]])
    np.testing.assert_allclose(box_iou(a, b)[0], [1.0, 1 / 3, 0.0], atol=1e-9)


def test_match_boxes_one_to_one_and_threshold():
    ref = np.array([[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.7, 0.7]], np.float32)
    det = np.array([[0.1, 0.1, 0.3, 0.3], [0.11, 0.1, 0.31, 0.3], [0.8, 0.8, 0.9, 0.9]], np.float32)
    m = match_boxes(ref, det, 0.5)
    assert m.num_matched == 1 and m.matched_ref.tolist() == [True, False]
    assert m.matched_det.tolist() == [True, False, False]
    assert m.ious[0] == pytest.approx(1.0)
    assert match_boxes(ref, np.zeros((0, 4)), 0.5).num_matched == 0


def _logit(p):
    p = p.clamp(1e-4, 1 - 1e-4)
    return torch.log(p / (1 - p))


def test_targets_decode_round_trip():
    boxes = [
        np.array([[0.10, 0.40, 0.30, 0.70], [0.55, 0.45, 0.70, 0.60]], np.float32),
        np.zeros((0, 4), np.float32),
    ]
    t = center_targets(boxes, 16, 32)
    assert t.heatmap.shape == (2, 1, 16, 32) and t.offset.shape == (2, 2, 16, 32)
    assert int(t.mask.sum()) == 2 and float(t.heatmap[1].max()) == 0.0
    dets = decode_detections(_logit(t.heatmap), t.offset, t.log_size, score_threshold=0.5)
    assert len(dets[0].xyxy) == 2 and len(dets[1].xyxy) == 0
    m = match_boxes(boxes[0], dets[0].xyxy, 0.9)
    assert m.num_matched == 2


def test_center_loss_prefers_correct_heatmap():
    boxes = [np.array([[0.2, 0.3, 0.5, 0.8]], np.float32)]
    t = center_targets(boxes, 16, 32)
    good = center_loss(_logit(t.heatmap), t.offset, t.log_size, t)
    bad = center_loss(torch.zeros(1, 1, 16, 32), torch.zeros(1, 2, 16, 32), torch.zeros(1, 2, 16, 32), t)
    assert float(good) < float(bad)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((2, 3)), "shape"),
        (np.array([[0.0, 0.0, 2.0, 0.5]]), "normalised"),
        (np.array([[0.5, 0.0, 0.2, 0.5]]), "x1 <= x2"),
    ],
)
def test_bad_boxes_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        check_boxes("boxes", bad)
