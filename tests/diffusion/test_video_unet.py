import dataclasses

import pytest
import torch
from einops import rearrange, repeat

from drivesim.diffusion.conditioning import Conditioning
from drivesim.diffusion.parameterization import diffusion_loss
from drivesim.diffusion.schedule import NoiseSchedule
from drivesim.diffusion.unet import SpatialUNet, UNetConfig
from drivesim.diffusion.video_conditioning import VideoConditioning
from drivesim.diffusion.video_unet import VideoUNet, VideoUNetConfig

B, T, C, H, W = 2, 4, 4, 8, 16

pytestmark = pytest.mark.usefixtures("one_thread")



def _image_unet() -> SpatialUNet:
    torch.manual_seed(0)
    return SpatialUNet(dataclasses.replace(UNetConfig.tiny(), zero_init=False))


def _video(randomise: bool = True, **overrides) -> VideoUNet:
    model = VideoUNet(_image_unet(), VideoUNetConfig.tiny(**overrides))
    if randomise:  # phi away from its identity initialisation
        torch.manual_seed(1)
        for name, p in model.named_parameters():
            if not name.startswith("image_unet.") and not name.endswith(".raw"):
                torch.nn.init.normal_(p, std=0.1)
    return model.eval()


def _per_frame_image_cond() -> Conditioning:
    g = torch.Generator().manual_seed(3)
    xy = torch.rand(B * T, 2, 2, generator=g) * 0.5
    return Conditioning(
        time_of_day=torch.tensor([0] * T + [1] * T),
        crowdedness=torch.tensor([2] * T + [0] * T),
        boxes=torch.cat([xy, xy + 0.3], dim=-1),
        box_classes=torch.zeros(B * T, 2, dtype=torch.long),
        box_mask=torch.ones(B * T, 2, dtype=torch.bool),
    )


def _inputs():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(B, T, C, H, W, generator=g)
    tau = torch.tensor([10, 700])
    mask = torch.tensor([[1.0, 0, 0, 0], [1.0, 1, 0, 0]])
    cond = VideoConditioning.create(
        B, T, (C, H, W), image=_per_frame_image_cond(),
        context_latents=torch.randn(B, T, C, H, W, generator=g) * rearrange(mask, "b t -> b t 1 1 1"),
        context_mask=mask, actions=torch.rand(B, T, 2, generator=g) * 2 - 1,
    )
    return z, tau, cond


@torch.no_grad()
@pytest.mark.parametrize("layers", ["attention", "attention+conv3d"])
def test_alpha_one_is_the_image_model_frame_by_frame(layers):
    model = _video(temporal_layers=layers)
    model.set_alpha(1.0)
    z, tau, cond = _inputs()
    out = model(z, tau, cond)
    frames = rearrange(z, "b t c h w -> (b t) c h w")
    expected = model.image_unet(frames, repeat(tau, "b -> (b t)", t=T), cond.image)  # (b t) c h w
    assert torch.equal(out, rearrange(expected, "(b t) c h w -> b t c h w", t=T))
    model.set_alpha(0.5)
    assert not torch.allclose(model(z, tau, cond), out, atol=1e-4)


@torch.no_grad()
def test_new_video_model_starts_as_the_image_model():
    model = _video(randomise=False)  # zero-initialised outputs, alpha = 0.5
    z, tau, cond = _inputs()
    image = model.image_unet(rearrange(z, "b t c h w -> (b t) c h w"), repeat(tau, "b -> (b t)", t=T), cond.image)
    torch.testing.assert_close(model(z, tau, cond), rearrange(image, "(b t) c h w -> b t c h w", t=T))


@torch.no_grad()
def test_frames_depend_on_each_other_only_through_temporal_layers():
    model = _video()
    z, tau, cond = _inputs()
    z2 = z.clone()
    z2[:, 3] += torch.randn_like(z2[:, 3])
    model.set_alpha(1.0)
    diff = (model(z2, tau, cond) - model(z, tau, cond)).abs().amax(dim=(2, 3, 4))  # (b, t)
    assert float(diff[:, :3].max()) == 0.0 and bool((diff[:, 3] > 1e-4).all())
    model.set_alpha(0.6)
    diff = (model(z2, tau, cond) - model(z, tau, cond)).abs().amax(dim=(2, 3, 4))
    assert bool((diff[:, :3] > 1e-5).all())


def test_theta_is_frozen_and_phi_trains():
    model = _video().train()
    theta = {k: v.clone() for k, v in model.image_unet.state_dict().items()}
    phi = model.trainable_parameters()
    assert phi and all(not p.requires_grad for p in model.image_unet.parameters())
    assert not model.image_unet.training  # theta stays in inference mode
    opt = torch.optim.Adam(phi, lr=1e-2)
    z, tau, cond = _inputs()
    before = [p.detach().clone() for p in phi]
    loss = diffusion_loss(model, z, cond, NoiseSchedule(), torch.Generator().manual_seed(0)).loss
    loss.backward()
    assert all(p.grad is None for p in model.image_unet.parameters())
    opt.step()
    assert all(torch.equal(v, model.image_unet.state_dict()[k]) for k, v in theta.items())
    assert sum(not torch.equal(a, p) for a, p in zip(before, phi)) > len(phi) // 2


def test_from_scratch_trains_theta():
    model = _video(freeze_image=False).train()
    z, tau, cond = _inputs()
    diffusion_loss(model, z, cond, NoiseSchedule(), torch.Generator().manual_seed(0)).loss.backward()
    assert all(p.requires_grad for p in model.image_unet.parameters())
    assert sum(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.image_unet.parameters()) > 10


@torch.no_grad()
def test_actions_context_and_flags_change_the_output():
    model = _video(context_noise=True, num_frame_rates=2)
    z, tau, cond = _inputs()
    base = model(z, tau, cond)
    other_actions = dataclasses.replace(cond, actions=-cond.actions)
    assert not torch.allclose(model(z, tau, other_actions), base, atol=1e-5)
    assert not torch.allclose(model(z, tau, cond.nulled(["actions"])), base, atol=1e-5)
    assert not torch.allclose(model(z, tau, cond.nulled(["context"])), base, atol=1e-5)
    noisy = dataclasses.replace(cond, context_noise_level=torch.tensor([100, 100]))
    assert not torch.allclose(model(z, tau, noisy), base, atol=1e-5)
    flagged = dataclasses.replace(cond, frame_rate=torch.tensor([0, 1]))
    assert not torch.allclose(model(z, tau, flagged), base, atol=1e-5)


@torch.no_grad()
def test_clips_in_a_batch_are_independent():
    model = _video()
    z, tau, cond = _inputs()
    out = model(z, tau, cond)
    z2 = z.clone()
    z2[1] += 1.0
    torch.testing.assert_close(model(z2, tau, cond)[0], out[0])


def test_attention_only_is_smaller_and_configs_validate():
    both = _video(randomise=False)
    attn = _video(randomise=False, temporal_layers="attention")
    assert len(attn.trainable_parameters()) < len(both.trainable_parameters())
    assert len(both.blenders()) == 2 * len(attn.blenders()) == 2 * len(both.site_blocks)
    with pytest.raises(ValueError, match="temporal_layers"):
        VideoUNetConfig(temporal_layers="conv")
    with pytest.raises(ValueError, match="temporal_after"):
        VideoUNetConfig(temporal_after=("mid",))
    with pytest.raises(ValueError, match="num_frame_rates"):
        VideoUNetConfig(num_frame_rates=1)


@torch.no_grad()
def test_bad_inputs_raise():
    model = _video(use_actions=False)
    z, tau, cond = _inputs()
    with pytest.raises(ValueError, match="use_actions"):
        model(z, tau, cond)
    cond = cond.nulled(["actions"])
    with pytest.raises(ValueError, match="tau"):
        model(z, tau[:1], cond)
    with pytest.raises(ValueError, match="z has shape"):
        model(z[:, :, :3], tau, cond)
    with pytest.raises(ValueError, match="context_noise"):
        model(z, tau, dataclasses.replace(cond, context_noise_level=torch.tensor([5, 5])))
    with pytest.raises(ValueError, match="frame_rate"):
        model(z, tau, dataclasses.replace(cond, frame_rate=torch.tensor([0, 0])))
    with pytest.raises(ValueError, match="actions"):
        VideoConditioning.create(B, T, (C, H, W), actions=torch.full((B, T, 2), 2.0))


@torch.no_grad()
def test_zero_init_false_gives_random_temporal_layers_that_use_actions():
    model = _video(randomise=False, zero_init=False)
    z, tau, cond = _inputs()
    model.set_alpha(0.5)
    out = model(z, tau, cond)
    assert not torch.allclose(out, model(z, tau, dataclasses.replace(cond, actions=-cond.actions)), atol=1e-5)
    model.set_alpha(1.0)
    image = model.image_unet(rearrange(z, "b t c h w -> (b t) c h w"), repeat(tau, "b -> (b t)", t=T), cond.image)
    assert torch.equal(model(z, tau, cond), rearrange(image, "(b t) c h w -> b t c h w", t=T))


@torch.no_grad()
def test_a_new_action_forecast_path_adds_nothing_to_a_trained_model():
    """What `init_from` relies on: phi of a model without the forecast, loaded into one with it."""
    plain = _video()
    forecasting = VideoUNet(_image_unet(), VideoUNetConfig.tiny(action_forecast=True)).eval()
    missing = forecasting.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith(("action_forecast.", "forecast_encoder.")) for k in missing)
    z, tau, cond = _inputs()
    torch.testing.assert_close(forecasting(z, tau, cond), plain(z, tau, cond))


def test_the_forecast_enters_detached_and_actions_move_it():
    model = _video(action_forecast=True).train()
    z, tau, cond = _inputs()
    with torch.no_grad():
        base = model(z, tau, cond)
        forecast, valid = model.forecast(cond)
        flipped, _ = model.forecast(dataclasses.replace(cond, actions=-cond.actions))
    assert valid.tolist() == [[0, 1, 1, 1], [0, 0, 1, 1]]
    assert not torch.allclose(forecast, flipped, atol=1e-5)
    with torch.no_grad():
        for p in model.forecast_encoder.out.parameters():
            p.zero_()
        assert not torch.allclose(model(z, tau, cond), base, atol=1e-5)  # the forecast path was in base
    diffusion_loss(model, z, cond, NoiseSchedule(), torch.Generator().manual_seed(0)).loss.backward()
    assert all(p.grad is None for p in model.action_forecast.parameters())  # trained by its own MSE only
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.forecast_encoder.parameters())


def test_action_forecast_needs_context_and_actions():
    with pytest.raises(ValueError, match="action_forecast needs"):
        VideoUNetConfig(action_forecast=True, use_actions=False)
    with pytest.raises(ValueError, match="forecast_channels"):
        VideoUNetConfig(action_forecast=True, forecast_channels=0)
    with pytest.raises(ValueError, match="action_forecast=False"):
        _video(randomise=False).forecast(_inputs()[2])


@torch.no_grad()
def test_a_new_spatial_action_path_adds_nothing_to_a_trained_model():
    """init_from a stage without `spatial_action`: the zero projection keeps the loaded model."""
    plain = _video()
    spatial = VideoUNet(_image_unet(), VideoUNetConfig.tiny(spatial_actions=True)).eval()
    missing = spatial.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("spatial_action.") for k in missing)
    z, tau, cond = _inputs()
    torch.testing.assert_close(spatial(z, tau, cond), plain(z, tau, cond))


def test_spatial_actions_reach_theta_without_temporal_layers_and_theta_stays_frozen():
    model = _video(spatial_actions=True).train()
    model.set_alpha(1.0)  # temporal layers off: only the spatial path can carry the actions
    z, tau, cond = _inputs()
    with torch.no_grad():
        base = model(z, tau, cond)
        flipped = model(z, tau, dataclasses.replace(cond, actions=-cond.actions))
        per_frame = (flipped - base).abs().amax(dim=(2, 3, 4))  # (b, t)
        assert bool((per_frame > 1e-5).all())  # every frame moves with its own action
        nulled = model(z, tau, cond.nulled(["actions"]))
        assert not torch.allclose(nulled, base, atol=1e-5)
    diffusion_loss(model, z, cond, NoiseSchedule(), torch.Generator().manual_seed(0)).loss.backward()
    assert all(p.grad is None for p in model.image_unet.parameters())
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.spatial_action.parameters())
    without = _video(spatial_actions=False)
    without.set_alpha(1.0)
    with torch.no_grad():
        assert torch.equal(without(z, tau, cond), without(z, tau, dataclasses.replace(cond, actions=-cond.actions)))


def test_spatial_actions_need_actions_and_extra_embedding_is_checked():
    with pytest.raises(ValueError, match="spatial_actions needs use_actions"):
        VideoUNetConfig(spatial_actions=True, use_actions=False)
    unet = _image_unet()
    z = torch.randn(3, C, H, W)
    with pytest.raises(ValueError, match="extra_embedding has shape"):
        unet(z, torch.tensor([1, 2, 3]), None, extra_embedding=torch.zeros(3, 5))


@torch.no_grad()
def test_speed_conditioning_starts_as_the_loaded_model_and_then_reads_the_speed():
    """init_from a stage without speed conditioning: the zero projections keep the loaded model;
    trained, the speed changes the output, but not where the actions are null."""
    plain = _video(action_forecast=True)
    speedy = VideoUNet(_image_unet(), VideoUNetConfig.tiny(action_forecast=True, speed_conditioning=True)).eval()
    missing = speedy.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith(("speed_embedding.", "action_forecast.speed_stem.")) for k in missing)
    z, tau, cond = _inputs()
    slow = dataclasses.replace(cond, ego_speed=torch.full((B, T), 5.0))
    fast = dataclasses.replace(cond, ego_speed=torch.full((B, T), 30.0))
    torch.testing.assert_close(speedy(z, tau, fast), plain(z, tau, fast))
    for name, p in speedy.named_parameters():
        if name.startswith(("speed_embedding.", "action_forecast.speed_stem.")):
            torch.nn.init.normal_(p, std=0.1)
    assert not torch.allclose(speedy(z, tau, slow), speedy(z, tau, fast), atol=1e-5)
    assert not torch.allclose(speedy.forecast(slow)[0], speedy.forecast(fast)[0], atol=1e-5)
    blind_slow, blind_fast = slow.nulled(["actions"]), fast.nulled(["actions"])
    torch.testing.assert_close(speedy(z, tau, blind_slow), speedy(z, tau, blind_fast))
    assert float(blind_fast.ego_speed.abs().max()) == 0.0  # nulling the actions nulls the speed
    with pytest.raises(ValueError, match="speed_conditioning needs"):
        VideoUNetConfig(speed_conditioning=True, use_actions=False)
    with pytest.raises(ValueError, match="ego_speed has shape"):
        dataclasses.replace(cond, ego_speed=torch.zeros(B, T + 1))


@torch.no_grad()
def test_compiles_whole_and_gives_the_eager_output():
    """No data-dependent input check breaks a compiled graph (`drivesim.nn.value_checks`), and the traced
    model (the eager backend: the same ops) gives the eager output."""
    from torch._dynamo.utils import counters

    model, (z, tau, cond) = _video(), _inputs()
    torch._dynamo.reset()
    counters.clear()
    try:
        compiled = torch.compile(model, backend="eager", dynamic=False)(z, tau, cond)
        breaks, graphs = dict(counters["graph_break"]), counters["stats"]["unique_graphs"]
    finally:
        torch._dynamo.reset()
    assert breaks == {} and graphs == 1
    torch.testing.assert_close(compiled, model(z, tau, cond), rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_ego_warp_starts_as_the_loaded_model_and_then_reads_the_warp_where_it_holds():
    """init_from a stage without the warp: the zero projections keep the loaded model; trained,
    the warp latents change the output, but not where the context or the actions are null."""
    plain = _video(action_forecast=True)
    warped = VideoUNet(_image_unet(), VideoUNetConfig.tiny(action_forecast=True, ego_warp=True, warp_interval=0.1))
    missing = warped.eval().load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("warp_encoder.") for k in missing)
    z, tau, cond = _inputs()
    g = torch.Generator().manual_seed(5)
    valid = rearrange(torch.tensor([[0.0, 1, 1, 1], [0.0, 0, 1, 1]]), "b t -> b t 1 1 1")
    one = dataclasses.replace(cond, warp_latents=torch.randn(B, T, C, H, W, generator=g) * valid)
    other = dataclasses.replace(cond, warp_latents=torch.randn(B, T, C, H, W, generator=g) * valid)
    torch.testing.assert_close(warped(z, tau, one), plain(z, tau, cond))  # cond: no warp latents
    for name, p in warped.named_parameters():
        if name.startswith("warp_encoder."):
            torch.nn.init.normal_(p, std=0.1)
    assert not torch.allclose(warped(z, tau, one), warped(z, tau, other), atol=1e-5)
    for names in (["actions"], ["context"]):
        a, b = one.nulled(names), other.nulled(names)
        assert not a.warp_latents.any()  # the warp needs both the context and the actions
        torch.testing.assert_close(warped(z, tau, a), warped(z, tau, b))
    with pytest.raises(ValueError, match="warp_latents are given but this VideoUNet has ego_warp=False"):
        plain(z, tau, one)
    with pytest.raises(ValueError, match="ego_warp needs use_context=True and use_actions=True"):
        VideoUNetConfig(ego_warp=True, use_actions=False)
    with pytest.raises(ValueError, match="warp_interval=0.0: ego_warp needs the seconds"):
        VideoUNet(_image_unet(), VideoUNetConfig.tiny(ego_warp=True))
    with pytest.raises(ValueError, match="warp_latents has shape"):
        dataclasses.replace(cond, warp_latents=torch.zeros(B, T + 1, C, H, W))


@torch.no_grad()
def test_clean_context_hands_theta_the_given_frames_at_their_own_time():
    model = _video(clean_context=True, context_noise=True)
    z, tau, cond = _inputs()
    cond = dataclasses.replace(cond, context_noise_level=torch.tensor([0, 300]))  # tau_c of each clip's given frames
    model.set_alpha(1.0)  # frame by frame: a given frame is the image model on its given latent at tau_c
    out = model(z, tau, cond)
    given = rearrange(cond.context_mask.bool(), "b t -> b t 1 1 1")
    frames = rearrange(torch.where(given, cond.context_latents, z), "b t c h w -> (b t) c h w")
    tau_frames = torch.where(rearrange(cond.context_mask.bool(), "b t -> (b t)"),
                             repeat(cond.context_noise_level, "b -> (b t)", t=T), repeat(tau, "b -> (b t)", t=T))
    expected = rearrange(model.image_unet(frames, tau_frames, cond.image), "(b t) c h w -> b t c h w", t=T)
    torch.testing.assert_close(out, expected)
    model.set_alpha(0.5)
    noised = z.clone()
    noised[given.expand_as(z)] += 1.0  # the noisy input at given frames is not read
    torch.testing.assert_close(model(noised, tau, cond), model(z, tau, cond))
    plain = _video(context_noise=True)
    assert not torch.allclose(plain(noised, tau, cond), plain(z, tau, cond))  # the paper's model reads them


def test_clean_context_needs_context_and_no_blend_shift():
    with pytest.raises(ValueError, match="clean_context needs use_context"):
        VideoUNetConfig.tiny(clean_context=True, use_context=False, action_forecast=False)
    with pytest.raises(ValueError, match="clean_context needs"):
        VideoUNetConfig.tiny(clean_context=True, blend_residual=True)
