"""Classifier-free guidance over named conditions, and context guidance.

Both build a denoiser ``(z, tau) -> output`` for `drivesim.sampling.ddim.ddim_sample` from a
conditional model ``model(z, tau, cond) -> output``. Guidance is applied to the model output
in whatever parameterisation it has (eps or v; both are affine in the score at fixed z, tau).

Classifier-free guidance (`classifier_free_guidance`), over a subset G of the condition
names, each with its own scale s_k. ``cond`` must implement the `Guidable` protocol
(`drivesim.diffusion.conditioning.Conditioning` does). Conditions not in G are kept as given
in every evaluation. Two forms:

- ``"sequential"`` (default): with the names in mapping order k_1..k_K,
  f = f(∅) + Σ_j s_j (f(k_1..k_j) − f(k_1..k_{j-1})). All scales 1 give the plain
  conditional f(k_1..k_K); all 0 give f(∅). (K + 1 evaluations.)
- ``"compositional"``: f = f(∅) + Σ_k s_k (f(k) − f(∅)) with f(k) = only k of G present
  (Liu et al. 2022, composable diffusion). With one condition both forms coincide.

Contrast (``contrasts``, a subset of G; needs ``cond.contrasted(k)``): condition k is guided
against a neighbouring value of itself instead of against its absence (as negative prompts
do): its term s_k (f_k − f_base) becomes (f_k − f_base) + (s_k − 1)(f_k − f_k̄), where f_k̄
is the evaluation of f_k with k replaced by ``cond.contrasted(k)``. Scale 1 still gives the
plain conditional. (One more evaluation per contrasted name.)

Guidance interval (``intervals``, {name: (lo, hi)} in diffusion times τ, inclusive): name k
is guided with s_k only at steps with lo <= τ <= hi and with scale 1 (its plain conditional
term) elsewhere, per sample (Kynkäänniemi et al. 2024 apply guidance in a limited interval of
noise levels). Coarse layout is decided at high τ, detail at low τ. In sequential mode, a
step where every guided name has an interval and no sample's τ lies in any of them runs only the
fully conditional evaluation (all scales 1 telescope to it), so guiding on part of the
trajectory also saves the other steps' extra evaluations.

The evaluations are batched into one model call (``batched=True``, needs
``type(cond).cat``) or run one by one.

Context guidance (`context_guidance`, paper Sec. 3.2; DESIGN.md §1.5):
f' = f(z) + s · (f(z; c_S) − f(z)), s >= 1, where f(z) is the model without context frames.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Literal, Protocol, TypeVar

import torch
from einops import rearrange, repeat
from torch import Tensor

GuidanceMode = Literal["sequential", "compositional"]
GUIDANCE_MODES: tuple[str, ...] = ("sequential", "compositional")

C = TypeVar("C")
G = TypeVar("G", bound="Guidable")


class Guidable(Protocol):
    """A batch of conditions that can null named conditions and be concatenated on the batch."""

    def nulled(self: G, names: Collection[str]) -> G: ...

    @classmethod
    def cat(cls: type[G], conds: Sequence[G]) -> G: ...


ConditionalModel = Callable[[Tensor, Tensor, C], Tensor]
Denoiser = Callable[[Tensor, Tensor], Tensor]


def _evaluate(
    model: ConditionalModel, z: Tensor, tau: Tensor, variants: Sequence, stacked: object | None
) -> list:
    """Outputs of `model` for each condition variant; one call on `stacked` (the variants
    concatenated on the batch) when it is given."""
    if stacked is None:
        return [model(z, tau, v) for v in variants]
    k = len(variants)
    out = model(
        repeat(z, "b ... -> (k b) ...", k=k),  # (k b, ...)
        repeat(tau, "b -> (k b)", k=k),  # (k b,)
        stacked,
    )
    return list(rearrange(out, "(k b) ... -> k b ...", k=k))  # k x (b, ...)


def classifier_free_guidance(
    model: ConditionalModel,
    cond: Guidable,
    scales: Mapping[str, float],
    mode: GuidanceMode = "sequential",
    batched: bool = True,
    contrasts: Collection[str] = (),
    intervals: Mapping[str, tuple[int, int]] | None = None,
) -> Denoiser:
    """A denoiser (z, tau) -> guided output; see the module docstring for the forms, contrast
    and guidance intervals."""
    if mode not in GUIDANCE_MODES:
        raise ValueError(f"guidance mode={mode!r} is not allowed; expected one of {GUIDANCE_MODES}")
    names = list(scales)
    if len(set(names)) != len(names):
        raise ValueError(f"guidance scales name a condition twice: {names}")
    stray = [k for k in contrasts if k not in names]
    if stray:
        raise ValueError(f"contrasts {stray} are not guided; expected a subset of the guided names {names}")
    intervals = dict(intervals or {})
    stray = [k for k in intervals if k not in names]
    if stray:
        raise ValueError(f"guidance intervals {stray} are not guided; expected a subset of the guided names {names}")
    for k, (lo, hi) in intervals.items():
        if not 0 <= lo <= hi:
            raise ValueError(f"guidance interval of {k!r} is ({lo}, {hi}); expected 0 <= lo <= hi (diffusion times)")
    if not names:
        return lambda z, tau: model(z, tau, cond)
    if mode == "sequential":
        # variant j keeps the first j guided names: ∅, {k1}, {k1, k2}, ..., all of G
        variants = [cond.nulled(names[j:]) for j in range(len(names) + 1)]
        negatives = {k: cond.contrasted(k).nulled(names[j + 1 :]) for j, k in enumerate(names) if k in contrasts}
    else:
        variants = [cond.nulled(names)] + [cond.nulled([n for n in names if n != k]) for k in names]
        negatives = {k: cond.contrasted(k).nulled([n for n in names if n != k]) for k in names if k in contrasts}
    weights = [float(scales[n]) for n in names]
    contrasted = [k for k in names if k in negatives]
    every = variants + [negatives[k] for k in contrasted]
    stacked = type(cond).cat(every) if batched else None  # built once, reused every step

    skippable = mode == "sequential" and set(intervals) == set(names)

    def guided(z: Tensor, tau: Tensor) -> Tensor:
        if skippable and not any(bool(((tau >= lo) & (tau <= hi)).any()) for lo, hi in intervals.values()):
            return model(z, tau, variants[-1])  # every scale is 1 at this step: the plain conditional
        outs = _evaluate(model, z, tau, every, stacked)
        negative = dict(zip(contrasted, outs[len(variants) :]))
        result = outs[0]
        for j, (k, s) in enumerate(zip(names, weights), start=1):
            base = outs[j - 1] if mode == "sequential" else outs[0]
            if k in intervals:
                s = _interval_scale(s, tau, intervals[k], result)
            if k in negative:
                result = result + (outs[j] - base) + (s - 1.0) * (outs[j] - negative[k])
            else:
                result = result + s * (outs[j] - base)
        return result

    return guided


def fraction_interval(name: str, value: Sequence[float]) -> tuple[float, float]:
    """A guidance interval given as (lo, hi) fractions of the diffusion times (0 clean, 1 pure noise),
    checked (0 <= lo < hi <= 1); `name` is how the error names the setting."""
    interval = tuple(float(v) for v in value)
    if len(interval) != 2 or not 0.0 <= interval[0] < interval[1] <= 1.0:
        raise ValueError(
            f"{name}={list(value)} is not allowed; expected [lo, hi] with 0 <= lo < hi <= 1 (fractions of the "
            "diffusion times)"
        )
    return interval[0], interval[1]


def interval_times(fractions: tuple[float, float], num_steps: int) -> tuple[int, int]:
    """(lo, hi) fractions -> the inclusive diffusion times 0..num_steps-1 of `intervals`."""
    lo, hi = (round(v * (num_steps - 1)) for v in fractions)
    return lo, hi


def _interval_scale(scale: float, tau: Tensor, interval: tuple[int, int], like: Tensor) -> Tensor:
    """Per-sample scale (b, 1, ...) shaped like `like`: `scale` where lo <= tau <= hi, else 1."""
    lo, hi = interval
    inside = (tau >= lo) & (tau <= hi)  # (b,)
    per_sample = torch.where(inside, scale, 1.0).to(like.dtype)  # (b,)
    return rearrange(per_sample, "b -> b" + " 1" * (like.ndim - 1))


def context_guidance(
    model: ConditionalModel,
    with_context: C,
    without_context: C,
    scale: float,
    cat: Callable[[Sequence[C]], C] | None = None,
) -> Denoiser:
    """f'(z) = f(z; without) + scale * (f(z; with) - f(z; without)) (context guidance, Sec. 3.2).

    cat: optional batch concatenation of two condition objects; when given, both
    evaluations run in one model call.
    """
    if scale == 1.0:
        return lambda z, tau: model(z, tau, with_context)
    variants = [without_context, with_context]
    stacked = cat(variants) if cat is not None else None  # built once, reused every step

    def guided(z: Tensor, tau: Tensor) -> Tensor:
        f_uncond, f_cond = _evaluate(model, z, tau, variants, stacked)
        return f_uncond + scale * (f_cond - f_uncond)

    return guided


def guided_output(unconditional: Tensor, conditional: Tensor, scale: float | Tensor) -> Tensor:
    """The elementary guidance step u + s (c - u), for callers that evaluate the model themselves."""
    return unconditional + scale * (conditional - unconditional)
