"""Latent inverse dynamics: the pairs it is fit and scored on, its gradients, and that it learns."""

import pytest
import torch

from drivesim.diffusion.latent_idm import LatentInverseDynamics, context_pairs, pair_loss, real_pairs

C, H, W = 4, 8, 16


def test_real_pairs_target_the_mean_action_between_the_frames():
    z = torch.randn(2, 3, C, H, W)
    actions = torch.tensor([[[9.0, 9.0], [0.2, -1.0], [0.6, 0.0]], [[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]]])
    pairs = real_pairs(z, actions, torch.tensor([True, False]))
    # pairs per clip: (0, 1), (0, 2), (1, 2)
    assert pairs.first.shape == (6, C, H, W) and pairs.gap.tolist() == [1, 2, 1] * 2
    torch.testing.assert_close(pairs.target[:3], torch.tensor([[0.2, -1.0], [0.4, -0.5], [0.6, 0.0]]))
    assert torch.equal(pairs.first[1], z[0, 0]) and torch.equal(pairs.second[1], z[0, 2])
    assert pairs.weight.tolist() == [1, 1, 1, 0, 0, 0]  # the second clip has no actions
    assert real_pairs(torch.randn(1, 8, C, H, W), torch.zeros(1, 8, 2), torch.tensor([True])).gap.max() == 4
    with pytest.raises(ValueError, match=">= 2 frames"):
        real_pairs(torch.randn(1, 1, C, H, W), torch.zeros(1, 1, 2), torch.tensor([True]))


def test_context_pairs_score_only_frames_after_the_last_context_frame_of_told_clips():
    real, made = torch.randn(3, 4, C, H, W), torch.randn(3, 4, C, H, W)
    mask = torch.tensor([[1.0, 1.0, 0, 0], [0, 0, 0, 0], [1.0, 0, 0, 0]])
    actions = torch.arange(24, dtype=torch.float32).reshape(3, 4, 2)
    pairs = context_pairs(real, made, mask, actions, torch.tensor([True, True, False]), torch.tensor([0.5, 1, 1]))
    weight = pairs.weight.reshape(3, 4)
    assert weight.tolist() == [[0, 0, 0.5, 0.5], [0, 0, 0, 0], [0, 0, 0, 0]]  # none given / not told
    assert torch.equal(pairs.first[3], real[0, 1]) and torch.equal(pairs.second[3], made[0, 3])
    assert pairs.gap.reshape(3, 4)[0].tolist() == [0, 0, 1, 2]
    torch.testing.assert_close(pairs.target[3], (actions[0, 2] + actions[0, 3]) / 2)


def test_frozen_pair_loss_trains_the_inputs_and_the_fit_trains_the_model():
    torch.manual_seed(0)
    idm = LatentInverseDynamics(C, channels=8)
    first, second = torch.randn(5, C, H, W), torch.randn(5, C, H, W, requires_grad=True)
    pairs = real_pairs(torch.stack([first, second], 1), torch.randn(5, 2, 2), torch.ones(5, dtype=torch.bool))
    pairs = type(pairs)(pairs.first, second, pairs.gap, pairs.target, pairs.weight)
    pair_loss(idm, pairs, frozen=True).backward()
    assert second.grad is not None and float(second.grad.abs().sum()) > 0
    assert all(p.grad is None for p in idm.parameters())
    second.grad = None
    pair_loss(idm, pairs).backward()
    assert second.grad is None and all(p.grad is not None for p in idm.parameters())
    empty = type(pairs)(pairs.first, pairs.second, pairs.gap, pairs.target, torch.zeros(5))
    assert float(pair_loss(idm, empty).detach()) == 0.0
    with pytest.raises(ValueError, match="of one shape"):
        idm(first, torch.randn(5, C, H, W + 2), pairs.gap)


def test_it_learns_which_way_a_blob_moved():
    """Blobs shifted sideways by steer * 3 columns: g recovers steer on held-out pairs."""
    gen = torch.Generator().manual_seed(0)

    def pairs(n: int):
        steer = torch.rand(n, generator=gen) * 2 - 1
        x0 = torch.rand(n, generator=gen) * 8 + 4
        cols = torch.arange(W).float()
        frames = [torch.exp(-((cols - x[:, None]) ** 2) / 3.0) for x in (x0, x0 + 3 * steer)]  # (n, w) each
        z = torch.stack([f[:, None, None, :].expand(n, C, H, W) for f in frames], 1)
        actions = torch.stack([torch.zeros(n, 2), torch.stack([steer, torch.zeros(n)], 1)], 1)
        return real_pairs(z, actions, torch.ones(n, dtype=torch.bool)), steer

    torch.manual_seed(0)
    idm = LatentInverseDynamics(C, channels=16)
    opt = torch.optim.Adam(idm.parameters(), lr=3e-3)
    for _ in range(150):
        loss = pair_loss(idm, pairs(32)[0])
        opt.zero_grad()
        loss.backward()
        opt.step()
    held, steer = pairs(64)
    with torch.no_grad():
        estimate = idm(held.first, held.second, held.gap)[:, 0]
    r = torch.corrcoef(torch.stack([estimate, steer]))[0, 1]
    assert r > 0.9, float(r)
