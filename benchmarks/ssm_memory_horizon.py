"""How far back can the SSM remember? Each BlockSSM head's memory horizon, in frames, on real frames.

    python benchmarks/ssm_memory_horizon.py --checkpoint maze --out benchmarks/results/ssm_memory_horizon.json

Mamba-2's state decays by exp(-dt * |A|) per scan step, and dt depends on the input. A block of
(b_h, b_w) tokens takes b_h * b_w scan steps per frame, so a head's state shrinks per frame by
exp(-sum of dt * |A| over the block's tokens of that frame). The script runs the maze's exploration
policy in held-out mazes, feeds the true frames (clean, as committed context) through the model in
one parallel pass, reads every SSM layer's dt from its input projection, and reports per head the
horizon tau = 1 / (mean log-decay per frame): the frames it takes the state to fall to 1/e. A
head with tau = 5 keeps exp(-20) of what it saw 100 frames ago: for retrieval over hundreds of
frames only heads with tau in the hundreds count. The same model at its initialisation (seeded,
the config's own init) is measured beside it, to tell what training changed.
"""

import argparse
import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from worldsim.checkpoint import load_model, resolve
from worldsim.diffusion import prev_actions, to_model_space
from worldsim.evaluation.provenance import provenance, write_json
from worldsim.maze.core import MazeWorld
from worldsim.maze.episodes import eval_seed
from worldsim.maze.policies import ExplorePolicy
from worldsim.model import LSSVWM
from worldsim.model.block_ssm import BlockSSM

THRESHOLDS = (10, 50, 100, 400)  # frames


def head_horizons(model: LSSVWM, frames: torch.Tensor, actions: torch.Tensor) -> list[dict]:
    """Per SSM layer: tau [heads] in frames, from dt on these frames (clean, one parallel pass)."""
    captured = {}
    hooks = []
    for i, layer in enumerate(model.layers):
        if layer.ssm is not None:
            ssm: BlockSSM = layer.ssm
            hooks.append(ssm.in_proj.register_forward_hook(
                lambda mod, inp, out, i=i, ssm=ssm: captured.__setitem__(i, out[..., -ssm.nheads:].detach())))
    try:
        with torch.no_grad():
            model(frames, torch.zeros(frames.shape[:2]), actions)
    finally:
        for h in hooks:
            h.remove()
    B, T = frames.shape[:2]
    layers = []
    for i, raw in sorted(captured.items()):
        ssm = model.layers[i].ssm
        bh, bw = ssm.block
        dt = F.softplus(raw.float() + ssm.dt_bias.float())  # [(B blocks), T*bh*bw, heads]
        log_decay = dt * torch.exp(ssm.A_log.float())  # per scan step
        per_frame = log_decay.view(log_decay.shape[0], T, bh * bw, -1).sum(2)  # [(B blocks), T, heads]
        tau = 1.0 / per_frame.mean(dim=(0, 1))
        layers.append({"layer": i, "block": [bh, bw], "scan_steps_per_frame": bh * bw,
                       "tau_frames": tau.tolist()})
    return layers


def summary(layers: list[dict]) -> dict:
    taus = np.concatenate([l["tau_frames"] for l in layers])
    return {"heads": int(taus.size), "tau_median": float(np.median(taus)), "tau_max": float(taus.max()),
            **{f"heads_tau_ge_{t}": int((taus >= t).sum()) for t in THRESHOLDS}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="maze")
    p.add_argument("--envs", type=int, default=4, help="held-out mazes")
    p.add_argument("--frames", type=int, default=64, help="frames per maze")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialised model measured beside")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/ssm_memory_horizon.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    trained, config = load_model(args.checkpoint)
    models = {"trained": trained}
    for init in ("step", "frame"):
        torch.manual_seed(args.seed)
        models[f"init {init}"] = LSSVWM(dataclasses.replace(trained.cfg, ssm_dt_init=init))
    maze = config["source"]["env_kwargs"]
    world = MazeWorld(args.envs, maze_size=maze["maze_size"], image_size=maze["image_size"])
    obs, acts = [world.reset(seeds=[eval_seed(i) for i in range(args.envs)])], []
    policy = ExplorePolicy(world)
    for _ in range(args.frames):
        acts.append(policy.act())
        obs.append(world.step(acts[-1])[0])
    frames = to_model_space(torch.stack(obs[:-1], 1))  # [B, T, 3, H, W]
    actions = prev_actions(torch.stack(acts, 1))  # the action that produced each frame

    results = {name: head_horizons(m.float().eval(), frames, actions) for name, m in models.items()}
    print(f"SSM memory horizon tau (frames for the state to fall to 1/e), {args.envs} mazes x {args.frames} frames")
    print("| layer | block | scan steps/frame | heads | " + " | ".join(f"{n}: median tau | max" for n in results) + " |")
    print("|---|---|---:|---:|" + "---:|---:|" * len(results))
    for per_model in zip(*results.values()):
        cells = [f"{np.median(l['tau_frames']):.2f} | {max(l['tau_frames']):.1f}" for l in per_model]
        l = per_model[0]
        print(f"| {l['layer']} | {l['block'][0]}x{l['block'][1]} | {l['scan_steps_per_frame']} | "
              f"{len(l['tau_frames'])} | " + " | ".join(cells) + " |")
    sums = {name: summary(layers) for name, layers in results.items()}
    for name, s in sums.items():
        print(f"{name}: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in s.items()))
    write_json(args.out, {"envs": args.envs, "frames": args.frames, "summary": sums, "layers": results},
               provenance(args, torch.device("cpu"), checkpoints={"trained": resolve(args.checkpoint)}))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
