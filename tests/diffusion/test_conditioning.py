import pytest
import torch

from drivesim.diffusion.conditioning import Conditioning, drop_conditions, rasterize_boxes


def _cond(b: int) -> Conditioning:
    g = torch.Generator().manual_seed(0)
    return Conditioning(
        time_of_day=torch.randint(0, 2, (b,), generator=g),
        crowdedness=torch.randint(0, 3, (b,), generator=g),
        boxes=torch.rand(b, 3, 4, generator=g),
        box_classes=torch.randint(0, 2, (b, 3), generator=g),
        box_mask=torch.ones(b, 3, dtype=torch.bool),
    )


def test_drop_rates_independence_and_all_boxes_together():
    cond = _cond(40000)
    out = drop_conditions(cond, torch.Generator().manual_seed(1), p_labels=0.2, p_boxes=0.3)
    tod, crowd = out.time_of_day == -1, out.crowdedness == -1
    no_boxes = ~out.boxes_given
    assert abs(tod.float().mean().item() - 0.2) < 0.01
    assert abs(crowd.float().mean().item() - 0.2) < 0.01
    assert abs(no_boxes.float().mean().item() - 0.3) < 0.01
    assert abs((tod & crowd).float().mean().item() - 0.04) < 0.005
    assert abs((tod & no_boxes).float().mean().item() - 0.06) < 0.006
    # all boxes of a sample go together; kept samples are untouched
    assert torch.equal(out.box_mask.any(dim=1), out.boxes_given)
    assert torch.equal(out.box_mask.all(dim=1), out.boxes_given)
    kept = ~tod
    assert torch.equal(out.time_of_day[kept], cond.time_of_day[kept])
    assert torch.equal(out.boxes[out.boxes_given], cond.boxes[out.boxes_given])


def test_drop_is_seeded_and_extremes():
    cond = _cond(64)
    a = drop_conditions(cond, torch.Generator().manual_seed(3))
    b = drop_conditions(cond, torch.Generator().manual_seed(3))
    assert torch.equal(a.time_of_day, b.time_of_day) and torch.equal(a.boxes_given, b.boxes_given)
    same = drop_conditions(cond, torch.Generator(), p_labels=0.0, p_boxes=0.0)
    assert torch.equal(same.time_of_day, cond.time_of_day) and bool(same.boxes_given.all())
    gone = drop_conditions(cond, torch.Generator(), p_labels=1.0, p_boxes=1.0)
    null = cond.nulled(["time_of_day", "crowdedness", "boxes"])
    for name in ("time_of_day", "crowdedness", "boxes", "box_classes", "box_mask", "boxes_given"):
        assert torch.equal(getattr(gone, name), getattr(null, name)), name
    with pytest.raises(ValueError, match="p_labels"):
        drop_conditions(cond, torch.Generator(), p_labels=1.5)


def test_from_labels_cat_and_repeat():
    c = Conditioning.from_labels(
        ["day", None, "night"], ["low", "high", None], [[[0.1, 0.1, 0.2, 0.2]], [], None], [[1], [], None]
    )
    assert c.time_of_day.tolist() == [0, -1, 1]
    assert c.crowdedness.tolist() == [0, 2, -1]
    assert c.boxes_given.tolist() == [True, True, False]
    assert c.box_mask.tolist() == [[True], [False], [False]]
    d = Conditioning.cat([c, Conditioning.null(2, max_boxes=3)])
    assert d.batch_size == 5 and d.max_boxes == 3
    assert d.box_mask[:3, 1:].sum() == 0
    r = c.repeat_frames(2)
    assert r.time_of_day.tolist() == [0, 0, -1, -1, 1, 1]
    part = c.rows(1, 3)  # a slice of the batch, every field alike
    assert part.batch_size == 2 and part.crowdedness.tolist() == [2, -1] and part.boxes_given.tolist() == [True, False]
    assert Conditioning.cat([c.rows(0, 1), part]).time_of_day.tolist() == c.time_of_day.tolist()
    with pytest.raises(ValueError, match="time_of_day='dusk'"):
        Conditioning.from_labels(["dusk"], [None], [None], [None])
    with pytest.raises(ValueError, match="box_classes"):
        Conditioning.from_labels(["day"], [None], [[[0, 0, 1, 1]]], [[5]])
    with pytest.raises(ValueError, match="condition names"):
        c.nulled(["weather"])
    with pytest.raises(ValueError, match="box_classes"):
        Conditioning(c.time_of_day, c.crowdedness, c.boxes, c.box_classes[:, :0], c.box_mask)


def test_rasterize_coverage():
    boxes = torch.tensor([[[0.0, 0.0, 0.5, 0.5], [0.5, 0.75, 0.625, 1.0], [0.0, 0.0, 1.0, 1.0]]])
    classes = torch.tensor([[0, 1, 1]])
    mask = torch.tensor([[True, True, False]])  # the full-image box is padding
    out = rasterize_boxes(boxes, classes, mask, num_classes=2, height=4, width=8)
    assert out.shape == (1, 2, 4, 8)
    assert torch.equal(out[0, 0, :2, :4], torch.ones(2, 4)) and out[0, 0].sum() == 8
    # second box covers x 4..5 cells, y row 3: one full cell
    assert out[0, 1, 3, 4] == 1.0 and out[0, 1].sum() == 1.0
    half = rasterize_boxes(
        torch.tensor([[[0.0, 0.0, 0.0625, 0.25]]]), torch.tensor([[0]]), torch.tensor([[True]]), 1, 4, 8
    )
    assert half[0, 0, 0, 0].item() == pytest.approx(0.5) and half.sum().item() == pytest.approx(0.5)


def test_contrasted_swaps_labels_to_their_neighbour_and_keeps_null():
    cond = Conditioning.from_labels(
        ["day", "night", None, "day"], ["low", "medium", "high", None], [None] * 4, [None] * 4
    )
    crowd = cond.contrasted("crowdedness")
    assert crowd.crowdedness.tolist() == [-1, 0, 1, -1]  # low->null, medium->low, high->medium, null
    assert torch.equal(crowd.time_of_day, cond.time_of_day)
    tod = cond.contrasted("time_of_day")
    assert tod.time_of_day.tolist() == [1, 0, -1, 1]
    assert torch.equal(tod.crowdedness, cond.crowdedness)
    with pytest.raises(ValueError, match="contrast of 'boxes' is not defined"):
        cond.contrasted("boxes")
