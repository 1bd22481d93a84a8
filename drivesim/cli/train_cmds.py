"""`drivesim train stage=NAME key=value ...`: one entry per training stage.

Each stage's primary config is `conf/train/NAME.yaml`; it is validated against the
stage's typed config dataclass before training starts.
"""

from __future__ import annotations

from collections.abc import Callable

from omegaconf import DictConfig

from drivesim.cli.typed_config import to_dataclass


def _probes(cfg: DictConfig) -> object:
    from drivesim.training.probes import ProbeTrainConfig, train

    return train(to_dataclass(cfg, ProbeTrainConfig))


def _autoencoder(cfg: DictConfig) -> object:
    from drivesim.training.autoencoder import AutoencoderTrainConfig, train

    return train(to_dataclass(cfg, AutoencoderTrainConfig))


def _temporal_decoder(cfg: DictConfig) -> object:
    from drivesim.training.temporal_decoder import TemporalDecoderTrainConfig, train

    return train(to_dataclass(cfg, TemporalDecoderTrainConfig))


def _image_ldm(cfg: DictConfig) -> object:
    from drivesim.training.image_ldm import ImageLDMTrainConfig, train

    return train(to_dataclass(cfg, ImageLDMTrainConfig))


def _video_ldm(cfg: DictConfig) -> object:
    from drivesim.training.video_config import VideoLDMTrainConfig
    from drivesim.training.video_ldm import train

    return train(to_dataclass(cfg, VideoLDMTrainConfig))


def _interpolation(cfg: DictConfig) -> object:
    from drivesim.training.interpolation import InterpolationTrainConfig, train

    return train(to_dataclass(cfg, InterpolationTrainConfig))


def _upsampler(cfg: DictConfig) -> object:
    from drivesim.training.upsampler import UpsamplerTrainConfig, train

    return train(to_dataclass(cfg, UpsamplerTrainConfig))


def _upsampler_temporal(cfg: DictConfig) -> object:
    from drivesim.training.upsampler_temporal import UpsamplerTemporalTrainConfig, train

    return train(to_dataclass(cfg, UpsamplerTemporalTrainConfig))


def _reward(cfg: DictConfig) -> object:
    from drivesim.training.reward import RewardTrainConfig, train

    return train(to_dataclass(cfg, RewardTrainConfig))


def _layout_prior(cfg: DictConfig) -> object:
    from drivesim.training.layout_prior import LayoutPriorTrainConfig, train

    return train(to_dataclass(cfg, LayoutPriorTrainConfig))


STAGES: dict[str, Callable[[DictConfig], object]] = {
    "probes": _probes,
    "autoencoder": _autoencoder,
    "temporal_decoder": _temporal_decoder,
    "image_ldm": _image_ldm,
    "video_ldm": _video_ldm,
    "interpolation": _interpolation,
    "upsampler": _upsampler,
    "upsampler_temporal": _upsampler_temporal,
    "reward": _reward,
    "layout_prior": _layout_prior,
}
