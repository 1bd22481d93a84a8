"""A model folder with every stage randomly initialised, in exactly the trained layout.

Used by tests (the whole rollout path on tiny networks in seconds) and by speed
benchmarks (cost does not depend on the weights). Its frames are noise-like: it is not
a simulator of anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from drivesim.autoencoder.config import AutoencoderConfig, TemporalDecoderConfig
from drivesim.autoencoder.model import Autoencoder
from drivesim.autoencoder.temporal_decoder import TemporalDecoder
from drivesim.diffusion.layout_prior import LAYOUT_PRIOR_STAGE, LayoutPrior
from drivesim.diffusion.schedule import ScheduleConfig
from drivesim.diffusion.unet import SpatialUNet, UNetConfig
from drivesim.diffusion.upsampler import Upsampler, UpsamplerConfig
from drivesim.diffusion.video_unet import VideoUNet
from drivesim.diffusion.video_unet_config import VideoUNetConfig
from drivesim.model_folder import save_stage
from drivesim.rollout.reward_model import RewardModel, RewardModelConfig
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY

SIZES = ("tiny", "default")


@dataclass(frozen=True)
class RandomModelSpec:
    size: str = "tiny"
    height: int = 32
    width: int = 64
    keyframe_stride: int = 4  # source frames between predicted keyframes
    temporal_decoder: bool = True
    interpolation: bool = True
    interpolation_actions: bool = True  # False as in conf/train/interpolation.yaml (the trained default)
    reward: bool = True
    reward_stride: int | None = None  # source frames between the reward heads' pair; None: keyframe_stride
    reward_pose: bool = False  # reward heads that also read lateral offset and heading
    pose_heads: bool = False  # a "pose" stage beside the reward heads (lateral offset and heading)
    upsampler: bool = False
    layout_prior: bool = True
    speed_conditioning: bool = False  # the prediction model is told the ego speed
    ego_warp: bool = False  # the prediction model reads the ego-motion warp of its last context frame
    interpolation_speed: bool = False  # the interpolation model too (needs interpolation_actions)
    extra_predictions: tuple[int, ...] = ()  # keyframe strides of further prediction stages "video_ldm_stride<N>"
    seed: int = 0


def _unet(size: str) -> UNetConfig:
    return UNetConfig.tiny() if size == "tiny" else UNetConfig()


def _video(size: str, **kw: object) -> VideoUNetConfig:
    return VideoUNetConfig.tiny(**kw) if size == "tiny" else VideoUNetConfig(**kw)


def build_random_model(folder: Path, spec: RandomModelSpec | None = None) -> Path:
    spec = spec or RandomModelSpec()
    if spec.size not in SIZES:
        raise ValueError(f"size={spec.size!r}; allowed: {list(SIZES)}")
    torch.manual_seed(spec.seed)
    folder = Path(folder)
    tiny = spec.size == "tiny"
    ae_cfg = AutoencoderConfig(base_channels=16 if tiny else 32, decoder_res_blocks=1 if tiny else 2)
    extra = {"latent_scale": 1.0, "image_size": [spec.height, spec.width]}
    save_stage(folder, "autoencoder", Autoencoder(ae_cfg), ae_cfg, extra=extra)
    if spec.temporal_decoder:
        td_cfg = TemporalDecoderConfig()
        td = TemporalDecoder(ae_cfg, td_cfg)
        config = {"autoencoder": asdict(ae_cfg), "temporal": asdict(td_cfg)}
        save_stage(folder, "temporal_decoder", td, config, extra={"latent_scale": 1.0})
    unet_cfg = replace_zero_init(_unet(spec.size))
    base = {"unet": asdict(unet_cfg), "schedule": asdict(ScheduleConfig()), "target": "v"}
    image = SpatialUNet(unet_cfg)
    save_stage(folder, "image_ldm", image, base)
    video_cfg = _video(spec.size, zero_init=False, speed_conditioning=spec.speed_conditioning,
                       ego_warp=spec.ego_warp, warp_interval=spec.keyframe_stride / 30.0 if spec.ego_warp else 0.0)
    window = {"num_frames": 8, "frame_stride": spec.keyframe_stride, "keyframe_spacing": 0}
    save_stage(
        folder,
        "video_ldm",
        VideoUNet(image, video_cfg),
        {**base, "video": asdict(video_cfg), "window": window},
        extra={"fps": 30.0},
    )
    for stride in spec.extra_predictions:
        window = {"num_frames": 3, "frame_stride": stride, "keyframe_spacing": 0}
        stage = f"video_ldm_stride{stride}"
        save_stage(folder, stage, VideoUNet(image, video_cfg), {**base, "video": asdict(video_cfg), "window": window})
    if spec.interpolation:
        interp_cfg = _video(
            spec.size,
            num_frame_rates=2,
            use_actions=spec.interpolation_actions,
            speed_conditioning=spec.interpolation_speed,
            zero_init=False,
        )
        window = {"num_frames": 9, "frame_stride": 1, "keyframe_spacing": 4}
        save_stage(
            folder,
            "interpolation",
            VideoUNet(SpatialUNet(unet_cfg), interp_cfg),
            {**base, "video": asdict(interp_cfg), "window": window},
        )
    if spec.upsampler:
        ucfg = UpsamplerConfig(base_channels=16, attention_head_dim=8) if tiny else UpsamplerConfig()
        ups = Upsampler(ucfg)
        save_stage(folder, "upsampler", ups, {"upsampler": asdict(ucfg)})
    if spec.reward:
        rcfg = RewardModelConfig(
            latent_channels=ae_cfg.latent_channels, channels=16 if tiny else 64, pose=spec.reward_pose
        )
        stride = spec.reward_stride or spec.keyframe_stride
        save_stage(folder, "reward", RewardModel(rcfg), rcfg, extra={"stride": stride})
    if spec.pose_heads:
        pcfg = RewardModelConfig(
            latent_channels=ae_cfg.latent_channels, channels=16 if tiny else 64, difference_input=True,
            pool_grid=(2, 4), pose=True,
        )  # fmt: skip
        stride = spec.reward_stride or spec.keyframe_stride
        save_stage(folder, "pose", RewardModel(pcfg), pcfg, extra={"stride": stride})
    if spec.layout_prior:
        save_stage(folder, LAYOUT_PRIOR_STAGE, random_layout_prior(16).state_dict(), {"random": True})
    return folder


def random_layout_prior(max_boxes: int, per_pair: int = 4, seed: int = 0) -> LayoutPrior:
    """per_pair random layouts for every (time_of_day, crowdedness) pair; crowdedness level c
    has 2c + 1 boxes (at most max_boxes), so the levels differ in count as real ones do."""
    gen = torch.Generator().manual_seed(seed)
    pairs = [(t, c) for t in range(len(TIME_OF_DAY)) for c in range(len(CROWDEDNESS)) for _ in range(per_pair)]
    n = len(pairs)
    counts = torch.tensor([min(2 * c + 1, max_boxes) for _, c in pairs])
    corner = torch.rand(n, max_boxes, 2, generator=gen) * 0.7
    size = 0.05 + torch.rand(n, max_boxes, 2, generator=gen) * 0.25
    xyxy = torch.cat([corner, corner + size], dim=-1)  # (n, max_boxes, 4)
    xyxy = xyxy * (torch.arange(max_boxes)[None, :, None] < counts[:, None, None])  # zero where padded
    return LayoutPrior(
        xyxy=xyxy,
        classes=torch.randint(0, 2, (n, max_boxes), generator=gen) * (xyxy[..., 2] > 0),
        counts=counts,
        time_of_day=torch.tensor([t for t, _ in pairs]),
        crowdedness=torch.tensor([c for _, c in pairs]),
    )


def replace_zero_init(cfg: UNetConfig) -> UNetConfig:
    """Random outputs instead of the zero-initialised ones (a zero model would hide bugs)."""
    data = asdict(cfg)
    data["zero_init"] = False
    return UNetConfig(**data)
