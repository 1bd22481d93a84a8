"""Evaluation suite: probes trained on real (world-rendered) frames and clips, and the metrics on them.

Modules (one concept each):
- frame_probe, clip_probe, probe_layers: the probes; probe_io: load/save them (model folder stages
  `frame_probe`, `clip_probe`); probe_data: world episodes with disjoint seed ranges;
  probe_accuracy: the probes' own held-out accuracy.
- frechet: Fréchet distance (FID/FVD and the probe variants); features: probe features and clip
  windows; torchscript_features: standard Inception / I3D networks from user-supplied files.
- adherence: condition, box and action adherence; detection: centre-heatmap targets, decoding, IoU.
- temporal: flicker, PSNR, SSIM; degrade: controlled degradations for sanity baselines.
- video_sets: folders of videos to evaluate; suite: `evaluate(real, generated, probes)` overall and
  per rollout window (drift); results: the report types; report: JSON and plots.
"""
