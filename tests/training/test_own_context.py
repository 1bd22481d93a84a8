"""Own-rollout context: the window's context frames replaced by the model's own prediction."""

import dataclasses
from pathlib import Path

import pytest
import torch

from drivesim.autoencoder.latent_cache import collate_latent_windows
from drivesim.diffusion.schedule import NoiseSchedule, ScheduleConfig
from drivesim.diffusion.unet import SpatialUNet
from drivesim.diffusion.video_loading import load_video_ldm
from drivesim.diffusion.video_unet import VideoUNet, VideoUNetConfig
from drivesim.training.clip_batch import clip_batch
from drivesim.training.own_context import frames_of, own_context, predicted_chain, predicted_from_lead
from drivesim.training.video_config import VideoLDMTrainConfig
from drivesim.training.video_ldm import train, window_dataset
from tests.training.test_video_ldm import UNET, Interrupt, _cfg, _prepare, make_latent_cache

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    make_latent_cache(tmp_path / "cache")
    return tmp_path


def _lead_batch(workspace: Path, clips: int = 3, lead: int = 1):
    cfg = _cfg(workspace, "lead")
    dataset = window_dataset(cfg, cfg.frame_stride, lead=lead)
    return clip_batch(collate_latent_windows([dataset[i] for i in range(clips)]), use_boxes=True)


def _model() -> VideoUNet:
    torch.manual_seed(0)
    return VideoUNet(SpatialUNet(UNET), VideoUNetConfig.tiny(zero_init=False)).eval()


def test_the_lead_dataset_has_one_frame_more_and_frames_of_cuts_every_per_frame_field(workspace):
    batch = _lead_batch(workspace)  # 4 frames + 1 lead at stride 2
    assert batch.z.shape[:2] == (3, 5) and batch.image.batch_size == 15
    window = frames_of(batch, 1, 5)
    assert torch.equal(window.z, batch.z[:, 1:]) and torch.equal(window.actions, batch.actions[:, 1:])
    assert torch.equal(window.ego_speed, batch.ego_speed[:, 1:])
    boxes = batch.image.boxes.reshape(3, 5, *batch.image.boxes.shape[1:])
    assert torch.equal(window.image.boxes, boxes[:, 1:].reshape(12, *boxes.shape[2:]))
    assert window.image.time_of_day.tolist() == batch.image.time_of_day.reshape(3, 5)[:, 1:].flatten().tolist()
    with pytest.raises(ValueError, match="not inside"):
        frames_of(batch, 2, 6)


def test_own_context_puts_the_models_prediction_in_the_context_frames_only(workspace):
    batch, model, schedule = _lead_batch(workspace), _model(), NoiseSchedule(ScheduleConfig())
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    out = own_context(model, batch, mask, schedule, "eps", torch.Generator().manual_seed(3), share=1.0, steps=2)
    real = frames_of(batch, 1, 5)
    assert out.z.shape == real.z.shape and torch.equal(out.actions, real.actions)
    # the same draws by hand: the share's coin flips, then the prediction from the lead frame
    g = torch.Generator().manual_seed(3)
    torch.rand(3, generator=g)
    made = predicted_from_lead(model, frames_of(batch, 0, 4), schedule, "eps", g, steps=2)  # (3, 3, c, h, w)
    torch.testing.assert_close(out.z[0, :2], made[0, :2])
    torch.testing.assert_close(out.z[1, :1], made[1, :1])
    assert not torch.allclose(out.z[0, :2], real.z[0, :2], atol=1e-3)  # not the real frames
    assert torch.equal(out.z[0, 2:], real.z[0, 2:]) and torch.equal(out.z[1, 1:], real.z[1, 1:])
    assert torch.equal(out.z[2], real.z[2])  # no context: nothing replaced
    none = own_context(model, batch, mask, schedule, "eps", torch.Generator().manual_seed(3), share=0.0, steps=2)
    assert torch.equal(none.z, real.z)
    with pytest.raises(ValueError, match="lead frame"):
        own_context(model, real, mask, schedule, "eps", torch.Generator(), share=1.0, steps=2)


def test_the_prediction_from_the_lead_frame_follows_the_steps_and_ignores_boxes(workspace):
    batch, model, schedule = _lead_batch(workspace), _model(), NoiseSchedule(ScheduleConfig())
    lead = frames_of(batch, 0, 4)
    one = predicted_from_lead(model, lead, schedule, "eps", torch.Generator().manual_seed(0), steps=1)
    two = predicted_from_lead(model, lead, schedule, "eps", torch.Generator().manual_seed(0), steps=2)
    assert one.shape == (3, 3, *batch.z.shape[2:]) and not torch.allclose(one, two)
    moved = dataclasses.replace(lead, image=dataclasses.replace(lead.image, boxes=lead.image.boxes.flip(-1)))
    again = predicted_from_lead(model, moved, schedule, "eps", torch.Generator().manual_seed(0), steps=2)
    torch.testing.assert_close(again, two)  # boxes are not given to it, as in the env after the first frame


def test_config_checks_the_share_the_steps_and_the_context_loss():
    with pytest.raises(ValueError, match="own_context=1.5"):
        VideoLDMTrainConfig(own_context=1.5)
    with pytest.raises(ValueError, match="own_context_steps"):
        VideoLDMTrainConfig(own_context_steps=0)
    with pytest.raises(ValueError, match="own_context_chain=0"):
        VideoLDMTrainConfig(own_context_chain=0)
    with pytest.raises(ValueError, match="loss_on_context"):
        VideoLDMTrainConfig(own_context=0.5, loss_on_context=True)


def test_an_own_context_run_trains_differently_and_resumes_to_the_same_weights(workspace):
    plain = train(_prepare(workspace, _cfg(workspace, "plain", max_steps=3)))
    straight = _prepare(workspace, _cfg(workspace, "own", max_steps=3, own_context=1.0))
    assert train(straight).steps == 3
    resumed = _prepare(workspace, _cfg(workspace, "own_resumed", max_steps=3, own_context=1.0))

    def stop(step: int) -> None:
        if step == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(resumed, after_step=stop)
    assert train(resumed).steps == 3
    a, b = load_video_ldm(Path(straight.model_dir)), load_video_ldm(Path(resumed.model_dir))
    base = load_video_ldm(plain.model_dir)
    for (name, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
    changed = [n for (n, p), q in zip(a.model.state_dict().items(), base.model.state_dict().values())
               if p.is_floating_point() and not torch.allclose(p, q)]
    assert changed, "own-rollout context changed nothing in training"


def test_an_ego_warp_model_predicts_its_own_context_from_the_warp_of_the_lead_frame(workspace):
    """With `warp`, the prediction from the lead frame is given the ego warp of that frame (the mask gives frame 0
    only), as the env gives an ego_warp model; what the warp returns changes the prediction."""
    batch, schedule = _lead_batch(workspace), NoiseSchedule(ScheduleConfig())
    torch.manual_seed(0)
    model = VideoUNet(SpatialUNet(UNET), VideoUNetConfig.tiny(zero_init=False, ego_warp=True, warp_interval=0.1)).eval()
    lead, seen = frames_of(batch, 0, 4), []

    def warp(z, mask, speed, given, scale=1.0):
        seen.append((mask.clone(), speed.clone()))
        return scale * torch.ones_like(z) * torch.arange(z.shape[1]).view(1, -1, 1, 1, 1)

    a = predicted_from_lead(model, lead, schedule, "eps", torch.Generator().manual_seed(0), 2, warp)
    b = predicted_from_lead(model, lead, schedule, "eps", torch.Generator().manual_seed(0), 2,
                            lambda *x: warp(*x, scale=-1.0))
    c = predicted_from_lead(model, lead, schedule, "eps", torch.Generator().manual_seed(0), 2)
    assert seen[0][0].tolist() == [[1.0, 0.0, 0.0, 0.0]] * 3 and torch.equal(seen[0][1], lead.ego_speed)
    assert not torch.allclose(a, b) and not torch.allclose(a, c)


def test_a_chain_of_one_call_is_the_prediction_from_the_lead_frame(workspace):
    batch, model, schedule = _lead_batch(workspace), _model(), NoiseSchedule(ScheduleConfig())
    lead = frames_of(batch, 0, 4)
    one = predicted_chain(model, lead, 4, schedule, "eps", torch.Generator().manual_seed(5), steps=2)
    alone = predicted_from_lead(model, lead, schedule, "eps", torch.Generator().manual_seed(5), 2)
    torch.testing.assert_close(one, alone)
    with pytest.raises(ValueError, match="2 <= t"):
        predicted_chain(model, lead, 5, schedule, "eps", torch.Generator(), steps=2)


def test_a_longer_chain_rolls_out_from_frame_0_alone_and_continues_from_its_own_frames(workspace):
    """Two calls over 5 frames in windows of 4: frames 1-3 from frame 0, then frame 4 from the predicted 1-3.
    Only frame 0's latents are read (the rest may be anything), and frame 4 is not the one predicted from the
    real frame 1."""
    batch, model, schedule = _lead_batch(workspace), _model(), NoiseSchedule(ScheduleConfig())  # 5 frames
    out = predicted_chain(model, batch, 4, schedule, "eps", torch.Generator().manual_seed(1), steps=2)
    assert out.shape == (3, 3, *batch.z.shape[2:])
    first = predicted_from_lead(model, frames_of(batch, 0, 4), schedule, "eps", torch.Generator().manual_seed(1), 2)
    torch.testing.assert_close(out[:, :2], first[:, 1:])  # frames 2, 3 of the first call
    z = batch.z.clone()
    z[:, 1:] = torch.randn_like(z[:, 1:])
    scrambled = dataclasses.replace(batch, z=z)
    again = predicted_chain(model, scrambled, 4, schedule, "eps", torch.Generator().manual_seed(1), steps=2)
    torch.testing.assert_close(again, out)
    real_context = predicted_chain(model, frames_of(batch, 1, 5), 4, schedule, "eps",
                                   torch.Generator().manual_seed(1), steps=2)  # frame 4 from real frame 1 only
    assert not torch.allclose(out[:, -1], real_context[:, -1], atol=1e-3)


def test_own_context_with_a_chain_takes_its_lead_frames_and_puts_the_rollouts_end_in_the_context(workspace):
    batch, model, schedule = _lead_batch(workspace, lead=2), _model(), NoiseSchedule(ScheduleConfig())  # 2 + 4
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]] * 3)
    out = own_context(model, batch, mask, schedule, "eps", torch.Generator().manual_seed(3), share=1.0, steps=2,
                      chain=2)
    real = frames_of(batch, 2, 6)
    g = torch.Generator().manual_seed(3)
    torch.rand(3, generator=g)
    made = predicted_chain(model, frames_of(batch, 0, 5), 4, schedule, "eps", g, steps=2)
    torch.testing.assert_close(out.z[:, :3], made)
    assert torch.equal(out.z[:, 3], real.z[:, 3]) and torch.equal(out.actions, real.actions)
    with pytest.raises(ValueError, match="2 lead frame"):
        own_context(model, frames_of(batch, 1, 6), mask, schedule, "eps", torch.Generator(), share=1.0, steps=2,
                    chain=2)


def test_a_chained_own_context_run_trains(workspace):
    cfg = _prepare(workspace, _cfg(workspace, "chain", max_steps=2, own_context=1.0, own_context_chain=2))
    assert train(cfg).steps == 2
