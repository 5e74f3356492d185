"""`worldsim/Maze-v0`: the built-in 3D maze (the world model's ground truth) as a Gymnasium env.

A first-person maze in the style of DeepMind's Memory Maze, rendered by `worldsim.maze.core`.

## Observation
uint8 RGB frame, shape (image_size, image_size, 3), default 64x64. The border is the colour of
the current target ball.

## Actions
`Discrete(6)`, Memory Maze's set:

| action | meaning |
|---|---|
| 0 | noop |
| 1 | forward (0.2 cells) |
| 2 | turn left (10 degrees) |
| 3 | turn right (10 degrees) |
| 4 | forward + turn left |
| 5 | forward + turn right |

Walking into a wall slides along it. Anything else raises a ValueError naming the action.

## Reward
+1 for touching the ball of the target colour; then another ball becomes the target.

## Episode end
Never terminates (as in Memory Maze); `gym.make` truncates after 1000 steps (the registered
`max_episode_steps`; pass `max_episode_steps=` to change it).

## Starting state
`reset(seed=s)` draws a maze seed from the env's RNG: a new layout, colours, balls, start pose
and target. The same seed gives the same frames. `options` is not used.

## Info
`target` (ball id), `target_colour` (RGB), `position` (x, y in cells), `heading` (radians),
`maze_seed` (the seed of the layout: rebuild it with `worldsim.maze.core.generate_layout`).

## Arguments
`gym.make("worldsim/Maze-v0", render_mode=None | "rgb_array" | "human", maze_size=9, image_size=64)`
after `import worldsim`. maze_size: odd, 9 to 15 like Memory Maze (5 and up work).

Vectorised: `gym.make_vec("worldsim/Maze-v0", num_envs=N, device="cpu" | "cuda")` steps all N
mazes as one batch (envs/maze_vector.py).
"""

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from worldsim.maze.core import ACTION_NAMES, N_ACTIONS, TRAIN_SEED_LIMIT, MazeWorld


class MazeEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 15}

    def __init__(self, render_mode: str | None = None, maze_size: int = 9, image_size: int = 64):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.render_mode = render_mode
        self.world = MazeWorld(1, maze_size=maze_size, image_size=image_size)
        self.observation_space = spaces.Box(0, 255, (image_size, image_size, 3), dtype=np.uint8)
        self.action_space = spaces.Discrete(N_ACTIONS)
        self.maze_seed = None
        self.frame = None  # the latest observation
        self.window = None  # pygame window and clock, for render_mode="human"
        self.clock = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.maze_seed = int(self.np_random.integers(TRAIN_SEED_LIMIT))
        self.frame = self.world.reset(seeds=[self.maze_seed])[0].numpy()
        if self.render_mode == "human":
            self.render()
        return self.frame, self._info()

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r}: MazeEnv actions are ints in [0, {N_ACTIONS}): "
                             + ", ".join(f"{i} {name}" for i, name in enumerate(ACTION_NAMES)))
        if self.frame is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        frames, reward, terminated = self.world.step(torch.tensor([int(action)]))
        self.frame = frames[0].numpy()
        if self.render_mode == "human":
            self.render()
        return self.frame, float(reward[0]), bool(terminated[0]), False, self._info()

    def _info(self) -> dict:
        return {
            "target": int(self.world.target[0]),
            "target_colour": tuple(int(c) for c in self.world.target_colour()[0]),
            "position": tuple(float(c) for c in self.world.position[0]),
            "heading": float(self.world.heading_radians()[0]),
            "maze_seed": self.maze_seed,
        }

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' or 'human' to gym.make")
            return None
        if self.frame is None:
            raise gym.error.ResetNeeded("call reset() before render()")
        if self.render_mode == "rgb_array":
            return self.frame.copy()
        import pygame  # only the human mode needs it

        scale = max(1, 512 // self.frame.shape[0])
        size = (self.frame.shape[1] * scale, self.frame.shape[0] * scale)
        if self.window is None:
            pygame.display.init()
            pygame.display.set_caption("worldsim/Maze-v0")
            self.window = pygame.display.set_mode(size)
            self.clock = pygame.time.Clock()
        surface = pygame.surfarray.make_surface(self.frame.swapaxes(0, 1))  # pygame is (x, y)
        self.window.blit(pygame.transform.scale(surface, size), (0, 0))
        pygame.event.pump()
        pygame.display.flip()
        self.clock.tick(self.metadata["render_fps"])
        return None

    def close(self):
        if self.window is not None:
            import pygame

            pygame.display.quit()
            self.window = None

    def get_keys_to_action(self) -> dict:
        """Keyboard mapping for `gymnasium.utils.play.play`: arrows or WASD, up+left/right curve."""
        import pygame

        keys = {}
        for up, left, right in ((pygame.K_UP, pygame.K_LEFT, pygame.K_RIGHT), (ord("w"), ord("a"), ord("d"))):
            keys[(up,)] = 1
            keys[(left,)] = 2
            keys[(right,)] = 3
            keys[(up, left)] = 4
            keys[(up, right)] = 5
        return keys
