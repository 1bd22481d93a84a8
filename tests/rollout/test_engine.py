"""The whole rollout path (compose -> predict -> interpolate -> decode -> rewards) on tiny
random networks, through the engine, the Gymnasium env and the vector env."""

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from gymnasium.utils.env_checker import check_env

from drivesim.env.drive_env import DriveWorldEnv
from drivesim.env.vector_env import DriveWorldVectorEnv
from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.random_model import build_random_model
from drivesim.rollout.types import SceneRequest
from drivesim.rollout.world_model import load
from tests.rollout.conftest import FAST


def test_engine_shapes_and_frames_per_step(engine):
    assert engine.frames_per_step == 4 and engine.frame_size == (32, 64)
    out = engine.start([SceneRequest(0, 2, seed=1), SceneRequest(1, 0, seed=2, boxes=np.array([[0.4, 0.5, 0.6, 0.7]]))])
    assert out.frames.shape == (2, 1, 32, 64, 3) and out.frames.dtype == np.uint8
    assert out.state.context.shape[:2] == (2, 2)
    step = engine.step(out.state, np.array([[0.5, 0.0], [-0.5, 1.0]], np.float32))
    assert step.frames.shape == (2, 4, 32, 64, 3)
    assert step.collision.shape == (2,) and np.all((step.collision >= 0) & (step.collision <= 1))
    assert step.state.step.tolist() == [1, 1]
    assert step.state.recent.shape == out.state.recent.shape


def test_crowdedness_guidance_and_contrast_change_first_frames_with_a_crowdedness_label(model_dir):
    def engine(**kw):
        return LearnedEngine(load(model_dir), EngineConfig(**FAST, label_guidance=3.0, **kw))

    plain = engine(crowdedness_guidance=None, crowdedness_contrast=False)
    contrast = engine(crowdedness_guidance=None, crowdedness_contrast=True)
    medium = [SceneRequest(0, 1, seed=3)]
    assert not np.array_equal(plain.start(medium).frames, contrast.start(medium).frames)
    free = [SceneRequest(0, -1, seed=3)]
    np.testing.assert_array_equal(plain.start(free).frames, contrast.start(free).frames)
    same = engine(crowdedness_guidance=3.0, crowdedness_contrast=False)
    np.testing.assert_array_equal(plain.start(medium).frames, same.start(medium).frames)
    stronger = engine(crowdedness_guidance=6.0, crowdedness_contrast=False)
    assert not np.array_equal(plain.start(medium).frames, stronger.start(medium).frames)


def test_keyframe_crowdedness_guidance_changes_only_rollouts_told_a_crowdedness(model_dir):
    """keyframe_crowdedness_guidance reaches the prediction sampler (with the contrast when crowdedness_contrast);
    a rollout with no crowdedness label draws the same keyframes guided or not; bad scales are refused."""
    def engine(**kw):
        return LearnedEngine(load(model_dir), EngineConfig(**FAST, **kw))

    plain, guided = engine(), engine(keyframe_crowdedness_guidance=4.0)
    cfg = guided._sampling(2)
    assert cfg.guidance.scales()["crowdedness"] == 4.0 and cfg.guidance.contrasts(cfg.guidance.scales()) == (
        "crowdedness",)
    no_contrast = engine(keyframe_crowdedness_guidance=4.0, crowdedness_contrast=False)
    assert no_contrast._sampling(2).guidance.contrasts({"crowdedness": 4.0}) == ()
    assert "crowdedness" not in plain._sampling(2).guidance.scales()
    act = np.array([[0.2, 0.1]], np.float32)

    def keyframe(eng, crowdedness):
        state = plain.start([SceneRequest(0, crowdedness, seed=4)]).state  # the same first frame for every engine
        return eng.step(state, act).state.context[:, -1]

    assert not torch.allclose(keyframe(plain, 2), keyframe(guided, 2), atol=1e-4)
    assert not torch.allclose(keyframe(guided, 2), keyframe(no_contrast, 2), atol=1e-4)
    torch.testing.assert_close(keyframe(plain, -1), keyframe(guided, -1), atol=1e-5, rtol=1e-5)
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match=r"keyframe_crowdedness_guidance=.*allowed: a finite scale >= 0"):
            EngineConfig(keyframe_crowdedness_guidance=bad)
    part = engine(keyframe_crowdedness_guidance=4.0, keyframe_crowdedness_interval=[0.5, 1])._sampling(2).guidance
    assert part.intervals(part.scales(), 1000) == {"crowdedness": (500, 999)}
    with pytest.raises(ValueError, match=r"keyframe_crowdedness_interval=\[0.5, 0.5\]; allowed: \[lo, hi\]"):
        EngineConfig(keyframe_crowdedness_interval=(0.5, 0.5))


def test_rollout_is_independent_of_batch_composition(engine):
    a = engine.start([SceneRequest(0, 1, seed=5)])
    ab = engine.start([SceneRequest(0, 1, seed=5), SceneRequest(1, 2, seed=6)])
    np.testing.assert_allclose(a.frames[0].astype(int), ab.frames[0].astype(int), atol=1)
    act = np.array([[0.3, 0.2]], np.float32)
    sa = engine.step(a.state, act)
    sab = engine.step(ab.state, np.concatenate([act, -act]))
    np.testing.assert_allclose(sa.frames[0].astype(int), sab.frames[0].astype(int), atol=1)


def test_a_stochastic_keyframe_sampler_draws_each_rollouts_noise_from_its_own_generator(model_dir, engine):
    """keyframe_eta > 0 adds noise after each keyframe DDIM jump: the future changes, the same seed still gives
    the same one, and a rollout's future does not depend on what else is in the batch."""
    stochastic = LearnedEngine(load(model_dir), EngineConfig(**{**FAST, "keyframe_steps": 3}, keyframe_eta=1.0))
    plain = LearnedEngine(load(model_dir), EngineConfig(**{**FAST, "keyframe_steps": 3}))
    a, ab = stochastic.start([SceneRequest(0, 1, seed=5)]), stochastic.start([SceneRequest(0, 1, seed=5),
                                                                              SceneRequest(1, 2, seed=6)])
    act = np.array([[0.3, 0.2]], np.float32)
    sa, sa2 = stochastic.step(a.state, act), stochastic.step(a.state, act)
    sab = stochastic.step(ab.state, np.concatenate([act, -act]))
    np.testing.assert_allclose(sa.frames[0].astype(int), sab.frames[0].astype(int), atol=1)
    assert np.array_equal(sa.frames, sa2.frames)
    assert np.abs(sa.frames.astype(int) - plain.step(a.state, act).frames.astype(int)).max() > 2
    with pytest.raises(ValueError, match=r"keyframe_eta=1.5; allowed \[0, 1\]"):
        EngineConfig(keyframe_eta=1.5)


def test_same_seed_same_future_and_actions_matter(engine):
    s = engine.start([SceneRequest(0, 1, seed=9)]).state
    x = engine.step(s, np.array([[0.9, 0.0]], np.float32)).frames
    y = engine.step(s, np.array([[0.9, 0.0]], np.float32)).frames
    z = engine.step(s, np.array([[-0.9, -0.9]], np.float32)).frames
    assert np.array_equal(x, y)
    assert not np.array_equal(x, z)


def test_context_keyframes_carry_the_actions_that_led_to_them(engine):
    s = engine.start([SceneRequest(0, 1, seed=9)]).state
    assert s.context_actions.shape == (1, 2, 2) and not s.context_actions.any()
    a, b = np.array([[0.9, -0.2]], np.float32), np.array([[-0.4, 0.6]], np.float32)
    s1 = engine.step(s, a).state
    s2 = engine.step(s1, b).state
    np.testing.assert_allclose(s2.context_actions[0].numpy(), np.concatenate([a, b]))
    # the history is part of the state: the same new action after another past gives another future
    other = s2.with_(context_actions=torch.zeros_like(s2.context_actions))
    assert not np.array_equal(engine.step(s2, b).frames, engine.step(other, b).frames)


def test_initial_frames_are_encoded(engine):
    frames = np.random.default_rng(0).integers(0, 255, (2, 32, 64, 3), dtype=np.uint8)
    out = engine.start([SceneRequest(0, 0, seed=0, initial_frames=frames)])
    assert out.state.context.shape[1] == 2


def test_imagine_k_futures_leaves_state_untouched(engine):
    s = engine.start([SceneRequest(0, 1, seed=3)]).state
    before = s.clone()
    acts = np.zeros((3, 2, 2), np.float32)
    im = engine.imagine(s, acts)
    assert im.frames.shape == (3, 2, 4, 32, 64, 3) and im.returns.shape == (3,)
    assert not np.array_equal(im.frames[0], im.frames[1])  # K samples of one action sequence differ
    assert torch.equal(s.context, before.context) and torch.equal(s.rng, before.rng)
    with pytest.raises(ValueError, match="batch size"):
        engine.imagine(s.repeat(2), acts)


def test_env_on_learned_engine_passes_check_env(engine):
    env = DriveWorldEnv(engine=engine, horizon_steps=5)
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=0, options={"time_of_day": "night", "crowdedness": "high"})
    assert obs.shape == (32, 64, 3)
    for _ in range(3):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        assert info["frames"].shape == (4, 32, 64, 3)
        assert np.isfinite(info["speed"]) and np.isfinite(info["speed_read"])


def test_vector_env_matches_single_envs(engine):
    venv = DriveWorldVectorEnv(num_envs=2, engine=engine, horizon_steps=10)
    obs, _ = venv.reset(seed=20)
    acts = np.array([[0.2, 0.1], [-0.4, 0.3]], np.float32)
    vobs = venv.step(acts)[0]
    for i in range(2):
        env = DriveWorldEnv(engine=engine, horizon_steps=10)
        o0, _ = env.reset(seed=20 + i)
        np.testing.assert_allclose(o0.astype(int), obs[i].astype(int), atol=1)
        o1 = env.step(acts[i])[0]
        np.testing.assert_allclose(o1.astype(int), vobs[i].astype(int), atol=1)


def test_registered_env_loads_model_folder(model_dir):
    import drivesim  # noqa: F401

    env = gym.make("drivesim/DriveWorld-v0", model=str(model_dir), engine_config=FAST)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.uint8
    venv = gym.make_vec("drivesim/DriveWorld-v0", num_envs=2, model=str(model_dir), engine_config=FAST)
    assert isinstance(venv.unwrapped, DriveWorldVectorEnv)
    assert venv.reset(seed=0)[0].shape == (2, 32, 64, 3)


def test_engine_with_upsampler_outputs_x4_frames(tmp_path):
    from drivesim.rollout.random_model import RandomModelSpec

    folder = build_random_model(tmp_path / "m", RandomModelSpec(upsampler=True, interpolation=False))
    plain = LearnedEngine(load(folder), EngineConfig(**FAST))
    assert plain.frame_size == (32, 64) and plain.frames_per_step == 1
    eng = LearnedEngine(load(folder), EngineConfig(**FAST, upsample=True, upsample_steps=1))
    out = eng.start([SceneRequest(0, 0, seed=1)])
    assert out.frames.shape == (1, 1, 128, 256, 3)
    assert eng.step(out.state, np.zeros((1, 2), np.float32)).frames.shape == (1, 1, 128, 256, 3)
    with pytest.raises(ValueError, match="no upsampler"):
        LearnedEngine(load(build_random_model(tmp_path / "n")), EngineConfig(upsample=True))


def test_interpolation_model_without_actions_is_called_without_them(tmp_path):
    """The trained default's interpolation model has use_actions=False (conf/train/interpolation.yaml)."""
    from drivesim.rollout.random_model import RandomModelSpec

    folder = build_random_model(tmp_path / "m", RandomModelSpec(interpolation_actions=False, keyframe_stride=16))
    eng = LearnedEngine(load(folder), EngineConfig(**FAST))
    assert eng.frames_per_step == 16  # two interpolation levels: x4, x4
    out = eng.start([SceneRequest(0, 0, seed=1)])
    step = eng.step(out.state, np.array([[0.5, -0.5]], np.float32))
    assert step.frames.shape == (1, 16, 32, 64, 3)


def test_decoding_rollouts_in_groups_gives_the_frames_of_one_call(model_dir):
    world = load(model_dir)
    one = LearnedEngine(world, EngineConfig(**FAST, decode_frames=0))
    # 2 + 4 frames a rollout: one rollout per call
    grouped = LearnedEngine(world, EngineConfig(**FAST, decode_frames=7))
    recent, new = torch.randn(3, 2, *one.latent_shape), torch.randn(3, 4, *one.latent_shape)
    calls = []
    decode_video = world.temporal_decoder.decode_video
    world.temporal_decoder.decode_video = lambda z, **kw: calls.append(z.shape[0]) or decode_video(z, **kw)
    try:
        a, b = one.decode(recent, new), grouped.decode(recent, new)
    finally:
        del world.temporal_decoder.decode_video
    assert calls == [3, 1, 1, 1] and a.shape == (3, 4, 3, 32, 64)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="decode_frames=-1"):
        LearnedEngine(world, EngineConfig(decode_frames=-1))


def test_fill_keys_2_interpolates_from_the_newest_context_key_and_the_new_one(model_dir):
    world = load(model_dir)
    seen = []
    fill = LearnedEngine(world, EngineConfig(**FAST)).fill

    for n in (3, 2):
        eng = LearnedEngine(world, EngineConfig(**FAST, fill_keys=n))
        eng.fill = lambda keys, *a, **kw: seen.append(keys.shape[1]) or fill(keys, *a, **kw)
        out = eng.start([SceneRequest(0, 0, seed=1)])
        step = eng.step(out.state, np.zeros((1, 2), np.float32))
        assert step.frames.shape == (1, eng.frames_per_step, 32, 64, 3)
    assert seen == [3, 2]
    with pytest.raises(ValueError, match="fill_keys=4"):
        LearnedEngine(world, EngineConfig(fill_keys=4))


def test_filling_rollouts_in_groups_gives_the_frames_of_one_call(model_dir):
    world = load(model_dir)
    one = LearnedEngine(world, EngineConfig(**FAST, fill_rollouts=0))
    grouped = LearnedEngine(world, EngineConfig(**FAST, fill_rollouts=2))  # 3 rollouts: groups of 2 and 1
    out = one.start([SceneRequest(i % 2, i % 3, seed=i) for i in range(3)])
    keys = torch.cat([out.state.context, torch.randn(3, 1, *one.latent_shape)], dim=1)  # b 3 c h w
    cond = one._conditioning(out.state.time_of_day, out.state.crowdedness, [None] * 3)
    acts = torch.tensor([[0.5, 0.0], [-0.5, 0.2], [0.0, -0.3]])

    def fill(engine):
        gens = [torch.Generator().manual_seed(i) for i in range(3)]
        return engine.fill(keys, acts, cond, gens, torch.full((3, 3), 20.0))

    a, b = fill(one), fill(grouped)
    assert a.shape == (3, one.frames_per_step, *one.latent_shape)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="fill_rollouts=-1"):
        LearnedEngine(world, EngineConfig(fill_rollouts=-1))


def test_engine_config_prediction_picks_a_further_prediction_stage_of_the_folder(tmp_path):
    from drivesim.rollout.random_model import RandomModelSpec

    folder = build_random_model(
        tmp_path / "m", RandomModelSpec(keyframe_stride=16, reward_stride=4, extra_predictions=(4,))
    )
    world = load(folder)
    assert world.prediction_stages() == ["video_ldm", "video_ldm_stride4"]
    assert world.prediction("video_ldm") is world.video
    default = LearnedEngine(world, EngineConfig(**FAST))
    assert default.keyframe_stride == 16 and default.frames_per_step == 16
    eng = LearnedEngine(world, EngineConfig(**FAST, prediction="video_ldm_stride4"))
    assert eng.video is world.prediction("video_ldm_stride4") and eng.video is not world.video
    assert eng.keyframe_stride == 4 and eng.frames_per_step == 4  # one x4 interpolation level
    out = eng.start([SceneRequest(0, 0, seed=1)])
    step = eng.step(out.state, np.array([[0.5, 0.0]], np.float32))
    assert step.frames.shape == (1, 4, 32, 64, 3)
    # the stage's own weights predict: the same start and noise give another keyframe than video_ldm's
    a = default.predict(out.state.context, None, default._conditioning(*[torch.tensor([0])] * 2, [None]),
                        [torch.Generator().manual_seed(0)])  # fmt: skip
    b = eng.predict(out.state.context, None, eng._conditioning(*[torch.tensor([0])] * 2, [None]),
                    [torch.Generator().manual_seed(0)])  # fmt: skip
    assert not torch.allclose(a, b)
    allowed = r"prediction='video_ldm_stride8'.*allowed: \['video_ldm', 'video_ldm_stride4'\]"
    with pytest.raises(ValueError, match=allowed):
        LearnedEngine(world, EngineConfig(prediction="video_ldm_stride8"))
    with pytest.raises(ValueError, match="no such prediction stage"):
        world.prediction("interpolation")  # a stage, but not a prediction stage


def test_the_engine_integrates_the_ego_speed_from_the_commanded_accel(engine):
    from drivesim.rollout.ego_speed import advance_speed

    s = engine.start([SceneRequest(0, 1, seed=4, speed=12.0), SceneRequest(0, 1, seed=5)]).state
    assert s.context_speed.shape == (2, 2)
    assert s.context_speed[0].tolist() == [12.0, 12.0]
    assert s.context_speed[1, 0] == pytest.approx(float(s.speed[1]))  # no request speed: the reward head's
    out = engine.step(s, np.array([[0.0, 1.0], [0.0, -1.0]], np.float32)).state
    want = advance_speed(s.context_speed[:, -1].numpy(), np.array([1.0, -1.0]), engine.keyframe_stride, 30.0)
    np.testing.assert_allclose(out.context_speed[:, -1].numpy(), want, rtol=1e-5)
    assert out.context_speed[0, 0] == 12.0 and out.context_speed[0, 1] > 12.0  # the newest two keyframes


def test_a_speed_conditioned_model_follows_the_state_speed_and_a_plain_one_ignores_it(tmp_path, engine):
    from drivesim.rollout.random_model import RandomModelSpec

    speedy = LearnedEngine(load(build_random_model(tmp_path / "m", RandomModelSpec(speed_conditioning=True))),
        EngineConfig(**FAST)
    )
    act = np.array([[0.2, 0.5]], np.float32)
    for eng, differs in ((speedy, True), (engine, False)):
        s = eng.start([SceneRequest(0, 1, seed=2, speed=5.0)]).state
        fast = s.with_(context_speed=s.context_speed + 20.0)
        a, b = eng.step(s, act).keyframes, eng.step(fast, act).keyframes
        assert (not torch.allclose(a, b)) == differs


def test_an_ego_warp_model_is_given_the_warp_of_the_state_speed(tmp_path, monkeypatch):
    from drivesim.rollout import prediction_window as window_module
    from drivesim.rollout.random_model import RandomModelSpec

    folder = build_random_model(tmp_path / "m", RandomModelSpec(ego_warp=True))
    eng = LearnedEngine(load(folder), EngineConfig(**FAST))
    seen = []
    real = window_module.warp_context_latents

    def spy(latents, mask, speed, *args):
        seen.append(speed.clone())
        return real(latents, mask, speed, *args)

    monkeypatch.setattr(window_module, "warp_context_latents", spy)
    act = np.array([[0.2, 0.5]], np.float32)
    s = eng.start([SceneRequest(0, 1, seed=2, speed=5.0)]).state
    fast = s.with_(context_speed=s.context_speed + 20.0)
    a, b = eng.step(s, act).keyframes, eng.step(fast, act).keyframes
    assert not torch.allclose(a, b)  # the warp moves the last keyframe further at the higher speed
    assert len(seen) == 2 and float(seen[1][0, -1]) > float(seen[0][0, -1]) + 15.0
    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    cfg["video_ldm"]["config"]["video"]["warp_interval"] = 0.5
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match="warps by ego motion over 0.5 s per keyframe"):
        LearnedEngine(load(folder), EngineConfig(**FAST))


def test_road_from_warp_puts_the_warped_last_keyframe_into_the_new_keyframes_road_rows(model_dir, monkeypatch):
    """road_from_warp 1: the new keyframe's road rows are the warp of the last keyframe by the told speed (so the
    speed moves them), its other rows the drawn ones; out-of-range weights are refused."""
    from drivesim.diffusion.ego_warp import ground_rows
    from drivesim.rollout import prediction_window as window_module

    warps = []
    real = window_module.warp_context_latents

    def spy(*args):
        warps.append(real(*args))
        return warps[-1]

    monkeypatch.setattr(window_module, "warp_context_latents", spy)
    act = np.array([[0.0, 0.3]], np.float32)
    drawn, pasted = (LearnedEngine(load(model_dir), EngineConfig(**FAST, road_from_warp=w)) for w in (0.0, 1.0))
    state = drawn.start([SceneRequest(0, 1, seed=2, speed=8.0)]).state
    a, b = drawn.step(state, act).keyframes, pasted.step(state, act).keyframes  # b c h w
    assert len(warps) == 1  # only the pasting engine warps (the random model has no ego_warp)
    road = ground_rows(a.shape[-2], pasted.video.model.config.camera())
    s = state.context.shape[1]
    torch.testing.assert_close(b[:, :, road], warps[0][:, s][:, :, road].to(b))
    torch.testing.assert_close(b[:, :, ~road], a[:, :, ~road])  # same noise: the rest is the drawn keyframe
    with pytest.raises(ValueError, match=r"road_from_warp=1.5; allowed \[0, 1\]"):
        EngineConfig(road_from_warp=1.5)


def test_warp_start_samples_keyframes_from_the_warped_last_keyframe(model_dir, engine):
    """warp_start: a model without ego_warp starts its keyframes from the warp of the state's speed, so
    the speed moves them; without it the speed does not. Out-of-range values are refused."""
    act = np.array([[0.0, 0.3]], np.float32)
    started = engine.start([SceneRequest(0, 1, seed=2, speed=5.0)]).state
    fast = started.with_(context_speed=started.context_speed + 25.0)
    warped = LearnedEngine(load(model_dir), EngineConfig(**FAST, warp_start=1))
    for eng, moves in ((warped, True), (engine, False)):
        a, b = eng.step(started, act).keyframes, eng.step(fast, act).keyframes
        assert (not torch.allclose(a, b)) == moves
    with pytest.raises(ValueError, match="warp_start=2; allowed 0 \\(off\\) .. keyframe_steps - 1 = 1"):
        EngineConfig(keyframe_steps=2, warp_start=2)


def test_bad_spacing_is_refused(model_dir):
    with pytest.raises(ValueError, match="spacing='middle'; allowed"):
        LearnedEngine(load(model_dir), EngineConfig(spacing="middle"))


def test_context_interval_reaches_the_prediction_sampler(model_dir):
    world = load(model_dir)
    eng = LearnedEngine(world, EngineConfig(**FAST, context_guidance=2.0, context_interval=[0.5, 1]))
    cfg = eng._sampling(2)
    assert cfg.guidance.context_interval == (0.5, 1.0)
    assert cfg.guidance.intervals(cfg.guidance.scales(), eng.video.schedule.num_steps) == {"context": (500, 999)}
    out = eng.start([SceneRequest(0, 0, seed=1)])
    assert eng.step(out.state, np.zeros((1, 2), np.float32)).frames.shape[0] == 1
    with pytest.raises(ValueError, match=r"context_interval=\[0.7, 0.2\]; allowed"):
        EngineConfig(context_interval=(0.7, 0.2))


def test_context_keys_one_gives_the_prediction_stage_only_the_last_keyframe(model_dir, engine):
    """context_keys=1: the keyframe drawn does not depend on the older context keyframe (with 2 it does);
    the state still keeps two keyframes for the fill. Values other than 1 or 2 are refused."""
    act = np.array([[0.1, 0.2]], np.float32)
    s = engine.step(engine.start([SceneRequest(0, 1, seed=3)]).state, act).state
    assert s.context.shape[1] == 2
    other = s.with_(context=torch.stack([s.context[:, 0] + 1.0, s.context[:, 1]], dim=1))
    last_only = LearnedEngine(load(model_dir), EngineConfig(**FAST, context_keys=1))
    for eng, depends in ((last_only, False), (engine, True)):
        a, b = eng.step(s, act), eng.step(other, act)
        assert (not torch.allclose(a.keyframes, b.keyframes)) == depends
        assert a.state.context.shape[1] == 2
    with pytest.raises(ValueError, match="context_keys=3; allowed: 1 or 2"):
        EngineConfig(context_keys=3)
