"""drivesim: a learned driving-scene world simulator (Video LDM wrapped as a Gymnasium env)."""

from __future__ import annotations

__version__ = "0.1.0"

from drivesim.registration import register_envs

register_envs()


def load(path: str | None = None):  # noqa: ANN201 - returns drivesim.rollout.world_model.WorldModel
    """The world model in the model folder `path` (None: the bundled default)."""
    from drivesim.rollout.world_model import load as _load

    return _load(path)


__all__ = ["__version__", "load", "register_envs"]
