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


def _learned(**kwargs: Any) -> Any:
    from drivesim.env.drive_env import DriveWorldEnv

    return DriveWorldEnv(**kwargs)


def _learned_vector(num_envs: int = 1, **kwargs: Any) -> Any:
    from drivesim.env.vector_env import make_vector_env

    return make_vector_env(num_envs=num_envs, **kwargs)


ENV_KINDS["procedural"] = _procedural
ENV_KINDS["learned"] = _learned
VECTOR_KINDS: dict[str, Callable[..., Any]] = {"learned": _learned_vector}


def env_specs() -> dict[str, dict[str, Any]]:
    """Every env YAML under `envs/`, by id."""
    from drivesim.paths import envs_dir

    specs = (yaml.safe_load(path.read_text()) for path in sorted(envs_dir().glob("*.yaml")))
    return {spec["id"]: spec for spec in specs}


def learned_env_ids() -> list[str]:
    """The ids whose env runs a learned world model (kind "learned"), sorted."""
    return sorted(k for k, v in env_specs().items() if v["kind"] == "learned")


def engine_defaults(env_id: str) -> dict[str, Any]:
    """The engine settings a learned env id's YAML gives (`kwargs.engine_config`); what `gym.make(env_id)`
    runs when the caller overrides none of them."""
    specs, learned = env_specs(), learned_env_ids()
    if env_id not in learned:
        raise ValueError(f"env id {env_id!r} is not a learned env; allowed: {learned}")
    return dict((specs[env_id].get("kwargs") or {}).get("engine_config") or {})


def register_envs() -> list[str]:
    """Register all ids from the env YAMLs (idempotent). Returns the ids."""
    import gymnasium

    ids = []
    for env_id, spec in env_specs().items():
        kind = spec["kind"]
        if kind not in ENV_KINDS:
            raise ValueError(f"env {env_id}: kind={kind!r} is not one of {sorted(ENV_KINDS)}")
        kwargs = dict(spec.get("kwargs") or {})
        if kind == "learned" and "engine_config" in kwargs:
            # the YAML's engine settings are defaults under the caller's engine_config (merged key by key)
            kwargs["engine_defaults"] = kwargs.pop("engine_config")
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id,
                entry_point=ENV_KINDS[kind],
                kwargs=kwargs,
                max_episode_steps=spec.get("max_episode_steps"),
                vector_entry_point=VECTOR_KINDS.get(kind),
            )
        ids.append(env_id)
    return ids
