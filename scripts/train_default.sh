#!/usr/bin/env bash
# Train the default world model end to end on the procedural world, stage after stage, and
# bundle it. Every stage resumes from its run folder, so rerunning after an interruption
# continues where it stopped; finished stages return at once. Experiments: conf/experiment/default/.
#   bash scripts/train_default.sh            # from the repository root, after `make setup`
# Outputs: data/world(_explore), data/world(_explore)_latents, runs/default/<stage>/ (checkpoints, losses.png),
# runs/models/default (every stage), runs/models/probes, runs/models/action_probe, and the bundles in OUT and
# PROBES_OUT (below).
set -euo pipefail
BIN=${BIN:-.venv/bin}
PROCS=${PROCS:-2}                      # processes for the data-parallel stages (CPU: one per core)
OUT=${OUT:-runs/models/default_bundle} # drivesim/assets/default_model to replace the shipped one
PROBES_OUT=${PROBES_OUT:-runs/models/probes_bundle} # drivesim/assets/probes to replace the shipped probes
ds() { "$BIN/drivesim" "$@"; }
ddp() { "$BIN/torchrun" --standalone --nproc_per_node "$PROCS" -m drivesim.cli.main "$@"; }

ds data synth experiment=default/data
ds train stage=autoencoder experiment=default/autoencoder
ds data latents experiment=default/latents
ds train stage=layout_prior experiment=default/layout_prior
ddp train stage=image_ldm experiment=default/image_ldm
ds train stage=reward experiment=default/reward
ds data synth experiment=default/data out=data/world_explore explore=0.35   # swerves off the lane centres
ds data latents experiment=default/latents dataset=data/world_explore out=data/world_explore_latents
ds train stage=reward experiment=default/pose_heads   # stage "pose": lateral offset and heading
ds train stage=temporal_decoder experiment=default/temporal_decoder
ds train stage=video_ldm experiment=default/video_ldm
ds train stage=video_ldm experiment=default/video_ldm_stride4   # stage video_ldm_stride4: follows the steering
ds train stage=video_ldm experiment=default/video_ldm_stride4_cars   # the same stage, trained to keep the cars
ds train stage=video_ldm experiment=default/video_ldm_stride4_cars run_dir=runs/default/video_ldm_stride4_cars2 seed=1
ds train stage=video_ldm experiment=default/video_ldm_stride4_cars run_dir=runs/default/video_ldm_stride4_cars3 seed=2 box_drop=1.0 pose_weight=3.0   # trained as the env runs it (no boxes), the pose term keeping the road
# DriveWorld-v0's stage trained on as the env runs it (no boxes given), after the
# stride-4 stage, which starts from the plain video_ldm stage as the shipped one did
ds train stage=video_ldm experiment=default/video_ldm_nobox   # the same stage trained on as the env runs it (no boxes)
ds train stage=interpolation experiment=default/interpolation
ds train stage=upsampler experiment=default/upsampler
ds train stage=upsampler_temporal experiment=default/upsampler_temporal
ds train stage=probes experiment=default/probes frame_from=null steps=5000  # both probes from scratch
ds train stage=probes experiment=default/action_probe frame_from=runs/models/probes clip_from=runs/models/probes
ds bundle src=runs/models/default out="$OUT"
ds bundle src=runs/models/probes out="$PROBES_OUT"
ds bundle src=runs/models/action_probe out="$PROBES_OUT" "stages=[action_probe]"
