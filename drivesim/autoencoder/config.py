"""Typed configs of the image autoencoder and the temporal decoder."""

from __future__ import annotations

from dataclasses import dataclass

from drivesim.nn.alpha_blender import BLEND_MODES


def _positive_ints(name: str, values: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    out = tuple(int(v) for v in values)
    if not out or any(v < 1 for v in out):
        raise ValueError(f"{name}={list(values)} must be a non-empty list of positive ints")
    return out


@dataclass
class AutoencoderConfig:
    """KL autoencoder (DESIGN.md §1 stage 1).

    The encoder has one resolution level per entry of `channel_mults` (channels
    base_channels * mult) and halves the resolution between levels, so the downsampling
    factor is f = 2 ** (len(channel_mults) - 1): (1, 2, 2) gives f=4, (1, 2, 2, 4) f=8.
    The latent has `latent_channels` channels; the encoder predicts a diagonal Gaussian
    posterior (mean and log-variance) over it.
    """

    in_channels: int = 3
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    decoder_res_blocks: int = 2
    latent_channels: int = 4
    dropout: float = 0.0

    def __post_init__(self) -> None:
        self.channel_mults = _positive_ints("channel_mults", self.channel_mults)
        for name in (
            "in_channels",
            "base_channels",
            "num_res_blocks",
            "decoder_res_blocks",
            "latent_channels",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"AutoencoderConfig.{name}={getattr(self, name)} must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"AutoencoderConfig.dropout={self.dropout} must be in [0, 1)")

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.channel_mults) - 1)

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the latent of an image of `height` x `width` (both must divide by f)."""
        f = self.downsample_factor
        if height % f or width % f:
            raise ValueError(f"image size {height}x{width} must be divisible by the downsampling factor f={f}")
        return height // f, width // f


@dataclass
class TemporalDecoderConfig:
    """Temporal layers inserted into the image decoder (DESIGN.md §1 stage 2).

    A TemporalConvBlock (3-D conv residual block, `temporal_kernel` = (t, h, w)) follows
    the last residual block of the decoder's middle (`temporal_mid`) and of each listed
    decoder level (`temporal_levels`, 0 = full resolution, len(channel_mults)-1 = the
    latent resolution); an AlphaBlender mixes it with the spatial path.
    """

    temporal_kernel: tuple[int, int, int] = (3, 1, 1)
    temporal_levels: tuple[int, ...] = (0, 1, 2)
    temporal_mid: bool = True
    blend_mode: str = "sigmoid"
    init_alpha: float = 0.5

    def __post_init__(self) -> None:
        self.temporal_kernel = tuple(int(k) for k in self.temporal_kernel)  # type: ignore[assignment]
        if len(self.temporal_kernel) != 3 or any(k < 1 or k % 2 == 0 for k in self.temporal_kernel):
            raise ValueError(f"temporal_kernel={list(self.temporal_kernel)} must be three odd positive ints")
        self.temporal_levels = tuple(sorted({int(v) for v in self.temporal_levels}))
        if any(v < 0 for v in self.temporal_levels):
            raise ValueError(f"temporal_levels={list(self.temporal_levels)} must be >= 0")
        if self.blend_mode not in BLEND_MODES:
            raise ValueError(f"blend_mode={self.blend_mode!r} is not allowed; expected one of {list(BLEND_MODES)}")
        if not 0.0 <= self.init_alpha <= 1.0:
            raise ValueError(f"init_alpha={self.init_alpha} must be in [0, 1]")
