"""FSDP2 (torch `fully_shard`) on CPU over gloo, with tree-packed batches: for tests/test_distributed.py.

    torchrun --nproc_per_node 2 tests/dist_fsdp2.py MODEL_DIR OUT_JSON

accelerate 1.15 does not route `distributed_type: FSDP` to FSDP on CPU (see docs/packing.md), so this drives
torch's FSDP2 directly. Each rank computes the BT loss on its own half of the pairs with sharded parameters;
rank 0 then compares every gathered gradient with one unsharded process on all pairs.
"""

from __future__ import annotations

import faulthandler
import json
import sys

import torch
import torch.distributed as dist


def features() -> list[dict]:
    return [
        {"prefix_ids": [5, 6, 7, 8], "chosen_ids": [9, 10], "rejected_ids": [11]},
        {"prefix_ids": [], "chosen_ids": [12, 13, 14], "rejected_ids": [15, 16]},
        {"prefix_ids": [20, 21], "chosen_ids": [22], "rejected_ids": [23, 24, 25]},
        {"prefix_ids": [30], "chosen_ids": [31, 32], "rejected_ids": [33]},
    ]


def loss_of(model, feats, pad_id):
    from rewardmodels.losses import bradley_terry_loss
    from rewardmodels.modeling import rewards_at
    from rewardmodels.packing import PackedPairCollator

    rewards = rewards_at(model, PackedPairCollator(pad_id, token_budget=32)(feats)).squeeze(-1)
    chosen, rejected = rewards.chunk(2)
    return bradley_terry_loss(chosen, rejected)


def main(model_dir: str, out: str) -> int:
    faulthandler.dump_traceback_later(240, exit=True)  # a hung rank shows its stack before the test times out
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from rewardmodels.modeling import load_backbone, load_tokenizer

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    tokenizer = load_tokenizer(model_dir)
    torch.manual_seed(0)
    model = load_backbone(model_dir, "seq_cls", tokenizer=tokenizer, dtype="float32")
    mesh = init_device_mesh("cpu", (world,))
    for layer in model.model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    feats = features()
    share = len(feats) // world
    loss_of(model, feats[rank * share : (rank + 1) * share], tokenizer.pad_token_id).backward()
    grads = {n: p.grad.full_tensor() for n, p in model.named_parameters()}  # collective: every rank calls it
    param_type = type(next(model.parameters())).__name__
    if rank == 0:
        torch.manual_seed(0)
        ref = load_backbone(model_dir, "seq_cls", tokenizer=tokenizer, dtype="float32")
        loss_of(ref, feats, tokenizer.pad_token_id).backward()
        diff = max((grads[n] - p.grad).abs().max().item() for n, p in ref.named_parameters())
        scale = max(p.grad.abs().max().item() for p in ref.parameters())
        with open(out, "w") as f:
            json.dump({"world": world, "parameter_type": param_type, "max_diff": diff, "max_grad": scale}, f)
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
