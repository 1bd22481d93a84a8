"""Render a dataset from the procedural world (`drivesim data synth`).

Clip i uses seed `seed + i` and the (time_of_day, crowdedness) combination
i mod 6, so labels are balanced; the BehaviourPolicy drives. Each clip is written
atomically and added to the manifest only when complete, so an interrupted run leaves
a valid dataset, and running the same command again resumes it (the settings are
kept in `synth.json` and must match).
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from drivesim.data.annotations import ClipAnnotations, ClipBoxes, FrameBoxes
from drivesim.data.atomic import atomic_write_text
from drivesim.data.dataset import ClipLabels, finish_clip, write_clip_video
from drivesim.data.labels import BOX_CLASSES, hash_split
from drivesim.data.manifest import MANIFEST_NAME, ClipRecord, ManifestWriter
from drivesim.world import CROWDEDNESS, TIME_OF_DAY, VEHICLE_CLASSES, BehaviourPolicy, World, WorldConfig
from drivesim.world.types import WorldFrame

SOURCE = "procedural_world"
SETTINGS_NAME = "synth.json"
# World vehicle class index -> BOX_CLASSES index.
_CLASS_MAP = np.array([BOX_CLASSES.index(c if c in BOX_CLASSES else "other") for c in VEHICLE_CLASSES], np.int64)


@dataclass(frozen=True)
class SynthConfig:
    out: str  # dataset folder (created; an existing synth dataset with the same settings is resumed)
    num_clips: int = 6
    clip_seconds: float = 8.0
    fps: int = 30
    height: int = 64
    width: int = 128
    seed: int = 0  # clip i uses seed + i
    workers: int = 1  # processes rendering clips in parallel
    crf: int = 18  # H.264 constant rate factor (lower = better)
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    explore: float = 0.0  # BehaviourPolicy exploration-segment probability (open-loop random actions)

    def __post_init__(self) -> None:
        checks = {
            "num_clips": self.num_clips >= 1,
            "clip_seconds": self.clip_seconds > 0,
            "fps": self.fps >= 1,
            "height": self.height >= 2 and self.height % 2 == 0,
            "width": self.width >= 2 and self.width % 2 == 0,
            "seed": self.seed >= 0,
            "workers": self.workers >= 1,
            "crf": 0 <= self.crf <= 51,
            "explore": 0.0 <= self.explore <= 1.0,
        }
        rules = {"height": "an even number >= 2", "width": "an even number >= 2", "crf": "in [0, 51]",
                 "explore": "in [0, 1]"}
        for name, ok in checks.items():
            if not ok:
                allowed = rules.get(name, ">= 0" if name == "seed" else "> 0")
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; it must be {allowed}")
        hash_split("check", self.val_fraction, self.test_fraction)

    @property
    def frames_per_clip(self) -> int:
        return max(1, round(self.clip_seconds * self.fps))

    def settings(self) -> dict[str, object]:
        """What must match to resume: everything except out, num_clips and workers."""
        kept = asdict(self)
        for name in ("out", "num_clips", "workers"):
            kept.pop(name)
        return kept


@dataclass(frozen=True)
class SynthResult:
    out: Path
    records: list[ClipRecord]  # every clip in the manifest
    written: int  # clips rendered by this run
    resumed: int  # clips already present


CONDITIONS: tuple[tuple[str, str], ...] = tuple((t, c) for t in TIME_OF_DAY for c in CROWDEDNESS)


def clip_conditions(index: int) -> tuple[str, str]:
    """(time_of_day, crowdedness) of clip `index`: cycles over all combinations."""
    return CONDITIONS[index % len(CONDITIONS)]


def clip_id(index: int) -> str:
    return f"synth_{index:06d}"


class _Recorder:
    """Streams a world rollout's images while keeping its ground truth (small) in lists."""

    def __init__(self) -> None:
        self.boxes: list[FrameBoxes] = []
        self.actions: list[np.ndarray] = []
        self.ego: list[tuple[float, float, float]] = []
        self.events: list[tuple[bool, bool]] = []

    def images(self, frames: Iterator[WorldFrame]) -> Iterator[np.ndarray]:
        for frame in frames:
            b = frame.boxes
            self.boxes.append(
                FrameBoxes(
                    xyxy=np.clip(b.normalized, 0.0, 1.0).astype(np.float32),
                    classes=_CLASS_MAP[b.classes.astype(np.int64)],
                    track_ids=b.track_ids.astype(np.int64),
                )
            )
            self.actions.append(np.asarray(frame.action, np.float32))
            self.ego.append((frame.ego.speed, frame.ego.lateral_offset, frame.ego.heading))
            self.events.append((bool(frame.events.collision), bool(frame.events.off_road)))
            yield frame.image

    def annotations(self) -> ClipAnnotations:
        return ClipAnnotations(
            num_frames=len(self.boxes),
            boxes=ClipBoxes.from_frames(self.boxes),
            actions=np.stack(self.actions).astype(np.float32),
            ego=np.array(self.ego, np.float32),
            events=np.array(self.events, bool),
        )


def rollout(config: SynthConfig, index: int) -> Iterator[WorldFrame]:
    """The frames of clip `index`: reset, then the BehaviourPolicy drives."""
    time_of_day, crowdedness = clip_conditions(index)
    seed = config.seed + index
    world = World(WorldConfig(height=config.height, width=config.width, fps=config.fps))
    yield world.reset(seed=seed, time_of_day=time_of_day, crowdedness=crowdedness)
    policy = BehaviourPolicy(seed=seed, explore=config.explore)
    for _ in range(config.frames_per_clip - 1):
        yield world.step(policy.act(world))


def render_clip(config: SynthConfig, index: int) -> ClipRecord:
    """Render and write clip `index` (video, then annotations); returns its record."""
    cid = clip_id(index)
    time_of_day, crowdedness = clip_conditions(index)
    labels = ClipLabels(
        id=cid,
        fps=float(config.fps),
        time_of_day=time_of_day,
        crowdedness=crowdedness,
        split=hash_split(cid, config.val_fraction, config.test_fraction),
        source=SOURCE,
        seed=config.seed + index,
    )
    recorder = _Recorder()
    video = write_clip_video(config.out, cid, config.fps, recorder.images(rollout(config, index)), crf=config.crf)
    return finish_clip(config.out, labels, video, recorder.annotations())


def _init_worker() -> None:
    cv2.setNumThreads(1)  # parallelism comes from the worker processes


def _check_resume(out: Path, config: SynthConfig) -> None:
    settings_path = out / SETTINGS_NAME
    if settings_path.is_file():
        saved = {"explore": 0.0, **json.loads(settings_path.read_text(encoding="utf-8"))}  # older: no explore
        if saved != config.settings():
            diff = {k: (saved.get(k), v) for k, v in config.settings().items() if saved.get(k) != v}
            raise ValueError(
                f"out={str(out)!r} holds a synth dataset made with other settings {{name: (saved, now)}} "
                f"{diff}; use a new out folder or the same settings to resume"
            )
    elif (out / MANIFEST_NAME).is_file():
        raise ValueError(f"out={str(out)!r} already holds a dataset that synth did not make; use a new folder")
    else:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(settings_path, json.dumps(config.settings(), indent=2) + "\n")


def synthesize(config: SynthConfig) -> SynthResult:
    """Render clips 0..num_clips-1 that the manifest does not list yet."""
    out = Path(config.out)
    _check_resume(out, config)
    written = 0
    with ManifestWriter(out / MANIFEST_NAME) as manifest:
        todo = [i for i in range(config.num_clips) if clip_id(i) not in manifest]
        resumed = config.num_clips - len(todo)
        bar = tqdm(total=len(todo), desc=f"synth {out.name}", unit="clip")
        if config.workers == 1 or len(todo) <= 1:
            records: Iterator[ClipRecord] = (render_clip(config, i) for i in todo)
            for record in records:
                manifest.add(record)
                written += 1
                bar.update()
        else:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(min(config.workers, len(todo)), initializer=_init_worker) as pool:
                for record in pool.imap_unordered(partial(render_clip, config), todo):
                    manifest.add(record)
                    written += 1
                    bar.update()
        bar.close()
    return SynthResult(out=out, records=manifest.records, written=written, resumed=resumed)
