"""Record world-model rollouts to mp4, two ways: Gymnasium's RecordVideo, and `worldsim rollout`.

RecordVideo works on LSSVWM-v0 as on any env made with render_mode="rgb_array": wrap it, reset,
step. It writes one mp4 per recorded episode, the reset frame plus one frame per step, at the
checkpoint's frame rate (it needs moviepy: `pip install moviepy`, or the dev extra; moviepy 2.2
drops the last frame of many lengths, 101 among them, when it writes the file).
`worldsim rollout` does the same without code and adds what a demo video wants: a policy (random,
the maze's explorer, or a file of actions), the true maze beside the model (`--twin`), small frames
upscaled for viewing. Here it is called through its Python entry point, `worldsim.cli.main`, with
the argument list the shell command takes (it is printed as it runs).

    python examples/record_rollouts.py                        # 100 steps each way, into videos/
    python examples/record_rollouts.py --steps 300 --out videos --device cuda

On an idle 2-core CPU the shipped model generates about 6 frames/s (2 sampler steps), so the
default takes well under a minute.
"""

import argparse
import shlex
from pathlib import Path

import gymnasium as gym

import worldsim  # noqa: F401  (registers LSSVWM-v0)
from worldsim import cli


def record_with_wrapper(checkpoint: str, steps: int, seed: int, out: Path, device: str) -> Path:
    """A random-action episode of `steps` steps through RecordVideo; returns the mp4."""
    env = gym.make("LSSVWM-v0", checkpoint=checkpoint, device=device, render_mode="rgb_array")
    env = gym.wrappers.RecordVideo(env, str(out), name_prefix="record-video", episode_trigger=lambda episode: True,
                                   disable_logger=True)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            break
    env.close()  # writes the video of the episode in progress
    return out / "record-video-episode-0.mp4"


def record_with_cli(checkpoint: str, steps: int, seed: int, out: Path, device: str) -> Path:
    """`worldsim rollout`: the maze's explorer, the true maze beside the model; returns the mp4."""
    video = out / "worldsim-rollout.mp4"
    argv = ["rollout", "--checkpoint", checkpoint, "--steps", str(steps), "--seed", str(seed), "--policy", "explore",
            "--twin", "--out", str(video), "--device", device]
    print("$ worldsim", shlex.join(argv))
    if cli.main(argv) != 0:
        raise SystemExit(f"worldsim {argv[0]} failed")
    return video


def main(argv=None) -> list[Path]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="maze", help="checkpoint path or shipped name (default: maze)")
    p.add_argument("--steps", type=int, default=100, help="frames to generate in each video (default: 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="videos", help="directory of the two mp4s (default: videos)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    a = p.parse_args(argv)

    out = Path(a.out)
    videos = [record(a.checkpoint, a.steps, a.seed, out, a.device) for record in (record_with_wrapper, record_with_cli)]
    for video in videos:
        print(f"wrote {video}")
    return videos


if __name__ == "__main__":
    main()
