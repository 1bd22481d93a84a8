from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

import pytest
import torch
from einops import rearrange

from drivesim.diffusion.conditioning import Conditioning
from drivesim.diffusion.unet import SpatialUNet, UNetConfig
from drivesim.sampling.guidance import classifier_free_guidance, context_guidance, guided_output


@dataclass(frozen=True)
class ToyCond:
    """Three per-sample scalar conditions; nulling sets one to 0."""

    a: torch.Tensor
    b: torch.Tensor
    c: torch.Tensor

    def nulled(self, names: Collection[str]) -> ToyCond:
        return replace(self, **{n: torch.zeros_like(getattr(self, n)) for n in names})

    @classmethod
    def cat(cls, conds: Sequence[ToyCond]) -> ToyCond:
        return cls(*(torch.cat([getattr(x, f) for x in conds]) for f in ("a", "b", "c")))

    def contrasted(self, name: str) -> ToyCond:
        return replace(self, **{name: -getattr(self, name)})


class ToyModel:
    """A non-linear function of z and the conditions, with an a*b interaction."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, z, tau, cond: ToyCond):
        self.calls += 1
        col = lambda t: rearrange(t, "b -> b 1 1 1")  # noqa: E731
        return (
            z * (1 + col(cond.a))
            + col(cond.b) ** 2
            + col(cond.a * cond.b)
            + col(cond.c)
            + 0.01 * col(tau.float())
        )


def _inputs():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, 2, 3, 3, generator=g)
    tau = torch.tensor([0, 10, 500, 999])
    cond = ToyCond(
        torch.rand(4, generator=g) + 0.5, torch.rand(4, generator=g) + 0.5, torch.rand(4, generator=g)
    )
    return z, tau, cond


@pytest.mark.parametrize("mode", ["sequential", "compositional"])
def test_single_condition_scale_one_is_conditional_zero_is_unconditional(mode):
    z, tau, cond = _inputs()
    m = ToyModel()
    f_cond, f_uncond = m(z, tau, cond), m(z, tau, cond.nulled(["a"]))
    torch.testing.assert_close(classifier_free_guidance(m, cond, {"a": 1.0}, mode)(z, tau), f_cond)
    torch.testing.assert_close(classifier_free_guidance(m, cond, {"a": 0.0}, mode)(z, tau), f_uncond)
    torch.testing.assert_close(
        classifier_free_guidance(m, cond, {"a": 3.0}, mode)(z, tau), f_uncond + 3.0 * (f_cond - f_uncond)
    )


def test_sequential_form():
    z, tau, cond = _inputs()
    m = ToyModel()
    full, none = m(z, tau, cond), m(z, tau, cond.nulled(["a", "b"]))
    only_a = m(z, tau, cond.nulled(["b"]))
    torch.testing.assert_close(classifier_free_guidance(m, cond, {"a": 1.0, "b": 1.0})(z, tau), full)
    torch.testing.assert_close(classifier_free_guidance(m, cond, {"a": 0.0, "b": 0.0})(z, tau), none)
    expected = none + 2.0 * (only_a - none) + 3.0 * (full - only_a)
    torch.testing.assert_close(classifier_free_guidance(m, cond, {"a": 2.0, "b": 3.0})(z, tau), expected)


def test_compositional_form_differs_from_sequential_with_interactions():
    z, tau, cond = _inputs()
    m = ToyModel()
    none = m(z, tau, cond.nulled(["a", "b"]))
    only_a, only_b = m(z, tau, cond.nulled(["b"])), m(z, tau, cond.nulled(["a"]))
    got = classifier_free_guidance(m, cond, {"a": 2.0, "b": 3.0}, mode="compositional")(z, tau)
    torch.testing.assert_close(got, none + 2.0 * (only_a - none) + 3.0 * (only_b - none))
    seq = classifier_free_guidance(m, cond, {"a": 1.0, "b": 1.0}, mode="sequential")(z, tau)
    comp = classifier_free_guidance(m, cond, {"a": 1.0, "b": 1.0}, mode="compositional")(z, tau)
    assert not torch.allclose(seq, comp)  # the a*b interaction is only in the sequential form


@pytest.mark.parametrize("mode", ["sequential", "compositional"])
def test_batched_equals_unbatched_and_uses_one_call(mode):
    z, tau, cond = _inputs()
    m1, m2 = ToyModel(), ToyModel()
    scales = {"b": 1.5, "a": 4.0}
    batched = classifier_free_guidance(m1, cond, scales, mode, batched=True)(z, tau)
    single = classifier_free_guidance(m2, cond, scales, mode, batched=False)(z, tau)
    torch.testing.assert_close(batched, single)
    assert m1.calls == 1 and m2.calls == 3


def test_unguided_conditions_are_kept():
    z, tau, cond = _inputs()
    m = ToyModel()
    other = replace(cond, c=cond.c + 1.0)
    a = classifier_free_guidance(m, cond, {"a": 2.0})(z, tau)
    b = classifier_free_guidance(m, other, {"a": 2.0})(z, tau)
    torch.testing.assert_close(b - a, torch.ones_like(a))


def test_bad_mode_raises():
    z, tau, cond = _inputs()
    with pytest.raises(ValueError, match="mode"):
        classifier_free_guidance(ToyModel(), cond, {"a": 1.0}, mode="joint")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["sequential", "compositional"])
def test_contrast_guides_against_the_contrasted_condition(mode):
    z, tau, cond = _inputs()
    m = ToyModel()
    scales = {"a": 2.0, "b": 3.0}
    plain = classifier_free_guidance(m, cond, scales, mode)(z, tau)
    got = classifier_free_guidance(m, cond, scales, mode, contrasts=["b"])(z, tau)
    if mode == "sequential":
        base, f_b, f_neg = m(z, tau, cond.nulled(["b"])), m(z, tau, cond), m(z, tau, cond.contrasted("b"))
    else:
        base, f_b = m(z, tau, cond.nulled(["a", "b"])), m(z, tau, cond.nulled(["a"]))
        f_neg = m(z, tau, cond.contrasted("b").nulled(["a"]))
    # the b term s (f_b - base) is replaced by (f_b - base) + (s - 1)(f_b - f_neg)
    expected = plain - 3.0 * (f_b - base) + (f_b - base) + 2.0 * (f_b - f_neg)
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, plain)
    ones = classifier_free_guidance(m, cond, {"a": 1.0, "b": 1.0}, mode, contrasts=["a", "b"])(z, tau)
    torch.testing.assert_close(ones, classifier_free_guidance(m, cond, {"a": 1.0, "b": 1.0}, mode)(z, tau))
    m1, m2 = ToyModel(), ToyModel()
    batched = classifier_free_guidance(m1, cond, scales, mode, contrasts=["a", "b"])(z, tau)
    single = classifier_free_guidance(m2, cond, scales, mode, batched=False, contrasts=["a", "b"])(z, tau)
    torch.testing.assert_close(batched, single)
    assert m1.calls == 1 and m2.calls == 5


def test_contrast_of_an_unguided_condition_raises():
    z, tau, cond = _inputs()
    with pytest.raises(ValueError, match="contrasts \\['c'\\] are not guided"):
        classifier_free_guidance(ToyModel(), cond, {"a": 2.0}, contrasts=["c"])


def _ctx_model(z, tau, ctx):
    return z * 2.0 + rearrange(ctx, "b -> b 1 1 1") ** 3


@pytest.mark.parametrize("use_cat", [False, True])
def test_context_guidance(use_cat):
    z, tau, _ = _inputs()
    with_ctx, without_ctx = torch.tensor([1.0, 2.0, 0.5, -1.0]), torch.zeros(4)
    cat = torch.cat if use_cat else None
    f_c, f_u = _ctx_model(z, tau, with_ctx), _ctx_model(z, tau, without_ctx)
    torch.testing.assert_close(context_guidance(_ctx_model, with_ctx, without_ctx, 1.0, cat)(z, tau), f_c)
    torch.testing.assert_close(context_guidance(_ctx_model, with_ctx, without_ctx, 0.0, cat)(z, tau), f_u)
    torch.testing.assert_close(
        context_guidance(_ctx_model, with_ctx, without_ctx, 2.5, cat)(z, tau), f_u + 2.5 * (f_c - f_u)
    )
    torch.testing.assert_close(guided_output(f_u, f_c, 2.5), f_u + 2.5 * (f_c - f_u))


def test_guidance_with_tiny_unet_and_conditioning():
    torch.manual_seed(0)
    net = SpatialUNet(dataclasses.replace(UNetConfig.tiny(), zero_init=False)).eval()
    cond = Conditioning.from_labels(
        ["day", "night"], ["high", None], [[[0.1, 0.5, 0.3, 0.8]], None], [[1], None]
    )
    z = torch.randn(2, 4, 8, 16, generator=torch.Generator().manual_seed(1))
    tau = torch.tensor([100, 900])
    with torch.no_grad():
        scales = {"time_of_day": 2.0, "boxes": 3.0}
        batched = classifier_free_guidance(net, cond, scales)(z, tau)
        single = classifier_free_guidance(net, cond, scales, batched=False)(z, tau)
        torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-4)
        ones = classifier_free_guidance(net, cond, {"time_of_day": 1.0, "boxes": 1.0})(z, tau)
        torch.testing.assert_close(ones, net(z, tau, cond), atol=1e-5, rtol=1e-4)
        assert not torch.allclose(batched, net(z, tau, cond), atol=1e-3)
    with pytest.raises(ValueError, match="condition names"):
        classifier_free_guidance(net, cond, {"weather": 1.0})


@pytest.mark.parametrize("mode", ["sequential", "compositional"])
def test_interval_guides_inside_and_leaves_scale_one_outside(mode):
    z, tau, cond = _inputs()  # tau = 0, 10, 500, 999
    model = ToyModel()
    scales = {"a": 3.0, "b": 2.0}
    full = classifier_free_guidance(model, cond, scales, mode=mode, contrasts=["a"])(z, tau)
    unguided_b = classifier_free_guidance(model, cond, {"a": 3.0, "b": 1.0}, mode=mode, contrasts=["a"])(z, tau)
    mixed = classifier_free_guidance(model, cond, scales, mode=mode, contrasts=["a"], intervals={"b": (400, 999)})(
        z, tau
    )
    torch.testing.assert_close(mixed[2:], full[2:])  # tau 500, 999 inside: guided with 2
    torch.testing.assert_close(mixed[:2], unguided_b[:2])  # tau 0, 10 outside: scale 1
    assert not torch.allclose(full[:2], unguided_b[:2])  # the interval changed something


def test_interval_errors_name_the_problem():
    _, _, cond = _inputs()
    with pytest.raises(ValueError, match="not guided"):
        classifier_free_guidance(ToyModel(), cond, {"a": 2.0}, intervals={"b": (0, 10)})
    with pytest.raises(ValueError, match="0 <= lo <= hi"):
        classifier_free_guidance(ToyModel(), cond, {"a": 2.0}, intervals={"a": (10, 5)})


def test_a_step_outside_every_interval_runs_only_the_conditional_evaluation():
    z, tau, cond = _inputs()  # tau = 0, 10, 500, 999
    model = ToyModel()
    scales = {"a": 3.0, "b": 2.0}
    intervals = {"a": (400, 999), "b": (600, 999)}
    guided = classifier_free_guidance(model, cond, scales, contrasts=["a"], intervals=intervals, batched=False)
    low = torch.tensor([0, 10, 100, 399])  # no sample inside any interval
    model.calls = 0
    out = guided(z, low)
    assert model.calls == 1  # not 1 + 2 names + 1 contrast
    plain = classifier_free_guidance(model, cond, {"a": 1.0, "b": 1.0}, contrasts=["a"], batched=False)(z, low)
    torch.testing.assert_close(out, plain)  # the same as every scale at 1
    model.calls = 0
    guided(z, tau)  # 500 and 999 lie inside: every evaluation runs
    assert model.calls == 4
    # a name without an interval is guided at every step: nothing is skipped
    partial = classifier_free_guidance(model, cond, scales, intervals={"b": (600, 999)}, batched=False)
    model.calls = 0
    partial(z, low)
    assert model.calls == 3
