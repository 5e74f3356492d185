"""Checkpoints: safetensors shards (< 16 MiB each) plus JSON. Nothing is ever unpickled.

A checkpoint is a directory:

    config.json                 {"format": "worldsim-checkpoint", "model": {...ModelConfig...},
                                 "source": {env id, kwargs, action space}, "sampling": {...}, ...}
    model.index.json            tensor name -> shard file, for each tensor group
    model-00001-of-00002.safetensors ...
    ema-*.safetensors, optimizer-*.safetensors, trainer_state.json   (training checkpoints)

A training run directory holds versioned checkpoints `step-000120/` and a `latest` file naming the
newest. A checkpoint is written to a temporary directory, fsynced, renamed into place, and only
then does `latest` move (os.replace), so a run killed at any moment leaves a loadable checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from worldsim.config import ModelConfig

FORMAT = "worldsim-checkpoint"
MAX_SHARD_BYTES = 15 * 2**20  # each file stays below 16 MiB
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
DEFAULT_CHECKPOINT = "maze"


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete or corrupt; the message names the file."""


def save_tensors(tensors: dict[str, Tensor], directory: Path, group: str) -> None:
    """Write `tensors` as `{group}-0000k-of-0000n.safetensors` shards plus `{group}.index.json`."""
    shards, current, size = [], {}, 0
    for name, t in tensors.items():
        nbytes = t.numel() * t.element_size()
        if current and size + nbytes > MAX_SHARD_BYTES:
            shards.append(current)
            current, size = {}, 0
        if nbytes > MAX_SHARD_BYTES:
            raise ValueError(f"tensor {name!r} alone is {nbytes} bytes, above the {MAX_SHARD_BYTES}-byte shard limit")
        current[name] = t.detach().contiguous().cpu()
        size += nbytes
    shards.append(current)
    weight_map = {}
    for k, shard in enumerate(shards, 1):
        fname = f"{group}-{k:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(directory / fname))
        weight_map.update({name: fname for name in shard})
    (directory / f"{group}.index.json").write_text(json.dumps({"weight_map": weight_map}, indent=1))


def load_tensors(directory: Path, group: str, device="cpu") -> dict[str, Tensor]:
    index_path = Path(directory) / f"{group}.index.json"
    index = read_json(index_path)
    if not isinstance(index.get("weight_map"), dict):
        raise CheckpointError(f"{index_path}: no 'weight_map' in the index")
    out = {}
    for fname in sorted(set(index["weight_map"].values())):
        path = Path(directory) / fname
        if not path.is_file():
            raise CheckpointError(f"{path}: shard listed in {index_path.name} is missing")
        try:
            out.update(load_file(str(path), device=str(device)))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    missing = set(index["weight_map"]) - set(out)
    if missing:
        raise CheckpointError(f"{directory}: tensors listed in {index_path.name} but absent from the shards: {sorted(missing)[:5]}")
    return out


def read_json(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def write_checkpoint(run_dir: Path, name: str, config: dict, groups: dict[str, dict[str, Tensor]],
                     json_files: dict[str, dict] | None = None, keep: int = 2) -> Path:
    """Atomically write checkpoint `run_dir/name` and point `run_dir/latest` at it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    (tmp / "config.json").write_text(json.dumps({"format": FORMAT, **config}, indent=2))
    for group, tensors in groups.items():
        save_tensors(tensors, tmp, group)
    for fname, data in (json_files or {}).items():
        (tmp / fname).write_text(json.dumps(data, indent=1))
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    final = run_dir / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    latest_tmp = run_dir / f".latest.tmp-{os.getpid()}"
    latest_tmp.write_text(name + "\n")
    os.replace(latest_tmp, run_dir / "latest")
    versions = sorted(p for p in run_dir.glob("step-*") if p.is_dir() and p.name != name)
    for old in versions[: max(0, len(versions) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_model(directory: str | os.PathLike, model, source: dict | None = None, sampling: dict | None = None) -> Path:
    """Write an inference checkpoint of `model` (config.json + model shards) into `directory`.

    `source` describes the ground-truth env the model simulates (env_id, env_kwargs, action_space,
    render_fps) and `sampling` the default sampler settings (steps, context_noise); the envs read
    both. config.json is written last, so a directory interrupted mid-write is not a checkpoint.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_tensors(model.state_dict(), directory, "model")
    config = {"format": FORMAT, "model": json.loads(model.cfg.to_json())}
    if source is not None:
        config["source"] = source
    if sampling is not None:
        config["sampling"] = sampling
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    return directory


def resolve(path_or_name: str | os.PathLike | None = None) -> Path:
    """A checkpoint directory from a path (checkpoint or run directory) or a shipped name."""
    path_or_name = DEFAULT_CHECKPOINT if path_or_name is None else path_or_name
    path = Path(path_or_name)
    if not path.exists():
        shipped = Path(os.environ.get("WORLDSIM_CHECKPOINTS", SHIPPED_DIR)) / str(path_or_name)
        if shipped.exists():
            path = shipped
        else:
            raise CheckpointError(f"checkpoint {str(path_or_name)!r} not found: not a path, nor a shipped "
                                  f"checkpoint in {shipped.parent} (shipped: {shipped_names()})")
    if (path / "latest").is_file():
        path = path / (path / "latest").read_text().strip()
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: not a worldsim checkpoint (no config.json)")
    return path


def shipped_names() -> list[str]:
    root = Path(os.environ.get("WORLDSIM_CHECKPOINTS", SHIPPED_DIR))
    return sorted(p.name for p in root.iterdir() if (p / "config.json").is_file()) if root.is_dir() else []


def load_config(path: Path) -> dict:
    config = read_json(Path(path) / "config.json")
    if config.get("format") != FORMAT or "model" not in config:
        raise CheckpointError(f"{path}/config.json: not a {FORMAT} config (format={config.get('format')!r})")
    return config


def load_model(path_or_name=None, device="cpu", weights: str = "auto"):
    """Load (model, config dict) from a checkpoint. weights: "ema", "model" or "auto" (EMA if present)."""
    from worldsim.model import LSSVWM

    path = resolve(path_or_name)
    config = load_config(path)
    try:
        cfg = ModelConfig.from_dict(config["model"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}/config.json: bad model config ({e})") from None
    if weights == "auto":
        weights = "ema" if (path / "ema.index.json").is_file() else "model"
    state = load_tensors(path, weights, device)
    model = LSSVWM(cfg).to(device)
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    reshaped = [f"{k} {tuple(v.shape)}, the config's {tuple(expected[k].shape)}" for k, v in state.items()
                if k in expected and v.shape != expected[k].shape]
    if missing or unexpected or reshaped:
        raise CheckpointError(f"{path}: weights do not match the config (missing {missing[:3]}, unexpected "
                              f"{unexpected[:3]}, other shapes {reshaped[:3]})")
    model.load_state_dict(state)
    model.eval()
    return model, {**config, "path": str(path)}
