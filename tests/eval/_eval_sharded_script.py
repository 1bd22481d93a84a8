"""`drivesim eval` as the CLI runs it, for test_eval_sharded (launched with and without torchrun).

argv: results_dir then the eval overrides. Writes results_dir/rank<r>.json saying whether this rank
got the report back (only rank 0 should)."""

import json
import os
import sys
from pathlib import Path

import torch

from drivesim.cli.eval_cmds import run_eval
from drivesim.cli.main import compose

torch.set_num_threads(1)
results = Path(sys.argv[1])
report = run_eval(compose("eval", sys.argv[2:]))
rank = int(os.environ.get("RANK", "0"))
(results / f"rank{rank}.json").write_text(json.dumps({"returned_report": report is not None}))
# Leave without interpreter finalization (as tests/training/_ddp_script.py): gloo's worker threads can
# abort the process at teardown on a loaded machine after the results are already written.
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
