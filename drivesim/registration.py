"""Register every env id defined in `envs/*.yaml` with Gymnasium.

Each YAML names its `kind`; the kind maps to an entry point through the explicit table
below (no string-to-class lookup from files).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

ENV_KINDS: dict[str, Callable[..., Any]] = {}


def _procedural(**kwargs: Any) -> Any:
    from drivesim.world.gym_env import ProceduralWorldEnv

    return ProceduralWorldEnv(**kwargs)


ENV_KINDS["procedural"] = _procedural


def register_envs() -> list[str]:
    """Register all ids from the env YAMLs (idempotent). Returns the ids."""
    import gymnasium

    from drivesim.paths import envs_dir

    ids = []
    for path in sorted(envs_dir().glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())
        env_id, kind = spec["id"], spec["kind"]
        if kind not in ENV_KINDS:
            raise ValueError(f"{path}: kind={kind!r} is not one of {sorted(ENV_KINDS)}")
        kwargs = dict(spec.get("kwargs") or {})
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id,
                entry_point=ENV_KINDS[kind],
                kwargs=kwargs,
                max_episode_steps=spec.get("max_episode_steps"),
            )
        ids.append(env_id)
    return ids
