"""worldsim: a Long-Context State-Space Video World Model (LSSVWM) as an interactive simulator.

Importing the package registers the Gymnasium ids by entry-point string, so it stays light:
``LSSVWM-v0`` (the learned simulator) and ``worldsim/Maze-v0`` (the built-in ground-truth maze).
"""

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"

if "LSSVWM-v0" not in registry:
    register(
        id="LSSVWM-v0",
        entry_point="envs.lssvwm:LSSVWMEnv",
        vector_entry_point="envs.lssvwm_vector:LSSVWMVectorEnv",
        max_episode_steps=1000,
    )
if "worldsim/Maze-v0" not in registry:
    register(id="worldsim/Maze-v0", entry_point="envs.maze:MazeEnv",
             vector_entry_point="envs.maze_vector:MazeVectorEnv", max_episode_steps=1000)
