"""`drivesim train stage=NAME key=value ...`: one entry per training stage.

Each stage's primary config is `conf/train/NAME.yaml`; it is validated against the
stage's typed config dataclass before training starts.
"""

from __future__ import annotations

from collections.abc import Callable

from omegaconf import DictConfig

from drivesim.cli.main import to_dataclass


def _probes(cfg: DictConfig) -> object:
    from drivesim.training.probes import ProbeTrainConfig, train

    return train(to_dataclass(cfg, ProbeTrainConfig))


def _autoencoder(cfg: DictConfig) -> object:
    from drivesim.training.autoencoder import AutoencoderTrainConfig, train

    return train(to_dataclass(cfg, AutoencoderTrainConfig))


def _temporal_decoder(cfg: DictConfig) -> object:
    from drivesim.training.temporal_decoder import TemporalDecoderTrainConfig, train

    return train(to_dataclass(cfg, TemporalDecoderTrainConfig))


STAGES: dict[str, Callable[[DictConfig], object]] = {
    "probes": _probes,
    "autoencoder": _autoencoder,
    "temporal_decoder": _temporal_decoder,
}
