"""Composed Hydra configs to typed dataclasses, and the error every command reports bad input with.

Command modules import from here, not from `drivesim.cli.main`, so that the dispatcher imports the
commands and never the other way round.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf


class UsageError(Exception):
    """Bad command line or config: the message names what was wrong and what is allowed."""


def to_dataclass(cfg: DictConfig, cls: type) -> object:
    """Validate a composed config against a typed dataclass; unknown or ill-typed keys raise
    a UsageError that names the key."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls), cfg)
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise UsageError(f"bad config for {cls.__name__}: {exc}") from None
