"""`VideoUNetConfig`: the temporal layers phi of the Video LDM denoiser (`drivesim.diffusion.video_unet`),
what feeds them and which of them train; plain values, stored with a model folder's video stage."""

from __future__ import annotations

from dataclasses import dataclass

from drivesim.diffusion.ego_warp import WORLD_CAMERA_HEIGHT, WORLD_FOV_DEG, WORLD_HOOD, WORLD_HORIZON, GroundCamera
from drivesim.nn.alpha_blender import BLEND_MODES

TEMPORAL_LAYERS: tuple[str, ...] = ("attention", "attention+conv3d")
SITE_KINDS: tuple[str, ...] = ("res", "attn", "down", "up")


@dataclass
class VideoUNetConfig:
    """The temporal layers phi and the conditioning paths that feed them.

    temporal_layers: "attention" (temporal attention only) or "attention+conv3d" (TEMPORAL_LAYERS).
    temporal_after: kinds of spatial blocks followed by temporal layers.
    attention_head_dim: per-head width; heads = channels // attention_head_dim (at least 1).
    conv_kernel: (t, h, w) of the 3-D convolutions; (3, 1, 1) mixes frames only and costs 1/9
        of (3, 3, 3) (about 10M vs 29M phi at the default UNet size).
    init_alpha / blend_mode: the AlphaBlenders' start value and parameterisation.
    use_context: condition on masked context frames c_S (prediction and interpolation).
    use_actions: condition on per-frame ego actions [steer, accel].
    context_noise: embed the context-noise level tau_c (context-noise augmentation).
    num_frame_rates: size of the frame-rate flag (2 for the interpolation model; 0 = none).
    action_forecast: feed a deterministic action-conditioned forecast of the frames to predict
        (`ActionForecast`, `forecast_channels` wide, `forecast_levels` halvings) as a second
        context; needs use_context and use_actions.
    speed_conditioning: also condition on the per-frame ego speed (`SpeedEmbedding` in the
        temporal layers and two speed planes in the action forecast); part of the "actions"
        condition; needs use_actions.
    ego_warp: also read `VideoConditioning.warp_latents` (the last context frame moved forward by
        the distance the ego speed covers, `drivesim.diffusion.ego_warp`), as a third masked context
        through its own encoder; needs use_context and use_actions. The caller (trainer, engine)
        computes the warp with the folder's autoencoder, from the settings below. warp_interval:
        seconds between the window's frames (the trainer sets it from the data: frame_stride / fps);
        warp_horizon, warp_fov_deg, warp_camera_height, warp_hood: the camera (`GroundCamera`).
    spatial_actions: also add each frame's action embedding (zero-initialised projection) to
        theta's time+label embedding, so the spatial blocks see the actions; needs use_actions.
    blend_residual: denoise z - mu, mu the linear blend of the given frames (`blend_residual`; the
        interpolation model's in-between frames as the keyframes' blend plus a learned correction);
        needs use_context and the image model's schedule and target (`VideoUNet(blend_shift=...)`).
    clean_context: the given frames enter the denoiser as their given latents (clean, or noised to tau_c with
        context noise) at their own diffusion time tau_c, not noised with the frames to predict at tau (the paper's
        choice, which hands them to theta as noise at high tau and to the temporal layers only through c_S): every
        spatial block then computes sharp features of the context that the temporal layers can carry over (beyond
        the paper, as GameNGen and DIAMOND condition on clean past frames). Needs use_context; not with
        blend_residual (its shift is per clip).
    freeze_image: theta frozen (True, the paper) or trained end to end (False, ablation).
    zero_init: new output projections start at zero (the model starts as the image model);
        False gives random temporal layers (e.g. an untrained test model whose actions matter).
    zero_init_actions: the action embedding starts at zero too (output layer and null), so a
        run started (`init_from`) from a model without actions starts as that model (e.g. the
        interpolation model taught actions and speed).
    """

    temporal_layers: str = "attention+conv3d"
    temporal_after: tuple[str, ...] = ("res", "attn")
    attention_head_dim: int = 32
    position_dim: int = 64
    ff_mult: int = 2
    conv_kernel: tuple[int, int, int] = (3, 1, 1)
    init_alpha: float = 0.5
    blend_mode: str = "sigmoid"
    use_context: bool = True
    context_hidden_channels: int = 64
    use_actions: bool = True
    action_frequencies: int = 6
    context_noise: bool = False
    num_frame_rates: int = 0
    action_forecast: bool = False
    forecast_channels: int = 64
    forecast_levels: int = 2
    spatial_actions: bool = False
    speed_conditioning: bool = False
    ego_warp: bool = False
    warp_interval: float = 0.0
    warp_horizon: float = WORLD_HORIZON
    warp_fov_deg: float = WORLD_FOV_DEG
    warp_camera_height: float = WORLD_CAMERA_HEIGHT
    warp_hood: float = WORLD_HOOD
    blend_residual: bool = False
    clean_context: bool = False
    freeze_image: bool = True
    zero_init: bool = True
    zero_init_actions: bool = False

    def __post_init__(self) -> None:
        self.temporal_after = tuple(str(k) for k in self.temporal_after)
        self.conv_kernel = tuple(int(k) for k in self.conv_kernel)  # type: ignore[assignment]
        if len(self.conv_kernel) != 3 or any(k < 1 or k % 2 == 0 for k in self.conv_kernel):
            raise ValueError(f"VideoUNetConfig.conv_kernel={list(self.conv_kernel)} must be three odd positive ints")
        if self.temporal_layers not in TEMPORAL_LAYERS:
            raise ValueError(
                f"VideoUNetConfig.temporal_layers={self.temporal_layers!r} is not allowed; "
                f"expected one of {TEMPORAL_LAYERS}"
            )
        bad = [k for k in self.temporal_after if k not in SITE_KINDS]
        if bad or not self.temporal_after:
            raise ValueError(
                f"VideoUNetConfig.temporal_after={list(self.temporal_after)} must be a non-empty subset of "
                f"{list(SITE_KINDS)}"
            )
        if self.blend_mode not in BLEND_MODES:
            raise ValueError(f"VideoUNetConfig.blend_mode={self.blend_mode!r}; expected one of {BLEND_MODES}")
        if not 0.0 <= self.init_alpha <= 1.0:
            raise ValueError(f"VideoUNetConfig.init_alpha={self.init_alpha} must be in [0, 1]")
        if self.num_frame_rates < 0 or self.num_frame_rates == 1:
            raise ValueError(
                f"VideoUNetConfig.num_frame_rates={self.num_frame_rates}; allowed 0 (no flag) or >= 2"
            )
        if self.action_forecast and not (self.use_context and self.use_actions):
            raise ValueError("VideoUNetConfig.action_forecast needs use_context=True and use_actions=True")
        if self.spatial_actions and not self.use_actions:
            raise ValueError("VideoUNetConfig.spatial_actions needs use_actions=True")
        if self.speed_conditioning and not self.use_actions:
            raise ValueError("VideoUNetConfig.speed_conditioning needs use_actions=True")
        if self.ego_warp:
            if not (self.use_context and self.use_actions):
                raise ValueError("VideoUNetConfig.ego_warp needs use_context=True and use_actions=True")
            if self.warp_interval < 0.0:
                raise ValueError(f"VideoUNetConfig.warp_interval={self.warp_interval} must be >= 0 seconds")
            self.camera()  # raises on a bad camera
        if self.blend_residual and not self.use_context:
            raise ValueError("VideoUNetConfig.blend_residual needs use_context=True (the blend is of the given frames)")
        if self.clean_context and (not self.use_context or self.blend_residual):
            raise ValueError("VideoUNetConfig.clean_context needs use_context=True and blend_residual=False (the "
                             "blend's shift is one per clip; clean context frames have their own diffusion time)")
        if self.forecast_channels < 1 or self.forecast_levels < 0:
            raise ValueError(
                f"VideoUNetConfig.forecast_channels={self.forecast_channels} must be >= 1 and "
                f"forecast_levels={self.forecast_levels} >= 0"
            )
        if self.attention_head_dim < 1:
            raise ValueError(f"VideoUNetConfig.attention_head_dim={self.attention_head_dim} must be >= 1")

    @property
    def uses_speed(self) -> bool:
        """Whether the model reads `VideoConditioning.ego_speed` (speed embedding or ego warp)."""
        return self.speed_conditioning or self.ego_warp

    def camera(self) -> GroundCamera:
        return GroundCamera(self.warp_horizon, self.warp_fov_deg, self.warp_camera_height, self.warp_hood)

    @classmethod
    def tiny(cls, **overrides: object) -> VideoUNetConfig:
        """Small temporal layers for tests (pair with `UNetConfig.tiny()`)."""
        values: dict[str, object] = dict(attention_head_dim=8, position_dim=16, context_hidden_channels=8,
                                         action_frequencies=2)
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
