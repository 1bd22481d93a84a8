"""Layout prior: p(box layout | time of day, crowdedness) from the training frames' layouts.

The image LDM draws vehicles where boxes are requested far more reliably than it draws the
right *number* of vehicles from a crowdedness label alone (the label-only samples of the
default model hold too few vehicles). Composition from labels alone can therefore go in two
steps, as layout-first scene generators do: draw a layout for the labels, then compose the
frame with that layout (the labels still guide it).

The prior is empirical: the layouts of training frames (one frame every `frame_step`, the
largest `max_boxes` boxes, the rule the image LDM was trained with), kept with each frame's
labels. Sampling picks one of the layouts whose labels match the request uniformly, so the
box counts, sizes, classes and positions follow the training data exactly; it cannot make a
layout no training frame had.

Tensors (stage "layout_prior" of a model folder):
    xyxy (n, k, 4) float32 normalised x1, y1, x2, y2, zero where padded
    classes (n, k) int64 indices into VEHICLE_CLASSES
    counts (n,) int64 boxes per layout (the first `counts[i]` rows of layout i are real)
    time_of_day (n,) int64, crowdedness (n,) int64 label indices of the source frame
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from drivesim.autoencoder.latent_cache import largest_boxes
from drivesim.model_folder import has_stage, stage_state
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY

LAYOUT_PRIOR_STAGE = "layout_prior"
_NAMES = ("xyxy", "classes", "counts", "time_of_day", "crowdedness")


@dataclass(frozen=True)
class LayoutPrior:
    xyxy: Tensor  # (n, k, 4) float32
    classes: Tensor  # (n, k) int64
    counts: Tensor  # (n,) int64
    time_of_day: Tensor  # (n,) int64
    crowdedness: Tensor  # (n,) int64

    def __post_init__(self) -> None:
        n = self.counts.shape[0]
        if n == 0:
            raise ValueError("a LayoutPrior needs at least one layout")
        if self.xyxy.ndim != 3 or self.xyxy.shape[0] != n or self.xyxy.shape[2] != 4:
            raise ValueError(f"xyxy has shape {tuple(self.xyxy.shape)}; expected ({n}, k, 4)")
        k = self.xyxy.shape[1]
        if tuple(self.classes.shape) != (n, k):
            raise ValueError(f"classes has shape {tuple(self.classes.shape)}; expected ({n}, {k})")
        for name in ("time_of_day", "crowdedness"):
            if tuple(getattr(self, name).shape) != (n,):
                raise ValueError(f"{name} has shape {tuple(getattr(self, name).shape)}; expected ({n},)")
        if int(self.counts.min()) < 0 or int(self.counts.max()) > k:
            raise ValueError(f"counts must lie in 0..{k} (the padded box slots)")

    @property
    def max_boxes(self) -> int:
        return int(self.xyxy.shape[1])

    def __len__(self) -> int:
        return int(self.counts.shape[0])

    def matching(self, time_of_day: int = -1, crowdedness: int = -1) -> Tensor:
        """Indices (m,) of the layouts whose labels match; -1 matches any value."""
        _check_index("time_of_day", time_of_day, TIME_OF_DAY)
        _check_index("crowdedness", crowdedness, CROWDEDNESS)
        keep = torch.ones(len(self), dtype=torch.bool)
        if time_of_day >= 0:
            keep &= self.time_of_day == time_of_day
        if crowdedness >= 0:
            keep &= self.crowdedness == crowdedness
        return torch.nonzero(keep).flatten()

    def sample(
        self,
        time_of_day: int = -1,
        crowdedness: int = -1,
        generator: torch.Generator | None = None,
        max_boxes: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One layout for the labels (indices, -1 = any): xyxy (m, 4) float32, classes (m,) int64;
        with max_boxes, its largest max_boxes boxes (for a model that takes fewer than the prior holds).

        Falls back to the crowdedness alone, then to any layout, when no training frame had the
        label pair (a prior fitted on a small dataset)."""
        index = self.matching(time_of_day, crowdedness)
        if index.numel() == 0:
            index = self.matching(-1, crowdedness)
        if index.numel() == 0:
            index = torch.arange(len(self))
        pick = int(index[torch.randint(index.numel(), (1,), generator=generator)])
        m = int(self.counts[pick])
        keep = torch.arange(m) if max_boxes is None else largest_boxes(self.xyxy[pick, :m], max_boxes)
        return self.xyxy[pick, keep].numpy().astype(np.float32), self.classes[pick, keep].numpy().astype(np.int64)

    def mean_counts(self) -> dict[str, float]:
        """Mean boxes per layout for each crowdedness label present."""
        out = {}
        for i, name in enumerate(CROWDEDNESS):
            sel = self.counts[self.crowdedness == i]
            if sel.numel():
                out[name] = float(sel.float().mean())
        return out

    def state_dict(self) -> dict[str, Tensor]:
        return {name: getattr(self, name).contiguous() for name in _NAMES}

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> LayoutPrior:
        missing = [n for n in _NAMES if n not in state]
        if missing:
            raise ValueError(f"layout prior state lacks {missing}; expected tensors {list(_NAMES)}")
        return cls(
            xyxy=state["xyxy"].float(),
            classes=state["classes"].long(),
            counts=state["counts"].long(),
            time_of_day=state["time_of_day"].long(),
            crowdedness=state["crowdedness"].long(),
        )


def _check_index(name: str, value: int, allowed: tuple[str, ...]) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not -1 <= value < len(allowed):
        raise ValueError(f"{name}={value!r} is not allowed; expected a label index in -1..{len(allowed) - 1}")


def load_layout_prior(folder: str | Path) -> LayoutPrior | None:
    """Stage "layout_prior" of a model folder, or None when the folder has none."""
    folder = Path(folder)
    if not has_stage(folder, LAYOUT_PRIOR_STAGE):
        return None
    return LayoutPrior.from_state_dict(stage_state(folder, LAYOUT_PRIOR_STAGE))
