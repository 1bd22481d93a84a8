"""benchmarks/_engine_args.py: flags over the env's YAML over the script's defaults, into one EngineConfig."""

import argparse

from tests.benchmarks import load_benchmark


def parse(*argv: str) -> tuple[argparse.Namespace, object]:
    module = load_benchmark("_engine_args")
    parser = argparse.ArgumentParser()
    module.add_engine_args(parser, keyframe_steps=4)
    args = parser.parse_args(list(argv))
    module.resolve_engine_args(args)
    return args, module


def test_the_steer_envs_fill_and_guidance_reach_the_engine_config():
    args, module = parse("--env", "drivesim/DriveWorldSteer-v0")
    config = module.engine_config(args, decode_frames=6)
    assert (config.fill, config.context_guidance, config.keyframe_steps) == ("warp", 1.0, 2)
    assert config.anchor_travel is False and config.decode_frames == 6


def test_flags_override_the_env_and_the_defaults_apply_without_one():
    args, module = parse("--env", "drivesim/DriveWorldSteer-v0", "--fill", "model", "--anchor-travel")
    config = module.engine_config(args)
    assert (config.fill, config.anchor_travel, config.keyframe_steps) == ("model", True, 2)
    args, module = parse()
    config = module.engine_config(args)
    assert (config.fill, config.anchor_travel, config.keyframe_steps) == ("model", False, 4)
    assert config.context_guidance == 1.5
    assert config.context_interval == (0.0, 1.0)


def test_context_keys_reaches_the_engine_config_and_bad_values_are_refused(capsys):
    import pytest

    args, module = parse("--env", "drivesim/DriveWorldSteer-v0", "--context-keys", "1")
    assert module.engine_config(args).context_keys == 1
    args, module = parse()
    assert module.engine_config(args).context_keys == 2
    with pytest.raises(SystemExit):
        parse("--context-keys", "3")
    assert "--context-keys: invalid choice: 3" in capsys.readouterr().err


def test_road_from_warp_reaches_the_engine_config_and_an_out_of_range_weight_is_refused():
    import pytest

    args, module = parse("--env", "drivesim/DriveWorldSteer-v0", "--road-from-warp", "0.5")
    assert module.engine_config(args).road_from_warp == 0.5
    args, module = parse("--env", "drivesim/DriveWorldSteer-v0")
    assert module.engine_config(args).road_from_warp == 0.0
    args, module = parse("--road-from-warp", "2")
    with pytest.raises(ValueError, match="road_from_warp=2.0; allowed"):
        module.engine_config(args)


def test_action_guidance_reaches_the_engine_config():
    args, module = parse("--env", "drivesim/DriveWorldSteer-v0", "--action-guidance", "2")
    assert module.engine_config(args).action_guidance == 2.0
    args, module = parse("--env", "drivesim/DriveWorldSteer-v0")
    assert module.engine_config(args).action_guidance == 1.0  # the env's YAML


def test_keyframe_crowdedness_guidance_reaches_the_engine_config():
    args, module = parse("--env", "drivesim/DriveWorldSteer-v0", "--keyframe-crowdedness-guidance", "3")
    assert module.engine_config(args).keyframe_crowdedness_guidance == 3.0
    args, module = parse("--keyframe-crowdedness-interval", "0.5", "1")
    assert module.engine_config(args).keyframe_crowdedness_interval == (0.5, 1.0)
    args, module = parse("--keyframe-crowdedness-guidance", "-2")
    import pytest

    with pytest.raises(ValueError, match="keyframe_crowdedness_guidance=-2.0; allowed"):
        module.engine_config(args)
