"""`drivesim demo`: a drive through the learned world model (or the procedural world).

source=learned (the default when the bundled model is installed; `auto` picks it) runs
the learned simulator: each scenario composes a first frame from its labels and boxes
and rolls it forward under scripted actions (drivesim/cli/demo_learned.py).
source=world renders the ground-truth procedural world every stage is trained on.
Outputs in `out` (default outputs/demo/): one MP4 per scenario, a storyboard PNG and
summary.json.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from drivesim.cli.demo_config import SOURCES, DemoConfig, Scenario, scenario_seconds
from drivesim.cli.typed_config import to_dataclass


def scripted_action(t: float, policy_action: np.ndarray) -> np.ndarray:
    """Lane change to the left at 4–5 s, back right at 10–11 s, hard braking at 14–15.5 s,
    speeding up after; otherwise the behaviour policy drives."""
    action = policy_action.copy()
    if 4.0 <= t < 5.0:
        action[0] = -0.6
    elif 10.0 <= t < 11.0:
        action[0] = 0.6
    if 14.0 <= t < 15.5:
        action[1] = -1.0
    elif 15.5 <= t < 18.0:
        action[1] = 1.0
    return action.astype(np.float32)


def run_scenario(sc: Scenario, cfg: DemoConfig, out: Path) -> dict:
    from drivesim.data.video import VideoWriter
    from drivesim.world import BehaviourPolicy, World, WorldConfig

    if sc.script not in ("lane_change_and_brake", "policy"):
        allowed = "'lane_change_and_brake', 'policy'"
        raise ValueError(f"scenario {sc.name}: script={sc.script!r}; allowed: {allowed}")
    world = World(WorldConfig(height=cfg.height, width=cfg.width, fps=cfg.fps))
    frame = world.reset(seed=sc.seed, time_of_day=sc.time_of_day, crowdedness=sc.crowdedness)
    policy = BehaviourPolicy(seed=sc.seed)
    n = max(1, int(round(scenario_seconds(sc, cfg.seconds) * cfg.fps)))
    pick = set(np.linspace(0, n - 1, cfg.storyboard_frames).round().astype(int).tolist())
    board_frames, board_boxes, board_labels = [], [], []
    speeds, collisions, off_road, counts = [], 0, 0, []
    with VideoWriter(out / f"{sc.name}.mp4", fps=cfg.fps, height=cfg.height, width=cfg.width) as writer:
        for i in tqdm(range(n), desc=f"demo {sc.name}", unit="frame"):
            if i:
                action = policy.act(world)
                if sc.script == "lane_change_and_brake":
                    action = scripted_action(i / cfg.fps, action)
                frame = world.step(action)
            writer.write(frame.image)
            speeds.append(frame.ego.speed)
            counts.append(len(frame.boxes))
            collisions += int(frame.events.collision)
            off_road += int(frame.events.off_road)
            if i in pick:
                board_frames.append(frame.image)
                board_boxes.append(frame.boxes)
                board_labels.append(f"{sc.name} t={i / cfg.fps:.1f}s v={frame.ego.speed:.0f}m/s")
    return {
        "scenario": asdict(sc),
        "video": f"{sc.name}.mp4",
        "frames": n,
        "mean_speed_mps": float(np.mean(speeds)),
        "mean_vehicles_in_view": float(np.mean(counts)),
        "collision_frames": collisions,
        "off_road_frames": off_road,
        "storyboard": (board_frames, board_boxes, board_labels),
    }


def _use_learned(config: DemoConfig) -> bool:
    if config.source == "world":
        return False
    if config.source == "learned" or config.model is not None:
        return True
    from drivesim.paths import default_model_dir

    return (default_model_dir() / "config.yaml").is_file()


def run_demo(cfg: DictConfig) -> dict:
    import cv2

    from drivesim.data.atomic import atomic_write_text
    from drivesim.world.storyboard import storyboard

    config: DemoConfig = to_dataclass(cfg, DemoConfig)
    if not math.isfinite(config.seconds) or config.seconds <= 0 or config.fps <= 0:
        raise ValueError(f"seconds={config.seconds} and fps={config.fps} must be positive and finite")
    if not config.out.strip():
        raise ValueError(f"out={config.out!r} must name a folder (an empty value would write into the current one)")
    if config.source not in SOURCES:
        raise ValueError(f"source={config.source!r}; allowed: {list(SOURCES)}")
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    scenarios = config.scenarios or [Scenario()]
    if _use_learned(config):
        from drivesim.cli.demo_learned import run_learned_demo

        summary = run_learned_demo(
            scenarios, config.seconds, config.model, config.engine, out, config.storyboard_frames
        )
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
        for r in summary["scenarios"]:
            print(f"  {r['video']}: {r['seconds_of_video']:.0f} s of video in {r['wall_seconds']:.0f} s")
        print(f"demo (learned model {summary['model']}) written to {out}/: storyboard.png, summary.json")
        return summary
    results = [run_scenario(sc, config, out) for sc in scenarios]
    rows = []
    for r in results:
        frames, boxes, labels = r.pop("storyboard")
        rows.append(storyboard(frames, boxes, labels, cols=len(frames)))
    board = np.concatenate(rows, axis=0)  # (rows*h, w, 3) uint8
    cv2.imwrite(str(out / "storyboard.png"), board[..., ::-1])
    summary = {"source": "procedural world (ground truth)", "scenarios": results}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    videos = ", ".join(r["video"] for r in results)
    print(f"demo written to {out}/: {videos}, storyboard.png, summary.json")
    return summary
