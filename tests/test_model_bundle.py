import pytest
import torch
from torch import nn

from drivesim.model_bundle import bundle_stages
from drivesim.model_folder import load_stage, save_stage


def test_bundle_copies_stages_in_half_and_keeps_others(tmp_path):
    torch.manual_seed(0)
    a, b = nn.Linear(8, 8), nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    save_stage(tmp_path / "src_a", "autoencoder", a, {"width": 8}, extra={"psnr": 28.5})
    save_stage(tmp_path / "src_b", "image_ldm", b, {"k": 1})
    save_stage(tmp_path / "out", "reward", nn.Linear(2, 1), {"r": 2})
    s = bundle_stages({"autoencoder": tmp_path / "src_a", "image_ldm": tmp_path / "src_b"}, tmp_path / "out")
    assert s.stages == ["autoencoder", "image_ldm"] and s.parameters["autoencoder"] == 8 * 8 + 8
    rec = load_stage(tmp_path / "out", "autoencoder")
    assert rec.config == {"width": 8} and rec.extra["psnr"] == 28.5 and rec.extra["stored_dtype"] == "float16"
    assert torch.allclose(rec.state_dict["weight"], a.weight.detach(), atol=1e-3)
    assert not torch.equal(rec.state_dict["weight"], a.weight.detach())  # really stored in half
    assert load_stage(tmp_path / "out", "image_ldm").state_dict["1.num_batches_tracked"].dtype == torch.int64
    assert load_stage(tmp_path / "out", "reward").config == {"r": 2}  # untouched stage kept
    assert s.megabytes > 0


def test_bundle_rejects_missing_stage_and_empty(tmp_path):
    save_stage(tmp_path / "src", "autoencoder", nn.Linear(2, 2), {})
    with pytest.raises(FileNotFoundError, match="stages present: \\['autoencoder'\\]"):
        bundle_stages({"video_ldm": tmp_path / "src"}, tmp_path / "out")
    with pytest.raises(ValueError, match="sources is empty"):
        bundle_stages({}, tmp_path / "out")
