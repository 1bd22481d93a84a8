"""The prediction-model training loop on a tiny latent cache and image-model folder (real files)."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save_file

from drivesim.autoencoder.config import AutoencoderConfig
from drivesim.autoencoder.latent_cache import CACHE_FORMAT, CACHE_VERSION, collate_latent_windows
from drivesim.autoencoder.model import Autoencoder
from drivesim.cli.main import compose
from drivesim.cli.typed_config import to_dataclass
from drivesim.diffusion.latent_idm import LatentInverseDynamics
from drivesim.diffusion.schedule import NoiseSchedule, ScheduleConfig
from drivesim.diffusion.unet import SpatialUNet, UNetConfig
from drivesim.diffusion.video_conditioning import VideoConditioning
from drivesim.diffusion.video_loading import load_image_ldm, load_video_ldm
from drivesim.diffusion.video_unet import VideoUNet, VideoUNetConfig
from drivesim.model_folder import read_folder_config
from drivesim.paths import conf_dir
from drivesim.sampling.video import VideoSamplingConfig, sample_clip
from drivesim.training.checkpoint import save_stage
from drivesim.training.clip_batch import clip_batch
from drivesim.training.init_from import init_from_stage
from drivesim.training.video_config import VideoLDMTrainConfig
from drivesim.training.video_ldm import build_video_unet, param_groups, train, window_dataset
from drivesim.training.video_loss import masked_loss

C, H, W = 4, 8, 16
UNET = dataclasses.replace(UNetConfig.tiny(), zero_init=False)

pytestmark = pytest.mark.usefixtures("one_thread")



def make_image_model(folder: Path, target: str = "eps") -> Path:
    torch.manual_seed(0)
    config = {"unet": dataclasses.asdict(UNET), "schedule": dataclasses.asdict(ScheduleConfig()), "target": target}
    save_stage(folder, "image_ldm", SpatialUNet(UNET), config)
    return folder


def make_latent_cache(root: Path, num_clips: int = 3, frames: int = 40) -> Path:
    """Clips of a bright blob moving sideways with the steering action, plus per-frame boxes."""
    (root / "latents").mkdir(parents=True)
    (root / "cache.yaml").write_text(
        yaml.safe_dump({"format": CACHE_FORMAT, "version": CACHE_VERSION, "latent_scale": 1.0})
    )
    lines = []
    for i in range(num_clips):
        steer = torch.full((frames,), 0.5 if i % 2 else -0.5)
        x = (4.0 + torch.cumsum(steer, 0)) % W
        cols = torch.arange(W).float()
        blob = torch.exp(-((cols[None, :] - x[:, None]) ** 2) / 4.0)  # (t, w)
        latents = blob[:, None, None, :].expand(frames, C, H, W).clone() * 2 - 1
        boxes = torch.stack([x / W, torch.full_like(x, 0.3), (x + 2) / W, torch.full_like(x, 0.6)], 1).clamp(0, 1)
        tensors = {
            "latents": latents,
            "actions": torch.stack([steer, torch.zeros(frames)], 1),
            "ego": torch.stack([10.0 + 5 * i + 0.1 * torch.arange(frames), *torch.zeros(2, frames)], 1),
            "box_offsets": torch.arange(frames + 1),
            "boxes": boxes,
            "box_classes": torch.zeros(frames, dtype=torch.long),
            "box_track_ids": torch.zeros(frames, dtype=torch.long),
            "boxes_labelled": torch.ones(frames, dtype=torch.bool),
        }
        save_file(tensors, str(root / "latents" / f"c{i}.safetensors"))
        lines.append(json.dumps({
            "id": f"c{i}", "latents": f"latents/c{i}.safetensors", "num_frames": frames, "fps": 30.0,
            "time_of_day": "day" if i % 2 else "night", "crowdedness": "low", "split": "train", "source": "test",
        }))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


def _cfg(tmp: Path, name: str, **overrides) -> VideoLDMTrainConfig:
    values = dict(
        latent_cache=str(tmp / "cache"), run_dir=str(tmp / name / "run"), model_dir=str(tmp / name / "model"),
        video=VideoUNetConfig.tiny(), num_frames=4, frame_stride=2, window_step=3, max_boxes=2, batch_size=2,
        max_steps=4, warmup_steps=1, checkpoint_every=1, log_every=1, lr=1e-3, num_threads=1, device="cpu",
    )
    values.update(overrides)
    return VideoLDMTrainConfig(**values)


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    make_latent_cache(tmp_path / "cache")
    return tmp_path


def _prepare(tmp: Path, cfg: VideoLDMTrainConfig) -> VideoLDMTrainConfig:
    make_image_model(Path(cfg.model_dir))
    return cfg


class Interrupt(Exception):
    pass


def test_yaml_config_is_global_and_valid():
    path = conf_dir() / "train" / "video_ldm.yaml"
    assert path.read_text().splitlines()[0] == "# @package _global_"
    cfg = to_dataclass(compose("train/video_ldm", []), VideoLDMTrainConfig)
    assert cfg.context_probs == [0.1, 0.45, 0.45] and cfg.video.temporal_layers == "attention+conv3d"
    with pytest.raises(ValueError, match="context_probs"):
        VideoLDMTrainConfig(context_probs=[0.5, 0.6])


def test_train_exports_stage_and_resume_matches_an_uninterrupted_run(workspace):
    straight = _prepare(workspace, _cfg(workspace, "straight"))
    result = train(straight)
    assert result.steps == 4 and len(result.alphas) > 0

    resumed = _prepare(workspace, _cfg(workspace, "resumed"))

    def stop(step: int) -> None:
        if step == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(resumed, after_step=stop)
    assert train(resumed).steps == 4
    a = load_video_ldm(Path(straight.model_dir))
    b = load_video_ldm(Path(resumed.model_dir))
    for (name, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
    assert a.window.num_frames == 4 and a.window.frame_stride == 2 and a.target == "eps"
    rows = [json.loads(line) for line in (Path(resumed.run_dir) / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert (Path(resumed.run_dir) / "losses.png").exists()
    z = torch.randn(1, 4, C, H, W)
    mask = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    out = sample_clip(a.model, a.schedule, a.target, z, mask, torch.Generator().manual_seed(0),
                      actions=torch.zeros(1, 4, 2), config=VideoSamplingConfig(steps=2))
    assert torch.equal(out.latents[:, 0], z[:, 0])


def test_export_stage_writes_a_further_prediction_stage_beside_video_ldm(workspace):
    plain = _prepare(workspace, _cfg(workspace, "plain", max_steps=1))
    train(plain)
    cfg = _cfg(workspace, "stride4", model_dir=plain.model_dir, max_steps=1, frame_stride=4, init_from=plain.model_dir,
               export_stage="video_ldm_stride4")  # fmt: skip
    before = load_video_ldm(Path(plain.model_dir)).model.state_dict()
    train(cfg)
    folder = Path(plain.model_dir)
    assert load_video_ldm(folder).window.frame_stride == 2  # video_ldm untouched
    assert all(torch.equal(v, before[k]) for k, v in load_video_ldm(folder).model.state_dict().items())
    further = load_video_ldm(folder, "video_ldm_stride4")
    assert further.window.frame_stride == 4
    assert any(not torch.equal(v, before[k]) for k, v in further.model.state_dict().items())  # started there, trained
    for bad in ("interpolation", "video_ldm_", "video_ldm_a-b"):
        with pytest.raises(ValueError, match="export_stage"):
            _cfg(workspace, "bad", export_stage=bad)


@pytest.mark.parametrize(
    "overrides",
    [
        {"from_scratch": True},
        {"video": VideoUNetConfig.tiny(temporal_layers="attention")},
        {"video": VideoUNetConfig.tiny(context_noise=True), "context_noise_max": 100},
    ],
    ids=["from_scratch", "attention_only", "context_noise"],
)
def test_ablations_run(workspace, overrides):
    cfg = _prepare(workspace, _cfg(workspace, "ablation", max_steps=1, **overrides))
    result = train(cfg)
    loaded = load_video_ldm(Path(cfg.model_dir))
    model = loaded.model
    assert result.steps == 1
    assert loaded.extra["context_noise_level"] == (20 if cfg.video.context_noise else 0)
    assert model.config.freeze_image == (not cfg.from_scratch)
    assert model.config.temporal_layers == cfg.video.temporal_layers


def test_few_steps_reduce_loss_on_a_tiny_overfit_set(workspace):
    cfg = _cfg(workspace, "overfit", action_drop=0.0, label_drop=0.0, box_drop=0.0)
    dataset = window_dataset(cfg, cfg.frame_stride)
    batch = clip_batch(collate_latent_windows([dataset[0], dataset[5]]), use_boxes=True)
    mask = torch.tensor([[1.0, 0, 0, 0], [1.0, 1.0, 0, 0]])
    torch.manual_seed(0)
    model = VideoUNet(SpatialUNet(UNET), cfg.video)
    schedule = NoiseSchedule()

    def held_loss() -> float:
        with torch.no_grad():
            return sum(
                float(masked_loss(model, batch, mask, schedule, "eps", torch.Generator().manual_seed(s), cfg).loss)
                for s in range(6)
            ) / 6

    before = held_loss()
    opt = torch.optim.Adam(model.trainable_parameters(), lr=3e-3)
    for step in range(40):
        loss = masked_loss(model, batch, mask, schedule, "eps", torch.Generator().manual_seed(100 + step), cfg).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = held_loss()
    assert after < 0.8 * before, (before, after)


def test_clip_batch_adapter_has_per_frame_boxes(workspace):
    cfg = _cfg(workspace, "adapter")
    dataset = window_dataset(cfg, cfg.frame_stride)
    batch = clip_batch(collate_latent_windows([dataset[0], dataset[1]]), use_boxes=True)
    assert batch.z.shape == (2, 4, C, H, W) and batch.image.batch_size == 8
    assert batch.image.box_mask.sum(1).tolist() == [1] * 8
    assert not torch.equal(batch.image.boxes[0], batch.image.boxes[1])  # the box moves between frames
    assert batch.has_actions.tolist() == [True, True] and batch.frame_rate.tolist() == [-1, -1]
    assert batch.ego_speed.shape == (2, 4) and batch.ego_speed[0].tolist() == pytest.approx([10.0, 10.2, 10.4, 10.6])
    no_boxes = clip_batch(collate_latent_windows([dataset[0]]), use_boxes=False)
    assert not bool(no_boxes.image.boxes_given.any()) and not bool(no_boxes.image.box_mask.any())


def test_action_forecast_trains_on_its_own_loss_from_a_plain_model(workspace):
    plain = _prepare(workspace, _cfg(workspace, "plain", max_steps=1))
    train(plain)
    forecast_video = VideoUNetConfig.tiny(action_forecast=True, forecast_channels=8)
    cfg = _prepare(workspace, _cfg(workspace, "forecast", max_steps=2, video=forecast_video, init_from=plain.model_dir))
    fresh = VideoUNet(SpatialUNet(UNET), forecast_video)
    fresh.image_unet.load_state_dict(load_video_ldm(Path(plain.model_dir)).model.image_unet.state_dict())
    init_from_stage(fresh, Path(plain.model_dir), "video_ldm")
    source = load_video_ldm(Path(plain.model_dir)).model.state_dict()
    assert all(torch.equal(v, source[k]) for k, v in fresh.state_dict().items() if k in source)

    train(cfg)
    rows = [json.loads(line) for line in (Path(cfg.run_dir) / "losses.jsonl").read_text().splitlines()]
    assert all(r["forecast_mse"] > 0 for r in rows) and all(r["loss"] > r["forecast_mse"] for r in rows)
    loaded = load_video_ldm(Path(cfg.model_dir)).model
    assert loaded.config.action_forecast and loaded.action_forecast is not None

    other = VideoUNet(SpatialUNet(UNET), VideoUNetConfig.tiny(context_hidden_channels=16))
    other.image_unet.load_state_dict(fresh.image_unet.state_dict())
    with pytest.raises(ValueError, match="does not fit"):
        init_from_stage(other, Path(plain.model_dir), "video_ldm")
    torch.manual_seed(5)
    with pytest.raises(ValueError, match="another image model"):
        init_from_stage(VideoUNet(SpatialUNet(UNET), forecast_video), Path(plain.model_dir), "video_ldm")
    torch.manual_seed(5)
    own_theta = VideoUNet(SpatialUNet(UNET), forecast_video)
    init_from_stage(own_theta, Path(plain.model_dir), "video_ldm", theta=True)  # theta from the stage's copy
    assert all(torch.equal(v, source[k]) for k, v in own_theta.state_dict().items() if k in source)


def test_context_noise_run_starts_from_another_stage_as_that_stage(workspace):
    plain = _prepare(workspace, _cfg(workspace, "plain", max_steps=1))
    train(plain)
    train(_cfg(workspace, "stride4", model_dir=plain.model_dir, max_steps=2, frame_stride=4,
               init_from=plain.model_dir, export_stage="video_ldm_stride4"))  # fmt: skip
    video = VideoUNetConfig.tiny(context_noise=True)
    cfg = _prepare(workspace, _cfg(workspace, "noise", max_steps=2, frame_stride=4, video=video, context_noise_max=100,
                                   init_from=plain.model_dir, init_stage="video_ldm_stride4"))  # fmt: skip
    source = load_video_ldm(Path(plain.model_dir), "video_ldm_stride4").model.eval()
    other = load_video_ldm(Path(plain.model_dir)).model.state_dict()
    fresh = VideoUNet(SpatialUNet(UNET), video)
    fresh.image_unet.load_state_dict(source.image_unet.state_dict())
    init_from_stage(fresh, Path(plain.model_dir), "video_ldm_stride4")
    state = source.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in fresh.state_dict().items() if k in state)
    assert any(not torch.equal(v, other[k]) for k, v in fresh.state_dict().items() if k in other)  # not video_ldm's
    z, tau = torch.randn(1, 4, C, H, W), torch.tensor([500])
    cond = VideoConditioning.create(1, 4, (C, H, W), context_latents=z, context_mask=torch.tensor([[1.0, 0, 0, 0]]),
                                    context_noise_level=torch.tensor([80]), actions=torch.rand(1, 4, 2))  # fmt: skip
    with torch.no_grad():  # the zero-initialised level embedding: told tau_c, it answers as the source stage
        assert torch.allclose(fresh.eval()(z, tau, cond), source(z, tau, dataclasses.replace(
            cond, context_noise_level=torch.tensor([0]))), atol=1e-6)  # fmt: skip
    with pytest.raises(FileNotFoundError, match="video_ldm_stride8"):  # train reads init_stage, not video_ldm
        train(dataclasses.replace(cfg, init_stage="video_ldm_stride8", run_dir=str(workspace / "missing")))
    train(cfg)
    loaded = load_video_ldm(Path(cfg.model_dir)).model
    assert float(loaded.noise_level_embedding.mlp[-1].weight.abs().max()) > 0  # zero at init_from, trained


def test_speed_conditioning_trains_from_a_plain_model_and_reads_the_window_speeds(workspace):
    plain = _prepare(workspace, _cfg(workspace, "plain", max_steps=1))
    train(plain)
    video = VideoUNetConfig.tiny(action_forecast=True, forecast_channels=8, speed_conditioning=True)
    cfg = _prepare(workspace, _cfg(workspace, "speed", max_steps=3, video=video, init_from=plain.model_dir))
    train(cfg)
    loaded = load_video_ldm(Path(cfg.model_dir)).model
    assert loaded.config.speed_conditioning and loaded.speed_embedding is not None
    moved = [loaded.speed_embedding.mlp[-1].weight, loaded.action_forecast.speed_stem.weight]
    assert all(float(w.detach().abs().max()) > 0 for w in moved)  # zero at init_from, trained on the speeds
    batch = clip_batch(collate_latent_windows([window_dataset(cfg, cfg.frame_stride)[0]]), use_boxes=False)
    gen = torch.Generator().manual_seed(0)
    mask = torch.tensor([[1.0, 0, 0, 0]])
    slow = masked_loss(loaded, batch, mask, NoiseSchedule(), "v", gen, cfg).loss
    fast_batch = dataclasses.replace(batch, ego_speed=batch.ego_speed + 20.0)
    fast = masked_loss(loaded, fast_batch, mask, NoiseSchedule(), "v", torch.Generator().manual_seed(0), cfg).loss
    assert float(slow.detach()) != float(fast.detach())  # the loss sees the window's speeds


def test_ego_warp_trains_from_a_plain_model_with_the_interval_from_the_data(workspace):
    plain = _prepare(workspace, _cfg(workspace, "plain", max_steps=1))
    train(plain)
    ae_cfg = AutoencoderConfig(base_channels=16, decoder_res_blocks=1)  # f = 4: 8 x 16 latents, 32 x 64 frames
    video = VideoUNetConfig.tiny(ego_warp=True)
    cfg = _prepare(workspace, _cfg(workspace, "warp", max_steps=3, video=video, init_from=plain.model_dir))
    with pytest.raises(FileNotFoundError, match="stage 'autoencoder' needs"):
        train(cfg)  # the warp decodes and encodes with model_dir's autoencoder
    torch.manual_seed(0)
    save_stage(Path(cfg.model_dir), "autoencoder", Autoencoder(ae_cfg), ae_cfg, extra={"latent_scale": 2.0})
    with pytest.raises(ValueError, match="latent scale 2.00000 but latent cache"):
        train(cfg)
    save_stage(Path(cfg.model_dir), "autoencoder", Autoencoder(ae_cfg), ae_cfg, extra={"latent_scale": 1.0})
    train(cfg)
    loaded = load_video_ldm(Path(cfg.model_dir)).model
    assert loaded.config.ego_warp and loaded.config.warp_interval == pytest.approx(2 / 30.0)  # frame_stride / fps
    assert float(loaded.warp_encoder.out[0].weight.abs().max()) > 0  # zero at init_from, trained on the warp
    own = dataclasses.replace(cfg, own_context=1.0, max_steps=2, run_dir=str(workspace / "runs" / "warp_own"))
    assert train(own).steps == 2  # own-rollout context with the warp (drivesim.training.own_context)


def test_masked_loss_adds_the_weighted_forecast_error(workspace):
    cfg = _cfg(workspace, "weighted", video=VideoUNetConfig.tiny(action_forecast=True), forecast_weight=0.5,
               action_drop=0.0, label_drop=0.0, box_drop=0.0)
    dataset = window_dataset(cfg, cfg.frame_stride)
    batch = clip_batch(collate_latent_windows([dataset[0], dataset[5]]), use_boxes=True)
    torch.manual_seed(0)
    model = VideoUNet(SpatialUNet(UNET), cfg.video)
    mask = torch.tensor([[1.0, 0, 0, 0], [1.0, 1.0, 0, 0]])
    parts = masked_loss(model, batch, mask, NoiseSchedule(), "eps", torch.Generator().manual_seed(0), cfg, model)
    assert parts.forecast is not None and float(parts.forecast.detach()) > 0
    torch.testing.assert_close(parts.loss, parts.diffusion.loss + 0.5 * parts.forecast)
    plain = masked_loss(model, batch, mask, NoiseSchedule(), "eps", torch.Generator().manual_seed(0), cfg)
    assert plain.forecast is None and torch.equal(plain.loss, parts.diffusion.loss)


def test_masked_loss_adds_the_idm_fit_and_the_weighted_action_consistency(workspace):
    cfg = _cfg(workspace, "consistency", action_drop=0.0, label_drop=0.0, box_drop=0.0)
    dataset = window_dataset(cfg, cfg.frame_stride)
    batch = clip_batch(collate_latent_windows([dataset[0], dataset[5]]), use_boxes=True)
    torch.manual_seed(0)
    model = VideoUNet(SpatialUNet(UNET), cfg.video)
    idm = LatentInverseDynamics(C, channels=8)
    mask = torch.tensor([[1.0, 0, 0, 0], [1.0, 1.0, 0, 0]])
    args = (model, batch, mask, NoiseSchedule(), "eps", torch.Generator().manual_seed(0), cfg, model, idm)
    parts = masked_loss(*args, 0.5)
    assert parts.idm_fit is not None and parts.consistency is not None
    torch.testing.assert_close(parts.loss, parts.diffusion.loss + parts.idm_fit + 0.5 * parts.consistency)
    parts.consistency.backward()  # the score trains the model, never g
    assert all(p.grad is None for p in idm.parameters())
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.trainable_parameters())
    model.zero_grad(set_to_none=True)
    parts.idm_fit.backward()  # the fit trains g, never the model
    assert all(p.grad is not None for p in idm.parameters())
    assert all(p.grad is None for p in model.trainable_parameters())
    off = masked_loss(*args, 0.0)
    assert off.consistency is None
    torch.testing.assert_close(off.loss, off.diffusion.loss + off.idm_fit)


def test_action_consistency_training_resumes_with_its_inverse_dynamics_model(workspace):
    extra = dict(max_steps=3, action_consistency_weight=1.0, action_consistency_start=1)
    straight = _prepare(workspace, _cfg(workspace, "idm_straight", **extra))
    train(straight)
    resumed = _prepare(workspace, _cfg(workspace, "idm_resumed", **extra))

    def stop(step: int) -> None:
        if step == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(resumed, after_step=stop)
    assert sorted(Path(resumed.run_dir).glob("checkpoints/*/idm.safetensors"))  # g is checkpointed with the run
    assert train(resumed).steps == 3
    a, b = load_video_ldm(Path(straight.model_dir)).model, load_video_ldm(Path(resumed.model_dir)).model
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
    rows = [json.loads(line) for line in (Path(straight.run_dir) / "losses.jsonl").read_text().splitlines()]
    assert all(r["idm_fit"] > 0 for r in rows) and "consistency" in rows[-1]
    with pytest.raises(ValueError, match="action_consistency_weight"):
        _cfg(workspace, "bad", action_consistency_weight=-1.0)


def test_consistency_on_forecast_switch_scores_the_forecast_too(workspace):
    video = VideoUNetConfig.tiny(action_forecast=True, forecast_channels=8)
    common = dict(video=video, action_drop=0.0, label_drop=0.0, box_drop=0.0)
    both = _cfg(workspace, "both", **common)
    only_x0 = _cfg(workspace, "only_x0", consistency_on_forecast=False, **common)
    dataset = window_dataset(both, both.frame_stride)
    batch = clip_batch(collate_latent_windows([dataset[0], dataset[5]]), use_boxes=True)
    torch.manual_seed(0)
    model, idm = VideoUNet(SpatialUNet(UNET), video), LatentInverseDynamics(C, channels=8)
    mask = torch.tensor([[1.0, 0, 0, 0], [1.0, 1.0, 0, 0]])
    scores = [
        masked_loss(model, batch, mask, NoiseSchedule(), "eps", torch.Generator().manual_seed(0), cfg, model, idm, 1.0)
        .consistency.detach()
        for cfg in (both, only_x0)
    ]
    assert float(scores[0]) > float(scores[1]) > 0


def _spy_loss_weights(monkeypatch) -> list:
    """Replace the video trainer's diffusion loss by a spy; the returned list collects each call's loss weights,
    broadcast to the latents' shape (b, t, c, h, w)."""
    from drivesim.training import video_loss as video_module

    seen = []

    def spy(model, x0, cond, schedule, generator, target, weight):
        seen.append(torch.broadcast_to(weight, x0.shape))
        return video_module.DiffusionLoss(x0.sum() * 0, x0.new_zeros(x0.shape[0]), x0.new_zeros(x0.shape[0]), x0)

    monkeypatch.setattr(video_module, "diffusion_loss", spy)
    return seen


def test_road_weight_weighs_the_road_rows_of_the_frames_to_predict(workspace, monkeypatch):
    from drivesim.diffusion.ego_warp import ground_rows

    seen = _spy_loss_weights(monkeypatch)
    cfg = _cfg(workspace, "road")
    batch = clip_batch(collate_latent_windows([window_dataset(cfg, cfg.frame_stride)[0]]), use_boxes=True)
    mask = torch.tensor([[1.0, 0, 0, 0]])
    for w in (1.0, 3.0):
        masked_loss(None, batch, mask, NoiseSchedule(), "eps", torch.Generator().manual_seed(0),
                    dataclasses.replace(cfg, road_weight=w))  # fmt: skip
    plain, weighted = seen
    road = ground_rows(H, cfg.video.camera())
    assert 0 < int(road.sum()) < H
    assert (plain[:, 0] == 0).all() and (weighted[:, 0] == 0).all()  # the given frame is not in the loss
    assert (plain[:, 1:] == 1).all()
    assert (weighted[:, 1:, :, road] == 3).all() and (weighted[:, 1:, :, ~road] == 1).all()
    with pytest.raises(ValueError, match="road_weight=0.5 must be >= 1"):
        dataclasses.replace(cfg, road_weight=0.5)


def test_box_weight_weighs_the_cells_under_each_frames_vehicle_boxes(workspace, monkeypatch):
    from drivesim.diffusion.box_loss_weight import latent_box_mask

    seen = _spy_loss_weights(monkeypatch)
    cfg = _cfg(workspace, "boxes")
    batch = clip_batch(collate_latent_windows([window_dataset(cfg, cfg.frame_stride)[0]]), use_boxes=True)
    t = batch.z.shape[1]
    cells = latent_box_mask(batch.image.boxes, batch.image.box_mask, H, W).reshape(1, t, H, W)  # (b t) -> 1 t
    assert cells[0, 1:].any() and not cells[0, 1:].all()  # the frames to predict have boxes, not everywhere
    mask = torch.tensor([[1.0] + [0.0] * (t - 1)])
    for w in (1.0, 4.0):
        masked_loss(None, batch, mask, NoiseSchedule(), "eps", torch.Generator().manual_seed(0),
                    dataclasses.replace(cfg, box_weight=w))  # fmt: skip
    plain, weighted = seen
    assert (weighted[:, 0] == 0).all() and (plain[:, 1:] == 1).all()  # the given frame is not in the loss
    under = cells[:, 1:, None].expand(-1, -1, weighted.shape[2], -1, -1)  # b t-1 c h w
    assert (weighted[:, 1:][under] == 4).all() and (weighted[:, 1:][~under] == 1).all()
    with pytest.raises(ValueError, match="box_weight=0.5 must be >= 1"):
        dataclasses.replace(cfg, box_weight=0.5)
    with pytest.raises(ValueError, match="box_weight=4.0 needs use_boxes=true"):
        dataclasses.replace(cfg, box_weight=4.0, use_boxes=False)


def test_a_clean_context_model_trains_and_loads_with_its_switch(workspace):
    cfg = _prepare(workspace, _cfg(workspace, "clean", video=VideoUNetConfig.tiny(clean_context=True), max_steps=2))
    assert train(cfg).steps == 2
    loaded = load_video_ldm(Path(cfg.model_dir), "video_ldm")
    assert loaded.model.config.clean_context
    with pytest.raises(ValueError, match="loss_on_context needs video.clean_context=false"):
        dataclasses.replace(cfg, loss_on_context=True)


def test_theta_lr_fine_tunes_the_image_unet_in_its_own_group_at_the_scaled_rate(workspace):
    cfg = _prepare(workspace, _cfg(workspace, "theta", theta_lr=0.1, max_steps=2))
    image = load_image_ldm(Path(cfg.model_dir)).unet.state_dict()
    model = build_video_unet(load_image_ldm(Path(cfg.model_dir)), cfg)
    phi, theta = param_groups(model, cfg)
    assert {id(p) for p in theta["params"]} == {id(p) for p in model.image_unet.parameters()}
    assert not {id(p) for p in theta["params"]} & {id(p) for p in phi["params"]}
    assert (phi["lr_scale"], theta["lr_scale"]) == (1.0, 0.1)
    frozen = build_video_unet(load_image_ldm(Path(cfg.model_dir)), dataclasses.replace(cfg, theta_lr=0.0))
    (only,) = param_groups(frozen, dataclasses.replace(cfg, theta_lr=0.0))
    assert not {id(p) for p in only["params"]} & {id(p) for p in frozen.image_unet.parameters()}

    assert train(cfg).steps == 2
    loaded = load_video_ldm(Path(cfg.model_dir))
    assert not loaded.model.config.freeze_image and loaded.extra["theta_lr"] == 0.1
    moved = [k for k, v in loaded.model.image_unet.state_dict().items() if not torch.equal(v, image[k])]
    assert moved  # theta trained and the stage carries it
    run = sorted(Path(cfg.run_dir).joinpath("checkpoints").iterdir())[-1]
    groups = json.loads((run / "state.json").read_text())["optimizers"]["opt"]["param_groups"]
    assert groups[1]["lr"] == pytest.approx(0.1 * groups[0]["lr"]) and groups[0]["lr"] > 0


def test_theta_lr_is_checked():
    with pytest.raises(ValueError, match="theta_lr=-0.1 must be >= 0"):
        VideoLDMTrainConfig(theta_lr=-0.1)
    with pytest.raises(ValueError, match="theta_lr=0.5 needs from_scratch=false"):
        VideoLDMTrainConfig(theta_lr=0.5, from_scratch=True)


def test_a_stage_records_its_recipe_and_the_chain_of_stages_it_started_from(workspace):
    first = _prepare(workspace, _cfg(workspace, "first", max_steps=1, box_drop=0.1, seed=0))
    train(first)
    assert read_folder_config(Path(first.model_dir))["video_ldm"]["extra"]["train_config"]["box_drop"] == 0.1
    assert "init_from" not in read_folder_config(Path(first.model_dir))["video_ldm"]["extra"]
    # trained on in place (init_from is the folder it overwrites), then rerun when finished: the lineage is the
    # stage it started from, read at the start, not its own export
    second = _cfg(workspace, "second", model_dir=first.model_dir, init_from=first.model_dir, max_steps=1,
                  box_drop=1.0, box_weight=3.0, seed=3)  # fmt: skip
    for _ in range(2):
        train(second)
        extra = read_folder_config(Path(first.model_dir))["video_ldm"]["extra"]
        assert extra["train_config"]["box_drop"] == 1.0 and extra["train_config"]["seed"] == 3
        assert extra["init_from"]["folder"] == first.model_dir and extra["init_from"]["stage"] == "video_ldm"
        assert extra["init_from"]["extra"]["train_config"]["box_drop"] == 0.1
        assert "init_from" not in extra["init_from"]["extra"] and "alphas" not in extra["init_from"]["extra"]
    third = _prepare(workspace, _cfg(workspace, "third", init_from=first.model_dir, max_steps=1,
                                     export_stage="video_ldm_x"))  # fmt: skip
    train(third)
    chain = read_folder_config(Path(third.model_dir))["video_ldm_x"]["extra"]["init_from"]
    assert chain["extra"]["train_config"]["seed"] == 3
    assert chain["extra"]["init_from"]["extra"]["train_config"]["seed"] == 0
