"""The rollout engine over a WorldModel: keyframes -> interpolation -> decode (-> rewards).

B rollouts advance in one batched network call per stage; each draws its randomness from its
own generator (`drivesim.rollout.generators`), so batching never changes a rollout's future.

One control step = one new keyframe of the prediction model (stride `keyframe_stride`
source frames): a window of the trained length [c0, c1, new, ...] with c0, c1 the two
newest keyframes given (mask m_S, Eq. (3)) of which the first new frame is kept
(`prediction_window` trades this for speed), the context keyframes with the actions that led
to them and the new action held over the new frames (and, for a speed-conditioned model, the
ego speeds: the context keyframes' and those integrated from the held accel,
`drivesim.rollout.ego_speed`), context guidance s and
classifier-free guidance over actions. The interpolation model then fills the frames
between c1 and the new keyframe (x4 per level, one or two levels down to the source
frame rate), the temporal decoder decodes them (with the newest decoded latents as left
context, so there is no seam between steps), the optional x4 upsampler runs per rollout
(its temporal layers see one interval at a time), and the reward heads read the new keyframe
with the latent as many source frames before it as they were trained on, and the ego speed
reported and rewarded is the simulator's, integrated from the commanded accel, unless
`EngineConfig.speed_source="head"` (`drivesim.rollout.reward_reading`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from einops import rearrange, repeat
from torch import Tensor

from drivesim.autoencoder.frame_codec import FrameCodec
from drivesim.diffusion.conditioning import Conditioning
from drivesim.diffusion.ego_warp import check_warp_interval
from drivesim.rollout.compiled import compile_networks
from drivesim.rollout.compose import request_layouts
from drivesim.rollout.compute_dtype import DTYPES, resolve_dtype
from drivesim.rollout.ego_speed import DEFAULT_SPEED, window_speeds
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.first_frames import compose_first_frames
from drivesim.rollout.generators import generators, rollout_noise, step_noise
from drivesim.rollout.imagine import imagine_futures
from drivesim.rollout.keyframe_fill import FILLS, blend_keyframes, blend_levels, fill_keyframes, interpolation_levels
from drivesim.rollout.layout import apply_layout
from drivesim.rollout.prediction_window import WindowSpec, prediction_window, road_from_warp
from drivesim.rollout.reward_reading import RewardReader
from drivesim.rollout.rewards import RewardConfig
from drivesim.rollout.travel_anchor import anchor_travel, told_travel
from drivesim.rollout.types import Imagined, RolloutState, SceneRequest, StepOutput
from drivesim.rollout.warp_fill import warp_fill
from drivesim.rollout.world_model import WorldModel, load
from drivesim.sampling.ddim import check_spacing
from drivesim.sampling.image import ImageGuidance
from drivesim.sampling.upsample import upsample_video
from drivesim.sampling.video import VideoGuidance, VideoSamplingConfig, sample_clip
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY


def to_uint8(frames: Tensor) -> np.ndarray:
    """(b, t, 3, h, w) in [-1, 1] -> (b, t, h, w, 3) uint8."""
    x = ((frames.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return rearrange(x, "b t c h w -> b t h w c").numpy()


class LearnedEngine:
    def __init__(self, world: WorldModel, config: EngineConfig) -> None:
        check_spacing(config.spacing)
        self.world = world
        self.config = config
        self.device = torch.device(config.device)
        self.compute_dtype = resolve_dtype(config.dtype, self.device)  # "float32" | "bfloat16" ("auto" resolved)
        self.video = world.prediction(config.prediction)  # the keyframe-prediction model
        world.to(self.device)
        ae = world.autoencoder
        self.latent_shape = (ae.cfg.latent_channels, *self._latent_hw())
        self.keyframe_stride = int(self.video.window.frame_stride)
        check_warp_interval(self.video.model.config, config.prediction, self.keyframe_stride, world.fps)
        if config.fill not in FILLS:
            raise ValueError(f"fill={config.fill!r}; allowed: {list(FILLS)}")
        if not config.interpolate:
            self.levels = 0
        elif config.fill != "model":  # blend, warp: no interpolation model
            self.levels = blend_levels(self.keyframe_stride)
        else:
            self.levels = interpolation_levels(world.interpolation, self.keyframe_stride)
        self.frames_per_step = 4**self.levels
        self.output_fps = world.fps * self.frames_per_step / self.keyframe_stride
        h, w = self.world.metadata.get("autoencoder", {}).get("image_size", [64, 128])
        if config.upsample and world.upsampler is None:
            raise ValueError(f"upsample=True but model folder {world.path} has no upsampler stage")
        scale = world.upsampler.scale if config.upsample else 1
        self.frame_size = (int(h) * scale, int(w) * scale)
        self.decode_context = 2 if world.temporal_decoder is not None else 0
        # for the ego-motion warp, at most codec_frames frames a call (EngineConfig)
        self.frame_codec = FrameCodec(world.autoencoder, world.temporal_decoder, config.codec_frames)
        nets = (self.video.model, world.interpolation.model if world.interpolation and config.fill == "model" else None,
                world.temporal_decoder)  # fmt: skip
        self.layout = apply_layout(config.layout, self.compute_dtype, *nets)  # "nchw" | "channels_last"
        self.compiled = compile_networks(*nets) if config.compile else []
        self.reader = RewardReader(
            world.reward, world.reward_stride, self.keyframe_stride, self.frames_per_step, config.speed_source,
            str(world.path), world.pose, world.pose_stride,
        )  # fmt: skip

    # -- set-up -------------------------------------------------------------------------
    def _latent_hw(self) -> tuple[int, int]:
        h, w = self.world.metadata.get("autoencoder", {}).get("image_size", [64, 128])
        return self.world.autoencoder.cfg.latent_size(int(h), int(w))

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.compute_dtype == "float32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=DTYPES[self.compute_dtype])

    def _sampling(self, steps: int) -> VideoSamplingConfig:
        c = self.config
        guidance = VideoGuidance(
            c.context_guidance, c.action_guidance, crowdedness=c.keyframe_crowdedness_guidance,
            context_interval=c.context_interval, crowdedness_interval=c.keyframe_crowdedness_interval,
            contrast=("crowdedness",) if c.crowdedness_contrast else (),
        )  # fmt: skip
        level = self.video.extra.get("context_noise_level", 0) if c.context_noise < 0 else c.context_noise
        return VideoSamplingConfig(steps=steps, guidance=guidance, context_noise_level=int(level), spacing=c.spacing,
                                   eta=c.keyframe_eta)

    def _conditioning(
        self,
        tod: Tensor,
        crowd: Tensor,
        boxes: list[np.ndarray | None],
        classes: list[np.ndarray | None] | None = None,
    ) -> Conditioning:
        return Conditioning.from_labels(
            [TIME_OF_DAY[int(i)] if i >= 0 else None for i in tod],
            [CROWDEDNESS[int(i)] if i >= 0 else None for i in crowd],
            boxes,
            classes if classes is not None else [None] * len(boxes),
            device=self.device,
        )

    # -- stages -------------------------------------------------------------------------
    def compose(self, cond: Conditioning, gens: list[torch.Generator]) -> Tensor:
        """First frames from the image LDM: (b, c, h, w) scaled latents (`first_frames.compose_first_frames`)."""
        c = self.config
        guidance = ImageGuidance.from_scales(
            c.label_guidance, c.box_guidance, c.crowdedness_guidance, c.crowdedness_contrast, c.box_interval
        )
        return compose_first_frames(self.world.image_ldm, guidance, c.first_frame_steps, cond, gens, self.latent_shape,
                                    self.device, self._autocast)  # fmt: skip

    def _video_model(self, model: torch.nn.Module):
        def call(z: Tensor, tau: Tensor, cond) -> Tensor:
            with self._autocast():
                return model(z, tau, cond).float()

        return call

    @torch.no_grad()
    def predict(
        self,
        context: Tensor,
        actions: Tensor | None,
        cond: Conditioning,
        gens: list[torch.Generator],
        context_actions: Tensor | None = None,
        context_speed: Tensor | None = None,
    ) -> Tensor:
        """Next keyframe: context (b, s, c, h, w) given -> (b, c, h, w). `actions` (b, 2) is held over
        the new frames; `context_actions` (b, s, 2) led to the context keyframes (default: `actions`);
        `context_speed` (b, s) m/s their ego speeds, from which the new frames' speeds are integrated
        with the held accel (`ego_speed.window_speeds`; read by a model with speed conditioning or
        `ego_warp`, and by `EngineConfig.warp_start` and `anchor_travel`). Only the last
        `EngineConfig.context_keys` of the s context keyframes are given to the model."""
        video = self.video
        keep = min(self.config.context_keys, context.shape[1])  # the newest `keep` of context (b, s, ...) and its
        context, context_actions, context_speed = (  # actions (b, s, 2) and speeds (b, s)
            None if x is None else x[:, x.shape[1] - keep :] for x in (context, context_actions, context_speed)
        )
        vcfg = video.model.config
        warp_start, anchor, road = self.config.warp_start, self.config.anchor_travel, self.config.road_from_warp
        # The model predicts windows of the trained length; the first new frame is the next keyframe.
        spec = WindowSpec(self.config.prediction_window or int(video.window.num_frames), self.keyframe_stride,
                          self.world.fps, needs_speed=vcfg.uses_speed or bool(warp_start) or anchor or road > 0,
                          needs_warp=vcfg.ego_warp or bool(warp_start) or road > 0)  # fmt: skip
        window = prediction_window(context, actions, context_actions, context_speed, spec, vcfg.camera(),
                                   self.frame_codec)  # fmt: skip
        s, t, speeds, warp = context.shape[1], window.clip.shape[1], window.speeds, window.warp
        cfg = self._sampling(self.config.keyframe_steps)
        if warp_start and warp is not None:  # SDEdit: start from the warp noised to the warp_start-th time
            cfg = dataclasses.replace(cfg, skip=warp_start)
        jumps = cfg.steps - cfg.skip - 1  # DDIM jumps after which a stochastic sampler adds noise
        eta_noise = step_noise(gens, jumps, (t, *self.latent_shape)).to(self.device) if cfg.eta else None
        sample = sample_clip(
            self._video_model(video.model),
            video.schedule,
            video.target,
            window.clip,
            window.mask,
            gens[0],
            actions=window.actions,
            image_cond=cond,
            config=cfg,
            x_T=rollout_noise(gens, (t, *self.latent_shape)).to(self.device),
            context_noise=rollout_noise(gens, (t, *self.latent_shape)) if cfg.context_noise_level else None,
            ego_speed=speeds,
            warp_latents=warp if vcfg.ego_warp else None,
            init=warp if cfg.skip else None,
            eta_noise=eta_noise,
        )
        new = sample.latents[:, s]  # b c h w
        if road > 0 and warp is not None:  # the road rows moved by the told travel (EngineConfig.road_from_warp)
            new = road_from_warp(new, warp[:, s].to(new), road, vcfg.camera())
        if anchor and speeds is not None:  # the road where the speed puts it (drivesim.rollout.travel_anchor)
            told = told_travel(speeds[:, s - 1 : s + 1], self.keyframe_stride, self.world.fps)
            reader = self.world.odometry if self.world.odometry_stride == self.keyframe_stride else None  # learned
            return anchor_travel(context[:, -1], new, told, self.frame_codec, vcfg.camera(),
                                 reader=reader, gain=self.config.anchor_gain)[0]  # fmt: skip
        return new

    @torch.no_grad()
    def fill(
        self, keys: Tensor, actions: Tensor | None, cond: Conditioning, gens: list[torch.Generator],
        key_speeds: Tensor | None = None,
    ) -> Tensor:
        """keys (b, k, c, h, w) -> the (b, 4^levels, c, h, w) frames after keys[:, -2] up to and including
        keys[:, -1] (`keyframe_fill.fill_keyframes`; actions (b, 2), key_speeds (b, k) m/s or None), or
        with `fill="blend"` the keyframes' linear blend, with `fill="warp"` the keyframes moved by the ego
        speed and blended (`warp_fill.warp_fill`, in the compute dtype; key_speeds needed). Rollouts are filled in
        groups of at most `fill_rollouts` (docs/results.md, *Batched envs*); each draws from its own generator, so
        grouping does not change a rollout's frames."""
        if self.config.fill == "blend":
            return blend_keyframes(keys, self.frames_per_step)
        if self.config.fill == "warp":
            if key_speeds is None:
                raise ValueError('fill="warp" needs the keyframes\' ego speeds (key_speeds)')
            interval = self.keyframe_stride / self.world.fps / self.frames_per_step  # s between output frames
            camera = self.video.model.config.camera()
            with self._autocast():  # its codec in the compute dtype, as the decode stage (float32 latents out)
                return warp_fill(keys, key_speeds, self.frames_per_step, interval, self.frame_codec, camera)
        interp = self.world.interpolation
        model = self._video_model(interp.model)
        sampling = VideoSamplingConfig(steps=self.config.interpolation_steps, spacing=self.config.spacing)
        b = keys.shape[0]
        group = b if self.config.fill_rollouts == 0 else self.config.fill_rollouts
        out = []
        for i in range(0, b, group):
            j = min(b, i + group)
            out.append(fill_keyframes(
                interp, model, keys[i:j], None if actions is None else actions[i:j], cond.rows(i, j), gens[i:j],
                self.levels, self.keyframe_stride, sampling, None if key_speeds is None else key_speeds[i:j],
            ))  # fmt: skip
        return torch.cat(out)

    @torch.no_grad()
    def decode(self, recent: Tensor, new: Tensor) -> Tensor:
        """Decode `new` (b, n, c, h, w) with `recent` latents as left context -> (b, n, 3, H, W).
        Rollouts are decoded in groups of at most `decode_frames` latent frames per call: on a CPU a
        call over many rollouts at once is slower per frame (docs/results.md, *Batched envs*)."""
        td = self.world.temporal_decoder
        z = torch.cat([recent, new], dim=1) if td is not None else new  # b (r + n) c h w
        limit = self.config.decode_frames
        group = z.shape[0] if limit == 0 else max(1, limit // z.shape[1])
        out = []
        with self._autocast():
            for part in z.split(group):
                if td is None:
                    out.append(self.world.autoencoder.decode_video(part).float())
                else:
                    out.append(td.decode_video(part, chunk_frames=part.shape[1])[:, recent.shape[1] :].float())
        return torch.cat(out)

    @torch.no_grad()
    def upsample(self, frames: Tensor, gens: list[torch.Generator]) -> Tensor:
        """x scale of decoded frames (b, t, 3, h, w), each rollout with its own generator."""
        if not self.config.upsample:
            return frames
        ups = self.world.upsampler
        out = [upsample_video(ups, frames[i : i + 1], self.config.upsample_steps, g) for i, g in enumerate(gens)]
        return torch.cat(out)  # b t 3 (s h) (s w)

    # -- the Engine protocol --------------------------------------------------------------
    def start(self, requests: list[SceneRequest]) -> StepOutput:
        if not requests:
            raise ValueError("start() needs at least one SceneRequest")
        gens = [torch.Generator().manual_seed(r.seed) for r in requests]
        tod = torch.tensor([r.time_of_day for r in requests])
        crowd = torch.tensor([r.crowdedness for r in requests])
        boxes, classes = request_layouts(requests, self.world.layout_prior if self.config.sample_layout else None, gens)
        cond = self._conditioning(tod, crowd, boxes, classes)
        layouts = tuple(
            None if b is None or r.initial_frames is not None else (b, np.zeros(len(b), np.int64) if c is None else c)
            for b, c, r in zip(boxes, classes, requests)
        )  # requested boxes without classes are cars (class 0), as `Conditioning.from_labels` reads them
        firsts = []
        composed = self.compose(cond, gens) if any(r.initial_frames is None for r in requests) else None
        for i, r in enumerate(requests):
            if r.initial_frames is None:
                firsts.append(composed[i : i + 1, None])  # 1 1 c h w
            else:
                video = torch.from_numpy(r.initial_frames).float().div(127.5).sub(1.0)
                video = rearrange(video, "t h w c -> 1 t c h w").to(self.device)
                z = self.world.autoencoder.encode_video(video)  # 1 t c h w (scaled)
                firsts.append(z if z.shape[1] == 2 else z[:, -1:])
        two = [f for f in firsts if f.shape[1] == 2]
        if len(two) != len(firsts):
            one = torch.cat([f[:, -1:] for f in firsts])  # b 1 c h w
            nxt = self.predict(one, None, cond, gens)  # b c h w
            context = torch.cat([one, nxt[:, None]], dim=1)  # b 2 c h w
            for i, f in enumerate(firsts):
                if f.shape[1] == 2:
                    context[i] = f[0]
        else:
            context = torch.cat(firsts)
        frames = self.upsample(self.decode(context[:, :0], context[:, -1:]), gens)  # b 1 3 H W
        recent = repeat(context[:, -1], "b c h w -> b r c h w", r=self.decode_context)
        heads = self.reader.read(context)  # no filled interval yet: the keyframes
        read = heads.speed
        speed = read if read is not None else np.full(len(requests), np.nan, np.float32)
        first = to_uint8(frames)
        start_speed = [
            r.speed if r.speed is not None else float(v) if np.isfinite(v) else DEFAULT_SPEED
            for r, v in zip(requests, speed)
        ]
        state = RolloutState(
            context=context.cpu(),
            context_actions=torch.zeros(len(requests), context.shape[1], 2),
            recent=recent.cpu(),
            time_of_day=tod,
            crowdedness=crowd,
            speed=torch.from_numpy(np.nan_to_num(speed)),
            context_speed=repeat(torch.tensor(start_speed, dtype=torch.float32), "b -> b s", s=context.shape[1]),
            rng=torch.stack([g.get_state() for g in gens]),
            step=torch.zeros(len(requests), dtype=torch.long),
            last_frame=torch.from_numpy(first[:, -1].copy()),
        )
        ego_speed = self.reader.rewarded_speed(state.context_speed[:, -1], read)
        return StepOutput(
            state, first, context[:, -1].cpu(), heads.collision, heads.off_road, ego_speed, layouts, read, heads.pose
        )

    def step(self, state: RolloutState, actions: np.ndarray) -> StepOutput:
        b = state.batch_size
        if actions.shape != (b, 2):
            raise ValueError(f"actions must have shape ({b}, 2), got {actions.shape}")
        gens = generators(state.rng)
        act = torch.from_numpy(np.asarray(actions, np.float32)).to(self.device)
        cond = self._conditioning(state.time_of_day, state.crowdedness, [None] * b)
        context = state.context.to(self.device)
        past = state.context_actions.to(self.device)  # b s 2
        speed_before = state.context_speed  # b s
        new = self.predict(context, act, cond, gens, context_actions=past, context_speed=speed_before)  # b c h w
        key_speeds = window_speeds(speed_before, act, 1, self.keyframe_stride, self.world.fps)  # b 3, the keys'
        keys = torch.cat([context, new[:, None]], dim=1)  # b 3 c h w
        n = self.config.fill_keys  # the interpolation model sees the newest n keys
        fresh = self.fill(keys[:, -n:], act, cond, gens, key_speeds[:, -n:]) if self.levels else new[:, None]
        # fresh: b f c h w
        frames = self.upsample(self.decode(state.recent.to(self.device), fresh), gens)  # b f 3 H W
        heads = self.reader.read(keys, fresh)
        read = heads.speed
        uint8 = to_uint8(frames)
        recent = torch.cat([state.recent.to(self.device), fresh], dim=1)  # b (r + f) c h w
        recent = recent[:, recent.shape[1] - self.decode_context :]  # b r c h w
        new_state = state.with_(
            context=keys[:, -2:].cpu(),
            context_actions=torch.cat([past, act[:, None]], dim=1)[:, -2:].float().cpu(),
            context_speed=key_speeds[:, -2:],
            recent=recent.cpu(),
            speed=torch.zeros(b) if read is None else torch.from_numpy(read),
            rng=torch.stack([g.get_state() for g in gens]),
            step=state.step + 1,
            last_frame=torch.from_numpy(uint8[:, -1].copy()),
        )
        ego_speed = self.reader.rewarded_speed(key_speeds[:, -1], read)
        return StepOutput(
            new_state, uint8, new.cpu(), heads.collision, heads.off_road, ego_speed, speed_read=read, pose=heads.pose
        )

    def imagine(
        self, state: RolloutState, actions: np.ndarray, reward: RewardConfig | None = None, decode: bool = True
    ) -> Imagined:
        """K futures from one state (batch 1) for actions (K, H, 2), without touching `state`
        (`drivesim.rollout.imagine.imagine_futures`)."""
        return imagine_futures(self, state, actions, reward or RewardConfig(), decode)

    def rollout_frames(self, state: RolloutState, actions: Iterator[np.ndarray]) -> Iterator[StepOutput]:
        """Stream steps for an iterator of (b, 2) actions (scenario generation)."""
        for a in actions:
            out = self.step(state, a)
            state = out.state
            yield out


def build_engine(model: str | Path | None, config: EngineConfig) -> LearnedEngine:
    """The engine of the model folder `model` (None: the bundled default)."""
    return LearnedEngine(load(model), config)
