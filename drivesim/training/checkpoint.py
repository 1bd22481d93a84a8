"""Model-folder writing for the training loops (see `drivesim.model_folder`)."""

from drivesim.model_folder import StageRecord, has_stage, load_stage, save_stage

__all__ = ["StageRecord", "has_stage", "load_stage", "save_stage"]
