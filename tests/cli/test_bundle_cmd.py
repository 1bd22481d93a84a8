from torch import nn

from drivesim.cli.main import main
from drivesim.model_folder import load_stage, read_folder_config, save_stage


def test_bundle_command_copies_all_or_chosen_stages(tmp_path, capsys):
    save_stage(tmp_path / "a", "autoencoder", nn.Linear(16, 16), {"w": 16})
    save_stage(tmp_path / "a", "image_ldm", nn.Linear(8, 8), {"w": 8})
    save_stage(tmp_path / "b", "upsampler", nn.Linear(4, 4), {"w": 4})
    out = tmp_path / "bundle"
    assert main(["bundle", f"src={tmp_path / 'a'}", f"out={out}", f"+sources.upsampler={tmp_path / 'b'}"]) == 0
    assert sorted(read_folder_config(out)) == ["autoencoder", "image_ldm", "upsampler"]
    assert load_stage(out, "upsampler").extra["stored_dtype"] == "float16"
    assert "3 stages" in capsys.readouterr().out
    only = tmp_path / "only"
    assert main(["bundle", f"src={tmp_path / 'a'}", f"out={only}", "stages=[image_ldm]", "half=false"]) == 0
    assert sorted(read_folder_config(only)) == ["image_ldm"]


def test_bundle_command_errors_name_the_problem(tmp_path, capsys):
    save_stage(tmp_path / "a", "autoencoder", nn.Linear(64, 64), {})
    assert main(["bundle", f"src={tmp_path / 'a'}", f"out={tmp_path / 'o'}", "stages=[video_ldm]"]) == 1
    assert "['video_ldm'] are not in src" in capsys.readouterr().err
    assert main(["bundle", f"src={tmp_path / 'a'}", f"out={tmp_path / 'o'}", "max_megabytes=0.001"]) == 1
    assert "over max_megabytes=0.001" in capsys.readouterr().err
