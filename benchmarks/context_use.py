"""Which path brings the past to a frame: the frame-local attention, or the SSM?

    python benchmarks/context_use.py --checkpoint maze [--frames 32 --windows 64 --threads 2]

On maze windows of T frames, the last frame is noised at a level tau and the T - 1 before it are
clean context (the long-context prefix of training); the model's diffusion loss on that frame is
taken three ways:
  full     the model as it runs: attention over the last k frames and the SSM state of all T - 1;
  SSM only the attention blinded to every frame but the frame itself (`blind_attention`): the
           past reaches the frame only through the SSM state;
  no past  the frame alone, from an empty memory.
"no past - full" is what the context is worth to the frame; "no past - SSM only" is what the SSM
alone brings of it. A model whose SSM carries the previous frames scores "SSM only" near "full"; one
that leaves the past to its attention scores it near "no past" (or above it: blinding a model
never trained blind puts it off its training distribution, which is a finding too). Mazes from the
training seed range (a fixed generator seed), the same windows and noise for every condition.
"""

import argparse

import torch

from worldsim.checkpoint import load_model
from worldsim.data.generator import MazeWindowGenerator
from worldsim.diffusion import add_noise, diffusion_loss, prev_actions, to_model_space

LEVELS = (0.2, 0.5, 0.8)


def last_frame_case(frames, actions, tau: float, seed: int):
    """The sampler's case on a batch of windows: the model's inputs (noised frames, levels, the
    actions that produced each frame) with the last frame at noise level tau and the rest clean,
    and the function that scores a model output's last frame (its diffusion loss)."""
    x0 = to_model_space(frames)  # [B, T, C, H, W]
    B, T = x0.shape[:2]
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    levels = torch.zeros(B, T)
    levels[:, -1] = tau

    def last(out) -> float:
        return diffusion_loss(out.prediction[:, -1:], x0[:, -1:], eps[:, -1:], levels[:, -1:], torch.ones(B, 1)).item()

    return (add_noise(x0, levels, eps), levels, prev_actions(actions)), last


@torch.no_grad()
def last_frame_losses(model, frames, actions, tau: float, seed: int) -> dict[str, float]:
    (z, levels, produced), last = last_frame_case(frames, actions, tau, seed)
    blind = torch.ones(len(z), dtype=torch.bool)
    return {"full": last(model(z, levels, produced)),
            "ssm_only": last(model(z, levels, produced, blind_attention=blind)),
            "no_past": last(model(z[:, -1:], levels[:, -1:], produced[:, -1:]))}


def load(description: str):
    """The command line shared with the benchmarks that score these windows: (args, model, config)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--checkpoint", default="maze")
    p.add_argument("--frames", type=int, default=32, help="frames per window; the last one is scored")
    p.add_argument("--windows", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    if args.windows % args.batch:
        p.error(f"--windows {args.windows} is not a multiple of --batch {args.batch}")
    torch.set_num_threads(args.threads)
    model, config = load_model(args.checkpoint)
    return args, model, config


def collect(model, args, measure) -> dict[float, list]:
    """`measure(model, frames, actions, tau, seed)` on each batch of windows at each noise level."""
    source = MazeWindowGenerator(args.batch, args.frames, seed=args.seed, image_size=model.cfg.image_size)
    source.next_window()  # skip each episode's first window: its start shows nothing seen before
    rows = {tau: [] for tau in LEVELS}
    for i in range(args.windows // args.batch):
        b = source.next_window()
        for tau in LEVELS:
            rows[tau].append(measure(model, b.frames, b.actions, tau, args.seed + i))
    return rows


def main() -> int:
    args, model, config = load(__doc__.split("\n")[0])
    if not (model.cfg.attention and model.cfg.ssm_blocks):
        raise SystemExit(f"{args.checkpoint}: needs both attention and SSM layers (architecture {model.cfg.architecture})")
    rows = collect(model, args, last_frame_losses)
    print(f"{config['path']}: the last of {args.frames} frames, {args.windows} windows; diffusion loss (v-MSE) on it")
    print("| noise level | full | SSM only | no past | context's worth (no past - full) | SSM alone brings |")
    print("|---:|---:|---:|---:|---:|---:|")
    for tau, rs in rows.items():
        m = {k: sum(r[k] for r in rs) / len(rs) for k in rs[0]}
        worth = m["no_past"] - m["full"]
        share = (m["no_past"] - m["ssm_only"]) / worth if worth > 0 else float("nan")
        print(f"| {tau} | {m['full']:.4f} | {m['ssm_only']:.4f} | {m['no_past']:.4f} | {worth:.4f} | {share:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
