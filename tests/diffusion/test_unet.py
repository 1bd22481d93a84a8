import dataclasses

import pytest
import torch

from drivesim.diffusion.conditioning import Conditioning, drop_conditions
from drivesim.diffusion.parameterization import diffusion_loss
from drivesim.diffusion.schedule import NoiseSchedule
from drivesim.diffusion.unet import SpatialUNet, UNetConfig, count_parameters


def _net(box_conditioning: str = "both", zero_init: bool = False) -> SpatialUNet:
    torch.manual_seed(0)
    cfg = dataclasses.replace(UNetConfig.tiny(), box_conditioning=box_conditioning, zero_init=zero_init)
    return SpatialUNet(cfg).eval()


def _inputs(b: int = 2):
    g = torch.Generator().manual_seed(1)
    z = torch.randn(b, 4, 8, 16, generator=g)
    tau = torch.randint(0, 1000, (b,), generator=g)
    cond = Conditioning(
        time_of_day=torch.tensor([0, 1] * (b // 2)),
        crowdedness=torch.tensor([2, 0] * (b // 2)),
        boxes=torch.tensor([[[0.1, 0.4, 0.3, 0.7], [0.6, 0.5, 0.8, 0.9]]] * b),
        box_classes=torch.tensor([[0, 1]] * b),
        box_mask=torch.ones(b, 2, dtype=torch.bool),
    )
    return z, tau, cond


@pytest.mark.parametrize("mode", ["tokens", "layout", "both"])
def test_shapes_and_boxes_matter(mode):
    net = _net(mode)
    z, tau, cond = _inputs()
    with torch.no_grad():
        out = net(z, tau, cond)
        assert out.shape == z.shape and bool(torch.isfinite(out).all())
        moved = dataclasses.replace(cond, boxes=cond.boxes.flip(-1).clamp(0, 1).roll(1, dims=1))
        assert not torch.allclose(net(z, tau, moved), out, atol=1e-5)
        relabelled = dataclasses.replace(cond, time_of_day=1 - cond.time_of_day)
        assert not torch.allclose(net(z, tau, relabelled), out, atol=1e-5)


def test_param_counts():
    assert 5e6 < count_parameters(SpatialUNet(UNetConfig())) < 15e6
    assert count_parameters(SpatialUNet(UNetConfig.tiny())) < 5e5


def test_zero_init_starts_at_zero_output():
    net = _net(zero_init=True)
    z, tau, cond = _inputs()
    with torch.no_grad():
        assert torch.equal(net(z, tau, cond), torch.zeros_like(z))


@pytest.mark.parametrize("mode", ["tokens", "both"])
def test_padding_boxes_and_box_order_do_not_change_output(mode):
    net = _net(mode)
    z, tau, cond = _inputs()
    with torch.no_grad():
        base = net(z, tau, cond)
        padded = Conditioning(
            time_of_day=cond.time_of_day,
            crowdedness=cond.crowdedness,
            boxes=torch.cat([cond.boxes, torch.rand(2, 3, 4)], dim=1),
            box_classes=torch.cat([cond.box_classes, torch.tensor([[1, 0, -1]] * 2)], dim=1),
            box_mask=torch.cat([cond.box_mask, torch.zeros(2, 3, dtype=torch.bool)], dim=1),
        )
        torch.testing.assert_close(net(z, tau, padded), base, atol=1e-5, rtol=1e-4)
        swapped = dataclasses.replace(cond, boxes=cond.boxes.flip(1), box_classes=cond.box_classes.flip(1))
        torch.testing.assert_close(net(z, tau, swapped), base, atol=1e-5, rtol=1e-4)


def test_dropped_conditions_equal_explicit_null():
    net = _net()
    z, tau, cond = _inputs()
    with torch.no_grad():
        dropped = drop_conditions(cond, torch.Generator().manual_seed(0), p_labels=1.0, p_boxes=1.0)
        explicit = cond.nulled(["time_of_day", "crowdedness", "boxes"])
        a, b, c = net(z, tau, dropped), net(z, tau, explicit), net(z, tau, None)
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a, c)
        # a single dropped label equals writing -1 for it
        one = drop_conditions(cond, torch.Generator().manual_seed(0), p_labels=1.0, p_boxes=0.0)
        manual = dataclasses.replace(cond, time_of_day=torch.full((2,), -1), crowdedness=torch.full((2,), -1))
        torch.testing.assert_close(net(z, tau, one), net(z, tau, manual))
        # an empty road (boxes given, none) differs from boxes unknown
        empty = dataclasses.replace(cond, box_mask=torch.zeros(2, 2, dtype=torch.bool))
        assert not torch.allclose(net(z, tau, empty), net(z, tau, cond.nulled(["boxes"])), atol=1e-5)


def test_gradients_flow_to_every_parameter():
    net = _net().train()
    z, _, cond = _inputs(4)
    loss = diffusion_loss(
        lambda x, t, c: net(x, t, c), z, cond, NoiseSchedule(), torch.Generator().manual_seed(0), target="v"
    )
    loss.loss.backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing, missing
    assert all(bool(torch.isfinite(p.grad).all()) for p in net.parameters())
    for name in (
        "conv_in.weight",
        "conv_out.weight",
        "time_embedding.mlp.0.weight",
        "conditioner.boxes.mlp.0.weight",
        "conditioner.time_of_day.table.weight",
    ):
        assert net.get_parameter(name).grad.abs().sum() > 0, name


def test_temporal_hook_contract():
    net = _net()
    z, tau, cond = _inputs(4)
    calls = []

    def identity(i, h, emb, num_frames):
        calls.append((i, h.shape[1], num_frames, emb.shape))
        return h

    with torch.no_grad():
        base = net(z, tau, cond)
        torch.testing.assert_close(net(z, tau, cond, temporal=identity, num_frames=2), base)
        assert [c[0] for c in calls] == list(range(len(net.blocks)))
        assert [c[1] for c in calls] == [s.out_channels for s in net.block_specs]
        assert all(c[2] == 2 and c[3] == (4, net.emb_dim) for c in calls)
        changed = net(z, tau, cond, temporal=lambda i, h, e, t: h * 1.1 if i == 0 else h, num_frames=2)
        assert not torch.allclose(changed, base, atol=1e-5)
        with pytest.raises(ValueError, match="num_frames"):
            net(z, tau, cond, temporal=identity, num_frames=3)


def test_block_specs_order():
    specs = SpatialUNet(UNetConfig()).block_specs
    stages = [s.stage for s in specs]
    assert stages == sorted(stages, key=["down", "mid", "up"].index)
    assert sum(s.push_skip for s in specs) + 1 == sum(s.concat_skip for s in specs)
    assert [s.kind for s in specs if s.stage == "mid"] == ["res", "attn", "res"]


def test_bad_inputs_raise():
    net = _net()
    z, tau, cond = _inputs()
    with pytest.raises(ValueError, match="divisible"):
        net(torch.zeros(2, 4, 7, 16), tau, cond)
    with pytest.raises(ValueError, match="z has shape"):
        net(torch.zeros(2, 3, 8, 16), tau, cond)
    with pytest.raises(ValueError, match="time_of_day"):
        net(z, tau, dataclasses.replace(cond, time_of_day=torch.tensor([0, 2])))
    with pytest.raises(ValueError, match="box_classes"):
        net(z, tau, dataclasses.replace(cond, box_classes=torch.tensor([[0, 2], [0, 1]])))
    with pytest.raises(ValueError, match="attention_levels"):
        UNetConfig(attention_levels=(3,))
    with pytest.raises(ValueError, match="box_conditioning"):
        UNetConfig(box_conditioning="masks")  # type: ignore[arg-type]
    assert UNetConfig(channel_mults=[1, 2], attention_levels=[1]).channel_mults == (1, 2)  # type: ignore[arg-type]
