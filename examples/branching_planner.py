"""Use LSSVWM-v0 from RL code: batched rollouts plus snapshot/restore for a look-ahead planner.

At every step the planner snapshots the simulator (a copy of its fixed-size memory), imagines
each action held for `--horizon` steps, restores, and takes the action whose imagined return is
highest. The chosen trajectory is recorded to an mp4 with Gymnasium's RecordVideo.

    python examples/branching_planner.py --steps 20 --horizon 3 [--checkpoint maze] [--out planner_videos]
"""

import argparse

import gymnasium as gym
import numpy as np

import worldsim  # noqa: F401  (registers LSSVWM-v0)


def imagined_return(env, action: int, horizon: int) -> float:
    snapshot = env.unwrapped.get_state()
    total = 0.0
    for _ in range(horizon):
        _, reward, terminated, _, _ = env.unwrapped.step(action)
        total += float(reward)
        if terminated:
            break
    env.unwrapped.set_state(snapshot)  # back to where we were: the branch leaves no trace
    return total


def main(argv=None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None, help="checkpoint path or shipped name (default: maze)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--horizon", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="planner_videos")
    a = p.parse_args(argv)

    env = gym.make("LSSVWM-v0", checkpoint=a.checkpoint, render_mode="rgb_array")
    env = gym.wrappers.RecordVideo(env, a.out, episode_trigger=lambda i: True, disable_logger=True)
    env.reset(seed=a.seed)
    actions = range(env.action_space.n)
    total = 0.0
    for t in range(a.steps):
        scores = [imagined_return(env, act, a.horizon) for act in actions]
        best = int(np.argmax(scores))
        _, reward, terminated, truncated, info = env.step(best)
        total += float(reward)
        print(f"step {t}: action {best} (imagined returns {np.round(scores, 3).tolist()}), reward {reward:.3f}")
        if terminated or truncated:
            break
    env.close()
    print(f"return {total:.3f}; video in {a.out}/")
    return total


if __name__ == "__main__":
    main()
