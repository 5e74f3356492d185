"""Do the fetched LPIPS weights give LPIPS's own values? Two checks against files on PyPI.

    python benchmarks/check_lpips.py [--weights PATH] [--out benchmarks/results/lpips_check.json]

1. The linear heads equal those of the `lpips` package (0.1.4, weights/v0.1/alex.pth; read with
   torch.load(weights_only=True), which builds tensors only), rounded to the file's dtype
   (`worldsim fetch-lpips --float16` stores float16).
2. On the five reference/distorted image pairs that pyiqa ships for calibration (its wheel's
   ResultsCalibra/), LPIPS matches the values pyiqa publishes for the official implementation
   (ResultsCalibra/calibration_summary.csv in its repository, row "lpips"; 4 decimals). AlexNet
   itself is checked here: the heads alone cannot give these numbers.
Prints a table, writes JSON, exits 1 if either check fails.
"""

import argparse
import io
import sys
import zipfile

import imageio.v3 as iio
import torch
from safetensors.torch import load_file

from worldsim.evaluation.lpips import default_weights_path, load_lpips, pinned_bytes
from worldsim.evaluation.metrics import lpips
from worldsim.evaluation.provenance import provenance, write_json

LPIPS_WHEEL = ("https://files.pythonhosted.org/packages/9b/13/1df50c7925d9d2746702719f40e864f51ed66f307b20ad32392f1ad2bb87/"
               "lpips-0.1.4-py3-none-any.whl", "fd537af5828b69d2e6ffc0a397bd506dbc28ca183543617690844c08e102ec5e")
PYIQA_WHEEL = ("https://files.pythonhosted.org/packages/36/2b/6f3ab1fd66bc3f7e64c1cad31d6a9134a5a097657c3345d15080ded811fb/"
               "pyiqa-0.1.16-py3-none-any.whl", "42bbcf1c274a8b53f040a3ec5ec304a15b7725afb5a85b81050e9cc7e6d09ed4")
# LPIPS (official implementation, AlexNet v0.1) of pyiqa's calibration pairs, as pyiqa publishes it.
PUBLISHED = {"I03": 0.7237, "I04": 0.2572, "I06": 0.0508, "I08": 0.0520, "I19": 0.4253}
TOLERANCE = 1.5e-4  # both sides rounded to 4 decimals, plus float arithmetic


def heads_difference(net, stored: torch.dtype) -> float:
    wheel = zipfile.ZipFile(io.BytesIO(pinned_bytes(*LPIPS_WHEEL)))
    official = torch.load(io.BytesIO(wheel.read("lpips/weights/v0.1/alex.pth")), weights_only=True, map_location="cpu")
    return max((official[f"lin{i}.model.1.weight"].to(stored).float() - head.weight).abs().max().item()
               for i, head in enumerate(net.heads))


def calibration(net) -> list[dict]:
    wheel = zipfile.ZipFile(io.BytesIO(pinned_bytes(*PYIQA_WHEEL)))
    read = lambda name: iio.imread(wheel.read(f"ResultsCalibra/{name}"), extension=".bmp")  # noqa: E731
    rows = []
    for image, published in PUBLISHED.items():
        ours = float(lpips(read(f"dist_dir/{image}.bmp")[None], read(f"ref_dir/{image}.bmp")[None], net)[0])
        rows.append({"image": image, "published": published, "ours": ours, "difference": ours - published})
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", help="LPIPS weights (default: where `worldsim fetch-lpips` writes them)")
    p.add_argument("--out", default="benchmarks/results/lpips_check.json")
    args = p.parse_args()
    net = load_lpips(args.weights)
    if net is None:
        sys.exit("no LPIPS weights: run `worldsim fetch-lpips` first")
    stored = load_file(args.weights or default_weights_path())["heads.0.weight"].dtype
    heads = heads_difference(net, stored)
    rows = calibration(net)
    print(f"linear heads vs lpips 0.1.4's alex.pth (as {stored}): max |difference| {heads:.3g}\n")
    print("| pyiqa calibration pair | published LPIPS | ours | difference |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['image']} | {r['published']:.4f} | {r['ours']:.5f} | {r['difference']:+.5f} |")
    passed = heads == 0 and all(abs(r["difference"]) <= TOLERANCE for r in rows)
    print(f"\n{'PASS' if passed else 'FAIL'} (tolerance {TOLERANCE} on the pairs, exact on the heads)")
    write_json(args.out, {"stored_dtype": str(stored), "heads_max_abs_difference": heads, "pairs": rows,
                          "tolerance": TOLERANCE, "passed": passed}, provenance(args, "cpu"))
    print(f"wrote {args.out}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
