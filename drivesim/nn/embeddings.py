"""Embeddings: sinusoidal positions (diffusion time, frame index), labels, Fourier boxes.

- `sinusoidal_embedding` / `TimestepEmbedding`: scalar positions -> vectors (used for the
  diffusion time tau and for frame positions of temporal layers).
- `LabelEmbedding`: a categorical label with -1 meaning null (absent or dropped for
  classifier-free guidance); the null gets its own learned row.
- `BoxEmbedding`: normalised boxes (x1, y1, x2, y2 in [0, 1]) -> Fourier features -> MLP,
  plus a learned class embedding, one token per box. A learned "anchor" token is always
  prepended: row 0 means "boxes unknown" (null, dropped), row 1 "boxes given" (possibly
  none). Padding boxes are excluded by the returned key mask, so padding never changes
  what attends to the tokens, and every row has at least one valid key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn

from drivesim.nn.value_checks import value_checks_on


def sinusoidal_embedding(positions: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """(n,) float or int positions -> (n, dim) [cos | sin] features with geometric frequencies."""
    if dim < 2 or dim % 2:
        raise ValueError(f"sinusoidal embedding dim={dim} must be an even number >= 2")
    if positions.ndim != 1:
        raise ValueError(f"positions must have shape (n,), got {tuple(positions.shape)}")
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=positions.device) / half
    )  # (half,)
    args = rearrange(positions.float(), "n -> n 1") * rearrange(freqs, "f -> 1 f")  # (n, half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (n, dim)


class TimestepEmbedding(nn.Module):
    """Sinusoidal features of a scalar (tau or frame index) followed by a 2-layer SiLU MLP."""

    def __init__(self, frequency_dim: int, out_dim: int, max_period: float = 10000.0) -> None:
        super().__init__()
        self.frequency_dim = frequency_dim
        self.max_period = max_period
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, positions: Tensor) -> Tensor:
        """(n,) -> (n, out_dim)."""
        return self.mlp(sinusoidal_embedding(positions, self.frequency_dim, self.max_period))


def check_labels(name: str, labels: Tensor, num_classes: int) -> None:
    """Raise a ValueError naming `name` unless labels are integers in -1..num_classes-1."""
    if labels.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"{name} must be an integer tensor, got dtype {labels.dtype}")
    if labels.numel() and value_checks_on():
        lo, hi = int(labels.min()), int(labels.max())
        if lo < -1 or hi >= num_classes:
            raise ValueError(f"{name} has values in [{lo}, {hi}]; allowed -1 (null) or 0..{num_classes - 1}")


class LabelEmbedding(nn.Module):
    """Label index (b,) in -1..num_classes-1 -> (b, dim); -1 (null) maps to a learned row."""

    def __init__(self, name: str, num_classes: int, dim: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"LabelEmbedding {name}: num_classes={num_classes} must be >= 1")
        self.name = name
        self.num_classes = num_classes
        self.table = nn.Embedding(num_classes + 1, dim)  # last row = null
        nn.init.normal_(self.table.weight, std=0.02)

    def forward(self, labels: Tensor) -> Tensor:
        check_labels(self.name, labels, self.num_classes)
        index = torch.where(labels < 0, torch.full_like(labels, self.num_classes), labels)
        return self.table(index.long())  # (b, dim)


def fourier_features(x: Tensor, num_frequencies: int) -> Tensor:
    """(..., k) values in about [0, 1] -> (..., k * (1 + 2 F)): raw, sin and cos of 2^f * pi * x."""
    freqs = (2.0 ** torch.arange(num_frequencies, dtype=x.dtype, device=x.device)) * math.pi  # (F,)
    args = rearrange(x, "... k -> ... k 1") * freqs  # (..., k, F)
    feats = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)  # (..., k, 2F)
    return torch.cat([x, rearrange(feats, "... k f -> ... (k f)")], dim=-1)  # (..., k (1 + 2F))


@dataclass(frozen=True)
class BoxTokens:
    """tokens: (b, 1 + n, dim), anchor token first; mask: (b, 1 + n) bool, True = attend."""

    tokens: Tensor
    mask: Tensor


class BoxEmbedding(nn.Module):
    """Boxes (b, n, 4), classes (b, n), box_mask (b, n), boxes_given (b,) -> `BoxTokens`."""

    def __init__(
        self, num_classes: int, dim: int, num_frequencies: int = 8, hidden_dim: int | None = None
    ) -> None:
        super().__init__()
        hidden = hidden_dim or dim
        self.num_classes = num_classes
        self.num_frequencies = num_frequencies
        self.mlp = nn.Sequential(
            nn.Linear(4 * (1 + 2 * num_frequencies), hidden), nn.SiLU(), nn.Linear(hidden, dim)
        )
        self.class_embedding = nn.Embedding(num_classes, dim)
        self.anchor = nn.Embedding(2, dim)  # row 0: boxes unknown (null), row 1: boxes given
        nn.init.normal_(self.class_embedding.weight, std=0.02)
        nn.init.normal_(self.anchor.weight, std=0.02)

    def forward(self, boxes: Tensor, classes: Tensor, box_mask: Tensor, boxes_given: Tensor) -> BoxTokens:
        b, n = box_mask.shape
        if boxes.shape != (b, n, 4) or classes.shape != (b, n) or boxes_given.shape != (b,):
            raise ValueError(
                f"box shapes disagree: boxes {tuple(boxes.shape)}, classes {tuple(classes.shape)}, "
                f"box_mask {tuple(box_mask.shape)}, boxes_given {tuple(boxes_given.shape)}; "
                "expected (b, n, 4), (b, n), (b, n), (b,)"
            )
        mask = box_mask & rearrange(boxes_given, "b -> b 1")  # (b, n)
        safe_classes = torch.where(mask, classes, torch.zeros_like(classes))
        if value_checks_on() and mask.any():
            real = classes[mask]
            if int(real.min()) < 0 or int(real.max()) >= self.num_classes:
                raise ValueError(
                    f"box_classes has values in [{int(real.min())}, {int(real.max())}] for real boxes; "
                    f"allowed 0..{self.num_classes - 1}"
                )
        dtype = self.class_embedding.weight.dtype
        safe_boxes = torch.where(
            rearrange(mask, "b n -> b n 1"), boxes.to(dtype), torch.zeros_like(boxes, dtype=dtype)
        )
        box_tokens = self.mlp(fourier_features(safe_boxes, self.num_frequencies))  # (b, n, dim)
        box_tokens = box_tokens + self.class_embedding(safe_classes.long())  # (b, n, dim)
        anchor = rearrange(self.anchor(boxes_given.long()), "b d -> b 1 d")  # (b, 1, dim)
        tokens = torch.cat([anchor, box_tokens], dim=1)  # (b, 1 + n, dim)
        ones = torch.ones((b, 1), dtype=torch.bool, device=mask.device)
        return BoxTokens(tokens=tokens, mask=torch.cat([ones, mask], dim=1))  # (b, 1 + n)
