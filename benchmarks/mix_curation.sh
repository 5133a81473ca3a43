#!/bin/bash
# The issue-25 comparison (docs/results.md, "Curated against uncurated"): the mix and the curated mix with the
# same budget (60 steps x 8 pairs), seeds 0-2, interleaved; each run trained, exported and scored on the
# RewardBench sample, one job at a time (the flock keeps other heavy jobs out). Table: mix_curation_table.py.
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=2 TOKENIZERS_PARALLELISM=false
for SEED in 0 1 2; do
  for ARM in uncurated curated; do
    if [ $ARM = uncurated ]; then CFG=recipes/bt/smollm2_mix.yaml; else CFG=recipes/bt/smollm2_mix_curated.yaml; fi
    D=${OUT:-outputs/i25/60}/$ARM-s$SEED
    mkdir -p $D
    [ -f $D/rb/results.json ] && continue
    start=$(date +%s)
    flock /tmp/heavy.lock /usr/bin/time -v rewardmodels train bt --config $CFG --output_dir $D/run \
      --seed $SEED --max_steps 60 --save_steps 15 --save_total_limit 10 > $D/train.log 2> $D/train.err
    mid=$(date +%s)
    rewardmodels export $D/run -o $D/scorer --overwrite > $D/export.log 2>&1
    flock /tmp/heavy.lock rewardmodels eval rewardbench --scorer $D/scorer --dataset ../shared/data/rewardbench_sample.jsonl \
      --device cpu --output-dir $D/rb --no-progress --overwrite > $D/rb.log 2>&1
    end=$(date +%s)
    echo "$ARM s$SEED train_s=$((mid-start)) total_s=$((end-start)) commit=$(git rev-parse --short HEAD)" >> ${OUT:-outputs/i25/60}/timings.txt
  done
done
echo ALLDONE >> ${OUT:-outputs/i25/60}/timings.txt
