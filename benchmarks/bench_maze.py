"""Benchmark of the built-in maze: rendering throughput and how often the explorer revisits places.

    python benchmarks/bench_maze.py                 # CPU: batch 1 and 64
    python benchmarks/bench_maze.py --device cuda   # GPU: batch 1024 and 4096

Throughput: frames/s of `MazeWorld.step` (move + render), the best of --repeats runs of --steps
steps after warm-up, with random actions and with the explore policy choosing them (what the
training-data generator does), and per CPU-second of this process. The load average is printed:
other processes slow a shared CPU (and OpenMP's spin-waiting makes 2 threads far slower than 1
there: try --threads 1).
Revisits: `revisit_fraction` (share of frames showing a place, cell + heading quadrant, last seen
>= 100 frames earlier) over trajectories of --trajectory-steps steps of the explore and the
persistent-random policy, with the share of free cells visited; and, for the explorer on the 9x9
maze, inside training windows of --window frames (what a model trained on such windows is asked
to remember) at gaps from the attention window (10 frames) up.
Balls: in the explorer's frames, how often the ball in view is the target, whose colour the frame
border shows -- overall, and where a ball comes back into view after >= gap frames out of it (what
cue recall asks). Prints markdown tables.
"""

import argparse
import datetime
import os
import platform
import time

import gymnasium
import torch

from worldsim.maze.core import N_ACTIONS, MazeWorld
from worldsim.maze.policies import ExplorePolicy, PersistentRandomPolicy, revisit_fraction


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(batch, device, steps, maze_size, image_size, policy, repeats):
    """(frames per second, frames per CPU-second of this process) of step (move + render) for
    `batch` mazes, actions random or from the explorer: the best of `repeats` runs of `steps` steps.
    On a shared CPU the second says what the work costs, whatever the other processes take."""
    world = MazeWorld(batch, maze_size, image_size, device, seed=0)
    world.reset()
    explorer = ExplorePolicy(world)
    random_actions = torch.randint(0, N_ACTIONS, (steps, batch), device=device,
                                   generator=torch.Generator(device).manual_seed(0))
    for t in range(5):  # warm-up (allocator, kernels)
        world.step(explorer.act() if policy == "explore" else random_actions[t])
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        sync(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        for t in range(steps):
            world.step(explorer.act() if policy == "explore" else random_actions[t])
        sync(device)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    return batch * steps / best, batch * steps / best_cpu


def revisits(policy, maze_size, batch, steps, device):
    """(places int64 [batch, steps], mean share of free cells visited) over `steps`-step trajectories."""
    world = MazeWorld(batch, maze_size, device=device, seed=0)
    world.reset(seeds=list(range(batch)))
    if policy == "explore":
        act = ExplorePolicy(world).act
    else:
        random = PersistentRandomPolicy(gymnasium.spaces.Discrete(N_ACTIONS), batch, seed=0)
        act = lambda: torch.from_numpy(random.act()).to(device)  # noqa: E731
    places, cells = [], []
    for _ in range(steps):
        places.append(world.place())
        cells.append(world.cell())
        world.move(act())
    cells = torch.stack(cells, 1).cpu()
    free = (~world.grid).flatten(1).sum(1).cpu()
    coverage = torch.tensor([len(set(c.tolist())) for c in cells]) / free
    return torch.stack(places, 1), coverage.mean().item()


def ball_sightings(maze_size, batch, steps, device, gaps, min_pixels=4):
    """Share of frames showing a ball (>= min_pixels), share of those whose largest ball is the target,
    and per gap (count, share that are the target) of balls coming back into view after >= gap frames."""
    world = MazeWorld(batch, maze_size, device=device, seed=0)
    world.reset(seeds=list(range(batch)))
    act = ExplorePolicy(world).act
    pixels, targets = [], []
    for _ in range(steps):
        ids = world.render_object_ids().flatten(1)  # [B, H * W]
        pixels.append(torch.stack([(ids == k).sum(1) for k in range(world.n_objects)], 1))
        targets.append(world.target.clone())
        world.move(act())
    pixels, targets = torch.stack(pixels, 1).cpu(), torch.stack(targets, 1).cpu()  # [B, T, K], [B, T]
    in_view = pixels >= min_pixels
    shown = in_view.any(2)
    is_target = torch.arange(world.n_objects).view(1, 1, -1) == targets.unsqueeze(2)  # [B, T, K]
    seen = torch.nn.functional.pad(in_view.long().cumsum(1), (0, 0, 1, 0))  # [B, T + 1, K]: sightings before t
    back = {}
    for gap in gaps:
        t = torch.arange(gap, steps)
        returns = in_view[:, gap:] & (seen[:, t] - seen[:, t - gap] == 0)  # in view, not in the last gap frames
        back[gap] = (int(returns.sum()), float(is_target[:, gap:][returns].float().mean()))
    largest_is_target = (pixels.argmax(2) == targets)[shown].float().mean()
    return float(shown.float().mean()), float(largest_is_target), back


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", help="default: 1 64 on CPU, 1024 4096 on CUDA")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per run (default 50 CPU, 200 CUDA)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per batch size; the best is reported")
    parser.add_argument("--maze-size", type=int, default=9)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--trajectory-steps", type=int, default=2000)
    parser.add_argument("--trajectories", type=int, default=16)
    parser.add_argument("--window", type=int, default=256, help="training window length for the in-window revisits")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = device.type == "cuda"
    batch_sizes = args.batch_sizes or ([1024, 4096] if cuda else [1, 64])
    steps = args.steps or (200 if cuda else 50)
    machine = torch.cuda.get_device_name(device) if cuda else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"# bench_maze: {datetime.date.today()}, {machine}{load}, torch {torch.__version__}, "
          f"maze {args.maze_size}x{args.maze_size}, frames {args.image_size}x{args.image_size}, "
          f"best of {args.repeats} x {steps} steps\n")

    print("| batch | step+render frames/s (random actions) | with explore policy frames/s | "
          "frames per CPU-second (random / explore) |")
    print("|---:|---:|---:|---:|")
    for batch in batch_sizes:
        random_fps, random_cpu = throughput(batch, device, steps, args.maze_size, args.image_size, "random", args.repeats)
        explore_fps, explore_cpu = throughput(batch, device, steps, args.maze_size, args.image_size, "explore", args.repeats)
        print(f"| {batch} | {random_fps:,.0f} | {explore_fps:,.0f} | {random_cpu:,.0f} / {explore_cpu:,.0f} |")

    print(f"\n{args.trajectories} trajectories of {args.trajectory_steps} steps per row:\n")
    print("| maze | policy | revisit fraction (gap 100) | cells visited |")
    print("|---|---|---:|---:|")
    for maze_size in (9, 15):
        for policy in ("explore", "random"):
            places, coverage = revisits(policy, maze_size, args.trajectories, args.trajectory_steps, device)
            print(f"| {maze_size}x{maze_size} | {policy} | {revisit_fraction(places):.3f} | {coverage:.0%} |")
            if (maze_size, policy) == (9, "explore"):
                explorer = places

    W = args.window
    gaps = [g for g in (10, 30, 64, 128) if g < W]
    windows = explorer[:, :explorer.shape[1] // W * W].reshape(-1, W)  # [trajectories * windows, W]
    print(f"\nRevisits inside {windows.shape[0]} windows of {W} frames (explore, 9x9): share of frames showing a "
          "place last seen >= gap frames earlier in the same window\n")
    print("| " + " | ".join(f"gap {g}" for g in gaps) + " |\n|" + "---:|" * len(gaps))
    print("| " + " | ".join(f"{revisit_fraction(windows, g):.3f}" for g in gaps) + " |")

    shown, largest_is_target, back = ball_sightings(9, args.trajectories, args.trajectory_steps, device, (10, 100))
    print(f"\nBalls in the explorer's frames (9x9, {args.trajectories} x {args.trajectory_steps} steps; 1 in 3 balls "
          "is the target, whose colour the frame border shows)\n")
    print("| frames showing a ball | of those, the largest ball is the target | "
          + " | ".join(f"back in view after >= {g} frames: sightings, share the target" for g in back) + " |")
    print("|---:|---:|" + "---:|" * len(back))
    print(f"| {shown:.3f} | {largest_is_target:.3f} | " + " | ".join(f"{n}, {share:.3f}" for n, share in back.values())
          + " |")


if __name__ == "__main__":
    main()
