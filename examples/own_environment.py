"""A world model of your own Gymnasium environment: record it, train on it, play the model back.

The whole path on an env nobody here wrote, CartPole-v1 by default (any env with an rgb_array
render mode and a Discrete or Box action space will do):

1. record: `record` (the function behind `worldsim record`) runs the env with random actions held
   for a few steps each and saves the rendered frames, resized to --size, with the actions,
   rewards and terminations as shards in OUT/data;
2. train: `Trainer` (behind `worldsim train`) fits a world model to the shards; the model takes the
   shards' frame size and action space, and the run directory OUT/run is a checkpoint;
3. play back: `gym.make("LSSVWM-v0", checkpoint=OUT/run)` is now a learned CartPole. `reset(seed=s)`
   starts it from the frame the real env renders after its own `reset(seed=s)` (resized as the
   training frames were); the model and the real env then take the same actions and
   OUT/playback.mp4 shows them side by side (model | real).

The same from the shell (cartpole.json: the fields of CPU_RECIPE below, plus "total_steps": 1500):

    worldsim record --env CartPole-v1 --episodes 300 --steps 200 --size 32 --out cartpole/data
    worldsim train --config cartpole.json --data cartpole/data --steps 1500 --out cartpole/run

Run it:

    python examples/own_environment.py                            # CartPole-v1 into ./cartpole
    python examples/own_environment.py --env Acrobot-v1 --out acrobot
    python examples/own_environment.py --episodes 6 --steps 30 --size 16 --train-steps 2 --playback-steps 6

The defaults (300 episodes of at most 200 steps, 32x32 frames, CPU_RECIPE for 1500 steps) took
6.5 minutes on a busy 2-core CPU (load average 2), nearly all of it training, and ended with a
model that draws the cart and the pole on their track, over a faintly textured background. More
data and steps, or a larger `--config` (a preset or a JSON file of TrainConfig fields, see
worldsim/train/config.py) on a GPU, do better; the windows must fit in the recorded episodes.
"""

import argparse
import dataclasses
from pathlib import Path

import gymnasium as gym

import worldsim  # noqa: F401  (registers LSSVWM-v0)
from worldsim.config import preset
from worldsim.data.record import record
from worldsim.sources import to_frame
from worldsim.rollout import MIN_VIDEO_PIXELS, video_frame
from worldsim.train.config import TrainConfig, load_train_config
from worldsim.train.trainer import Trainer
from worldsim.video import mp4_writer

# A recipe for a few CPU minutes: the tiny preset's model made twice as wide. At width 32 the tiny
# model is narrower than one 4x4-pixel RGB patch (48 values), too narrow to predict per-pixel
# noise: on this data its samples were still noise after 2000 steps, at width 64 they were clean
# after 1000. Windows of 8, then 12 frames: random CartPole episodes last about 10 to 30 steps,
# and the episodes shorter than a window are skipped.
CPU_RECIPE = dict(model=dataclasses.asdict(preset("tiny", width=64)), batch_size=8,
                  window_schedule=((0, 8), (500, 12)), lr=2e-3, warmup_steps=20, save_every=500)


def play_back(checkpoint: Path, env_id: str, size: int, steps: int, seed: int, out: Path, device: str) -> Path:
    """Run the world model and the real env on the same random actions for `steps` frames; both
    restart together when either episode ends. Writes model | real side by side to `out`."""
    model = gym.make("LSSVWM-v0", checkpoint=checkpoint, device=device)
    real = gym.make(env_id, render_mode="rgb_array")
    real.action_space.seed(seed)
    scale = max(1, MIN_VIDEO_PIXELS // size)
    frames, episode = 0, 0
    with mp4_writer(out, model.metadata["render_fps"]) as video:
        while frames < steps:
            real.reset(seed=seed + episode)
            model.reset(seed=seed + episode)  # from the same first frame as the real env
            ended = False
            while not ended and frames < steps:
                action = real.action_space.sample()
                _, _, real_terminated, real_truncated, _ = real.step(action)
                imagined, _, terminated, truncated, _ = model.step(action)
                video.append_data(video_frame(imagined, to_frame(real.render(), size), scale))
                frames += 1
                ended = terminated or truncated or real_terminated or real_truncated
            episode += 1
    model.close()
    real.close()
    print(f"played {frames} frames over {episode} episode(s)")
    return out


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="CartPole-v1", help="Gymnasium id with an rgb_array render mode")
    p.add_argument("--episodes", type=int, default=300, help="episodes to record (default: 300)")
    p.add_argument("--steps", type=int, default=200, help="at most this many steps per episode (default: 200)")
    p.add_argument("--size", type=int, default=32, help="frames are resized to size x size (default: 32)")
    p.add_argument("--config", default=None,
                   help="training preset (tiny, small, base) or JSON file of TrainConfig fields "
                        "(default: CPU_RECIPE, a wider tiny model)")
    p.add_argument("--train-steps", type=int, default=1500, help="optimizer steps (default: 1500)")
    p.add_argument("--playback-steps", type=int, default=120, help="frames in the playback video (default: 120)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    p.add_argument("--out", default="cartpole", help="new directory for data/, run/ and playback.mp4")
    a = p.parse_args(argv)

    out = Path(a.out)
    if out.exists() and any(out.iterdir()):
        # new episodes would be appended to the old ones, and the run would mix two trainings
        p.error(f"--out {out} is not empty: choose a new directory")
    record(a.env, a.episodes, a.steps, out / "data", size=a.size, seed=a.seed)
    data = dict(data=str(out / "data"), seed=a.seed)
    if a.config is None:  # the cosine learning-rate schedule spans the whole run
        cfg = TrainConfig.from_dict({**CPU_RECIPE, "total_steps": a.train_steps, **data})
    else:
        cfg = load_train_config(a.config, **data)
    trainer = Trainer(cfg, out / "run", device=a.device)
    last = trainer.fit(a.train_steps)
    print(f"trained {trainer.model.num_parameters() / 1e6:.2f}M parameters for {trainer.step} steps, "
          f"final loss {last['loss']:.4f}")
    return play_back(out / "run", a.env, a.size, a.playback_steps, a.seed, out / "playback.mp4", a.device)


if __name__ == "__main__":
    main()
