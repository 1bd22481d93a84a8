import pytest

from drivesim.cli.main import UsageError, main, parse


def test_help_lists_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "data synth" in out and "train" in out


def test_unknown_command_and_flags_are_usage_errors(capsys):
    assert main(["fly"]) == 2
    assert "unknown command 'fly'" in capsys.readouterr().err
    with pytest.raises(UsageError, match="unknown flag"):
        parse(["demo", "--fast"])


def test_train_requires_known_stage():
    with pytest.raises(UsageError, match="exactly one stage"):
        parse(["train"])
    with pytest.raises(UsageError, match="unknown stage='warp'"):
        parse(["train", "stage=warp"])
    cmd, rest = parse(["train", "stage=autoencoder", "steps=3"])
    assert cmd.config_name == "train/autoencoder" and rest == ["steps=3"]


def test_positional_dataset_for_data_show():
    cmd, rest = parse(["data", "show", "/tmp/ds", "clip=a"])
    assert cmd.config_name == "data_show" and rest == ["dataset=/tmp/ds", "clip=a"]
    with pytest.raises(UsageError, match="unexpected argument"):
        parse(["demo", "extra"])
