#!/bin/bash
# Issue 23 (docs/implicit_prm.md, "Re-read with the default settings"): the 30-step CE implicit PRM re-read on ProcessBench gsm8k with the default settings, beside the
# untrained base read the same way. One heavy job at a time (called under flock).
set -euo pipefail
cd /work/main
export PATH=/work/main/.venv/bin:$PATH
P=outputs/implicit_prm; mkdir -p $P
python -c "import json; r=json.load(open('../shared/data/processbench_gsm8k.json')); \
  json.dump(r[0::2], open('$P/processbench_gsm8k_a.json','w')); json.dump(r[1::2], open('$P/processbench_gsm8k_b.json','w'))"
D="$P/processbench_gsm8k_a.json $P/processbench_gsm8k_b.json"
S=outputs/implicit-prm-smollm2-ce-scorer
echo "start $(date +%T) commit $(git rev-parse --short HEAD)"
/usr/bin/time -v rewardmodels train implicit-prm --config recipes/implicit_prm/smollm2_prm800k_ce.yaml 2> $P/train.time
echo "trained $(date +%T)"; grep -E "Elapsed|Maximum resident" $P/train.time
rewardmodels export outputs/implicit-prm-smollm2-ce -o $S --overwrite
/usr/bin/time -v rewardmodels eval processbench --scorer $S --dataset $D --tune-threshold-on gsm8k_a --store-threshold \
   --batch-size 4 --device cpu --output-dir $P/pb-ce 2> $P/pb-ce.time
echo "scored ce $(date +%T)"; grep -E "Elapsed|Maximum resident" $P/pb-ce.time
rewardmodels eval processbench --reuse-scores $P/pb-ce/predictions.jsonl --dataset $D --tune-threshold-on gsm8k_b --output-dir $P/pb-ce-tuned-b
# The untrained base, reference-free (its reference would be itself: every log-ratio 0), read the same way.
B=$P/base-reffree-scorer; rm -rf $B; mkdir -p $B
python - "$S" "$B" <<'PY'
import json, sys
from pathlib import Path
from rewardmodels.modeling import resolve_model_path
s, b = Path(sys.argv[1]), Path(sys.argv[2])
m = json.loads((s / "reward_model.json").read_text())
base = Path(resolve_model_path(m["base_model"]))
for f in base.iterdir():
    if f.is_file():
        (b / f.name).symlink_to(f.resolve())
m = {k: v for k, v in m.items() if k != "processbench_threshold"}
m["ref_free"] = True
(b / "reward_model.json").write_text(json.dumps(m, indent=2))
print("base", base)
PY
/usr/bin/time -v rewardmodels eval processbench --scorer $B --dataset $D --tune-threshold-on gsm8k_a \
   --batch-size 4 --device cpu --output-dir $P/pb-base 2> $P/pb-base.time
echo "scored base $(date +%T)"; grep -E "Elapsed|Maximum resident" $P/pb-base.time
rewardmodels eval processbench --reuse-scores $P/pb-base/predictions.jsonl --dataset $D --tune-threshold-on gsm8k_b --output-dir $P/pb-base-tuned-b
# The stored threshold in use: a later run with no --threshold reads it from the manifest.
rewardmodels eval processbench --scorer $S --dataset $P/processbench_gsm8k_b.json --batch-size 4 --device cpu --output-dir $P/pb-ce-stored || echo "stored-threshold run failed"
echo "done $(date +%T)"
