"""`drivesim generate`: scenario videos of any length in constant memory.

    drivesim generate time_of_day=night crowdedness=high boxes=FILE policy=weave minutes=5 out=drive.mp4
    drivesim generate scenarios=FILE.yaml          # a YAML list of scenarios (same keys)

Writes per scenario: the MP4 (streamed, frame by frame), `<name>.png` storyboard and
`<name>.json` (conditions, seed, model, per-step predicted collision/off-road/speed).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml
from omegaconf import DictConfig
from tqdm import tqdm

from drivesim.cli.main import to_dataclass
from drivesim.rollout.engine_api import EngineConfig


@dataclass
class ScenarioConfig:
    time_of_day: str = "day"
    crowdedness: str = "medium"
    boxes: str | None = None  # JSON file of [[x1, y1, x2, y2], ...] normalised
    actions: str | None = None  # .npy / .json (n, 2); overrides policy
    policy: str = "weave"
    minutes: float = 1.0
    seed: int = 0
    out: str = "outputs/generate/drive.mp4"


@dataclass
class GenerateConfig(ScenarioConfig):
    model: str | None = None  # model folder; None = bundled default
    scenarios: str | None = None  # YAML list of ScenarioConfig mappings
    storyboard_frames: int = 8
    engine: EngineConfig = field(default_factory=EngineConfig)


def _scenarios(cfg: GenerateConfig) -> list[ScenarioConfig]:
    if cfg.scenarios is None:
        return [ScenarioConfig(**{k: getattr(cfg, k) for k in ScenarioConfig.__dataclass_fields__})]
    path = Path(cfg.scenarios)
    if not path.is_file():
        raise FileNotFoundError(f"scenarios file {path} does not exist")
    items = yaml.safe_load(path.read_text())
    if not isinstance(items, list) or not items:
        raise ValueError(f"scenarios file {path}: expected a non-empty YAML list of scenario mappings")
    allowed = set(ScenarioConfig.__dataclass_fields__)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) - allowed:
            bad = sorted(set(item) - allowed) if isinstance(item, dict) else item
            raise ValueError(f"scenarios file {path}: entry {i} has bad keys {bad}; allowed: {sorted(allowed)}")
        out.append(ScenarioConfig(**item))
    return out


def generate(sc: ScenarioConfig, engine, model: str | None, board_frames: int) -> dict:
    import cv2

    from drivesim.data.atomic import atomic_write_text
    from drivesim.data.video import VideoWriter
    from drivesim.env.options import check_boxes, parse_options
    from drivesim.rollout.policies import load_actions, policy_actions
    from drivesim.world.storyboard import storyboard

    if sc.minutes <= 0:
        raise ValueError(f"minutes={sc.minutes} must be positive")
    boxes = None
    if sc.boxes is not None:
        bpath = Path(sc.boxes)
        if not bpath.is_file():
            raise FileNotFoundError(f"boxes file {bpath} does not exist")
        boxes = check_boxes(json.loads(bpath.read_text())).tolist()
    h, w = engine.frame_size
    opts = {"time_of_day": sc.time_of_day, "crowdedness": sc.crowdedness}
    if boxes is not None:
        opts["boxes"] = boxes
    request = parse_options(opts, sc.seed, np.random.default_rng(sc.seed), h, w)
    steps_per_second = engine.output_fps / engine.frames_per_step
    num_steps = max(1, int(round(sc.minutes * 60 * steps_per_second)))
    actions = (
        load_actions(sc.actions, num_steps)
        if sc.actions is not None
        else policy_actions(sc.policy, num_steps, sc.seed, steps_per_second)
    )
    out = Path(sc.out)
    pick = set(np.linspace(0, num_steps, board_frames).round().astype(int).tolist())
    board, labels, events = [], [], []
    result = engine.start([request])
    state = result.state
    with VideoWriter(out, fps=engine.output_fps, height=h, width=w) as writer:
        writer.write(result.frames[0, -1])
        for i in tqdm(range(num_steps), desc=out.stem, unit="step"):
            if i in pick:
                board.append(state.last_frame[0].numpy())
                labels.append(f"t={i / steps_per_second:.1f}s a=[{actions[i, 0]:+.1f},{actions[i, 1]:+.1f}]")
            step = engine.step(state, actions[i : i + 1])
            state = step.state
            for frame in step.frames[0]:
                writer.write(frame)
            events.append([float(step.collision[0]), float(step.off_road[0]), float(step.speed[0])])
    png = out.with_suffix(".png")
    sheet = storyboard(board, None, labels, cols=min(4, len(board)))
    png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(png), sheet[..., ::-1])
    summary = {
        "scenario": asdict(sc),
        "model": model,
        "frames": 1 + num_steps * engine.frames_per_step,
        "fps": engine.output_fps,
        "events_per_step": {"columns": ["collision_prob", "off_road_prob", "speed_mps"], "values": events},
    }
    atomic_write_text(out.with_suffix(".json"), json.dumps(summary))
    return summary


def run_generate(cfg: DictConfig) -> list[dict]:
    from drivesim.rollout.engine_api import build_engine

    config: GenerateConfig = to_dataclass(cfg, GenerateConfig)
    scenarios = _scenarios(config)
    engine = build_engine(config.model, config.engine)
    results = [generate(sc, engine, config.model, config.storyboard_frames) for sc in scenarios]
    for sc in scenarios:
        print(f"wrote {sc.out} (+ .png, .json)")
    return results
