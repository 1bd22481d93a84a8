"""Conditions of the latent diffusion models: labels and boxes, their dropping and rasterising.

`Conditioning` holds, per sample, the time-of-day and crowdedness labels (-1 = null) and a
padded set of normalised boxes. Boxes are one condition: `boxes_given` False means "boxes
unknown" (the null used for classifier-free guidance); True with no real box means "an
empty road". Condition names for guidance and dropping are `CONDITION_NAMES`.

`drop_conditions` nulls each label independently and all boxes of a sample together, with
randomness only from the passed generator (for classifier-free guidance training).
`rasterize_boxes` draws per-class box coverage at latent resolution (the "layout" input).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange, repeat
from torch import Tensor

from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY, VEHICLE_CLASSES

CONDITION_NAMES: tuple[str, ...] = ("time_of_day", "crowdedness", "boxes")

# Contrast label of each label value, for guidance against a neighbouring label instead of the
# null (`Conditioning.contrasted`; None: the null, i.e. plain guidance). Time of day: the other
# one. Crowdedness: the next sparser level (medium against low, high against medium; low, the
# sparsest, against the null), because the image LDM's failure is drawing too few vehicles
# (docs/results.md, Crowdedness contrast guidance: medium requests came out as low).
CONTRASTS: dict[str, dict[str, str | None]] = {
    "time_of_day": {"day": "night", "night": "day"},
    "crowdedness": {"low": None, "medium": "low", "high": "medium"},
}


def check_condition_names(names: Collection[str]) -> None:
    bad = [n for n in names if n not in CONDITION_NAMES]
    if bad:
        raise ValueError(
            f"condition names {bad} are not allowed; expected a subset of {list(CONDITION_NAMES)}"
        )


@dataclass(frozen=True)
class Conditioning:
    """Per-sample conditions (batch b, up to n boxes).

    time_of_day: (b,) long, index into TIME_OF_DAY, -1 = null (unknown / dropped).
    crowdedness: (b,) long, index into CROWDEDNESS, -1 = null.
    boxes: (b, n, 4) float, normalised x1, y1, x2, y2 in [0, 1].
    box_classes: (b, n) long, index into VEHICLE_CLASSES (ignored where box_mask is False).
    box_mask: (b, n) bool, True = a real box, False = padding.
    boxes_given: (b,) bool, False = boxes unknown (null); None is read as all True.
    """

    time_of_day: Tensor
    crowdedness: Tensor
    boxes: Tensor
    box_classes: Tensor
    box_mask: Tensor
    boxes_given: Tensor | None = None

    def __post_init__(self) -> None:
        b = self.time_of_day.shape[0] if self.time_of_day.ndim == 1 else -1
        n = self.box_mask.shape[1] if self.box_mask.ndim == 2 else -1
        expected = {
            "time_of_day": (b,),
            "crowdedness": (b,),
            "boxes": (b, n, 4),
            "box_classes": (b, n),
            "box_mask": (b, n),
        }
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if b < 0 or n < 0 or got != shape:
                raise ValueError(
                    f"Conditioning.{name} has shape {got}; expected {shape} (b, n from labels/box_mask)"
                )
        if self.box_mask.dtype != torch.bool:
            raise ValueError(f"Conditioning.box_mask must be bool, got {self.box_mask.dtype}")
        if self.boxes_given is None:
            object.__setattr__(
                self, "boxes_given", torch.ones(b, dtype=torch.bool, device=self.box_mask.device)
            )
        elif self.boxes_given.shape != (b,) or self.boxes_given.dtype != torch.bool:
            raise ValueError(
                f"Conditioning.boxes_given must be bool of shape ({b},), "
                f"got {self.boxes_given.dtype} {tuple(self.boxes_given.shape)}"
            )

    @property
    def batch_size(self) -> int:
        return int(self.time_of_day.shape[0])

    @property
    def max_boxes(self) -> int:
        return int(self.box_mask.shape[1])

    @property
    def device(self) -> torch.device:
        return self.time_of_day.device

    @classmethod
    def null(cls, batch: int, device: torch.device | str = "cpu", max_boxes: int = 0) -> Conditioning:
        """Every condition null: the input of the unconditional model."""
        return cls(
            time_of_day=torch.full((batch,), -1, dtype=torch.long, device=device),
            crowdedness=torch.full((batch,), -1, dtype=torch.long, device=device),
            boxes=torch.zeros((batch, max_boxes, 4), device=device),
            box_classes=torch.zeros((batch, max_boxes), dtype=torch.long, device=device),
            box_mask=torch.zeros((batch, max_boxes), dtype=torch.bool, device=device),
            boxes_given=torch.zeros((batch,), dtype=torch.bool, device=device),
        )

    @classmethod
    def from_labels(
        cls,
        time_of_day: Sequence[str | None],
        crowdedness: Sequence[str | None],
        boxes: Sequence[np.ndarray | None],
        box_classes: Sequence[np.ndarray | None],
        device: torch.device | str = "cpu",
    ) -> Conditioning:
        """Build from names ("day", "high", ...) and per-sample box arrays (k, 4) / classes (k,).

        None means null for that sample (a None boxes entry: boxes unknown).
        """
        b = len(time_of_day)
        if not len(crowdedness) == len(boxes) == len(box_classes) == b:
            raise ValueError(
                f"from_labels: lengths differ: time_of_day {b}, crowdedness {len(crowdedness)}, "
                f"boxes {len(boxes)}, box_classes {len(box_classes)}"
            )

        def index(name: str, value: str | None, allowed: tuple[str, ...]) -> int:
            if value is None:
                return -1
            if value not in allowed:
                raise ValueError(f"{name}={value!r} is not allowed; expected one of {list(allowed)} or None")
            return allowed.index(value)

        n = max([0] + [len(x) for x in boxes if x is not None])
        box_t = torch.zeros((b, n, 4))
        cls_t = torch.zeros((b, n), dtype=torch.long)
        mask_t = torch.zeros((b, n), dtype=torch.bool)
        for i, (bx, bc) in enumerate(zip(boxes, box_classes)):
            if bx is None:
                continue
            bx = np.asarray(bx, dtype=np.float32)
            if bx.size == 0:
                bx = np.zeros((0, 4), np.float32)
            if bx.ndim != 2 or bx.shape[1] != 4:
                raise ValueError(
                    f"boxes[{i}] has shape {bx.shape}; expected (k, 4) normalised x1, y1, x2, y2"
                )
            bc = np.zeros(len(bx), np.int64) if bc is None else np.asarray(bc, dtype=np.int64)
            if len(bc) != len(bx) or (len(bc) and (bc.min() < 0 or bc.max() >= len(VEHICLE_CLASSES))):
                raise ValueError(
                    f"box_classes[{i}]={bc.tolist()} must have {len(bx)} entries, "
                    f"each in 0..{len(VEHICLE_CLASSES) - 1}"
                )
            box_t[i, : len(bx)] = torch.from_numpy(bx)
            cls_t[i, : len(bx)] = torch.from_numpy(bc)
            mask_t[i, : len(bx)] = True
        return cls(
            time_of_day=torch.tensor(
                [index("time_of_day", v, TIME_OF_DAY) for v in time_of_day], dtype=torch.long
            ),
            crowdedness=torch.tensor(
                [index("crowdedness", v, CROWDEDNESS) for v in crowdedness], dtype=torch.long
            ),
            boxes=box_t,
            box_classes=cls_t,
            box_mask=mask_t,
            boxes_given=torch.tensor([x is not None for x in boxes], dtype=torch.bool),
        ).to(device)

    def to(self, device: torch.device | str) -> Conditioning:
        return Conditioning(**{f.name: getattr(self, f.name).to(device) for f in dataclasses.fields(self)})

    def null_where(self, names: Collection[str], which: Tensor) -> Conditioning:
        """Null the named conditions for samples where `which` (b,) bool is True."""
        check_condition_names(names)
        which = which.to(device=self.device, dtype=torch.bool)
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        minus_one = torch.full_like(self.time_of_day, -1)
        if "time_of_day" in names:
            out["time_of_day"] = torch.where(which, minus_one, self.time_of_day)
        if "crowdedness" in names:
            out["crowdedness"] = torch.where(which, minus_one, self.crowdedness)
        if "boxes" in names:
            keep = rearrange(~which, "b -> b 1")  # (b, 1)
            out["boxes"] = self.boxes * rearrange(keep, "b 1 -> b 1 1").to(self.boxes.dtype)
            out["box_classes"] = self.box_classes * keep.to(self.box_classes.dtype)
            out["box_mask"] = self.box_mask & keep
            out["boxes_given"] = self.boxes_given & ~which
        return Conditioning(**out)

    def contrasted(self, name: str) -> Conditioning:
        """A copy with label `name` replaced by its contrast label (`CONTRASTS`, None -> null); null stays null."""
        if name not in CONTRASTS:
            raise ValueError(f"contrast of {name!r} is not defined; expected one of {list(CONTRASTS)}")
        allowed = TIME_OF_DAY if name == "time_of_day" else CROWDEDNESS
        contrast = [CONTRASTS[name][v] for v in allowed]
        lookup = torch.tensor([-1 if c is None else allowed.index(c) for c in contrast], device=self.device)
        labels = getattr(self, name)  # (b,) long, -1 = null
        swapped = torch.where(labels >= 0, lookup[labels.clamp(min=0)], labels)
        return dataclasses.replace(self, **{name: swapped})

    def nulled(self, names: Collection[str]) -> Conditioning:
        """A copy with the named conditions null for every sample."""
        return self.null_where(names, torch.ones(self.batch_size, dtype=torch.bool, device=self.device))

    @classmethod
    def cat(cls, conds: Sequence[Conditioning]) -> Conditioning:
        """Concatenate along the batch, padding boxes to the largest n."""
        if not conds:
            raise ValueError("Conditioning.cat needs at least one Conditioning")
        n = max(c.max_boxes for c in conds)

        def pad(x: Tensor, value: float | bool) -> Tensor:
            extra = n - x.shape[1]
            if extra == 0:
                return x
            filler = torch.full((x.shape[0], extra, *x.shape[2:]), value, dtype=x.dtype, device=x.device)
            return torch.cat([x, filler], dim=1)

        return cls(
            time_of_day=torch.cat([c.time_of_day for c in conds]),
            crowdedness=torch.cat([c.crowdedness for c in conds]),
            boxes=torch.cat([pad(c.boxes, 0.0) for c in conds]),
            box_classes=torch.cat([pad(c.box_classes, 0) for c in conds]),
            box_mask=torch.cat([pad(c.box_mask, False) for c in conds]),
            boxes_given=torch.cat([c.boxes_given for c in conds]),
        )

    def rows(self, start: int, stop: int) -> Conditioning:
        """The samples start..stop-1 (a slice of the batch)."""
        return Conditioning(**{f.name: getattr(self, f.name)[start:stop] for f in dataclasses.fields(self)})

    def repeat_frames(self, num_frames: int) -> Conditioning:
        """Each sample's conditions repeated for its frames: batch b -> (b t), frame-major inside."""
        return Conditioning(
            **{
                f.name: repeat(getattr(self, f.name), "b ... -> (b t) ...", t=num_frames)
                for f in dataclasses.fields(self)
            }
        )


def drop_conditions(
    cond: Conditioning, generator: torch.Generator, p_labels: float = 0.1, p_boxes: float = 0.1
) -> Conditioning:
    """Null each label with probability p_labels and all boxes of a sample with p_boxes.

    The three draws are independent per sample; randomness only from `generator`.
    """
    for name, p in (("p_labels", p_labels), ("p_boxes", p_boxes)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name}={p} must be in [0, 1]")
    u = torch.rand((3, cond.batch_size), generator=generator, device=generator.device).to(cond.device)
    cond = cond.null_where(["time_of_day"], u[0] < p_labels)
    cond = cond.null_where(["crowdedness"], u[1] < p_labels)
    return cond.null_where(["boxes"], u[2] < p_boxes)


def rasterize_boxes(
    boxes: Tensor, box_classes: Tensor, box_mask: Tensor, num_classes: int, height: int, width: int
) -> Tensor:
    """Per-class box coverage maps (b, num_classes, height, width) in [0, 1].

    Each cell holds the fraction of its area covered by a box of that class (max over
    boxes), so boxes smaller than a latent cell still show up. Padding boxes are ignored.
    """
    b, n = box_mask.shape
    if n == 0:
        return torch.zeros((b, num_classes, height, width), dtype=boxes.dtype, device=boxes.device)
    xs = torch.arange(width + 1, dtype=boxes.dtype, device=boxes.device) / width  # (w+1,) cell edges
    ys = torch.arange(height + 1, dtype=boxes.dtype, device=boxes.device) / height  # (h+1,)
    x1, y1, x2, y2 = (rearrange(boxes[..., k], "b n -> b n 1") for k in range(4))  # (b, n, 1) each
    cover_x = (torch.minimum(x2, xs[1:]) - torch.maximum(x1, xs[:-1])).clamp(min=0) * width  # (b, n, w)
    cover_y = (torch.minimum(y2, ys[1:]) - torch.maximum(y1, ys[:-1])).clamp(min=0) * height  # (b, n, h)
    cover = rearrange(cover_y, "b n h -> b n h 1") * rearrange(cover_x, "b n w -> b n 1 w")  # (b, n, h, w)
    cover = cover.clamp(max=1.0) * rearrange(box_mask, "b n -> b n 1 1").to(boxes.dtype)
    safe_classes = torch.where(box_mask, box_classes, torch.zeros_like(box_classes)).clamp(0, num_classes - 1)
    onehot = torch.nn.functional.one_hot(safe_classes.long(), num_classes).to(boxes.dtype)  # (b, n, c)
    per_class = rearrange(cover, "b n h w -> b n 1 h w") * rearrange(onehot, "b n c -> b n c 1 1")
    return per_class.amax(dim=1)  # (b, c, h, w)
