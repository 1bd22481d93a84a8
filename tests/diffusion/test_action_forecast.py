"""The action forecaster: which frames it forecasts, what it starts as, and that it learns an action-dependent move."""

import pytest
import torch
from einops import rearrange

from drivesim.diffusion.action_forecast import ActionForecast, forecast_error, forecast_frames, forecast_planes

C, H, W = 4, 8, 16


pytestmark = pytest.mark.usefixtures("one_thread")


def test_forecast_frames_follow_the_last_given_frame():
    mask = torch.tensor([[1.0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0]])
    last, valid = forecast_frames(mask)
    assert last.tolist() == [1, 0, 0, 2]
    assert valid.tolist() == [[0, 0, 1, 1], [0, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 1]]


def test_planes_hold_the_last_frame_its_change_and_the_actions_since():
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, C, H, W, generator=g)
    mask = torch.tensor([[1.0, 1, 0, 0], [1, 0, 0, 0]])
    actions = torch.tensor([[[0.1, 0.0], [0.2, 0.0], [0.4, -1.0], [0.8, 1.0]]]).repeat(2, 1, 1)
    planes, valid = forecast_planes(latents, mask, actions, torch.tensor([True, False]))
    assert planes.shape == (2, 4, 2 * C + 9, H, W)
    at = planes[..., 0, 0]  # b t k: every plane is constant except the latents
    torch.testing.assert_close(planes[0, 3, :C], latents[0, 1])  # z_L
    torch.testing.assert_close(planes[0, 3, C : 2 * C], latents[0, 1] - latents[0, 0])  # its change
    assert float(planes[1, 2, C : 2 * C].abs().max()) == 0.0  # S = 1: no change known
    vec = at[0, 3, 2 * C + 1 :].tolist()  # steer, accel, mean since L (2), into L (2), steps, known
    assert vec == pytest.approx([0.8, 1.0, 0.6, 0.0, 0.2, 0.0, 0.5, 1.0])
    assert at[1, 3, 2 * C + 1 :].tolist() == pytest.approx([0.0] * 6 + [0.75, 0.0])  # actions unknown
    assert valid.tolist() == [[0, 0, 1, 1], [0, 1, 1, 1]]


@torch.no_grad()
def test_a_new_forecaster_copies_the_last_context_frame():
    model = ActionForecast(C, channels=8, levels=2)
    latents = torch.randn(2, 3, C, H, W)
    mask = torch.tensor([[1.0, 1, 0], [0, 0, 0]])
    out, valid = model(latents, mask, torch.zeros(2, 3, 2), torch.tensor([True, True]))
    torch.testing.assert_close(out[0, 2], latents[0, 1])
    assert float(out[0, :2].abs().max()) == 0.0 and float(out[1].abs().max()) == 0.0
    assert valid.tolist() == [[0, 0, 1], [0, 0, 0]]


def test_forecast_error_counts_only_forecast_frames_and_keeps_the_graph_without_any():
    target = torch.randn(1, 3, C, H, W)
    forecast = target.clone()
    forecast[0, 0] += 5.0  # a context frame: not counted
    forecast[0, 2] += 1.0
    assert float(forecast_error(forecast, torch.tensor([[0.0, 1, 1]]), target)) == pytest.approx(0.5)
    leaf = torch.zeros(1, 3, C, H, W, requires_grad=True)
    err = forecast_error(leaf, torch.zeros(1, 3), target)
    err.backward()
    assert float(err.detach()) == 0.0 and leaf.grad is not None


def test_bad_shapes_raise():
    model = ActionForecast(C, channels=8, levels=2)
    with pytest.raises(ValueError, match="divisible by 4"):
        model(torch.randn(1, 2, C, 6, W), torch.tensor([[1.0, 0]]), torch.zeros(1, 2, 2), torch.tensor([True]))
    with pytest.raises(ValueError, match="latent channels"):
        model(torch.randn(1, 2, 3, H, W), torch.tensor([[1.0, 0]]), torch.zeros(1, 2, 2), torch.tensor([True]))
    with pytest.raises(ValueError, match="channels"):
        ActionForecast(C, channels=0)


def _shift_batch(g: torch.Generator, b: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame 1 is frame 0 moved one latent pixel left (steer -1) or right (steer +1)."""
    cols = torch.arange(W).float()
    centres = torch.randint(2, W - 2, (b,), generator=g).float()
    frame0 = torch.exp(-((cols - rearrange(centres, "b -> b 1")) ** 2) / 2.0)  # b w
    steer = torch.where(torch.rand(b, generator=g) < 0.5, -1.0, 1.0)
    frame1 = torch.stack([torch.roll(f, int(s)) for f, s in zip(frame0, steer)])  # b w
    latents = torch.stack([frame0, frame1], dim=1)[:, :, None, None, :].expand(b, 2, C, H, W).contiguous()
    actions = torch.stack([steer, torch.zeros(b)], dim=1)[:, None].expand(b, 2, 2).contiguous()
    return latents, actions


def test_the_forecaster_learns_a_move_that_depends_on_the_action():
    torch.manual_seed(0)
    model = ActionForecast(C, channels=16, levels=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    mask = torch.tensor([[1.0, 0.0]]).repeat(16, 1)
    known = torch.ones(16, dtype=torch.bool)
    g = torch.Generator().manual_seed(1)
    for _ in range(150):
        latents, actions = _shift_batch(g)
        out, valid = model(latents * rearrange(mask, "b t -> b t 1 1 1"), mask, actions, known)
        loss = forecast_error(out, valid, latents)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        latents, actions = _shift_batch(torch.Generator().manual_seed(99))
        given = latents * rearrange(mask, "b t -> b t 1 1 1")
        copy = forecast_error(given[:, [0, 0]], mask.new_tensor([[0.0, 1.0]]).repeat(16, 1), latents)
        learned = forecast_error(*model(given, mask, actions, known), latents)
        blind = forecast_error(*model(given, mask, actions, ~known), latents)
    assert float(learned) < 0.2 * float(copy), (float(learned), float(copy))
    assert float(blind) > 3 * float(learned), (float(blind), float(learned))  # the action is what it used


@torch.no_grad()
def test_a_new_speed_path_adds_nothing_and_a_trained_one_reads_the_speed():
    torch.manual_seed(0)
    plain = ActionForecast(C, channels=8, levels=1)
    torch.nn.init.normal_(plain.out[-1].weight, std=0.1)  # away from the copy-z_L start
    with_speed = ActionForecast(C, channels=8, levels=1, speed=True)
    missing = with_speed.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("speed_stem.") for k in missing)
    latents, mask = torch.randn(2, 3, C, H, W), torch.tensor([[1.0, 1, 0], [1, 0, 0]])
    actions, known = torch.zeros(2, 3, 2), torch.tensor([True, False])
    slow, fast = torch.full((2, 3), 5.0), torch.full((2, 3), 30.0)
    start = with_speed(latents, mask, actions, known, slow)[0]
    torch.testing.assert_close(start, plain(latents, mask, actions, known)[0])
    torch.nn.init.normal_(with_speed.speed_stem.weight, std=0.5)
    a, _ = with_speed(latents, mask, actions, known, slow)
    b, _ = with_speed(latents, mask, actions, known, fast)
    assert not torch.allclose(a[0], b[0], atol=1e-5)  # actions known: the speed matters
    torch.testing.assert_close(a[1], b[1])  # actions unknown: so is the speed
    with pytest.raises(ValueError, match="pass speed"):
        with_speed(latents, mask, actions, known)
