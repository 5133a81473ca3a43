"""`python -m rewardmodels.eval.rewardbench`: the same as `rewardmodels eval rewardbench`."""

import sys

from rewardmodels.cli_common import run_command
from rewardmodels.eval.rewardbench.cli import main

sys.exit(run_command("eval rewardbench", main, None))
