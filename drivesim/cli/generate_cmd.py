"""`drivesim generate`: scenario videos of any length in constant memory.

    drivesim generate time_of_day=night crowdedness=high boxes=FILE policy=weave minutes=5 out=drive.mp4
    drivesim generate scenarios=FILE.yaml          # a YAML list of scenarios (same keys)
    torchrun --nproc_per_node=N -m drivesim.cli.main generate scenarios=FILE.yaml   # shared by rank

Writes per scenario: the MP4 (streamed, frame by frame), `<name>.png` storyboard and
`<name>.json` (conditions, seed, model, per-step predicted collision/off-road and ego speed), and
one `manifest.json` (default: beside the first scenario's video) listing every scenario's
files. Under torchrun each rank generates every N-th scenario and rank 0 merges the
ranks' parts into the manifest.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import yaml
from omegaconf import DictConfig
from tqdm import tqdm

from drivesim.cli.typed_config import to_dataclass
from drivesim.rollout.engine_api import EngineConfig


@dataclass
class ScenarioConfig:
    time_of_day: str = "day"
    crowdedness: str = "medium"
    boxes: str | None = None  # JSON file of [[x1, y1, x2, y2], ...] normalised
    actions: str | None = None  # .npy / .json (n, 2); overrides policy
    policy: str = "weave"  # open loop (rollout.policies.POLICIES) or closed loop (rollout.drivers.DRIVERS)
    minutes: float = 1.0
    seed: int = 0
    out: str = "outputs/generate/drive.mp4"
    storyboard_seconds: list[float] | None = None  # storyboard times; None: `storyboard_frames` evenly spaced


@dataclass
class GenerateConfig(ScenarioConfig):
    model: str | None = None  # model folder; None = bundled default
    scenarios: str | None = None  # YAML list of ScenarioConfig mappings
    manifest: str | None = None  # merged list of outputs; None: manifest.json beside the first video
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
    from drivesim.rollout.drivers import DRIVERS, ScriptedDriver
    from drivesim.rollout.policies import POLICIES, load_actions, policy_actions
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
    driver = None
    if sc.actions is not None:
        actions = load_actions(sc.actions, num_steps)
    elif sc.policy in DRIVERS:  # closed loop: actions from the last step's pose reading
        driver = ScriptedDriver(sc.policy, steps_per_second)
        actions = np.zeros((num_steps, 2), np.float32)
    elif sc.policy in POLICIES:
        actions = policy_actions(sc.policy, num_steps, sc.seed, steps_per_second)
    else:
        raise ValueError(f"policy={sc.policy!r} is not allowed; expected one of {list(POLICIES + DRIVERS)}")
    if sc.storyboard_seconds is not None:
        bad = [t for t in sc.storyboard_seconds if not 0 <= t <= sc.minutes * 60]
        if bad or not sc.storyboard_seconds:
            raise ValueError(f"storyboard_seconds={sc.storyboard_seconds}: need times in [0, {sc.minutes * 60:g}] s")
        board_steps = np.asarray(sc.storyboard_seconds) * steps_per_second
    else:
        board_steps = np.linspace(0, num_steps, board_frames)
    out = Path(sc.out)
    pick = set(np.minimum(board_steps.round().astype(int), num_steps).tolist())
    board, labels, events, poses = [], [], [], []
    result = engine.start([request])
    state = result.state
    with VideoWriter(out, fps=engine.output_fps, height=h, width=w) as writer:
        writer.write(result.frames[0, -1])
        for i in tqdm(range(num_steps), desc=out.stem, unit="step"):
            if driver is not None:
                actions[i] = driver.act(result, i)[0]
            if i in pick:
                board.append(state.last_frame[0].numpy())
                labels.append(f"t={i / steps_per_second:.1f}s a=[{actions[i, 0]:+.1f},{actions[i, 1]:+.1f}]")
            result = engine.step(state, actions[i : i + 1])
            state = result.state
            for frame in result.frames[0]:
                writer.write(frame)
            events.append([float(result.collision[0]), float(result.off_road[0]), float(result.speed[0])])
            if result.pose is not None:
                poses.append(result.pose[0].tolist())
        if num_steps in pick:
            board.append(state.last_frame[0].numpy())
            labels.append(f"t={num_steps / steps_per_second:.1f}s")
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
        "actions_per_step": {"columns": ["steer", "accel"], "values": actions.tolist()},
    }
    if poses:  # the pose heads' reading after each step
        summary["pose_per_step"] = {"columns": ["lateral_offset_lanes", "heading_rad"], "values": poses}
    if driver is not None:
        summary["lane_changes_commanded"] = driver.lane_changes
    atomic_write_text(out.with_suffix(".json"), json.dumps(summary))
    return summary


def run_generate(cfg: DictConfig) -> list[dict]:
    from drivesim.data.atomic import atomic_write_text
    from drivesim.rollout.engine import build_engine
    from drivesim.training.distributed import barrier, cleanup, init_distributed, shard

    config: GenerateConfig = to_dataclass(cfg, GenerateConfig)
    scenarios = _scenarios(config)
    manifest = Path(config.manifest) if config.manifest else Path(scenarios[0].out).parent / "manifest.json"
    info = init_distributed("cuda" if config.engine.device.startswith("cuda") else "cpu")
    engine_cfg = replace(config.engine, device=str(info.device)) if info.distributed else config.engine
    try:
        mine = shard(list(enumerate(scenarios)), info)  # rank r: scenarios r, r + N, ...
        engine = build_engine(config.model, engine_cfg) if mine else None
        rows = []
        for index, sc in mine:
            summary = generate(sc, engine, config.model, config.storyboard_frames)
            rows.append(
                {
                    "index": index,
                    "video": sc.out,
                    "storyboard": str(Path(sc.out).with_suffix(".png")),
                    "summary": str(Path(sc.out).with_suffix(".json")),
                    "frames": summary["frames"],
                    "fps": summary["fps"],
                    "rank": info.rank,
                    "scenario": asdict(sc),
                }
            )
            print(f"wrote {sc.out} (+ .png, .json)")
        part = manifest.with_name(f"{manifest.stem}.rank{info.rank}.json")
        atomic_write_text(part, json.dumps(rows))
        barrier(info)
        if info.is_main:
            parts = [manifest.with_name(f"{manifest.stem}.rank{r}.json") for r in range(info.world_size)]
            merged = sorted((row for p in parts for row in json.loads(p.read_text())), key=lambda r: r["index"])
            atomic_write_text(manifest, json.dumps({"model": config.model, "scenarios": merged}, indent=2))
            for p in parts:
                p.unlink()
            print(f"manifest: {manifest} ({len(merged)} scenarios from {info.world_size} rank(s))")
        barrier(info)
    finally:
        cleanup(info)
    return rows
