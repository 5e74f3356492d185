"""Build cue-recall training plans (worldsim.data.plans): maze trajectories that see a ball, stay
out of its sight for a while and come back to it, then explore; for `TrainConfig.plans`.

    python scripts/build_recall_plans.py --plans 1000 --length 704 --away 100 450 --workers 2 --out plans.safetensors

Each plan is `cue_recall_trajectory(seed, length, away)` with seed and away drawn from --seed: the
same command builds the same file. ~3 s per plan on one core (the out-of-sight probe renders every
cell at every heading). Runs whose recall part is longer than --length are skipped and counted.
The file is rewritten (atomically) every --save-every plans, and a command rerun on it continues
where it stopped.
"""

import argparse
from multiprocessing import Pool
from pathlib import Path
import sys

import numpy as np
import torch
from tqdm import tqdm

from worldsim.data.plans import MazePlans, load_plans, save_plans
from worldsim.maze.core import TRAIN_SEED_LIMIT
from worldsim.maze.episodes import cue_recall_trajectory


def _build(job):
    """(seed, (actions uint8 [length], end pose float32 [3])), or (seed, None) if skipped."""
    seed, length, away, maze_size, image_size = job
    plan = cue_recall_trajectory(seed, length, away, maze_size=maze_size, image_size=image_size)
    return seed, None if plan is None else (plan[0].to(torch.uint8), plan[1][-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--plans", type=int, required=True, help="trajectories to try (skipped ones are not replaced)")
    p.add_argument("--length", type=int, default=704, help="frames per trajectory")
    p.add_argument("--away", type=int, nargs=2, default=(100, 450), metavar=("MIN", "MAX"),
                   help="frames the ball stays out of sight, drawn uniformly in [MIN, MAX]")
    p.add_argument("--maze-size", type=int, default=9)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.plans < 1 or args.length < 2 or not 1 <= args.away[0] <= args.away[1]:
        p.error("need --plans >= 1, --length >= 2 and 1 <= MIN <= MAX for --away")

    rng = np.random.default_rng(args.seed)
    seeds = rng.integers(0, TRAIN_SEED_LIMIT, size=args.plans).tolist()
    aways = rng.integers(args.away[0], args.away[1] + 1, size=args.plans).tolist()
    builder = (f"build_recall_plans.py --plans {args.plans} --length {args.length} --away {args.away[0]} "
               f"{args.away[1]} --maze-size {args.maze_size} --image-size {args.image_size} --seed {args.seed}")
    done = {}  # seed -> (actions, end pose) or None (skipped)
    if Path(args.out).exists():
        old = load_plans(args.out)
        if (old.maze_size, old.image_size, old.length, old.builder) != (args.maze_size, args.image_size,
                                                                       args.length, builder):
            p.error(f"{args.out} holds plans of another command ({old.builder!r}); choose another --out")
        done = {int(s): (a, q) for s, a, q in zip(old.seeds, old.actions, old.end_poses)}
        last = max(seeds.index(s) for s in done)
        done.update({s: None for s in seeds[:last] if s not in done})  # skipped before the restart

    def write():
        kept = [s for s in seeds if done.get(s) is not None]
        if kept:
            actions, end_poses = (torch.stack(x) for x in zip(*(done[s] for s in kept)))
            save_plans(args.out, MazePlans(torch.tensor(kept), actions, end_poses, args.maze_size, args.image_size,
                                           builder))

    jobs = [(s, args.length, a, args.maze_size, args.image_size) for s, a in zip(seeds, aways) if s not in done]
    # one plan per process and one thread each (the workers share the cores); one worker: no processes
    pool = Pool(args.workers, initializer=torch.set_num_threads, initargs=(1,)) if args.workers > 1 else None
    with tqdm(total=args.plans, initial=args.plans - len(jobs), unit="plan") as bar:
        for i, (seed, plan) in enumerate(pool.imap(_build, jobs) if pool else map(_build, jobs), 1):
            done[seed] = plan
            bar.update()
            if i % args.save_every == 0:
                write()
    if pool:
        pool.close()
    write()
    kept = sum(v is not None for v in done.values())
    print(f"{args.out}: {kept} plans of {args.length} frames, {args.plans - kept} skipped (recall part too long)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
