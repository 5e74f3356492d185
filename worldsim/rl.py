"""Stable-Baselines3 on Gymnasium vector envs: `SB3VecEnv` adapts a `gymnasium.vector.VectorEnv`
(`gym.make_vec("LSSVWM-v0", ...)`, `SyncVectorEnv`, ...) to SB3's `VecEnv`, so SB3's algorithms
train on a batched world model directly.

    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor
    from worldsim.rl import SB3VecEnv

    envs = VecMonitor(SB3VecEnv(gym.make_vec("LSSVWM-v0", num_envs=64, max_episode_steps=200)))
    PPO("CnnPolicy", envs).learn(100_000)

SB3 has no adapter of its own (its `VecEnv` predates Gymnasium's vector API). The two APIs
differ in how an episode ends. SB3's `step` returns `done = terminated or truncated` and, for a
done env, already the first observation of its next episode, with the last one in
`info["terminal_observation"]` and `info["TimeLimit.truncated"]` (PPO bootstraps the value of a
truncated episode from that observation). Gymnasium's default autoreset mode, NEXT_STEP (the mode
of LSSVWM-v0's vector env and of SyncVectorEnv), returns the last observation as the ordinary
observation and restarts the env only at the next step, ignoring that step's action. The adapter
restarts the done envs at once with `reset(options={"reset_mask": done})`, which also clears
their pending autoreset, so no step is wasted and every action SB3 picks is taken. The same code
serves the DISABLED mode (where the caller must reset envs anyway); SAME_STEP is not supported.

Infos go from Gymnasium's dict of arrays (with `_key` masks) to SB3's list of per-env dicts.
A batched vector env has no per-env objects: `get_attr`, `set_attr` and `env_method` act on the
vector env itself (each index sees its value).

Needs the "rl" extra: pip install -e ".[rl]".
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env import VecEnv

SUPPORTED_MODES = (AutoresetMode.NEXT_STEP, AutoresetMode.DISABLED)


def split_info(info: dict, num_envs: int) -> list[dict[str, Any]]:
    """A vector info dict (arrays of N values, `_key` masks marking the envs a key covers, nested
    dicts for wrappers such as RecordEpisodeStatistics) -> one dict per env."""
    per_env: list[dict[str, Any]] = [{} for _ in range(num_envs)]
    for key, value in info.items():
        if key.startswith("_") and key[1:] in info:
            continue  # a mask
        mask = info.get(f"_{key}", np.ones(num_envs, dtype=bool))
        values = split_info(value, num_envs) if isinstance(value, dict) else value
        for i in np.flatnonzero(mask):
            per_env[i][key] = values[i]
    return per_env


class SB3VecEnv(VecEnv):
    """SB3's VecEnv over a Gymnasium VectorEnv whose autoreset mode is NEXT_STEP or DISABLED."""

    def __init__(self, venv: VectorEnv):
        mode = venv.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode not in SUPPORTED_MODES:
            raise ValueError(f"SB3VecEnv takes vector envs with autoreset mode NEXT_STEP or DISABLED, got {mode}")
        self.venv = venv  # set first: VecEnv.__init__ reads render_mode through get_attr
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self):
        # SB3 keeps one options dict per env; a vector env's reset takes one for all
        if any(o != self._options[0] for o in self._options):
            raise ValueError("SB3VecEnv: a vector env resets with one options dict for all envs, got different ones")
        obs, info = self.venv.reset(seed=list(self._seeds), options=self._options[0] or None)
        self.reset_infos = split_info(info, self.num_envs)
        self._reset_seeds()  # as in SB3's own VecEnvs: seeds and options are used once
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        done = terminated | truncated
        infos = split_info(info, self.num_envs)
        for i, env_info in enumerate(infos):
            env_info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        if done.any():
            obs = np.array(obs)  # our own copy: the done rows are overwritten below
            for i in np.flatnonzero(done):
                infos[i]["terminal_observation"] = obs[i].copy()
            first, reset_info = self.venv.reset(options={"reset_mask": done})
            obs[done] = first[done]
            for i, env_info in enumerate(split_info(reset_info, self.num_envs)):
                if done[i]:
                    self.reset_infos[i] = env_info
        return obs, np.asarray(reward, dtype=np.float32), done, infos

    def close(self) -> None:
        self.venv.close()

    def get_images(self) -> list[np.ndarray]:
        return list(self.venv.render())

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self.venv, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        # gym.Wrapper wraps single envs; a vector env's sub-envs (if any) are out of SB3's reach
        return [False for _ in self._get_indices(indices)]
