"""`worldsim play`: play the world model with the keyboard in a pygame window.

    worldsim play [--checkpoint maze] [--twin] [--seed 0] [--scale 8] [--fps 15] [--device auto]

Keys (for the maze; other checkpoints use their source env's own key map):
    W / Up            forward                 A / Left     turn left       D / Right   turn right
    Q or W+A          forward + turn left     E or W+D     forward + turn right
    (no key)          noop: the world keeps being generated, the agent stands still
    Space pause       R reset (new episode)   V start/stop recording an mp4
    [ / ]             fewer / more sampler steps (faster / finer)          Esc quit
    C                 commit each frame from the sampler's pass (faster) / in the next frame's first pass

The HUD shows the generation rate, the frame index, the sampler settings and the simulator's memory
(fixed for LSSVWM: it does not grow with the frame index). `--twin` runs the true source env on
the same actions beside the model (when the checkpoint's source env can be made).

Split (as DIAMOND's play UI): `Game` is the loop's state and logic with no pygame in it (tests drive
it directly), `Window` draws a Game and turns pygame events into its inputs.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections import deque
from datetime import datetime
from pathlib import Path

import gymnasium as gym
import numpy as np

from worldsim.rollout import GAP, upscale, video_frame
from worldsim.simulator import add_sampling_arguments, sampling_options
from worldsim.sources import SourceEnv
from worldsim.video import mp4_writer

COMMANDS = ("pause", "reset", "record", "fewer_steps", "more_steps", "commit_mode", "quit")
HUD_LINES = 3


def add_arguments(parser) -> None:
    parser.add_argument("--checkpoint", default=None, help="checkpoint path or shipped name (default: maze)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (default: 0)")
    parser.add_argument("--scale", type=int, default=None, help="window upscaling (default: frames to ~512 pixels)")
    parser.add_argument("--fps", type=int, default=None, help="frame-rate cap (default: the checkpoint's)")
    add_sampling_arguments(parser)
    parser.add_argument("--twin", action="store_true", help="show the true source env beside the model")
    parser.add_argument("--record-dir", default=".", help="where V writes its mp4s (default: .)")
    parser.add_argument("--max-frames", type=int, default=None, help="quit after N generated frames")


class Game:
    """The viewer's state: the env (and twin), pause, recording, and the frame to show.

    Each `tick(action, commands)` applies the commands (names from COMMANDS), then, unless paused,
    steps the model (and the twin) with `action`.
    """

    def __init__(self, env: gym.Env, twin: SourceEnv | None = None, seed: int | None = None,
                 record_dir: str | Path = ".", record_scale: int = 4):
        self.env, self.twin = env, twin
        self.record_dir, self.record_scale = Path(record_dir), record_scale
        self.paused, self.running = False, True
        self.frames_generated = 0
        self.writer = None
        self.recording_path: Path | None = None
        self.reward = 0.0
        self.step_times: deque[float] = deque(maxlen=30)
        self.reset(seed)

    @property
    def sim_env(self):
        return self.env.unwrapped

    def reset(self, seed: int | None = None) -> None:
        self.obs, info = self.env.reset(seed=seed)
        self.twin_obs = None if self.twin is None else self.twin.reset(info["source_seed"])
        self.reward = 0.0

    def tick(self, action, commands=()) -> None:
        for c in commands:
            self.command(c)
        if self.paused or not self.running:
            return
        start = time.perf_counter()
        self.obs, self.reward, terminated, truncated, info = self.env.step(action)
        ended = terminated or truncated
        if self.twin is not None:
            self.twin_obs, _, t_term, t_trunc = self.twin.step(action)
            ended = ended or t_term or t_trunc
        self.step_times.append(time.perf_counter() - start)
        self.frames_generated += 1
        if self.writer is not None:
            self.writer.append_data(video_frame(self.obs, self.twin_obs, self.record_scale))
        if ended:
            self.reset()

    def command(self, name: str) -> None:
        if name == "pause":
            self.paused = not self.paused
        elif name == "reset":
            self.reset()
        elif name == "record":
            self.stop_recording() if self.writer is not None else self.start_recording()
        elif name in ("fewer_steps", "more_steps"):
            self.sim_env.sampling_steps = max(1, self.sim_env.sampling_steps + (1 if name == "more_steps" else -1))
        elif name == "commit_mode":
            sim = self.sim_env.simulator
            sim.sampler = dataclasses.replace(sim.sampler, commit_in_sampler=not sim.sampler.commit_in_sampler)
        elif name == "quit":
            self.running = False
        else:
            raise ValueError(f"unknown command {name!r}; one of {COMMANDS}")

    def start_recording(self) -> None:
        self.recording_path = self.record_dir / f"worldsim-{datetime.now():%Y%m%d-%H%M%S}.mp4"
        self.writer = mp4_writer(self.recording_path, self.sim_env.metadata["render_fps"])

    def stop_recording(self) -> None:
        if self.writer is not None:
            self.writer.close()
            print(f"recorded {self.recording_path}")
            self.writer = None

    def close(self) -> None:
        self.stop_recording()
        self.env.close()
        if self.twin is not None:
            self.twin.close()

    @property
    def fps(self) -> float:
        """Generated frames per second over the last steps (the model's speed, not the frame cap)."""
        return len(self.step_times) / sum(self.step_times) if self.step_times else 0.0

    def hud(self) -> list[str]:
        env = self.sim_env
        state = "PAUSED" if self.paused else ("REC " + self.recording_path.name if self.writer is not None else "")
        return [f"{self.fps:5.1f} frames/s   frame {env.frame_index}   reward {self.reward:+.2f}",
                f"sampler steps {env.sampling_steps}   "
                f"commit {'in sampler' if env.simulator.sampler.commit_in_sampler else 'with next frame'}   "
                f"memory {env.memory_bytes() / 2**20:.2f} MiB   {state}",
                "model | true env" if self.twin is not None else "model"]

    def view(self) -> np.ndarray:
        """The frame to show: the model's (and the twin's on its right), model-sized."""
        if self.twin_obs is None:
            return self.obs
        gap = np.full((self.obs.shape[0], GAP, 3), 255, np.uint8)
        return np.concatenate([self.obs, gap, self.twin_obs], axis=1)


class Window:
    """A pygame window that shows a Game and feeds it the keyboard."""

    def __init__(self, game: Game, keys_to_action: dict, noop, scale: int, fps: int):
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame

        self.pg, self.game, self.scale, self.fps = pygame, game, scale, fps
        self.keys_to_action, self.noop = keys_to_action, noop
        self.relevant_keys = {k for combo in keys_to_action for k in combo}
        self.command_keys = {pygame.K_SPACE: "pause", pygame.K_r: "reset", pygame.K_v: "record",
                             pygame.K_LEFTBRACKET: "fewer_steps", pygame.K_RIGHTBRACKET: "more_steps",
                             pygame.K_c: "commit_mode",
                             pygame.K_ESCAPE: "quit"}
        pygame.display.init()
        pygame.font.init()
        self.font = pygame.font.Font(None, 20)
        h, w = game.view().shape[:2]
        self.hud_height = HUD_LINES * self.font.get_linesize() + 8
        self.screen = pygame.display.set_mode((w * scale, h * scale + self.hud_height))
        pygame.display.set_caption("worldsim play")
        self.clock = pygame.time.Clock()
        self.held: set[int] = set()

    def events(self) -> list[str]:
        """Commands from this frame's events; keeps `held` (the action keys held down) up to date."""
        pg, commands = self.pg, []
        for event in pg.event.get():
            if event.type == pg.QUIT:
                commands.append("quit")
            elif event.type == pg.KEYDOWN:
                if event.key in self.command_keys:
                    commands.append(self.command_keys[event.key])
                elif event.key in self.relevant_keys:
                    self.held.add(event.key)
            elif event.type == pg.KEYUP:
                self.held.discard(event.key)
        return commands

    def action(self):
        return self.keys_to_action.get(tuple(sorted(self.held)), self.noop)

    def draw(self) -> None:
        pg = self.pg
        frame = self.game.view()
        surface = pg.surfarray.make_surface(upscale(frame, self.scale).swapaxes(0, 1))
        self.screen.fill((20, 20, 20))
        self.screen.blit(surface, (0, 0))
        y = frame.shape[0] * self.scale + 4
        for line in self.game.hud():
            self.screen.blit(self.font.render(line, True, (230, 230, 230)), (6, y))
            y += self.font.get_linesize()
        pg.display.flip()

    def run(self, max_frames: int | None = None) -> None:
        game = self.game
        while game.running and (max_frames is None or game.frames_generated < max_frames):
            commands = self.events()
            game.tick(self.action(), commands)
            self.draw()
            self.clock.tick(self.fps)

    def close(self) -> None:
        self.pg.display.quit()


def run(args) -> int:
    # no TimeLimit (unwrapped): play as long as you like
    env = gym.make("LSSVWM-v0", checkpoint=args.checkpoint, device=args.device, **sampling_options(args)).unwrapped
    keys = env.get_keys_to_action()  # a source env without a key map: ValueError
    twin = None
    if args.twin:
        twin = SourceEnv(env.source.source, env.observation_space.shape[0])
        try:
            twin.env
        except ValueError as e:
            print(f"worldsim play: no twin view: {e}", file=sys.stderr)
            twin = None
    size = env.observation_space.shape[0]
    scale = args.scale or max(1, 512 // size)
    game = Game(env, twin, seed=args.seed, record_dir=args.record_dir, record_scale=max(1, 256 // size))
    noop = 0 if isinstance(env.action_space, gym.spaces.Discrete) else np.zeros(env.action_space.shape, np.float32)
    window = Window(game, keys, noop, scale, args.fps or env.metadata["render_fps"])
    try:
        window.run(args.max_frames)
    finally:
        game.close()
        window.close()
    print(f"{game.frames_generated} frames, last {game.fps:.1f} frames/s")
    return 0
