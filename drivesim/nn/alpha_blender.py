"""Learned blend of a spatial path and a temporal path: alpha*spatial + (1-alpha)*temporal.

Video LDM (Blattmann et al. 2023, Sec. 3.1): after each spatial layer l_theta a temporal
layer l_phi is inserted and the output is `alpha * z + (1 - alpha) * z'` with a learnable
alpha in [0, 1] per layer. Setting alpha = 1 gives back the spatial (image) model exactly.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from drivesim.nn.value_checks import value_checks_on

BLEND_MODES: tuple[str, ...] = ("sigmoid", "clamp", "fixed")


class AlphaBlender(nn.Module):
    """alpha * spatial + (1 - alpha) * temporal.

    mode "sigmoid": alpha = sigmoid(learned logit); "clamp": alpha = clamp(learned value, 0, 1);
    "fixed": alpha is a constant buffer. `init_alpha` in [0, 1] is the starting alpha.
    `set_alpha(1.0)` makes the output exactly the spatial input in every mode.
    """

    def __init__(self, init_alpha: float = 0.5, mode: str = "sigmoid") -> None:
        super().__init__()
        if mode not in BLEND_MODES:
            raise ValueError(
                f"AlphaBlender mode={mode!r} is not allowed; expected one of {list(BLEND_MODES)}"
            )
        if not 0.0 <= init_alpha <= 1.0:
            raise ValueError(f"AlphaBlender init_alpha={init_alpha} must be in [0, 1]")
        self.mode = mode
        raw = torch.tensor(self._raw_from_alpha(init_alpha), dtype=torch.float32)
        if mode == "fixed":
            self.register_buffer("raw", raw)
        else:
            self.raw = nn.Parameter(raw)

    def _raw_from_alpha(self, alpha: float) -> float:
        if self.mode != "sigmoid":
            return alpha
        if alpha >= 1.0:
            return math.inf  # sigmoid(inf) == 1.0 exactly
        if alpha <= 0.0:
            return -math.inf
        return math.log(alpha / (1.0 - alpha))

    def alpha(self) -> torch.Tensor:
        """The current alpha, a scalar tensor in [0, 1]."""
        if self.mode == "sigmoid":
            return torch.sigmoid(self.raw)
        return self.raw.clamp(0.0, 1.0)

    @torch.no_grad()
    def set_alpha(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"alpha={value} must be in [0, 1]")
        self.raw.fill_(self._raw_from_alpha(value))

    def forward(self, spatial: torch.Tensor, temporal: torch.Tensor) -> torch.Tensor:
        if spatial.shape != temporal.shape:
            raise ValueError(
                f"AlphaBlender needs equal shapes, got spatial {tuple(spatial.shape)} "
                f"and temporal {tuple(temporal.shape)}"
            )
        alpha = self.alpha().to(spatial.dtype)
        if not value_checks_on():  # compiled: the same exact choice without reading alpha's value
            return torch.where(alpha == 1.0, spatial, alpha * spatial + (1.0 - alpha) * temporal)
        if bool(alpha == 1.0):
            return spatial  # exact image-model path, even if the temporal branch is not finite
        return alpha * spatial + (1.0 - alpha) * temporal

    def extra_repr(self) -> str:
        return f"mode={self.mode}, alpha={float(self.alpha().detach()):.4f}"
