"""Gate-row norms per layer (raw weights) of the toy fine-tunes in runs/s31/toy/, and their training losses."""
import json, statistics as st, sys
from worldsim.checkpoint import load_tensors, resolve
for run in sys.argv[1:]:
    w = load_tensors(resolve(f"runs/s31/toy/{run}"), "model")
    depth = len({k.split(".")[1] for k in w if k.startswith("layers.")})
    cells = []
    for L in range(depth):
        W = w[f"layers.{L}.ada.weight"].float(); D = W.shape[1]; S = W.shape[0] // (3 * D)
        g = sum(W[(3 * i + 2) * D:(3 * i + 3) * D].norm() ** 2 for i in range(S)) ** 0.5
        cells.append(f"{g:.2f}")
    rows = [json.loads(l) for l in open(f"runs/s31/toy/{run}/metrics.jsonl")]
    last = [r["diffusion"] for r in rows if r["step"] > 400]
    print(f"{run}: gate norms per layer {' '.join(cells)}; diffusion loss, steps 410-500: {st.mean(last):.5f}")
