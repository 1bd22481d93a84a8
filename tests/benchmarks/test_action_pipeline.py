"""benchmarks/action_pipeline.py: keyframes drawn one step from the truth vs rolled out from their own."""

import torch

from tests.benchmarks import load_benchmark


class StepPredictor:
    """Stands in for an engine: the next keyframe is the last context keyframe + 1; records what it was told."""

    def __init__(self) -> None:
        self.calls = []

    def predict(self, context, actions, cond, gens, context_actions=None, context_speed=None):
        self.calls.append((context.clone(), actions.clone(), context_actions.clone(), context_speed.clone()))
        return context[:, -1] + 1.0


def test_one_step_keyframes_start_from_the_truth_and_rolled_out_ones_from_their_own():
    drawn_keyframes = load_benchmark("action_pipeline").predicted_keyframes
    keys = torch.zeros(2, 5, 4, 2, 3)  # b k c h w
    keys[:, 1] = 10.0
    held = torch.arange(2 * 5 * 2, dtype=torch.float32).reshape(2, 5, 2)
    speeds = torch.arange(10, dtype=torch.float32).reshape(2, 5)

    one_step = StepPredictor()
    drawn = drawn_keyframes(one_step, keys, held, speeds, None, 0, own=False)
    assert drawn.shape == keys.shape
    assert torch.equal(drawn[:, :2], keys[:, :2])
    assert drawn[:, 2].eq(11.0).all() and drawn[:, 3].eq(1.0).all() and drawn[:, 4].eq(1.0).all()

    rolled = StepPredictor()
    drawn = drawn_keyframes(rolled, keys, held, speeds, None, 0, own=True)
    assert [float(drawn[0, k, 0, 0, 0]) for k in range(5)] == [0.0, 10.0, 11.0, 12.0, 13.0]
    # keyframe k is told the action that leads to it, its context the actions and speeds of keyframes k-2, k-1
    context, actions, context_actions, context_speed = rolled.calls[1]  # keyframe 3
    assert torch.equal(actions, held[:, 3]) and torch.equal(context_actions, held[:, 1:3])
    assert torch.equal(context_speed, speeds[:, 1:3])
    assert torch.equal(context[:, 1], drawn[:, 2])


class PixelCodec:
    """Latents are the frames themselves."""

    def decode(self, z):
        return z

    def encode(self, x):
        return x


def test_jittered_keyframes_keep_the_context_and_move_the_rest_along_the_road():
    from drivesim.diffusion.ego_warp import GroundCamera, warp_travel

    bench = load_benchmark("action_pipeline")
    torch.manual_seed(0)
    small = torch.rand(2, 4, 3, 8, 16) * 2 - 1
    keys = torch.nn.functional.interpolate(small.flatten(0, 1), size=(32, 64), mode="bilinear").unflatten(0, (2, 4))
    out = bench.jittered_keyframes(PixelCodec(), keys, 0.5, seed=3, camera=GroundCamera())
    assert out.shape == keys.shape
    torch.testing.assert_close(out[:, :2], keys[:, :2])  # the context keyframes are not moved
    assert (out[:, 2:] - keys[:, 2:]).abs().amax() > 0.05  # the others are
    # keyframe 2 moved by e_2 exactly as warp_travel moves it (rows it cannot show keep the frame)
    e = torch.randn((2, 4), generator=torch.Generator().manual_seed(3)) * 0.5
    moved, ok = warp_travel(keys[:, 2], e[:, 2], GroundCamera())
    torch.testing.assert_close(out[:, 2], ok * moved + (1 - ok) * keys[:, 2])
    again = bench.jittered_keyframes(PixelCodec(), keys, 0.5, seed=3, camera=GroundCamera())
    torch.testing.assert_close(again, out)  # the same seed draws the same errors


def test_travel_rows_read_pairs_from_every_keyframe_against_the_true_travel():
    import numpy as np

    bench = load_benchmark("action_pipeline")
    frames = np.zeros((2, 13, 4, 8, 3), np.uint8)
    frames[:] = (np.arange(13) * 10).astype(np.uint8)[None, :, None, None, None]  # brightness = 10 x frame index
    seen = []

    def reader(before, after):  # reads the frames apart from the brightness step, records the pair count
        seen.append(len(before))
        return ((after - before) * 127.5 / 10.0).mean(dim=(1, 2, 3))

    speed = np.full((2, 13), 15.0, np.float32)  # 15 m/s at 30 fps: 2 m per 4 frames
    rows = bench.read_travel_rows((reader, 4), {"row": frames}, speed, 4, 30.0)["rows"]
    assert seen == [6]  # starts 0, 4, 8 of each clip
    assert rows["row"]["read_mean_m"] == 4.0 and rows["row"]["true_mean_m"] == 2.0
    assert rows["row"]["bias_m"] == 2.0 and rows["row"]["pairs"] == 6


def test_sharpness_reads_a_blurred_video_lower():
    import numpy as np

    from drivesim.eval.checks import uint8_to_video
    from drivesim.eval.degrade import gaussian_blur
    from drivesim.rollout.engine import to_uint8

    bench = load_benchmark("action_pipeline")
    frames = np.random.default_rng(0).integers(0, 256, (1, 2, 16, 32, 3), dtype=np.uint8)
    blurred = to_uint8(gaussian_blur(uint8_to_video(frames), 1.0))
    assert bench.sharpness(blurred) < 0.5 * bench.sharpness(frames)
    assert bench.sharpness(np.full_like(frames, 90)) == 0.0
    rows = np.zeros(16, dtype=bool)
    rows[8:] = True
    half = frames.copy()
    half[:, :, 8:] = 90  # the lower half flat: its rows read 0, the whole frame does not
    assert bench.sharpness(half, rows) == 0.0 < bench.sharpness(half)


def test_swap_ground_takes_only_the_road_rows_from_the_donor():
    import numpy as np
    import pytest

    from drivesim.diffusion.ego_warp import GroundCamera, ground_rows

    bench = load_benchmark("action_pipeline")
    base = np.zeros((2, 3, 64, 128, 3), dtype=np.uint8)
    donor = np.full_like(base, 200)
    camera = GroundCamera()
    out = bench.swap_ground(base, donor, camera)
    road = ground_rows(64, camera).numpy()
    assert 0 < road.sum() < 64  # the sky above and the bonnet below stay the base's
    assert (out[:, :, road] == 200).all() and (out[:, :, ~road] == 0).all()
    assert (base == 0).all()  # the base is not written to
    with pytest.raises(ValueError, match="same shape"):
        bench.swap_ground(base, donor[:, :2], camera)


def test_road_share_reads_the_world_on_the_road_and_grass_off_it():
    import numpy as np

    bench = load_benchmark("action_pipeline")
    from _video_eval import heldout_start

    frames = np.stack([heldout_start(i, 64, 128, 30, 2.0)[1].image for i in (0, 3)])[:, None]  # a day and a night start
    assert (bench.road_share(frames) > 0.7).all()
    grass = np.zeros_like(frames)
    grass[..., 0], grass[..., 1] = 60, 140
    assert (bench.road_share(grass) == 0).all()


def test_on_road_adherence_scores_only_the_windows_on_the_road():
    import numpy as np

    bench = load_benchmark("action_pipeline")
    frames = np.full((2, 20, 64, 128, 3), 100, np.uint8)  # grey: on the road
    frames[1, :, :, :, 1] = 200  # the second clip green: off it
    span = (4, 2, 2)  # probe windows of 4 frames 2 apart, every 2 frames: 7 windows per clip
    rng = np.random.default_rng(0)
    targets = rng.normal(size=(14, 2))
    recovered = targets.copy()
    recovered[7:] = -targets[7:]  # off the road the probe reads the opposite
    out = bench.on_road_adherence(frames, targets, recovered, span)
    assert out["windows_on_road"] == 0.5
    assert abs(out["steer_pearson"] - 1.0) < 1e-9 and abs(out["accel_pearson"] - 1.0) < 1e-9
