import pytest
import torch
from torch import nn

from drivesim.model_folder import has_stage, load_stage, save_stage
from drivesim.training.ema import EMA


class _Cfg:
    pass


def test_save_load_stage_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    save_stage(tmp_path, "autoencoder", model, {"width": 4, "mults": [1, 2]}, extra={"scale": 0.5})
    save_stage(tmp_path, "probe", nn.Linear(2, 2), {"k": 1})
    rec = load_stage(tmp_path, "autoencoder")
    assert rec.config == {"width": 4, "mults": [1, 2]}
    assert rec.extra == {"scale": 0.5}
    for k, v in model.state_dict().items():
        assert torch.equal(rec.state_dict[k], v)
    assert has_stage(tmp_path, "probe") and has_stage(tmp_path, "autoencoder")
    assert not has_stage(tmp_path, "upsampler")


def test_half_storage_loads_as_float32(tmp_path):
    model = nn.Linear(64, 64)
    save_stage(tmp_path, "m", model, {}, half=True)
    rec = load_stage(tmp_path, "m")
    assert rec.state_dict["weight"].dtype == torch.float32
    assert torch.allclose(rec.state_dict["weight"], model.weight.detach(), atol=1e-3)
    assert (tmp_path / "m.safetensors").stat().st_size < 64 * 64 * 3  # float16: 2 bytes a weight plus header


def test_missing_stage_and_bad_config_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_stage(tmp_path / "nope", "m")
    save_stage(tmp_path, "m", nn.Linear(1, 1), {})
    with pytest.raises(FileNotFoundError, match="stages present: \\['m'\\]"):
        load_stage(tmp_path, "other")
    with pytest.raises(TypeError, match="not YAML-safe"):
        save_stage(tmp_path, "x", nn.Linear(1, 1), {"bad": object()})
    with pytest.raises(ValueError, match="identifier"):
        save_stage(tmp_path, "../evil", nn.Linear(1, 1), {})


def test_config_yaml_is_plain_data(tmp_path):
    save_stage(tmp_path, "m", nn.Linear(1, 1), {"a": (1, 2)})
    text = (tmp_path / "config.yaml").read_text()
    assert "!!python" not in text


def test_ema_tracks_and_warms_up():
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    ema = EMA(model, decay=0.99)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # first update: d = min(0.99, 1/10) = 0.1 -> 0.9 of the new value
    assert torch.allclose(ema.module.weight, torch.full_like(model.weight, 0.9))
    assert not any(p.requires_grad for p in ema.module.parameters())
    assert int(ema.num_updates) == 1
    with pytest.raises(ValueError, match="decay"):
        EMA(model, decay=1.0)


def _save_many(folder, prefix):
    for i in range(15):
        save_stage(folder, f"{prefix}{i}", nn.Linear(1, 1), {"i": i})


def test_concurrent_exports_keep_every_stage(tmp_path):
    import multiprocessing as mp

    ctx = mp.get_context("forkserver")  # a fork of a threaded test worker can inherit a held lock
    procs = [ctx.Process(target=_save_many, args=(tmp_path, p)) for p in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    for prefix in ("a", "b"):
        for i in range(15):
            assert has_stage(tmp_path, f"{prefix}{i}")
