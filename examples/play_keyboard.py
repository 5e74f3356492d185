"""Play the world model with the keyboard, two ways: worldsim's viewer or Gymnasium's `play`.

LSSVWM-v0 is an ordinary Gymnasium env, so `gymnasium.utils.play.play` drives it like any env
with an rgb_array render mode. Both ways read the key map from the env itself,
`env.unwrapped.get_keys_to_action()` (the map `worldsim play` uses). For the maze: W/Up forward,
A/Left and D/Right turn, Q/E (or W+A, W+D) forward while turning, no key = noop. worldsim's viewer
adds a HUD (frames/s, frame index, memory), Space pause, R reset, V record an mp4 into the current
directory, [ and ] fewer/more sampler steps; Esc (or closing the window) quits either.

    python examples/play_keyboard.py                     # worldsim's viewer, shipped maze model
    python examples/play_keyboard.py --ui gymnasium      # gymnasium.utils.play.play
    python examples/play_keyboard.py --frames 200        # quit by itself after 200 frames

Every frame is generated when it is shown: on an idle 2-core CPU with one torch thread the
shipped model makes about 6 frames/s with its 2 sampler steps (`--sampling-steps 4`: 3.6; see BENCHMARKS.md).
The key map is for a discrete-action checkpoint like the maze (no key held = action 0).
"""

import argparse

import gymnasium as gym
import numpy as np
import pygame
from gymnasium.utils.play import play

import worldsim  # noqa: F401  (registers LSSVWM-v0)
from worldsim.viewer import Game, Window

NOOP = 0  # the action taken while no key is held (the maze's "noop")


def play_in_viewer(env: gym.Env, seed: int, scale: int, fps: int, frames: int | None) -> np.ndarray:
    """worldsim's viewer: `Game` steps the env, `Window` draws it and reads the keyboard."""
    game = Game(env, seed=seed)
    window = Window(game, env.unwrapped.get_keys_to_action(), NOOP, scale, fps)
    try:
        window.run(max_frames=frames)
    finally:
        game.close()  # also ends a recording started with V
        window.close()
    print(f"{game.frames_generated} frames, {game.fps:.1f} frames/s")
    return game.obs


def play_in_gymnasium(env: gym.Env, seed: int, scale: int, fps: int, frames: int | None) -> np.ndarray | None:
    """Gymnasium's `play` (it runs until the window closes; the callback closes it after `frames`)."""
    last_frame, count = None, 0

    def after_step(obs_t, obs_tp1, action, reward, terminated, truncated, info):
        nonlocal last_frame, count
        last_frame, count = obs_tp1, count + 1
        if frames is not None and count >= frames:
            pygame.event.post(pygame.event.Event(pygame.QUIT))  # as if the window had been closed

    try:
        play(env, keys_to_action=env.unwrapped.get_keys_to_action(), noop=NOOP, zoom=scale, fps=fps, seed=seed,
             callback=after_step)
    finally:
        env.close()
    print(f"{count} frames")
    return last_frame


def main(argv=None) -> np.ndarray | None:
    """Returns the last frame played."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ui", choices=("viewer", "gymnasium"), default="viewer")
    p.add_argument("--checkpoint", default="maze", help="checkpoint path or shipped name (default: maze)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    p.add_argument("--sampling-steps", type=int, default=None, help="sampler steps (default: the checkpoint's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    p.add_argument("--scale", type=int, default=None, help="window upscaling (default: frames to ~512 pixels)")
    p.add_argument("--fps", type=int, default=None, help="frame-rate cap (default: the checkpoint's)")
    p.add_argument("--frames", type=int, default=None, help="quit after this many generated frames")
    a = p.parse_args(argv)

    env = gym.make("LSSVWM-v0", checkpoint=a.checkpoint, device=a.device, sampling_steps=a.sampling_steps,
                   render_mode="rgb_array")
    scale = a.scale or max(1, 512 // env.observation_space.shape[0])
    fps = a.fps or env.metadata["render_fps"]
    ui = play_in_viewer if a.ui == "viewer" else play_in_gymnasium
    return ui(env, a.seed, scale, fps, a.frames)


if __name__ == "__main__":
    main()
