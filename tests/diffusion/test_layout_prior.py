"""The layout prior: sampling follows the labels and the stored counts, is seeded, and round-trips."""

from pathlib import Path

import numpy as np
import pytest
import torch

from drivesim.diffusion.layout_prior import LAYOUT_PRIOR_STAGE, LayoutPrior, load_layout_prior
from drivesim.model_folder import save_stage


def small_prior() -> LayoutPrior:
    """Four layouts: (tod, crowd, boxes) = (day, low, 1), (night, high, 3), (day, high, 2), (night, medium, 0)."""
    xyxy = torch.zeros(4, 3, 4)
    counts = [1, 3, 2, 0]
    for i, m in enumerate(counts):
        for j in range(m):
            xyxy[i, j] = torch.tensor([0.1 * i, 0.5, 0.1 * i + 0.05 * (j + 1), 0.6])
    classes = torch.tensor([[0, 0, 0], [1, 0, 1], [0, 1, 0], [0, 0, 0]])
    return LayoutPrior(
        xyxy=xyxy,
        classes=classes,
        counts=torch.tensor(counts),
        time_of_day=torch.tensor([0, 1, 0, 1]),
        crowdedness=torch.tensor([0, 2, 2, 1]),
    )


def _which(prior: LayoutPrior, xyxy: np.ndarray) -> int:
    """The index of the stored layout a sample came from (their x1 differ by 0.1 per layout)."""
    return int(round(float(xyxy[0, 0]) / 0.1)) if len(xyxy) else 3


def test_a_label_pair_draws_only_its_layouts_with_their_counts_and_classes() -> None:
    prior = small_prior()
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        xyxy, classes = prior.sample(0, 2, gen)  # day, high: only layout 2
        assert xyxy.shape == (2, 4) and xyxy.dtype == np.float32 and classes.dtype == np.int64
        np.testing.assert_array_equal(xyxy, prior.xyxy[2, :2].numpy())
        assert classes.tolist() == [0, 1]
    empty, none = prior.sample(1, 1, gen)  # night, medium: the layout with no boxes
    assert empty.shape == (0, 4) and none.shape == (0,)


def test_max_boxes_keeps_the_largest_boxes_in_order() -> None:
    prior = small_prior()
    full, classes = prior.sample(1, 2)  # night, high: layout 1, boxes 0.05 / 0.10 / 0.15 wide
    two, two_classes = prior.sample(1, 2, max_boxes=2)
    np.testing.assert_array_equal(two, full[1:])
    np.testing.assert_array_equal(two_classes, classes[1:])


def test_a_free_label_draws_from_every_matching_layout() -> None:
    prior = small_prior()
    gen = torch.Generator().manual_seed(1)
    high = {_which(prior, prior.sample(-1, 2, gen)[0]) for _ in range(40)}
    assert high == {1, 2}
    anything = {_which(prior, prior.sample(generator=gen)[0]) for _ in range(80)}
    assert anything == {0, 1, 2, 3}


def test_a_pair_no_training_frame_had_falls_back_to_the_crowdedness_alone() -> None:
    prior = small_prior()
    xyxy, _ = prior.sample(0, 1, torch.Generator().manual_seed(0))  # no (day, medium) layout
    assert xyxy.shape == (0, 4)  # the (night, medium) one


def test_the_same_seed_draws_the_same_layout() -> None:
    prior = small_prior()
    a = [prior.sample(-1, -1, torch.Generator().manual_seed(s))[0] for s in range(10)]
    b = [prior.sample(-1, -1, torch.Generator().manual_seed(s))[0] for s in range(10)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert len({_which(prior, x) for x in a}) > 1


@pytest.mark.parametrize(
    ("tod", "crowd", "message"),
    [
        (2, 0, "time_of_day=2"),
        (0, 3, "crowdedness=3"),
        (-2, 0, "-1..1"),
        (True, 0, "time_of_day=True"),
        (0, "high", "-1..2"),
    ],
)
def test_bad_label_indices_raise_clear_errors(tod, crowd, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        small_prior().sample(tod, crowd)


def test_bad_shapes_raise_clear_errors() -> None:
    p = small_prior()
    with pytest.raises(ValueError, match="at least one layout"):
        LayoutPrior(p.xyxy[:0], p.classes[:0], p.counts[:0], p.time_of_day[:0], p.crowdedness[:0])
    with pytest.raises(ValueError, match="classes has shape"):
        LayoutPrior(p.xyxy, p.classes[:, :2], p.counts, p.time_of_day, p.crowdedness)
    with pytest.raises(ValueError, match="counts must lie in 0..3"):
        LayoutPrior(p.xyxy, p.classes, p.counts + 1, p.time_of_day, p.crowdedness)
    with pytest.raises(ValueError, match="crowdedness has shape"):
        LayoutPrior(p.xyxy, p.classes, p.counts, p.time_of_day, p.crowdedness[:3])
    with pytest.raises(ValueError, match="lacks \\['counts'\\]"):
        LayoutPrior.from_state_dict({k: v for k, v in p.state_dict().items() if k != "counts"})


def test_mean_counts_per_crowdedness() -> None:
    assert small_prior().mean_counts() == {"low": 1.0, "medium": 0.0, "high": 2.5}


def test_round_trip_through_a_model_folder(tmp_path: Path) -> None:
    assert load_layout_prior(tmp_path) is None
    prior = small_prior()
    save_stage(tmp_path, LAYOUT_PRIOR_STAGE, prior.state_dict(), config={}, half=True)
    back = load_layout_prior(tmp_path)
    assert back is not None and back.max_boxes == 3 and len(back) == 4
    torch.testing.assert_close(back.xyxy, prior.xyxy, atol=1e-3, rtol=0)  # float16 storage
    for name in ("classes", "counts", "time_of_day", "crowdedness"):
        assert torch.equal(getattr(back, name), getattr(prior, name))
