"""`drivesim data synth|show|bdd100k|shards`: build and inspect datasets in the drivesim format."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from omegaconf import DictConfig

from drivesim.cli.typed_config import to_dataclass


def _counts(records: list, field: str) -> str:
    counts = Counter(getattr(r, field) for r in records)
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def run_synth(cfg: DictConfig) -> object:
    """Render `num_clips` clips from the procedural world into `out`."""
    from drivesim.data.synth import SynthConfig, synthesize

    config: SynthConfig = to_dataclass(cfg, SynthConfig)
    result = synthesize(config)
    print(
        f"synth: {result.written} clips written, {result.resumed} already present; "
        f"{len(result.records)} clips in {result.out / 'manifest.jsonl'}"
    )
    print(f"  split: {_counts(result.records, 'split')}")
    print(f"  time_of_day: {_counts(result.records, 'time_of_day')}")
    print(f"  crowdedness: {_counts(result.records, 'crowdedness')}")
    return result


def run_show(cfg: DictConfig) -> object:
    """Write a storyboard PNG of one clip with its boxes and labels."""
    import cv2

    from drivesim.data.atomic import atomic_path
    from drivesim.data.dataset import open_dataset
    from drivesim.data.show import ShowConfig, clip_storyboard

    config: ShowConfig = to_dataclass(cfg, ShowConfig)
    out = Path(config.out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"out={config.out!r} must end in .png")
    folder = open_dataset(config.dataset)
    if not folder.clips:
        raise ValueError(f"dataset={config.dataset!r} has no clips in its manifest")
    record = folder.clips[0] if config.clip is None else folder.clip(config.clip)
    board = clip_storyboard(folder, record, config)  # (H, W, 3) uint8 RGB
    with atomic_path(out, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), board[..., ::-1]):
            raise ValueError(f"out={config.out!r}: could not write the PNG")
    print(f"show: clip {record.id} -> {out} ({board.shape[1]}x{board.shape[0]})")
    return out


def run_bdd100k(cfg: DictConfig) -> object:
    """Convert BDD100K videos and Scalabel labels into the drivesim format."""
    from drivesim.data.bdd100k import REPORT_NAME, Bdd100kConfig, convert_bdd100k

    config: Bdd100kConfig = to_dataclass(cfg, Bdd100kConfig)
    result = convert_bdd100k(config)
    print(
        f"bdd100k: {result.converted} videos converted ({result.unlabelled} without labels), "
        f"{len(result.skipped)} skipped, {len(result.bad_label_files)} bad label files, "
        f"{len(result.labels_without_video)} labelled videos not found; "
        f"{len(result.records)} clips in {result.out / 'manifest.jsonl'}"
    )
    for item in result.skipped + result.bad_label_files:
        print(f"  skipped {item.path}: {item.reason}")
    if result.records:
        print(f"  time_of_day: {_counts(result.records, 'time_of_day')}")
        print(f"  crowdedness: {_counts(result.records, 'crowdedness')}")
    print(f"  report: {result.out / REPORT_NAME}")
    if not result.records:
        raise ValueError(f"no video under videos={config.videos!r} could be converted")
    return result


def run_shards(cfg: DictConfig) -> object:
    """Pack a dataset folder into WebDataset tar shards (docs/dataset_format.md, "Shards")."""
    from drivesim.data.shards import SHARD_MANIFEST, ShardWriteConfig, write_shards

    config: ShardWriteConfig = to_dataclass(cfg, ShardWriteConfig)
    result = write_shards(config)
    print(
        f"shards: {result.num_clips} clips in {len(result.shards)} shards, {len(result.skipped)} skipped; "
        f"{result.out / SHARD_MANIFEST}"
    )
    for clip_id, reason in result.skipped.items():
        print(f"  skipped {clip_id}: {reason}")
    return result
