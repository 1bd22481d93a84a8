"""`drivesim data latents dataset=DIR ckpt=DIR out=DIR`: build a latent cache."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from drivesim.cli.typed_config import to_dataclass


@dataclass
class LatentsConfig:
    dataset: str
    ckpt: str
    out: str
    height: int | None = None
    width: int | None = None
    splits: list[str] | None = None
    batch_frames: int = 64
    num_threads: int = 2
    device: str = "cpu"  # cpu | cuda (the encoder runs there; the cache is written from the CPU)

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device={self.device!r} must be 'cpu' or 'cuda'")
        if self.batch_frames < 1:
            raise ValueError(f"batch_frames={self.batch_frames} must be >= 1")
        if (self.height is None) != (self.width is None):
            raise ValueError(
                f"give both height and width or neither (height={self.height}, width={self.width})"
            )


def run_latents(cfg: DictConfig) -> object:
    """Encode `dataset` with the autoencoder of `ckpt` into the cache folder `out`."""
    import yaml

    from drivesim.autoencoder.latent_cache import encode_dataset
    from drivesim.autoencoder.loading import AUTOENCODER_STAGE, load_autoencoder

    config: LatentsConfig = to_dataclass(cfg, LatentsConfig)
    torch.set_num_threads(config.num_threads)
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but torch sees no CUDA device; use device=cpu")
    model = load_autoencoder(config.ckpt).to(config.device)
    height, width = config.height, config.width
    if height is None:
        entry = (yaml.safe_load(Path(config.ckpt, "config.yaml").read_text()) or {}).get(
            AUTOENCODER_STAGE, {}
        )
        size = (entry.get("extra") or {}).get("image_size")
        if not size:
            raise ValueError(f"ckpt={config.ckpt!r} does not record its image_size; pass height= and width=")
        height, width = int(size[0]), int(size[1])
    summary = encode_dataset(
        config.dataset,
        model,
        config.out,
        height=height,
        width=width,
        batch_frames=config.batch_frames,
        splits=tuple(config.splits) if config.splits else None,
        source_checkpoint=str(config.ckpt),
    )
    print(
        f"latents: {summary.encoded} clips ({summary.frames} frames) encoded, "
        f"{summary.reused} already cached, {len(summary.skipped)} skipped; "
        f"latent_scale {summary.latent_scale:.4f} -> {summary.root}"
    )
    for clip_id, reason in summary.skipped.items():
        print(f"  skipped {clip_id}: {reason}")
    return summary
