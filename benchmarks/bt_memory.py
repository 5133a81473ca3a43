"""Where the memory of one BT training step goes, in the shape of a user's first run (the shipped HH recipe).

    python benchmarks/bt_memory.py                                   # recipes/bt/smollm2_hh_sharegpt.yaml shape
    python benchmarks/bt_memory.py --packing none                    # the same step on padded batches
    python benchmarks/bt_memory.py --recipe recipes/bt/smollm2_synthetic.yaml --pairs 8

The model, LoRA settings, max length and batch size come from the recipe (the layered config a user gets), the
pairs from HH-RLHF harmless transcripts in ../shared/data (the same pre-shuffled pairs as bt_throughput.py).
One training step (forward, BT loss, backward) runs under `torch.autograd.graph.saved_tensors_hooks`, which sees
every tensor autograd keeps for the backward pass. Each saved tensor is counted once per storage (views share
storage; a linear layer and its LoRA branch save the same input) and charged to the innermost module running
when it was saved. Parameters saved by their own layers are not activations and are left out.

Reported: parameter, gradient and AdamW-state bytes (worked out from the trainable parameters), the saved
activations by module kind and by tensor shape, and the process's resident memory (VmRSS, VmHWM from
/proc/self/status) before loading, after loading, after the forward and after the backward, so the accounted
bytes can be set against what the operating system saw. The last line is machine-readable:

    bt_memory peak_rss_mib=<x> activations_mib=<x> params_mib=<x> grads_mib=<x> adam_mib=<x> tokens=<n>
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
DEFAULT_RECIPE = REPO / "recipes" / "bt" / "smollm2_hh_sharegpt.yaml"
MIB = 1024 * 1024


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from bt_throughput import DEFAULT_DATA

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default=str(DEFAULT_RECIPE), help="Training recipe whose shape is measured.")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="HH-RLHF transcripts (.jsonl[.gz]).")
    p.add_argument("--pairs", type=int, default=None, help="Pairs in the step (default: the recipe's batch).")
    p.add_argument("--max-length", type=int, default=None, help="Default: the recipe's max_length.")
    p.add_argument("--packing", default="auto", help="auto, tree, packed or none, as `train bt --packing`.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top", type=int, default=12, help="Rows in the by-module and by-shape tables.")
    return p.parse_args(argv)


def proc_status_mib() -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident memory of this process."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024  # kB
    return out


class SavedTensorLedger:
    """Bytes autograd saves for backward, per storage, charged to the innermost running module."""

    def __init__(self, model, skip_ptrs: set[int]):
        import torch

        self.torch = torch
        self.skip = skip_ptrs
        self.names = {m: re.sub(r"\.\d+\.", ".N.", n) or "<model>" for n, m in model.named_modules()}
        self.stack: list[str] = []
        self.seen: dict[int, tuple[str, int, tuple, str]] = {}

    def pre_hook(self, module, args):
        self.stack.append(self.names.get(module, type(module).__name__))

    def post_hook(self, module, args, output):
        if self.stack:
            self.stack.pop()

    def pack(self, t):
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in self.skip and ptr not in self.seen and storage.nbytes():
            where = self.stack[-1] if self.stack else "<outside modules>"
            self.seen[ptr] = (where, storage.nbytes(), tuple(t.shape), str(t.dtype).replace("torch.", ""))
        return t

    @staticmethod
    def unpack(t):
        return t

    def __enter__(self):
        nn = self.torch.nn.modules.module
        self.handles = [
            nn.register_module_forward_pre_hook(self.pre_hook),
            nn.register_module_forward_hook(self.post_hook),
        ]
        self.saved = self.torch.autograd.graph.saved_tensors_hooks(self.pack, self.unpack)
        self.saved.__enter__()
        return self

    def __exit__(self, *exc):
        self.saved.__exit__(*exc)
        for h in self.handles:
            h.remove()

    def by(self, key) -> list[tuple[str, int, int]]:
        """(label, bytes, tensors) sorted by bytes."""
        total, count = defaultdict(int), defaultdict(int)
        for where, nbytes, shape, dtype in self.seen.values():
            label = key(where, shape, dtype)
            total[label] += nbytes
            count[label] += 1
        return sorted(((k, total[k], count[k]) for k in total), key=lambda r: -r[1])


def module_kind(where: str, shape, dtype) -> str:
    """`model.layers.N.mlp.up_proj.lora_A.default` -> `layers.N.mlp.up_proj.lora_A`."""
    where = re.sub(r"^(base_model\.model\.)?(model\.)?", "", where)
    return re.sub(r"\.default$", "", where)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    status = {"start": proc_status_mib()}
    from bt_throughput import prepare_features

    from rewardmodels.bt import BTConfig, BTTrainer
    from rewardmodels.modeling import attn_implementation_of, load_tokenizer
    from rewardmodels.training.arguments import DataArguments, ModelArguments, parse_layered
    from rewardmodels.training.batching import collator_for
    from rewardmodels.training.run import load_model

    model_args, data_args, bt_args = parse_layered(
        (ModelArguments, DataArguments, BTConfig),
        ["--config", args.recipe, "--report_to", "none", "--eval_strategy", "no"],
    )
    pairs = args.pairs or bt_args.per_device_train_batch_size
    max_length = args.max_length or data_args.max_length
    shape = argparse.Namespace(
        data=args.data,
        model=model_args.model_name_or_path,
        seed=args.seed,
        warmup=0,
        steps=1,
        batch=pairs,
        profile=False,
        max_length=max_length,
    )
    features = prepare_features(shape)
    tokenizer = load_tokenizer(model_args.model_name_or_path)
    model = load_model(model_args, tokenizer, num_labels=1, seed=bt_args.seed)
    model.train()
    status["loaded"] = proc_status_mib()
    choice = collator_for("bt", args.packing, model, tokenizer, features, max_length=max_length)
    batch = choice.collator(features)
    trainer = BTTrainer(model=model, args=bt_args, train_dataset=features, data_collator=choice.collator)

    params = list(model.parameters())
    trainable = [p for p in params if p.requires_grad]
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    trainable_bytes = sum(p.numel() * p.element_size() for p in trainable)
    skip = {p.untyped_storage().data_ptr() for p in params}
    ledger = SavedTensorLedger(model, skip)
    with ledger:
        loss = trainer.compute_loss(model, batch)
    status["forward"] = proc_status_mib()
    loss.backward()
    status["backward"] = proc_status_mib()
    saved = sum(r[1] for r in ledger.by(module_kind))
    tokens = int(batch["input_ids"].numel())

    print(
        f"\nrecipe {args.recipe}: {model_args.model_name_or_path}, LoRA {model_args.use_lora} "
        f"(r={model_args.lora_r}), gradient checkpointing {bt_args.gradient_checkpointing}, "
        f"{pairs} pairs x max {max_length} tokens, packing {choice.mode}, attention {attn_implementation_of(model)}, "
        f"{tokens} token positions in the batch (shape {tuple(batch['input_ids'].shape)}), loss {loss.item():.5f}"
    )
    print(f"\n{'what':<44} {'MiB':>9}")
    rows = [
        ("parameters (all, as loaded)", param_bytes),
        ("trainable parameters", trainable_bytes),
        ("gradients (trainable only)", trainable_bytes),
        ("AdamW state (2 x trainable, not yet allocated)", 2 * trainable_bytes),
        ("activations saved for backward", saved),
    ]
    for label, nbytes in rows:
        print(f"{label:<44} {nbytes / MIB:>9.1f}")
    print(
        "\nresident memory (MiB): "
        + ", ".join(f"{k} {v['VmRSS']:.0f} (peak {v['VmHWM']:.0f})" for k, v in status.items())
    )
    print(f"peak growth over the step: {status['backward']['VmHWM'] - status['loaded']['VmRSS']:.0f} MiB")

    def table(title: str, rows_, top: int):
        print(f"\n{title}\n{'':<2}{'MiB':>9} {'share':>6} {'tensors':>8}  label")
        for label, nbytes, count in rows_[:top]:
            print(f"  {nbytes / MIB:>9.1f} {100 * nbytes / max(saved, 1):>5.1f}% {count:>8}  {label}")
        rest = rows_[top:]
        if rest:
            print(
                f"  {sum(r[1] for r in rest) / MIB:>9.1f} {'':>6} {sum(r[2] for r in rest):>8}  ({len(rest)} more)"
            )

    kinds = ledger.by(lambda w, s, d: re.sub(r"layers\.N\.", "", module_kind(w, s, d)))
    table("saved activations by module (all layers together):", kinds, args.top)
    table("saved activations by tensor shape:", ledger.by(lambda w, s, d: f"{d} {list(s)}"), args.top)
    print(
        f"\nbt_memory peak_rss_mib={status['backward']['VmHWM']:.0f} activations_mib={saved / MIB:.1f} "
        f"params_mib={param_bytes / MIB:.1f} grads_mib={trainable_bytes / MIB:.1f} "
        f"adam_mib={2 * trainable_bytes / MIB:.1f} tokens={tokens}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
