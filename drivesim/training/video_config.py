"""Typed configs of the video stages: the fields the prediction and interpolation stages share
(`VideoTrainCommon`) and the prediction model's (`VideoLDMTrainConfig`); every field validated
with an error that names it and what is allowed. Used by `drivesim.training.video_ldm` and
`drivesim.training.interpolation`."""

from __future__ import annotations

from dataclasses import dataclass, field

from drivesim.diffusion.context import check_context_probs
from drivesim.diffusion.video_unet_config import VideoUNetConfig


@dataclass
class VideoTrainCommon:
    """Fields shared by the prediction and the interpolation stages."""

    latent_cache: str = "data/world_latents"
    run_dir: str = "runs/video_ldm"
    model_dir: str = "runs/models/default"  # holds "image_ldm"; the trained stage is added
    video: VideoUNetConfig = field(default_factory=VideoUNetConfig)
    from_scratch: bool = False  # ablation: theta randomly initialised and trained end to end
    # > 0: theta (the image UNet, as loaded or from init_theta) trains too, at lr * theta_lr, beside phi
    # (0: frozen, the paper's way); the stage then carries its own theta
    theta_lr: float = 0.0
    num_frames: int = 8
    window_step: int = 4  # source frames between training-window starts
    max_boxes: int = 16
    use_boxes: bool = True
    context_noise_max: int = 200  # tau_c ~ U{0..max} when video.context_noise
    context_noise_sampling: int = 20  # the fixed small tau_c for sampling, recorded as extra.context_noise_level
    action_drop: float = 0.1
    label_drop: float = 0.1
    box_drop: float = 0.1
    loss_on_context: bool = False
    # latent rows that see the road (`ego_warp.ground_rows` of the model's camera) weigh this in the denoising
    # loss (1 = off): the action probe reads the accel from the road rows only (docs/results.md, session 34)
    road_weight: float = 1.0
    # latent cells under a frame's vehicle boxes weigh this in the denoising loss (1 = off), as the image LDM's
    # box_weight: one prediction step from the truth loses a third of the vehicles (docs/results.md, session 40)
    box_weight: float = 1.0
    forecast_weight: float = 1.0  # weight of the action forecaster's MSE (video.action_forecast)
    action_consistency_weight: float = 0.0  # > 0: fit a latent inverse-dynamics model, score the outputs with it
    action_consistency_start: int = 200  # steps of fitting g alone before its score enters the loss
    consistency_on_forecast: bool = True  # also score the action forecast (else only the clean estimates)
    idm_lr: float = 3e-4  # learning rate of the latent inverse-dynamics model
    init_from: str | None = None  # model folder whose stage weights start a new run (not a resume)
    init_theta: bool = False  # with init_from: theta comes from that stage's own copy, not model_dir's image_ldm
    init_stage: str | None = None  # with init_from: the stage read from it (default: the stage trained)
    batch_size: int = 4  # global batch (split over ranks)
    max_steps: int = 3000
    max_minutes: float | None = None
    lr: float = 1e-4
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    checkpoint_every: int = 200
    log_every: int = 10
    precision: str = "fp32"  # fp32 | bf16 | fp16 (CUDA)
    device: str = "auto"  # auto | cpu | cuda
    num_threads: int | None = 2
    seed: int = 0

    def __post_init__(self) -> None:
        name = type(self).__name__
        for key in ("num_frames", "window_step", "max_boxes", "batch_size", "max_steps", "checkpoint_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"{name}.{key}={getattr(self, key)} must be >= 1")
        if self.num_frames < 2:
            raise ValueError(f"{name}.num_frames={self.num_frames} must be >= 2")
        for key in ("road_weight", "box_weight"):
            if not getattr(self, key) >= 1.0:
                raise ValueError(f"{name}.{key}={getattr(self, key)} must be >= 1 (1 = off)")
        if self.box_weight > 1.0 and not self.use_boxes:
            raise ValueError(f"{name}.box_weight={self.box_weight} needs use_boxes=true: the weights come from the "
                             "boxes the batches carry")
        if self.loss_on_context and self.video.clean_context:
            raise ValueError(f"{name}.loss_on_context needs video.clean_context=false: clean context frames enter "
                             "as given, so there is nothing to denoise on them")
        for key in ("forecast_weight", "action_consistency_weight", "action_consistency_start"):
            if getattr(self, key) < 0:
                raise ValueError(f"{name}.{key}={getattr(self, key)} must be >= 0")
        if not self.theta_lr >= 0:
            raise ValueError(f"{name}.theta_lr={self.theta_lr} must be >= 0 (0 = theta frozen)")
        if self.theta_lr > 0 and self.from_scratch:
            raise ValueError(f"{name}.theta_lr={self.theta_lr} needs from_scratch=false: from scratch, theta "
                             "already trains at lr")
        if self.idm_lr <= 0:
            raise ValueError(f"{name}.idm_lr={self.idm_lr} must be > 0")
        for key in ("action_drop", "label_drop", "box_drop"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"{name}.{key}={getattr(self, key)} must be in [0, 1]")
        if not 0 <= self.context_noise_sampling <= self.context_noise_max:
            raise ValueError(
                f"{name}.context_noise_sampling={self.context_noise_sampling} must be in 0..context_noise_max="
                f"{self.context_noise_max}"
            )
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"{name}.precision={self.precision!r}; allowed 'fp32', 'bf16', 'fp16'")


@dataclass
class VideoLDMTrainConfig(VideoTrainCommon):
    """The prediction model: S ~ p_S context frames (p_S over S = 0, 1, 2, ...)."""

    frame_stride: int = 16  # source frames between keyframes
    context_probs: list[float] = field(default_factory=lambda: [0.1, 0.45, 0.45])
    # own-rollout context (drivesim.training.own_context): the share of clips whose context frames are the
    # EMA model's own prediction (from a lead frame before the window, DDIM own_context_steps, trailing)
    own_context: float = 0.0
    own_context_steps: int = 2
    # sampling calls in that prediction (1: from the lead frame alone; L: the end of an L-call rollout from
    # L lead frames before the window, each call as the env steps)
    own_context_chain: int = 1
    # stage written into model_dir: "video_ldm", or "video_ldm_<name>" for a further prediction model
    # beside it (EngineConfig.prediction picks one); init_from reads the init folder's init_stage (default "video_ldm")
    export_stage: str = "video_ldm"
    # > 0: the pose the frozen pose heads read from each predicted frame's clean estimate should match what they
    # read from the true frame (drivesim.training.pose_consistency), weighted so in the loss
    pose_weight: float = 0.0
    pose_from: str | None = None  # model folder with the "pose" stage (default: init_from, else model_dir)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.pose_weight >= 0:
            raise ValueError(f"VideoLDMTrainConfig.pose_weight={self.pose_weight} must be >= 0 (0 = off)")
        check_context_probs(self.context_probs)
        if self.export_stage != "video_ldm" and not (
            self.export_stage.startswith("video_ldm_") and self.export_stage[10:].isidentifier()
        ):
            raise ValueError(
                f"VideoLDMTrainConfig.export_stage={self.export_stage!r}; allowed: 'video_ldm' or "
                "'video_ldm_<name>' (letters, digits, underscores)"
            )
        if len(self.context_probs) > self.num_frames:
            raise ValueError(
                f"VideoLDMTrainConfig.context_probs has {len(self.context_probs)} entries (S up to "
                f"{len(self.context_probs) - 1}); need S < num_frames={self.num_frames}"
            )
        if self.frame_stride < 1:
            raise ValueError(f"VideoLDMTrainConfig.frame_stride={self.frame_stride} must be >= 1")
        if not 0.0 <= self.own_context <= 1.0:
            raise ValueError(f"VideoLDMTrainConfig.own_context={self.own_context} must be in [0, 1] (a share of clips)")
        if self.own_context_steps < 1:
            raise ValueError(f"VideoLDMTrainConfig.own_context_steps={self.own_context_steps} must be >= 1")
        if self.own_context_chain < 1:
            raise ValueError(
                f"VideoLDMTrainConfig.own_context_chain={self.own_context_chain} must be >= 1 (sampling calls)"
            )
        if self.own_context > 0 and self.loss_on_context:
            raise ValueError(
                "VideoLDMTrainConfig.own_context > 0 needs loss_on_context=false: the context frames are then the "
                "model's own predictions, not frames to learn"
            )
