"""The image-LDM training loop on a tiny latent cache written to tmp (real files)."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from drivesim.autoencoder.latent_cache import CACHE_FORMAT, CACHE_VERSION
from drivesim.cli.typed_config import UsageError, to_dataclass
from drivesim.diffusion.conditioning import Conditioning
from drivesim.diffusion.image_model import ImageLDM
from drivesim.diffusion.unet import UNetConfig
from drivesim.model_folder import read_folder_config
from drivesim.paths import conf_dir
from drivesim.sampling.image import sample_image
from drivesim.training.image_ldm import ImageLDMTrainConfig, load_latent_frames, train, validation_loss

C, H, W = 4, 8, 16
UNET = dataclasses.asdict(dataclasses.replace(UNetConfig.tiny(), box_conditioning="layout"))


pytestmark = pytest.mark.usefixtures("one_thread")


def make_latent_cache(root: Path, frames: int = 6) -> Path:
    """Two train clips (day / night) and one val clip; a bright square latent where the box is."""
    (root / "latents").mkdir(parents=True)
    meta = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "latent_scale": 0.5, "checkpoint": ""}
    (root / "cache.yaml").write_text(yaml.safe_dump(meta))
    lines = []
    for i, (tod, split) in enumerate([("day", "train"), ("night", "train"), ("day", "val")]):
        g = torch.Generator().manual_seed(i)
        latents = torch.full((frames, C, H, W), 1.0 if tod == "day" else -1.0)
        boxes = []
        for t in range(frames):
            x = int(torch.randint(0, W - 4, (1,), generator=g))
            latents[t, :, 2:6, x : x + 4] = 3.0
            boxes.append([x / W, 2 / H, (x + 4) / W, 6 / H])
        tensors = {
            "latents": latents,
            "box_offsets": torch.arange(frames + 1),
            "boxes": torch.tensor(boxes),
            "box_classes": torch.zeros(frames, dtype=torch.long),
            "box_track_ids": torch.zeros(frames, dtype=torch.long),
            "boxes_labelled": torch.ones(frames, dtype=torch.bool),
        }
        save_file(tensors, str(root / "latents" / f"c{i}.safetensors"))
        record = {
            "id": f"c{i}", "latents": f"latents/c{i}.safetensors", "num_frames": frames, "fps": 30.0,
            "time_of_day": tod, "crowdedness": "low", "split": split, "source": "test",
        }
        lines.append(json.dumps(record))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


def _cfg(tmp: Path, name: str, **overrides) -> ImageLDMTrainConfig:
    values = dict(
        latent_cache=str(tmp / "cache"), run_dir=str(tmp / name / "run"), model_dir=str(tmp / name / "model"),
        unet=UNET, max_boxes=2, batch_size=4, max_steps=4, warmup_steps=1, checkpoint_every=2, eval_every=100,
        log_every=1, lr=2e-3, preview_every=0, num_threads=1, device="cpu", val_frames=4,
    )
    values.update(overrides)
    return ImageLDMTrainConfig(**values)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_latent_cache(tmp_path_factory.mktemp("ildm") / "cache")


def test_latent_frames_scaled_with_labels_and_boxes(cache: Path) -> None:
    frames = load_latent_frames(cache, "train", 1, 2, UNetConfig.tiny())
    assert frames.latents.shape == (12, C, H, W)
    assert frames.latent_scale == 0.5
    assert torch.allclose(frames.latents[0, 0, 0, 0], torch.tensor(0.5))  # 1.0 * latent_scale
    assert frames.time_of_day.tolist() == [0] * 6 + [1] * 6
    assert frames.box_mask[:, 0].all() and not frames.box_mask[:, 1].any()
    assert frames.boxes_given.all()


def test_training_reduces_loss_and_exports_stage(cache: Path, tmp_path: Path) -> None:
    (tmp_path / "cache").symlink_to(cache)
    cfg = _cfg(tmp_path, "fit", max_steps=30, checkpoint_every=30, lr=3e-3, ema_decay=0.5, split="train")
    frames = load_latent_frames(cache, "train", 1, 2, cfg.unet_config())
    untrained = ImageLDM.build(
        cfg.unet_config(), cfg.schedule_config(), cfg.target, _geometry(frames.latent_scale), 2
    )
    before = validation_loss(untrained, frames)
    result = train(cfg)
    trained = ImageLDM.from_folder(result.model_dir)
    after = validation_loss(trained, frames)
    assert result.steps == 30
    assert after < 0.75 * before, (before, after)
    assert trained.latent.scale == 0.5 and (trained.latent.height, trained.latent.width) == (H, W)
    saved = yaml.safe_load((result.model_dir / "config.yaml").read_text())["image_ldm"]
    assert saved["config"]["target"] == "v" and saved["extra"]["steps"] == 30
    assert (Path(cfg.run_dir) / "losses.png").is_file()
    # the exported model samples latents of the training geometry
    cond = Conditioning.from_labels(["day", "night"], ["low", None], [None, None], [None, None])
    z = sample_image(trained, cond, steps=3, guidance=2.0, generator=torch.Generator().manual_seed(0))
    assert z.shape == (2, C, H, W) and torch.isfinite(z).all()


def _geometry(scale: float):
    from drivesim.diffusion.image_model import LatentGeometry

    return LatentGeometry(C, H, W, scale)


class _Interrupt(Exception):
    pass


def test_resume_continues_at_the_same_step_and_matches_uninterrupted(cache: Path, tmp_path: Path) -> None:
    (tmp_path / "cache").symlink_to(cache)
    full = train(_cfg(tmp_path, "full"))

    def stop_at_3(step: int) -> None:
        if step == 3:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(_cfg(tmp_path, "resumed"), after_step=stop_at_3)
    ckpts = sorted((tmp_path / "resumed" / "run" / "checkpoints").iterdir())
    assert [p.name for p in ckpts] == ["step_00000002"]
    steps_seen: list[int] = []
    resumed = train(_cfg(tmp_path, "resumed"), after_step=steps_seen.append)
    assert steps_seen == [3, 4]  # continued after the step-2 checkpoint
    assert resumed.steps == full.steps == 4
    a = load_file(str(full.model_dir / "image_ldm.safetensors"))
    b = load_file(str(resumed.model_dir / "image_ldm.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
    rows = [json.loads(x) for x in (tmp_path / "resumed" / "run" / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4]
    # a new run initialised from the exported model starts from its weights
    tuned = train(_cfg(tmp_path, "tuned", init_from=str(full.model_dir), max_steps=1, lr=1e-12, warmup_steps=1))
    c = load_file(str(tuned.model_dir / "image_ldm.safetensors"))
    for k in a:
        torch.testing.assert_close(c[k], a[k], rtol=1e-4, atol=1e-6, msg=k)
    assert read_folder_config(tuned.model_dir)["image_ldm"]["extra"]["init_from"] == str(full.model_dir)
    assert read_folder_config(full.model_dir)["image_ldm"]["extra"]["init_from"] is None
    with pytest.raises(ValueError, match="UNetConfig"):
        other = dict(UNET, base_channels=8)
        train(_cfg(tmp_path, "bad_init", init_from=str(full.model_dir), unet=other, max_steps=1))


def test_config_yaml_composes_and_rejects_bad_values() -> None:
    text = (conf_dir() / "train" / "image_ldm.yaml").read_text()
    assert text.startswith("# @package _global_")
    from drivesim.cli.main import compose

    cfg = compose("train/image_ldm", ["unet=tiny", "max_steps=7"])
    config = to_dataclass(cfg, ImageLDMTrainConfig)
    assert config.max_steps == 7 and config.unet_config().base_channels == UNetConfig.tiny().base_channels
    for override, message in [("target=x0", "target"), ("+unet.bogus=1", "unknown UNetConfig keys"),
                              ("label_drop=1.5", "label_drop"), ("unet.box_conditioning=grid", "box_conditioning")]:
        with pytest.raises((ValueError, UsageError), match=message):
            to_dataclass(compose("train/image_ldm", [override]), ImageLDMTrainConfig)


def test_box_weight_weighs_the_cells_under_the_true_boxes_even_when_dropped(cache: Path, tmp_path: Path) -> None:
    from drivesim.training.distributed import SINGLE
    from drivesim.training.image_ldm import _sample_batch

    (tmp_path / "cache").symlink_to(cache)
    cfg = _cfg(tmp_path, "bw", box_weight=4.0, box_drop=1.0, max_steps=2)
    frames = load_latent_frames(cache, "train", 1, 2, cfg.unet_config())
    x0, cond, weight, _ = _sample_batch(frames, cfg, 0, SINGLE)
    assert weight is not None and weight.shape == (4, 1, H, W)
    assert not cond.box_mask.any()  # every sample's boxes dropped from the conditioning ...
    assert torch.equal(weight[:, 0] == 4.0, x0[:, 0] == 1.5)  # ... the weights still mark its car (3.0 * scale)
    assert _sample_batch(frames, _cfg(tmp_path, "plain"), 0, SINGLE)[2] is None
    assert train(cfg).steps == 2
    with pytest.raises(ValueError, match="box_weight"):
        _cfg(tmp_path, "bad", box_weight=0.0)
