"""BT training under any launcher, for tests/test_distributed.py.

    python tests/dist_script.py --expect_world 1 -- <rewardmodels train bt flags>
    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 --main_process_port P \
        tests/dist_script.py --expect_world 2 -- <flags>

It refuses to train unless the launcher really started `--expect_world` processes (some launch forms silently
start one), records what each rank saw in <output_dir>/rank<r>.json, then trains, saves and closes every
rank the way `rewardmodels train bt` does (training.run.train_and_save ends with wait_for_everyone and
end_training).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import sys
from pathlib import Path


def main() -> int:
    # A rank that hangs (a collective one rank never reaches) prints every thread's stack and exits before
    # the test's 300 s timeout, so the failure says where it stuck.
    faulthandler.dump_traceback_later(240, exit=True)
    parser = argparse.ArgumentParser()
    parser.add_argument("--expect_world", type=int, required=True)
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    mine, rest = parser.parse_args(argv[:split]), argv[split + 1 :]

    from rewardmodels.bt.config import BTConfig
    from rewardmodels.bt.train import build_trainer
    from rewardmodels.training.arguments import DataArguments, ModelArguments, parse_layered
    from rewardmodels.training.run import final_eval, train_and_save

    model_args, data_args, args = parse_layered((ModelArguments, DataArguments, BTConfig), rest)
    trainer = build_trainer(model_args, data_args, args)
    acc = trainer.accelerator
    seen = {
        "rank": acc.process_index,
        "world": acc.num_processes,
        "distributed_type": str(acc.distributed_type),
        "collator": type(trainer.data_collator).__name__,
        "packing": trainer.training_manifest.get("packing"),
    }
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    (Path(args.output_dir) / f"rank{acc.process_index}.json").write_text(json.dumps(seen))
    if acc.num_processes != mine.expect_world:
        acc.end_training()
        raise SystemExit(f"expected {mine.expect_world} processes, the launcher started {acc.num_processes}")

    def finalize(trainer) -> None:
        # What actually ran: FSDP2 turns parameters into DTensors; DDP and one process leave plain tensors.
        seen["parameter_type"] = type(next(trainer.model_wrapped.parameters())).__name__
        seen["wrapper"] = type(trainer.model_wrapped).__name__
        (Path(args.output_dir) / f"rank{acc.process_index}.json").write_text(json.dumps(seen))
        final_eval(trainer)  # reward statistics and held-out metrics, gathered over every rank

    train_and_save(trainer, args, finalize=finalize)
    return 0


if __name__ == "__main__":
    sys.exit(main())
