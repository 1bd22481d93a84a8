"""The env ids of envs/*.yaml and the engine settings a learned id gives."""

import pytest
import yaml

from drivesim.paths import envs_dir
from drivesim.registration import engine_defaults, env_specs, learned_env_ids


def test_every_env_yaml_is_listed_by_its_id():
    specs = env_specs()
    assert len(specs) == len(list(envs_dir().glob("*.yaml")))
    assert {"drivesim/DriveWorld-v0", "drivesim/DriveWorldSteer-v0", "drivesim/ProceduralWorld-v0"} <= set(specs)
    assert learned_env_ids() == ["drivesim/DriveWorld-v0", "drivesim/DriveWorldSteer-v0"]


def test_engine_defaults_are_the_yamls_engine_config_and_name_the_allowed_ids():
    steer = engine_defaults("drivesim/DriveWorldSteer-v0")
    text = yaml.safe_load((envs_dir() / "drive_world_steer_v0.yaml").read_text())
    assert steer == text["kwargs"]["engine_config"] and steer["prediction"] == "video_ldm_stride4"
    assert engine_defaults("drivesim/DriveWorld-v0")["prediction"] == "video_ldm"
    with pytest.raises(ValueError, match="not a learned env; allowed: .*DriveWorldSteer-v0"):
        engine_defaults("drivesim/ProceduralWorld-v0")
    with pytest.raises(ValueError, match="DriveWorld-v0"):
        engine_defaults("DriveWorld-v9")
