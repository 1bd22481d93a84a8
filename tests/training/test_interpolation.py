"""The interpolation training loop on a tiny latent cache and image-model folder (real files)."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save_file

from drivesim.autoencoder.latent_cache import CACHE_FORMAT, CACHE_VERSION
from drivesim.cli.main import compose
from drivesim.cli.typed_config import to_dataclass
from drivesim.diffusion.schedule import ScheduleConfig
from drivesim.diffusion.unet import SpatialUNet, UNetConfig
from drivesim.diffusion.video_loading import load_video_ldm
from drivesim.diffusion.video_unet import VideoUNetConfig
from drivesim.paths import conf_dir
from drivesim.sampling.interpolation import interpolate
from drivesim.sampling.video import VideoSamplingConfig
from drivesim.training.checkpoint import save_stage
from drivesim.training.interpolation import InterpolationTrainConfig, interpolation_mask, train

C, H, W = 4, 8, 16
UNET = dataclasses.replace(UNetConfig.tiny(), zero_init=False)

pytestmark = pytest.mark.usefixtures("one_thread")



def _workspace(root: Path, frames: int = 40) -> Path:
    torch.manual_seed(0)
    config = {"unet": dataclasses.asdict(UNET), "schedule": dataclasses.asdict(ScheduleConfig()), "target": "v"}
    save_stage(root / "model", "image_ldm", SpatialUNet(UNET), config)
    cache = root / "cache"
    (cache / "latents").mkdir(parents=True)
    (cache / "cache.yaml").write_text(
        yaml.safe_dump({"format": CACHE_FORMAT, "version": CACHE_VERSION, "latent_scale": 0.5})
    )
    lines = []
    for i in range(2):
        phase = torch.arange(frames).float()[:, None, None, None] * 0.2 + i
        latents = torch.sin(phase + torch.arange(W).float() / 3).expand(frames, C, H, W).contiguous()
        actions = torch.stack([torch.sin(phase.flatten()), torch.zeros(frames)], 1)
        ego = torch.stack([10.0 + 5 * i + 0.1 * torch.arange(frames), *torch.zeros(2, frames)], 1)  # speed first
        tensors = {"latents": latents, "actions": actions, "ego": ego}
        save_file(tensors, str(cache / "latents" / f"c{i}.safetensors"))
        lines.append(json.dumps({
            "id": f"c{i}", "latents": f"latents/c{i}.safetensors", "num_frames": frames, "fps": 30.0,
            "time_of_day": "day", "crowdedness": "high", "split": "train", "source": "test",
        }))
    (cache / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


def _cfg(root: Path, **overrides) -> InterpolationTrainConfig:
    values = dict(
        latent_cache=str(root / "cache"), run_dir=str(root / "run"), model_dir=str(root / "model"),
        video=VideoUNetConfig.tiny(num_frame_rates=2, use_actions=False), num_frames=5, factor=4,
        frame_stride=1, window_step=5, max_boxes=2, batch_size=4, max_steps=3, warmup_steps=1,
        checkpoint_every=2, log_every=1, num_threads=1, device="cpu",
    )
    values.update(overrides)
    return InterpolationTrainConfig(**values)


def test_yaml_config_is_global_and_valid():
    path = conf_dir() / "train" / "interpolation.yaml"
    assert path.read_text().splitlines()[0] == "# @package _global_"
    cfg = to_dataclass(compose("train/interpolation", []), InterpolationTrainConfig)
    assert cfg.num_frames == 9 and cfg.factor == 4 and cfg.video.num_frame_rates == 2
    assert [cfg.stride_of_rate(r) for r in range(2)] == [4, 1]


def test_config_validation():
    with pytest.raises(ValueError, match="num_frames"):
        InterpolationTrainConfig(num_frames=8)
    with pytest.raises(ValueError, match="rate_probs"):
        InterpolationTrainConfig(rate_probs=[1.0])


def test_interpolation_mask_marks_keyframes_or_nothing():
    mask = interpolation_mask(3, 9, 4, torch.tensor([False, True, False]))
    assert mask[0].nonzero().flatten().tolist() == [0, 4, 8]
    assert float(mask[1].sum()) == 0.0 and torch.equal(mask[2], mask[0])


def test_train_both_rates_resume_and_interpolate(tmp_path):
    cfg = _cfg(_workspace(tmp_path))

    class Interrupt(Exception):
        pass

    def stop(step: int) -> None:
        if step == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(cfg, after_step=stop)
    result = train(cfg)
    assert result.steps == 3
    loaded = load_video_ldm(Path(cfg.model_dir), "interpolation")
    assert loaded.window.keyframe_spacing == 4 and loaded.window.num_frames == 5 and loaded.target == "v"
    assert loaded.window.keys_per_window == 2
    assert loaded.model.config.num_frame_rates == 2 and loaded.model.frame_rate_embedding is not None
    keyframes = torch.randn(1, 3, C, H, W)
    for rate in (0, 1):
        out = interpolate(
            loaded.model, loaded.schedule, loaded.target, keyframes, torch.Generator().manual_seed(0),
            frame_rate=rate, keys_per_window=loaded.window.keys_per_window, config=VideoSamplingConfig(steps=2),
        )
        assert out.latents.shape == (1, 9, C, H, W) and torch.equal(out.latents[:, ::4], keyframes)


def test_a_plain_interpolation_model_learns_actions_and_speed_from_where_it_stopped(tmp_path):
    """init_from with zero-initialised action and speed embeddings starts as the loaded model,
    then trains the new embeddings on the windows' actions and speeds."""
    from drivesim.diffusion.video_conditioning import VideoConditioning
    from drivesim.diffusion.video_unet import VideoUNet
    from drivesim.training.init_from import init_from_stage

    root = _workspace(tmp_path)
    plain = _cfg(root, max_steps=1)
    train(plain)
    video = VideoUNetConfig.tiny(num_frame_rates=2, speed_conditioning=True, zero_init_actions=True)
    fresh = VideoUNet(SpatialUNet(UNET), video).eval()
    init_from_stage(fresh, Path(plain.model_dir), "interpolation", theta=True)
    loaded = load_video_ldm(Path(plain.model_dir), "interpolation").model.eval()
    z, tau = torch.randn(1, 5, C, H, W), torch.tensor([500])
    cond = VideoConditioning.create(1, 5, (C, H, W), actions=torch.full((1, 5, 2), 0.5), frame_rate=0,
                                    ego_speed=torch.full((1, 5), 30.0))  # fmt: skip
    blind = VideoConditioning.create(1, 5, (C, H, W), frame_rate=0)
    with torch.no_grad():
        torch.testing.assert_close(fresh(z, tau, cond), loaded(z, tau, blind))
    with pytest.raises(ValueError, match="zero_init_actions"):
        init_from_stage(VideoUNet(SpatialUNet(UNET), dataclasses.replace(video, zero_init_actions=False)),
                        Path(plain.model_dir), "interpolation", theta=True)  # fmt: skip
    tuned = _cfg(root, model_dir=str(tmp_path / "tuned"), run_dir=str(tmp_path / "run2"), video=video,
                 init_from=plain.model_dir, init_theta=True, max_steps=2, action_drop=0.0)  # fmt: skip
    save_stage(tmp_path / "tuned", "image_ldm", SpatialUNet(UNET), {"unet": dataclasses.asdict(UNET),
               "schedule": dataclasses.asdict(ScheduleConfig()), "target": "v"})  # fmt: skip
    train(tuned)
    model = load_video_ldm(tmp_path / "tuned", "interpolation").model
    moved = [model.action_embedding.mlp[-1].weight, model.speed_embedding.mlp[-1].weight]
    assert all(float(w.detach().abs().max()) > 0 for w in moved)  # zero at init_from, trained


def test_a_blend_residual_model_trains_saves_and_loads_with_its_shift(tmp_path):
    video = VideoUNetConfig.tiny(num_frame_rates=2, use_actions=False, blend_residual=True)
    cfg = _cfg(_workspace(tmp_path), video=video, max_steps=1)
    train(cfg)
    loaded = load_video_ldm(Path(cfg.model_dir), "interpolation")
    assert loaded.model.config.blend_residual and loaded.model.blend_shift is not None
    keyframes = torch.randn(1, 3, C, H, W)
    out = interpolate(loaded.model, loaded.schedule, loaded.target, keyframes, torch.Generator().manual_seed(0),
                      frame_rate=1, keys_per_window=2, config=VideoSamplingConfig(steps=2))  # fmt: skip
    assert torch.equal(out.latents[:, ::4], keyframes) and bool(torch.isfinite(out.latents).all())
