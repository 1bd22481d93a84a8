"""Scene composition with tiny random models written to a model folder (real files)."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from drivesim.autoencoder.config import AutoencoderConfig
from drivesim.autoencoder.model import Autoencoder
from drivesim.diffusion.image_model import ImageLDM, LatentGeometry
from drivesim.diffusion.schedule import ScheduleConfig
from drivesim.diffusion.unet import UNetConfig
from drivesim.env.drive_env import DriveWorldEnv
from drivesim.env.vector_env import DriveWorldVectorEnv
from drivesim.rollout.compose import (
    ComposeModels,
    compose_scene,
    decode_latents,
    generate_frames,
    generate_latents,
    layout_entries,
    load_box_file,
    load_compose_models,
    make_conditioning,
    parse_boxes,
    request_layouts,
    sample_layout,
)
from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.random_model import random_layout_prior
from drivesim.rollout.types import SceneRequest
from drivesim.rollout.world_model import load
from drivesim.sampling.image import ImageGuidance
from drivesim.training.checkpoint import save_stage
from tests.rollout.conftest import FAST

TINY_AE = AutoencoderConfig(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, decoder_res_blocks=1)
UNET = dataclasses.replace(UNetConfig.tiny(), box_conditioning="both", zero_init=False)
BOXES = [[0.40, 0.50, 0.60, 0.90, "car"], [0.05, 0.45, 0.30, 0.70, "truck"]]


pytestmark = pytest.mark.usefixtures("one_thread")


def write_tiny_models(folder: Path, ae_scale: float = 0.5, ldm_scale: float = 0.5) -> Path:
    """Random autoencoder (16x32 frames -> 4x8x16 latents) and image LDM saved with save_stage."""
    torch.manual_seed(0)
    ae = Autoencoder(TINY_AE)
    ae.latent_scale.fill_(ae_scale)
    save_stage(folder, "autoencoder", ae, TINY_AE, extra={"latent_scale": ae_scale, "image_size": [16, 32]})
    ldm = ImageLDM.build(UNET, ScheduleConfig(), "v", LatentGeometry(4, 8, 16, ldm_scale), max_boxes=3)
    save_stage(folder, "image_ldm", ldm.unet, ldm.stage_config(), extra=ldm.stage_extra())
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ComposeModels:
    return load_compose_models(write_tiny_models(tmp_path_factory.mktemp("compose") / "model"))


def test_compose_returns_uint8_frame_of_the_image_size(models: ComposeModels) -> None:
    frame = compose_scene(models, BOXES, "night", "high", seed=0, steps=3, guidance=2.0)
    assert frame.dtype == np.uint8 and frame.shape == (16, 32, 3)
    again = compose_scene(models, BOXES, "night", "high", seed=0, steps=3, guidance=2.0)
    np.testing.assert_array_equal(frame, again)
    other_seed = compose_scene(models, BOXES, "night", "high", seed=1, steps=3, guidance=2.0)
    assert not np.array_equal(frame, other_seed)
    other_labels = compose_scene(models, BOXES, "day", "low", seed=0, steps=3, guidance=2.0)
    assert not np.array_equal(frame, other_labels)


def test_generated_latents_decode_to_the_generated_frames(models: ComposeModels) -> None:
    cond = make_conditioning([None, parse_boxes(BOXES, 3), None], ["day", "night", None], ["low", "high", None])
    latents = generate_latents(models, cond, 3, 2.0, torch.Generator().manual_seed(5), batch_size=2)
    assert latents.shape == (3, 4, 8, 16)
    frames = generate_frames(models, cond, 3, 2.0, torch.Generator().manual_seed(5), batch_size=2)
    np.testing.assert_array_equal(decode_latents(models, latents), frames)
    assert not torch.equal(latents[0], latents[2])


def test_compose_from_folder_unconditional_and_drawn_boxes(models: ComposeModels, tmp_path: Path) -> None:
    folder = write_tiny_models(tmp_path / "m")
    free = compose_scene(folder, None, None, None, seed=3, steps=2, guidance=ImageGuidance())
    assert free.shape == (16, 32, 3)
    empty_road = compose_scene(models, [], "day", "low", seed=3, steps=2)
    drawn = compose_scene(models, BOXES, "day", "low", seed=3, steps=2, draw_boxes=True)
    plain = compose_scene(models, BOXES, "day", "low", seed=3, steps=2)
    assert empty_road.shape == drawn.shape == plain.shape
    assert (drawn != plain).any(axis=-1).sum() > 20  # box outlines were drawn


def test_contrast_guidance_changes_labelled_frames_only(models: ComposeModels) -> None:
    plain = ImageGuidance(time_of_day=2.0, crowdedness=4.0)
    contrast = dataclasses.replace(plain, contrast=("crowdedness",))
    a = compose_scene(models, None, "day", "medium", seed=0, steps=3, guidance=plain)
    b = compose_scene(models, None, "day", "medium", seed=0, steps=3, guidance=contrast)
    assert not np.array_equal(a, b)
    free_a = compose_scene(models, None, "day", None, seed=0, steps=3, guidance=plain)
    free_b = compose_scene(models, None, "day", None, seed=0, steps=3, guidance=contrast)
    np.testing.assert_array_equal(free_a, free_b)  # no crowdedness label: nothing to contrast
    with pytest.raises(ValueError, match=r"ImageGuidance.contrast=\['boxes'\] is not allowed"):
        ImageGuidance(contrast=("boxes",))


def test_image_guidance_from_scales_defaults_to_the_label_scale() -> None:
    assert ImageGuidance.from_scales(3.0) == ImageGuidance(3.0, 3.0, 3.0)
    g = ImageGuidance.from_scales(3.0, boxes=2.0, crowdedness=5.0, crowdedness_contrast=True)
    assert g == ImageGuidance(time_of_day=3.0, crowdedness=5.0, boxes=2.0, contrast=("crowdedness",))


def test_box_interval_guides_boxes_only_at_the_steps_inside_it(models: ComposeModels) -> None:
    # steps=3 samples at tau 999, 500, 0 (of 1000)
    run = lambda g: compose_scene(models, BOXES, "day", "low", seed=0, steps=3, guidance=g)  # noqa: E731
    unguided = run(ImageGuidance(boxes=1.0))
    everywhere = run(ImageGuidance(boxes=4.0))
    early = run(ImageGuidance(boxes=4.0, box_interval=(0.6, 1.0)))  # tau 999 only
    none_inside = run(ImageGuidance(boxes=4.0, box_interval=(0.6, 0.9)))
    # equal up to float rounding of f(∅) + 1 * (f(boxes) - f(∅)) vs f(boxes)
    assert np.abs(none_inside.astype(int) - unguided.astype(int)).max() <= 1
    assert np.abs(everywhere.astype(int) - unguided.astype(int)).max() > 10
    assert not np.array_equal(early, unguided) and not np.array_equal(early, everywhere)
    assert ImageGuidance.from_scales(2.0, box_interval=[0.5, 1]).box_interval == (0.5, 1.0)
    for bad in ((0.5, 0.5), (-0.1, 1.0), (0.2, 1.5), (0.1,)):
        with pytest.raises(ValueError, match=r"ImageGuidance.box_interval=.* is not allowed; expected \[lo, hi\]"):
            ImageGuidance(box_interval=bad)


@pytest.mark.parametrize(
    "boxes, message",
    [
        ([[0.1, 0.2, 1.3, 0.5]], r"x2=1\.3 is not allowed"),
        ([[0.5, 0.2, 0.4, 0.5]], "x1 < x2 and y1 < y2"),
        ([[0.1, 0.6, 0.4, 0.6]], "x1 < x2 and y1 < y2"),
        ([[0.1, math.nan, 0.4, 0.5]], "y1=nan is not allowed"),
        ([[0.1, 0.2, 0.4]], r"boxes\[0\]=.* is not allowed"),
        ([[0.1, 0.2, 0.4, 0.5, "bus"]], "class='bus' is not allowed"),
        ([[0.1, 0.2, 0.3, 0.4]] * 4, "at most max_boxes=3"),
        ("0.1 0.2 0.3 0.4", "must be a list"),
        ([{"box": [0.1, 0.2, 0.3, 0.4], "colour": "red"}], "a mapping needs 'box'"),
    ],
)
def test_bad_boxes_raise_clear_errors(models: ComposeModels, boxes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compose_scene(models, boxes, "day", "low", steps=1)


def test_bad_labels_steps_and_mismatched_models(models: ComposeModels, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="time_of_day.*'dusk' is not allowed"):
        compose_scene(models, None, "dusk", "low", steps=1)
    with pytest.raises(ValueError, match="steps=0 is not allowed"):
        compose_scene(models, None, "day", "low", steps=0)
    with pytest.raises(ValueError, match="latent_scale"):
        load_compose_models(write_tiny_models(tmp_path / "mismatch", ae_scale=0.5, ldm_scale=0.9))
    with pytest.raises(FileNotFoundError):
        load_compose_models(tmp_path / "missing")


def test_box_files_json_and_yaml(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text(json.dumps({"boxes": [[0.1, 0.2, 0.3, 0.4], {"box": [0, 0, 1, 1], "class": 1}]}))
    (tmp_path / "b.yaml").write_text("- [0.1, 0.2, 0.3, 0.4, truck]\n")
    (tmp_path / "bad.json").write_text("[[0.1, 0.2,")
    layout = load_box_file(tmp_path / "b.json", max_boxes=4)
    assert layout.xyxy.shape == (2, 4) and layout.classes.tolist() == [0, 1]
    assert load_box_file(tmp_path / "b.yaml", max_boxes=4).classes.tolist() == [1]
    with pytest.raises(ValueError, match="not valid json"):
        load_box_file(tmp_path / "bad.json", max_boxes=4)
    assert len(parse_boxes([], max_boxes=1)) == 0


def test_a_folder_with_a_temporal_decoder_decodes_composed_frames_with_it(tmp_path: Path) -> None:
    from dataclasses import asdict

    from drivesim.autoencoder.config import TemporalDecoderConfig
    from drivesim.autoencoder.loading import load_autoencoder
    from drivesim.autoencoder.temporal_decoder import TemporalDecoder
    from drivesim.rollout.compose import decode_latents

    folder = write_tiny_models(tmp_path / "model")
    plain = load_compose_models(folder)
    assert plain.temporal_decoder is None
    td_cfg = TemporalDecoderConfig(temporal_levels=(0, 1))
    td = TemporalDecoder.from_autoencoder(load_autoencoder(folder), td_cfg)
    torch.manual_seed(1)
    with torch.no_grad():  # a fine-tuned decoder: spatial weights moved away from the image decoder's
        for p in td.decoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    config = {"autoencoder": asdict(TINY_AE), "temporal": asdict(td_cfg)}
    save_stage(folder, "temporal_decoder", td, config, extra={"latent_scale": 0.5})
    models = load_compose_models(folder)
    assert models.temporal_decoder is not None
    latents = torch.randn(2, 4, 8, 16)
    with_td, without = decode_latents(models, latents), decode_latents(plain, latents)
    assert with_td.shape == without.shape == (2, 16, 32, 3) and with_td.dtype == np.uint8
    assert np.abs(with_td.astype(int) - without.astype(int)).mean() > 1.0  # the temporal decoder's frames


def test_sample_layout_draws_from_the_prior_for_the_labels(models: ComposeModels, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no layout_prior stage"):
        sample_layout(models, "day", "high")
    with_prior = dataclasses.replace(models, layout_prior=random_layout_prior(16))  # more slots than the model
    gen = torch.Generator().manual_seed(0)
    low, high = sample_layout(with_prior, "day", "low", gen), sample_layout(with_prior, "night", "high", gen)
    assert len(low) == 1 and len(high) == 3  # 2c + 1 = 5 boxes, cut to the model's max_boxes = 3
    assert sample_layout(with_prior.layout_prior, None, None, gen).xyxy.shape[1] == 4
    with pytest.raises(ValueError, match="crowdedness='packed' is not allowed"):
        sample_layout(with_prior, "day", "packed")
    frame = compose_scene(with_prior, high, "night", "high", seed=1, steps=2)
    assert frame.shape == (16, 32, 3)
    path = tmp_path / "layout.json"
    path.write_text(json.dumps(layout_entries(high)))
    back = load_box_file(path, 3)
    np.testing.assert_array_equal(back.xyxy, high.xyxy)
    np.testing.assert_array_equal(back.classes, high.classes)


def test_sample_layout_composes_unboxed_first_frames_on_a_layout_from_the_prior(model_dir):
    def engine(**kw):
        return LearnedEngine(load(model_dir), EngineConfig(**FAST, **kw))

    plain, prior = engine(sample_layout=False), engine(sample_layout=True)
    assert prior.world.layout_prior is not None  # the random model folder has one
    free = [SceneRequest(0, 2, seed=4)]
    assert not np.array_equal(plain.start(free).frames, prior.start(free).frames)
    np.testing.assert_array_equal(prior.start(free).frames, prior.start(free).frames)  # seeded
    boxed = [SceneRequest(0, 2, seed=4, boxes=np.array([[0.2, 0.5, 0.4, 0.8]], np.float32))]
    np.testing.assert_array_equal(plain.start(boxed).frames, prior.start(boxed).frames)  # given boxes win
    video = np.full((2, 32, 64, 3), 90, np.uint8)
    given = [SceneRequest(0, 2, seed=4, initial_frames=video)]
    np.testing.assert_array_equal(plain.start(given).frames, prior.start(given).frames)  # nothing composed


def test_the_sampled_layout_follows_the_request_labels(model_dir):
    eng = LearnedEngine(load(model_dir), EngineConfig(**FAST, sample_layout=True))
    gens = [torch.Generator().manual_seed(s) for s in range(3)]
    requests = [SceneRequest(0, c, seed=c) for c in range(3)]
    boxes, classes = request_layouts(requests, eng.world.layout_prior, gens)
    assert [len(b) for b in boxes] == [1, 3, 5]  # random_layout_prior: 2c + 1 boxes at crowdedness c
    assert all(len(c) == len(b) for b, c in zip(boxes, classes))


def test_start_reports_the_layout_each_first_frame_was_composed_on(model_dir):
    eng = LearnedEngine(load(model_dir), EngineConfig(**FAST, sample_layout=True))
    given = np.array([[0.2, 0.5, 0.4, 0.8]], np.float32)
    video = np.full((2, 32, 64, 3), 90, np.uint8)
    requests = [
        SceneRequest(0, 2, seed=4),
        SceneRequest(1, 0, seed=5, boxes=given),
        SceneRequest(0, 1, seed=6, initial_frames=video),
    ]
    out = eng.start(requests)
    sampled, _ = request_layouts(requests[:1], eng.world.layout_prior, [torch.Generator().manual_seed(4)])
    assert len(out.layouts) == 3
    np.testing.assert_array_equal(out.layouts[0][0], sampled[0])  # the prior's draw, with its generator
    assert len(out.layouts[0][0]) == 5 == len(out.layouts[0][1])  # random_layout_prior: 2c + 1 boxes
    np.testing.assert_array_equal(out.layouts[1][0], given)
    np.testing.assert_array_equal(out.layouts[1][1], [0])  # requested boxes are cars
    assert out.layouts[2] is None  # started from user frames: nothing composed
    assert eng.step(out.state, np.zeros((3, 2), np.float32)).layouts == ()
    free = LearnedEngine(load(model_dir), EngineConfig(**FAST, sample_layout=False)).start(requests[:1])
    assert free.layouts == (None,)  # boxes unknown: the image LDM placed vehicles itself

    env = DriveWorldEnv(engine=eng, horizon_steps=5)
    _, info = env.reset(seed=0, options={"crowdedness": "high"})
    assert len(info["layout"]["boxes"]) == 5 and info["layout"]["classes"][0] in ("car", "truck")
    _, info = env.reset(seed=0, options={"boxes": given.tolist()})
    assert info["layout"]["classes"] == ["car"]
    venv = DriveWorldVectorEnv(num_envs=2, engine=eng, horizon_steps=5)
    _, vinfo = venv.reset(seed=[0, 1], options={"crowdedness": "low"})
    assert [len(x["boxes"]) for x in vinfo["layout"]] == [1, 1]
