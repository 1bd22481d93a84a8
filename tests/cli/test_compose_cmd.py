"""`drivesim compose ...` end to end with tiny random models written to tmp."""

import dataclasses
import json
import shutil
from pathlib import Path

import cv2
import pytest
import torch

from drivesim.autoencoder.config import AutoencoderConfig
from drivesim.autoencoder.model import Autoencoder
from drivesim.cli.main import main
from drivesim.diffusion.image_model import ImageLDM, LatentGeometry
from drivesim.diffusion.schedule import ScheduleConfig
from drivesim.diffusion.unet import UNetConfig
from drivesim.rollout.random_model import random_layout_prior
from drivesim.training.checkpoint import save_stage

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli_compose") / "model"
    torch.manual_seed(0)
    ae_cfg = AutoencoderConfig(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, decoder_res_blocks=1)
    ae = Autoencoder(ae_cfg)
    ae.latent_scale.fill_(0.7)
    save_stage(folder, "autoencoder", ae, ae_cfg, extra={"latent_scale": 0.7})
    unet = dataclasses.replace(UNetConfig.tiny(), zero_init=False)
    ldm = ImageLDM.build(unet, ScheduleConfig(), "v", LatentGeometry(4, 8, 16, 0.7), max_boxes=4)
    save_stage(folder, "image_ldm", ldm.unet, ldm.stage_config(), extra=ldm.stage_extra())
    return folder


def test_compose_writes_png(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([[0.40, 0.50, 0.60, 0.90, "car"], [0.05, 0.45, 0.30, 0.70]]))
    out = tmp_path / "out" / "scene.png"
    args = ["compose", f"model={model_dir}", f"boxes={boxes}", "time_of_day=night", "crowdedness=high"]
    code = main([*args, f"out={out}", "seed=0", "steps=3", "draw_boxes=true", "scale=2"])
    assert code == 0, capsys.readouterr().err
    image = cv2.imread(str(out))
    assert image is not None and image.shape == (32, 64, 3)
    assert str(out) in capsys.readouterr().out
    free = tmp_path / "free.png"
    assert main(["compose", f"model={model_dir}", "boxes=null", "time_of_day=null", f"out={free}", "steps=2"]) == 0
    assert cv2.imread(str(free)).shape == (16, 32, 3)


def test_compose_reports_bad_input(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    boxes = tmp_path / "bad.yaml"
    boxes.write_text("- [0.7, 0.2, 0.3, 0.5]\n")
    out = tmp_path / "x.png"
    assert main(["compose", f"model={model_dir}", f"boxes={boxes}", f"out={out}", "steps=1"]) == 1
    assert "x1 < x2" in capsys.readouterr().err and not out.exists()
    assert main(["compose", f"model={model_dir}", "crowdedness=packed", f"out={out}", "steps=1"]) == 1
    assert "crowdedness" in capsys.readouterr().err
    assert main(["compose", f"model={tmp_path / 'nope'}", f"out={out}"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["compose", f"model={model_dir}", f"out={tmp_path / 'x.gif'}"]) in (1, 2)
    assert "out=" in capsys.readouterr().err


def test_compose_with_a_layout_from_the_prior_writes_it_beside_the_image(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    out = tmp_path / "scene.png"
    args = ["compose", f"model={folder}", "crowdedness=medium", f"out={out}", "steps=1"]  # boxes=prior by default
    assert main(args) == 1  # no layout_prior stage yet
    assert "no layout_prior stage" in capsys.readouterr().err and not out.exists()
    save_stage(folder, "layout_prior", random_layout_prior(4).state_dict(), {"random": True})
    assert main([*args, "draw_boxes=true"]) == 0, capsys.readouterr().err
    written = json.loads(out.with_suffix(".boxes.json").read_text())
    assert len(written) == 3 and all(len(e) == 5 and e[4] in ("car", "truck") for e in written)  # medium: 3 boxes
    assert "from the layout prior" in capsys.readouterr().out
    again = tmp_path / "again.png"  # the written layout is a box file: composing with it gives the same frame
    assert main(["compose", f"model={folder}", f"boxes={out.with_suffix('.boxes.json')}", "crowdedness=medium",
                 f"out={again}", "steps=1", "draw_boxes=true"]) == 0
    assert (cv2.imread(str(again)) == cv2.imread(str(out))).all()
