"""`python -m rewardmodels.eval.rewardbench`: the same as `rewardmodels eval rewardbench`."""

from rewardmodels.eval.rewardbench.cli import main

raise SystemExit(main())
