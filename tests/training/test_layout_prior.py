"""Fitting the layout prior from a latent cache's box annotations (`drivesim train stage=layout_prior`)."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from drivesim.autoencoder.latent_cache import largest_boxes, read_cache
from drivesim.cli.main import main
from drivesim.data.labels import crowdedness_index, time_of_day_index
from drivesim.diffusion.layout_prior import load_layout_prior
from drivesim.model_folder import load_stage
from drivesim.training.layout_prior import LayoutPriorTrainConfig, collect_layouts
from tests.training._latent_cache import make_tiny_latent_cache

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_latent_cache(tmp_path_factory.mktemp("lp"), 3)


def test_layouts_are_the_cached_frames_largest_boxes_with_their_labels(cache: Path) -> None:
    _, records = read_cache(cache)
    split = next(r.split for r in records if r.crowdedness == "high")  # a split with crowded frames
    clips = [r for r in records if r.split == split]
    prior = collect_layouts(cache, split, frame_step=7, max_boxes=2)
    assert len(prior) == sum(len(range(0, r.num_frames, 7)) for r in clips)  # synth frames are all labelled
    assert prior.max_boxes == 2
    first = load_file(str(cache / clips[0].latents))
    offsets = first["box_offsets"]
    for k, i in enumerate(range(0, clips[0].num_frames, 7)):
        boxes = first["boxes"][int(offsets[i]) : int(offsets[i + 1])]
        keep = largest_boxes(boxes, 2)
        m = int(prior.counts[k])
        assert m == min(2, boxes.shape[0])
        torch.testing.assert_close(prior.xyxy[k, :m], boxes[keep].float())
        assert not prior.xyxy[k, m:].any()
        assert int(prior.time_of_day[k]) == time_of_day_index(clips[0].time_of_day)
        assert int(prior.crowdedness[k]) == crowdedness_index(clips[0].crowdedness)
    assert int(prior.counts.max()) == 2  # the crowded clip has frames with > 2 vehicles


def test_largest_boxes_keeps_the_n_largest_in_their_order() -> None:
    xyxy = torch.tensor([[0, 0, 0.1, 0.1], [0, 0, 0.5, 0.5], [0, 0, 0.2, 0.2], [0, 0, 0.3, 0.3]])
    assert largest_boxes(xyxy, 2).tolist() == [1, 3]
    assert largest_boxes(xyxy, 9).tolist() == [0, 1, 2, 3]


def test_the_stage_command_writes_the_prior_and_its_held_out_check(cache: Path, tmp_path: Path) -> None:
    _, records = read_cache(cache)
    split = records[0].split
    model = tmp_path / "model"
    argv = ["train", "stage=layout_prior", f"latents={cache}", f"model_dir={model}", f"split={split}"]
    assert main([*argv, f"val_split={split}", "frame_step=5", f"run_dir={tmp_path / 'run'}"]) == 0
    assert (tmp_path / "run" / "layouts.png").stat().st_size > 1000
    prior = load_layout_prior(model)
    assert prior is not None and prior.max_boxes == 16
    extra = load_stage(model, "layout_prior").extra
    assert extra["layouts"] == len(prior)
    assert extra["mean_boxes"][split] == pytest.approx(prior.mean_counts())


def test_bad_settings_and_an_empty_split_raise_clear_errors(cache: Path) -> None:
    with pytest.raises(ValueError, match="frame_step=0 must be >= 1"):
        LayoutPriorTrainConfig(frame_step=0)
    with pytest.raises(ValueError, match="split='dev'"):
        LayoutPriorTrainConfig(split="dev")
    _, records = read_cache(cache)
    absent = next(s for s in ("train", "val", "test") if s not in {r.split for r in records})
    with pytest.raises(ValueError, match=f"no labelled boxes in split '{absent}'"):
        collect_layouts(cache, absent, 10, 16)
