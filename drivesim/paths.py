"""Where the bundled resources live: inside the wheel (`drivesim/_conf`, `drivesim/_envs`)
or, in a source checkout, at the repository root (`conf/`, `envs/`)."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _resource(packaged: str, checkout: str) -> Path:
    for candidate in (_PKG / packaged, _PKG.parent / checkout):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"drivesim resource folder not found: looked for {_PKG / packaged} and {_PKG.parent / checkout}"
    )


def conf_dir() -> Path:
    """Folder of the Hydra configs."""
    return _resource("_conf", "conf")


def envs_dir() -> Path:
    """Folder of the env YAML definitions (one per registered Gymnasium id)."""
    return _resource("_envs", "envs")


def default_model_dir() -> Path:
    """Folder of the bundled default checkpoint."""
    return _PKG / "assets" / "default_model"


def default_probes_dir() -> Path:
    """Folder of the bundled evaluation probes (frame_probe, clip_probe) the shipped metrics used."""
    return _PKG / "assets" / "probes"
