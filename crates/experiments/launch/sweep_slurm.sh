#!/usr/bin/env bash
# A `hypura sweep` as a Slurm job array: task I of N runs shard I/N into one results directory
# on a shared file system (the shards' files have names of their own; reading the directory is
# the merge, and a task that is rerun skips what is already written).
#
#   sbatch --array=0-15 crates/experiments/launch/sweep_slurm.sh \
#     --trace ds.htrace -m ds.gguf --hw hw.toml --grid '...' -o /shared/results
#
# The array's size is the shard count (SLURM_ARRAY_TASK_COUNT; Slurm >= 18.08 sets it). Every
# path must be valid on the compute nodes; HYPURA names the binary (default: hypura on PATH).
#SBATCH --job-name=hypura-sweep
#SBATCH --cpus-per-task=4
#SBATCH --output=hypura-sweep-%A_%a.out
set -euo pipefail
: "${SLURM_ARRAY_TASK_ID:?run this with sbatch --array=0-(N-1)}"
: "${SLURM_ARRAY_TASK_COUNT:?run this with sbatch --array=0-(N-1)}"
# Arrays may start above 0 (--array=1-16): shard index counts from the first task.
first=${SLURM_ARRAY_TASK_MIN:-0}
exec "${HYPURA:-hypura}" sweep "$@" \
  --shard "$((SLURM_ARRAY_TASK_ID - first))/${SLURM_ARRAY_TASK_COUNT}" \
  --threads "${SLURM_CPUS_PER_TASK:-1}"
