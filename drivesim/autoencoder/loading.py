"""Build the autoencoder and the temporal decoder from a model folder.

A model folder (DESIGN.md §4) has `config.yaml` ({stage: {config, extra}}) and one
`<stage>.safetensors` per stage; stages here are "autoencoder" and "temporal_decoder".
Only YAML and safetensors are read, so loading cannot run code.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml
from safetensors.torch import load_file

from drivesim.autoencoder.config import AutoencoderConfig, TemporalDecoderConfig
from drivesim.autoencoder.model import Autoencoder
from drivesim.autoencoder.temporal_decoder import TemporalDecoder

AUTOENCODER_STAGE = "autoencoder"
TEMPORAL_DECODER_STAGE = "temporal_decoder"


def _stage_entry(folder: Path, stage: str) -> tuple[dict[str, Any], dict[str, Any], Path]:
    folder = Path(folder)
    cfg_path = folder / "config.yaml"
    weights = folder / f"{stage}.safetensors"
    if not cfg_path.exists() or not weights.exists():
        raise FileNotFoundError(f"{folder}: stage {stage!r} needs config.yaml and {weights.name}")
    data = yaml.safe_load(cfg_path.read_text()) or {}
    entry = data.get(stage) if isinstance(data, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ValueError(f"{cfg_path}: no `{stage}: {{config: ...}}` mapping")
    return entry["config"], entry.get("extra") or {}, weights


def config_from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    """Instantiate a config dataclass from a plain dict; unknown keys raise a ValueError naming them."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown {cls.__name__} keys {unknown}; allowed: {sorted(known)}")
    return cls(**data)


def _load_weights(module: Any, weights: Path) -> None:
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(weights)).items()}
    module.load_state_dict(state)


def load_autoencoder(folder: Path) -> Autoencoder:
    """The image autoencoder of a model folder, in eval mode, with its latent scale."""
    config, extra, weights = _stage_entry(folder, AUTOENCODER_STAGE)
    model = Autoencoder(config_from_dict(AutoencoderConfig, config, f"{folder}/config.yaml"))
    _load_weights(model, weights)
    if "latent_scale" in extra:
        model.latent_scale.fill_(float(extra["latent_scale"]))
    return model.eval()


def load_temporal_decoder(folder: Path) -> TemporalDecoder:
    """The temporal (video) decoder of a model folder, in eval mode.

    Its config entry holds `autoencoder` (AutoencoderConfig) and `temporal` (TemporalDecoderConfig).
    """
    config, extra, weights = _stage_entry(folder, TEMPORAL_DECODER_STAGE)
    where = f"{folder}/config.yaml"
    if "autoencoder" not in config or "temporal" not in config:
        raise ValueError(f"{where}: temporal_decoder config needs `autoencoder` and `temporal` mappings")
    ae_cfg = config_from_dict(AutoencoderConfig, config["autoencoder"], where)
    td_cfg = config_from_dict(TemporalDecoderConfig, config["temporal"], where)
    model = TemporalDecoder(ae_cfg, td_cfg)
    _load_weights(model, weights)
    if "latent_scale" in extra:
        model.latent_scale.fill_(float(extra["latent_scale"]))
    return model.eval()
