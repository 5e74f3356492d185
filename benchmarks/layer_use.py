"""Which layers of the trunk does a model use? Each layer skipped in turn, on the sampler's case.

    python benchmarks/layer_use.py --checkpoint maze [--frames 32 --windows 64 --threads 2]

On the windows of benchmarks/context_use.py (maze windows of T frames, the last noised at a level
tau, the T - 1 before it clean), for each layer of the trunk:
  update   ||layer(x) - x|| / ||x|| over the last frame's tokens: how far the layer moves the
           residual stream where the frame is drawn;
  skipped  the last frame's diffusion loss with that layer replaced by the identity, against the
           full model's.
A layer grown into a trained trunk (`init_layers` -1) starts as the identity: 0 on both. A grown
model whose new layers stay near 0 after fine-tuning has added parameters it does not use.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from context_use import collect, last_frame_case, load  # noqa: E402


@torch.no_grad()
def layer_use(model, frames, actions, tau: float, seed: int) -> dict[str, list[float]]:
    """Per layer: the last frame's relative update, and its loss with the layer skipped; "full" is
    the whole model's loss."""
    (z, levels, produced), last = last_frame_case(frames, actions, tau, seed)
    updates, skip = [], [None]

    def hook(layer, args, output):
        if skip[0] is layer:
            return args[0], output[1]
        if skip[0] is None:  # the full pass
            x_in, x_out = args[0][:, -1], output[0][:, -1]
            updates.append(((x_out - x_in).norm() / x_in.norm()).item())
        return None

    handles = [layer.register_forward_hook(hook) for layer in model.layers]
    try:
        full = last(model(z, levels, produced))
        skipped = []
        for layer in model.layers:
            skip[0] = layer
            skipped.append(last(model(z, levels, produced)))
    finally:
        for h in handles:
            h.remove()
    return {"full": full, "update": updates, "skipped": skipped}


def main() -> int:
    args, model, config = load(__doc__.split("\n")[0])
    rows = collect(model, args, layer_use)
    depth = len(model.layers)
    mean = {tau: {k: torch.tensor([r[k] for r in rs], dtype=torch.float64).mean(0) for k in rs[0]}
            for tau, rs in rows.items()}
    print(f"{config['path']}: the last of {args.frames} frames, {args.windows} windows; per layer, its update "
          "||f(x) - x|| / ||x|| and the loss with it skipped (relative to the full model's)")
    print("| layer | " + " | ".join(f"update, tau {tau} | skipped, tau {tau}" for tau in rows) + " |")
    print("|---:|" + "---:|---:|" * len(rows))
    for i in range(depth):
        cells = [f"{m['update'][i]:.3f} | {m['skipped'][i] / m['full'] - 1:+.2%}" for m in mean.values()]
        print(f"| {i} | " + " | ".join(cells) + " |")
    print("| full model's loss | " + " | ".join(f"- | {m['full']:.4f}" for m in mean.values()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
