"""`drivesim demo` on the learned world model: composed scenes driven by scripted actions.

Each scenario starts from a first frame the image LDM composes from its labels and boxes,
then the prediction model rolls it forward under the scenario's actions (keyframes),
the interpolation model fills the frames between them and the (temporal) decoder turns
latents into pixels. Per scenario: `<name>.mp4`, `<name>.png` (storyboard), `<name>.json`
(conditions, predicted events per step) and `<name>_boxes.json` (the composed scene);
`storyboard.png` stacks the scenarios and `summary.json` adds wall-clock timings.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from drivesim.cli.demo_config import Scenario, scenario_seconds
from drivesim.rollout.engine_api import EngineConfig, merge_engine_config


def _offset_range(summary: dict) -> list[float] | None:
    """[min, max] of the pose heads' lateral offset reading over a scenario (lane widths), or None."""
    pose = summary.get("pose_per_step")
    if not pose or not pose["values"]:
        return None
    offset = np.asarray(pose["values"], np.float64)[:, 0]
    return [float(offset.min()), float(offset.max())]


def run_learned_demo(
    scenarios: list[Scenario], seconds: float, model: str | None, engine_config: EngineConfig, out: Path, board: int
) -> dict:
    """Run every scenario for `seconds` on the learned model."""
    import cv2

    from drivesim.cli.generate_cmd import ScenarioConfig, generate
    from drivesim.data.atomic import atomic_write_text
    from drivesim.rollout.engine import LearnedEngine
    from drivesim.rollout.world_model import load

    t0 = time.perf_counter()
    world = load(model)
    engines = {"{}": LearnedEngine(world, engine_config)}  # by the scenario's engine overrides, as JSON
    load_seconds = time.perf_counter() - t0
    results, rows = [], []
    for sc in scenarios:
        length = scenario_seconds(sc, seconds)
        key = json.dumps(dict(sc.engine), sort_keys=True)
        if key not in engines:  # a scenario's own engine settings (e.g. the stride-4 prediction stage)
            try:
                engines[key] = LearnedEngine(world, merge_engine_config(asdict(engine_config), dict(sc.engine)))
            except ValueError as exc:
                raise ValueError(f"scenario {sc.name}: {exc}") from None
        engine = engines[key]
        # storyboard times past a shortened scenario's end are dropped (none left: evenly spaced)
        times = [t for t in sc.storyboard_seconds or [] if t <= length] or None
        boxes_file = None
        if sc.boxes:
            boxes_file = out / f"{sc.name}_boxes.json"
            atomic_write_text(boxes_file, json.dumps(sc.boxes))
        run = ScenarioConfig(
            time_of_day=sc.time_of_day,
            crowdedness=sc.crowdedness,
            boxes=None if boxes_file is None else str(boxes_file),
            policy=sc.policy,
            minutes=length / 60.0,
            seed=sc.seed,
            out=str(out / f"{sc.name}.mp4"),
            storyboard_seconds=times,
        )
        start = time.perf_counter()
        summary = generate(run, engine, model, board)
        wall = time.perf_counter() - start
        events = np.asarray(summary["events_per_step"]["values"], dtype=np.float64)  # (steps, 3)
        results.append(
            {
                "name": sc.name,
                "video": f"{sc.name}.mp4",
                "time_of_day": sc.time_of_day,
                "crowdedness": sc.crowdedness,
                "boxes": sc.boxes,
                "policy": sc.policy,
                "engine": asdict(engine.config),
                "compute_dtype": engine.compute_dtype,  # what dtype "auto" resolved to here
                "layout": engine.layout,  # and layout "auto"
                "frames": summary["frames"],
                "fps": summary["fps"],
                "seconds_of_video": summary["frames"] / summary["fps"],
                "wall_seconds": wall,
                "frames_per_wall_second": summary["frames"] / wall,
                "mean_ego_speed_mps": float(events[:, 2].mean()) if len(events) else None,
                "max_predicted_collision_prob": float(events[:, 0].max()) if len(events) else None,
                "lane_changes_commanded": summary.get("lane_changes_commanded"),
                "lateral_offset_range_lanes": _offset_range(summary),
            }
        )
        sheet = cv2.imread(str(out / f"{sc.name}.png"))
        if sheet is not None:
            rows.append(sheet)
    if rows:
        width = max(r.shape[1] for r in rows)
        padded = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
        cv2.imwrite(str(out / "storyboard.png"), np.concatenate(padded, axis=0))  # (sum h, w, 3) BGR
    return {
        "source": "learned world model",
        "model": str(world.path),
        "engine": asdict(engine_config),
        "load_seconds": load_seconds,
        "scenarios": results,
    }
