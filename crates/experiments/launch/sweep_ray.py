#!/usr/bin/env python3
"""Fan a `hypura sweep` out over a Ray cluster: one Ray task per shard.

    python3 crates/experiments/launch/sweep_ray.py --shards 16 [--address auto] \
        [--hypura PATH] [--threads-per-shard 4] -- \
        --trace ds.htrace -m ds.gguf --hw hw.toml --grid '...' -o /shared/results

Everything after `--` is passed to `hypura sweep` as is; each task adds `--shard i/N` and
`--threads`. The binary, the trace, model, profile and the results directory must be at the same
paths on every node (a shared file system): shards write their own files into the one directory
(names carry the shard), and reading the directory is the merge. A shard that fails makes the
launcher exit non-zero after the others finish; rerunning it skips what is already written.

Without `--address` a local Ray instance is started (what CI does); `--address auto` joins the
cluster this machine belongs to (`ray start --head` / `ray start --address=...`).
"""

import argparse
import os
import shutil
import subprocess
import sys
import time


def parse(argv):
    if "--" not in argv:
        sys.exit("sweep_ray.py: give hypura sweep's arguments after --")
    split = argv.index("--")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shards", type=int, required=True, help="number of shards (Ray tasks), >= 1")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local one)")
    p.add_argument("--hypura", default=None, help="hypura binary (default: hypura on PATH)")
    p.add_argument("--threads-per-shard", type=int, default=1, help="CPUs each task asks Ray for and gives hypura --threads")
    args = p.parse_args(argv[:split])
    if args.shards < 1:
        p.error("--shards must be at least 1")
    if args.threads_per_shard < 1:
        p.error("--threads-per-shard must be at least 1")
    sweep = argv[split + 1 :]
    for flag in ("--shard", "--threads"):
        if any(a == flag or a.startswith(flag + "=") for a in sweep):
            p.error(f"{flag} is set by the launcher; leave it out of the sweep arguments")
    binary = args.hypura or shutil.which("hypura")
    if binary is None:
        p.error("no hypura on PATH: pass --hypura PATH")
    return args, os.path.abspath(binary), sweep


def main(argv):
    args, binary, sweep = parse(argv)
    import ray

    if args.address is None:
        ray.init(include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=args.address, log_to_driver=False)

    # Relative paths in the sweep's arguments mean what they mean here, on every node.
    cwd = os.getcwd()

    @ray.remote(num_cpus=args.threads_per_shard, max_retries=0)
    def shard(i, n):
        cmd = [binary, "sweep", *sweep, "--shard", f"{i}/{n}", "--threads", str(args.threads_per_shard)]
        start = time.time()
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
        return i, r.returncode, r.stdout, r.stderr, time.time() - start, os.uname().nodename

    start = time.time()
    pending = [shard.remote(i, args.shards) for i in range(args.shards)]
    failed = 0
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        i, code, out, err, secs, node = ray.get(done[0])
        first = out.strip().splitlines()[0] if out.strip() else ""
        print(f"shard {i}/{args.shards} on {node}: exit {code} in {secs:.1f} s: {first}", flush=True)
        if code != 0:
            failed += 1
            sys.stderr.write(err)
    print(f"{args.shards - failed} of {args.shards} shards done in {time.time() - start:.1f} s")
    ray.shutdown()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
