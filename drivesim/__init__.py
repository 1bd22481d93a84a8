"""drivesim: a learned driving-scene world simulator (Video LDM wrapped as a Gymnasium env)."""

from __future__ import annotations

__version__ = "0.1.0"

from drivesim.registration import register_envs

register_envs()

__all__ = ["__version__", "register_envs"]
