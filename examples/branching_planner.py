"""Use LSSVWM-v0 from RL code: batched rollouts plus snapshot/restore for a look-ahead planner.

At every step the planner snapshots the simulator (a copy of its fixed-size memory), copies the
snapshot into a batch of branch envs (`gym.make_vec`, one env per action), imagines each action
held for `--horizon` steps in all branches at once, and takes the action whose imagined return is
highest. The env that acts is never stepped in imagination, so only the chosen trajectory reaches
its mp4 (Gymnasium's RecordVideo).

    python examples/branching_planner.py --steps 20 --horizon 3 [--checkpoint maze] [--out planner_videos]
"""

import argparse

import gymnasium as gym
import numpy as np

import worldsim  # noqa: F401  (registers LSSVWM-v0)


def imagined_returns(branches, snapshot, horizon: int) -> np.ndarray:
    """Predicted return of holding action i for `horizon` steps from `snapshot` (an
    `LSSVWMEnv.get_state()`), for every action i of the branch envs at once: float [num_envs]."""
    branches.unwrapped.branch(snapshot)
    actions = np.arange(branches.num_envs)
    total = np.zeros(branches.num_envs)
    alive = np.ones(branches.num_envs, dtype=bool)
    for _ in range(horizon):
        _, reward, terminated, truncated, _ = branches.step(actions)
        total += np.where(alive, reward, 0.0)
        alive &= ~(terminated | truncated)  # an ended branch earns nothing more (its next step restarts it)
    return total


def main(argv=None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None, help="checkpoint path or shipped name (default: maze)")
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--horizon", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="planner_videos")
    a = p.parse_args(argv)

    env = gym.make("LSSVWM-v0", checkpoint=a.checkpoint, device=a.device, render_mode="rgb_array")
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise SystemExit(f"this planner branches on every action: it needs a Discrete action space, got {env.action_space}")
    branches = gym.make_vec("LSSVWM-v0", num_envs=int(env.action_space.n), checkpoint=a.checkpoint, device=a.device)
    env = gym.wrappers.RecordVideo(env, a.out, episode_trigger=lambda i: True, disable_logger=True)
    env.reset(seed=a.seed)
    total = 0.0
    for t in range(a.steps):
        scores = imagined_returns(branches, env.unwrapped.get_state(), a.horizon)
        best = int(np.argmax(scores))
        _, reward, terminated, truncated, info = env.step(best)
        total += float(reward)
        print(f"step {t}: action {best} (imagined returns {np.round(scores, 3).tolist()}), reward {reward:.3f}")
        if terminated or truncated:
            break
    env.close()
    branches.close()
    print(f"return {total:.3f}; video in {a.out}/")
    return total


if __name__ == "__main__":
    main()
