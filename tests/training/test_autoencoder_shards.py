"""Stage 1 trained from WebDataset tar shards (data_format="shards") on a tiny dataset of real MP4s."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from einops import rearrange
from safetensors.torch import load_file

from drivesim.autoencoder.config import AutoencoderConfig
from drivesim.autoencoder.discriminator import DiscriminatorConfig
from drivesim.autoencoder.frame_bank import load_clip_frames
from drivesim.cli.main import compose, main
from drivesim.cli.typed_config import to_dataclass
from drivesim.data.dataset import ClipLabels, write_clip
from drivesim.data.manifest import MANIFEST_NAME, write_manifest
from drivesim.data.shards import ShardWriteConfig, write_shards
from drivesim.training.autoencoder import AutoencoderTrainConfig, train
from drivesim.training.autoencoder_data import ShardFrameStream, StreamPosition, stream_start
from drivesim.training.distributed import DistInfo
from drivesim.training.run_state import RunCheckpointer

torch.set_num_threads(1)

TINY_AE = AutoencoderConfig(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, decoder_res_blocks=1)
TINY_D = DiscriminatorConfig(base_channels=4, num_layers=2)
H, W, T = 16, 32, 8  # frame size and frames per clip
SPLITS = ("train", "train", "val", "train")  # 3 train clips: 24 train frames


def _node(rank: int = 0, world_size: int = 1) -> DistInfo:
    return DistInfo(rank=rank, local_rank=rank, world_size=world_size, device=torch.device("cpu"))


def _clip(seed: int) -> list[np.ndarray]:
    """Frames that differ between clips (colour) and within a clip (a moving block)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(30, 225, 3)
    frames = []
    for k in range(T):
        f = np.empty((H, W, 3), np.uint8)
        f[...] = base
        f[3:13, 3 * k : 3 * k + 8] = 255 - base
        frames.append(f)
    return frames


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`ds`: a dataset folder; `sh`: its shards, one clip a shard."""
    root = tmp_path_factory.mktemp("ae_shards")
    records = []
    for i, split in enumerate(SPLITS):
        labels = ClipLabels(id=f"c{i}", fps=10.0, time_of_day="day", crowdedness="low", split=split, source="test")
        records.append(write_clip(root / "ds", labels, _clip(i)))
    write_manifest(root / "ds" / MANIFEST_NAME, records)
    write_shards(ShardWriteConfig(dataset=str(root / "ds"), out=str(root / "sh"), shard_max_clips=1))
    return root


def _cfg(data: Path, tmp: Path, name: str = "run", **kw) -> AutoencoderTrainConfig:
    base = dict(
        data_format="shards",
        shards=str(data / "sh"),
        dataset=str(tmp / "no-such-dataset"),  # never read with shards
        run_dir=str(tmp / name / "run"),
        model_dir=str(tmp / name / "model"),
        model=TINY_AE,
        discriminator=TINY_D,
        height=H,
        width=W,
        batch_size=4,
        max_steps=4,
        warmup_steps=1,
        disc_start=2,
        checkpoint_every=2,
        eval_every=2,
        log_every=1,
        val_frames=4,
        scale_frames=8,
        shard_clip_buffer=2,
        shard_frame_buffer=6,
        seed=5,
    )
    base.update(kw)
    return AutoencoderTrainConfig(**base)


def _dir_frames(data: Path) -> torch.Tensor:
    bank = load_clip_frames(data / "ds", "train", H, W)
    return rearrange(bank.frames, "n h w c -> n c h w").float() / 127.5 - 1.0  # (n, c, h, w)


def _keys(x: torch.Tensor) -> list[bytes]:
    return sorted(f.numpy().tobytes() for f in x)


def _epoch(stream: ShardFrameStream, batches: int) -> torch.Tensor:
    out = torch.cat([stream.next() for _ in range(batches)])
    assert stream.position() == StreamPosition(epoch=0, batch=batches)
    return out


class Interrupt(Exception):
    pass


def _interrupt_at(stop: int):
    def hook(step: int) -> None:
        if step == stop:
            raise Interrupt

    return hook


def test_shard_training_runs_and_resumes_on_the_same_batches(data: Path, tmp_path: Path) -> None:
    straight = train(_cfg(data, tmp_path, "a"))
    assert straight.steps == 4 and np.isfinite(straight.val_psnr) and straight.latent_scale > 0
    rows = [json.loads(line) for line in (tmp_path / "a" / "run" / "losses.jsonl").read_text().splitlines()]
    losses = [r["total"] for r in rows if "total" in r]
    assert len(losses) == 4 and all(np.isfinite(losses))
    state = json.loads((RunCheckpointer(tmp_path / "a" / "run").checkpoints()[-1] / "state.json").read_text())
    assert state["step"] == 4 and state["extra"]["shard_positions"] == [{"epoch": 0, "batch": 4}]  # one rank
    assert (tmp_path / "a" / "model" / "autoencoder.safetensors").stat().st_size > 0

    cfg_b = _cfg(data, tmp_path, "b")
    with pytest.raises(Interrupt):
        train(cfg_b, after_step=_interrupt_at(3))  # checkpoint at step 2 (batch 2 of epoch 0)
    steps: list[int] = []
    resumed = train(cfg_b, after_step=steps.append)  # skips 2 batches, then trains on batches 3 and 4
    assert steps == [3, 4] and resumed.steps == 4
    a = load_file(str(tmp_path / "a" / "model" / "autoencoder.safetensors"))
    b = load_file(str(tmp_path / "b" / "model" / "autoencoder.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key


def test_unshuffled_shards_give_the_directory_frames(data: Path, tmp_path: Path) -> None:
    expected = _dir_frames(data)  # the train frames the "dir" format holds, in manifest order
    assert expected.shape == (24, 3, H, W) and len(set(_keys(expected))) == 24
    stream = ShardFrameStream(_cfg(data, tmp_path, shard_shuffle=False), _node(), StreamPosition(0, 0))
    first = stream.next()
    assert first.shape == (4, 3, H, W)
    assert torch.equal(first, expected[:4])  # the directory format's first 4 frames, pixel for pixel
    rest = torch.cat([stream.next() for _ in range(5)])
    assert torch.equal(rest, expected[4:])
    assert stream.next().shape == (4, 3, H, W) and stream.position() == StreamPosition(epoch=1, batch=1)


def test_shuffled_epochs_with_workers_are_the_directory_multiset(data: Path, tmp_path: Path) -> None:
    expected = _dir_frames(data)
    stream = ShardFrameStream(_cfg(data, tmp_path, shard_workers=2), _node(), StreamPosition(0, 0))
    epoch0 = _epoch(stream, 6)
    assert _keys(epoch0) == _keys(expected) and not torch.equal(epoch0, expected)  # all frames, shuffled
    epoch1 = torch.cat([stream.next() for _ in range(6)])
    assert stream.position() == StreamPosition(epoch=1, batch=6)
    assert _keys(epoch1) == _keys(expected) and not torch.equal(epoch1, epoch0)  # set_epoch reshuffled


def test_ranks_split_the_global_batch_and_the_shards(data: Path, tmp_path: Path) -> None:
    cfg = _cfg(data, tmp_path)
    parts = []
    for rank in (0, 1):
        stream = ShardFrameStream(cfg, _node(rank, 2), StreamPosition(0, 0))
        assert stream.per_rank == 2
        batches = []
        while stream.position().epoch == 0:
            batches.append(stream.next())
        parts.append(torch.cat(batches[:-1]))  # the last one opened epoch 1
    assert 0 < len(parts[0]) and 0 < len(parts[1]) and len(parts[0]) + len(parts[1]) == 24
    assert not set(_keys(parts[0])) & set(_keys(parts[1]))  # each rank reads its own shards
    assert sorted(_keys(parts[0]) + _keys(parts[1])) == _keys(_dir_frames(data))
    with pytest.raises(ValueError, match="batch_size=4 must be divisible by world_size=3"):
        ShardFrameStream(cfg, _node(0, 3), StreamPosition(0, 0))


def test_resume_position_replays_epochs_and_reseeds_resampled_streams(data: Path, tmp_path: Path) -> None:
    cfg = _cfg(data, tmp_path)
    assert stream_start(cfg, 0, {}) == StreamPosition(0, 0)
    assert stream_start(cfg, 7, {"shard_position": {"epoch": 1, "batch": 1}}) == StreamPosition(1, 1)  # older form
    assert stream_start(cfg, 7, {"shard_positions": [{"epoch": 1, "batch": 1}]}) == StreamPosition(1, 1)
    full = ShardFrameStream(cfg, _node(), StreamPosition(0, 0))
    wanted = [full.next() for _ in range(8)]  # crosses into epoch 1
    resumed = ShardFrameStream(cfg, _node(), StreamPosition(1, 1))  # where `full` stood after 7 batches
    assert torch.equal(resumed.next(), wanted[7])

    resampled = _cfg(data, tmp_path, shard_resampled=True)
    assert stream_start(resampled, 7, {"shard_position": {"epoch": 0, "batch": 7}}) == StreamPosition(7, 0)
    fresh = ShardFrameStream(resampled, _node(), stream_start(resampled, 0, {}))
    first = [fresh.next() for _ in range(8)]  # more than one pass over 24 frames: resampled never ends
    again = ShardFrameStream(resampled, _node(), stream_start(resampled, 0, {})).next()
    assert torch.equal(again, first[0])  # seeded
    restarted = ShardFrameStream(resampled, _node(), stream_start(resampled, 2, {})).next()
    assert not torch.equal(restarted, first[0])  # a run resumed at step 2 does not replay the first batch


def test_bad_data_config_is_a_clear_error(data: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data_format='tar'; allowed: \['dir', 'shards'\]"):
        _cfg(data, tmp_path, data_format="tar")
    with pytest.raises(ValueError, match=r"shards=None: data_format='shards' needs the folder"):
        _cfg(data, tmp_path, shards=None)
    with pytest.raises(ValueError, match=r"max_clips=2: allowed only with data_format='dir'"):
        _cfg(data, tmp_path, max_clips=2)
    with pytest.raises(ValueError, match=r"shard_frame_buffer=0 must be >= 1"):
        _cfg(data, tmp_path, shard_frame_buffer=0)
    missing = tmp_path / "no-shards"
    with pytest.raises(ValueError, match=re.escape(f"AutoencoderTrainConfig.shards='{missing}' is not a folder")):
        train(_cfg(data, tmp_path, shards=str(missing)))
    assert not (tmp_path / "run").exists()  # failed before anything was written


def test_hydra_config_defaults_to_dir_and_selects_shards(data: Path, capsys: pytest.CaptureFixture) -> None:
    default = to_dataclass(compose("train/autoencoder", []), AutoencoderTrainConfig)
    assert default.data_format == "dir" and default.shards is None and default.dataset == "data/world"
    chosen = to_dataclass(
        compose("train/autoencoder", ["data_format=shards", f"shards={data / 'sh'}", "shard_resampled=true"]),
        AutoencoderTrainConfig,
    )
    assert (chosen.data_format, chosen.shards, chosen.shard_resampled) == ("shards", str(data / "sh"), True)
    assert main(["train", "stage=autoencoder", "data_format=tar"]) != 0
    assert "data_format='tar'; allowed: ['dir', 'shards']" in capsys.readouterr().err


def test_each_rank_resumes_at_its_own_stream_position(data: Path, tmp_path: Path) -> None:
    cfg = _cfg(data, tmp_path)
    extra = {"shard_positions": [{"epoch": 1, "batch": 3}, {"epoch": 2, "batch": 0}]}  # rank 1 passed an epoch end
    assert stream_start(cfg, 9, extra, _node(0, 2)) == StreamPosition(1, 3)
    assert stream_start(cfg, 9, extra, _node(1, 2)) == StreamPosition(2, 0)
    # saved by 2 ranks, resumed by 1 or 4: the shards split differently, so the earliest epoch restarts
    assert stream_start(cfg, 9, extra, _node()) == StreamPosition(1, 0)
    assert stream_start(cfg, 9, extra, _node(3, 4)) == StreamPosition(1, 0)
    resampled = _cfg(data, tmp_path, shard_resampled=True)
    assert stream_start(resampled, 9, extra, _node(1, 2)) == StreamPosition(9, 0)
