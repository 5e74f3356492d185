"""Trajectory shards: recorded episodes on disk as safetensors files (never pickle).

Format, version 1. A dataset is a directory of files `episode_{episode:06d}_{chunk:03d}.safetensors`,
one per chunk of at most `chunk_length` consecutive steps of one episode, each holding:

    frames      uint8    [T, H, W, 3]   H == W == frame_size
    actions     int64    [T]            Discrete action spaces (the action value itself)
                float32  [T, A]         Box action spaces, flattened to A numbers
    rewards     float32  [T]
    terminated  bool     [T]            (uint8 is accepted on read)

and in the safetensors header metadata (str -> str):

    format       "worldsim-trajectory"
    version      "1"
    env_id       the Gymnasium id it was recorded from
    episode_id   integer; chunk_index: integer, 0 for the first chunk of an episode
    start_step   episode step of the chunk's first frame (chunks of an episode tile it)
    frame_size   H (= W)
    action_space JSON: {"type": "Discrete", "n": 6, "start": 0} or
                 {"type": "Box", "shape": [...], "low": [...], "high": [...]}

Alignment as everywhere in worldsim: `actions[t]` is taken after observing `frames[t]`;
`rewards[t]`, `terminated[t]` are what that step returned. An episode's final observation (after
its last action) is not stored. `dataset.json`, written by `ShardWriter.close()`, indexes the
directory for people and tools; readers trust the shard headers, not the index.

Every problem a reader finds raises `ShardError` (a ValueError) whose message starts with the
offending file and says what is wrong.
"""

import bisect
from collections import Counter
from dataclasses import dataclass
import json
import math
import os
from pathlib import Path
import re

from gymnasium import spaces
import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
import torch
from torch.utils.data import Dataset

FORMAT = "worldsim-trajectory"
VERSION = "1"
TENSORS = ("frames", "actions", "rewards", "terminated")
INDEX_FILE = "dataset.json"
_NAME = re.compile(r"episode_(\d+)_(\d+)\.safetensors")


class ShardError(ValueError):
    """A shard file (or a directory of them) is missing, corrupt or inconsistent."""


def describe_action_space(space) -> dict:
    """JSON-able description of a Discrete or Box action space (what shards store)."""
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape),
                "low": space.low.astype(float).ravel().tolist(), "high": space.high.astype(float).ravel().tolist()}
    raise ValueError(f"shards store Discrete or Box action spaces, not {space}")


def _action_spec(description: dict) -> tuple[str, tuple]:
    """(safetensors dtype, shape after T) of the actions tensor for an action-space description."""
    if description.get("type") == "Discrete":
        return "I64", ()
    if description.get("type") == "Box":
        return "F32", (math.prod(description["shape"]),)
    raise ValueError(f"unknown action space type {description.get('type')!r}")


@dataclass
class ShardInfo:
    """What a shard's header says, checked: no tensor data is read."""

    path: Path
    env_id: str
    episode_id: int
    chunk_index: int
    start_step: int
    length: int  # T
    frame_size: int
    action_space: dict


@dataclass
class Shard:
    info: ShardInfo
    frames: torch.Tensor  # uint8 [T, H, W, 3]
    actions: torch.Tensor  # int64 [T] or float32 [T, A]
    rewards: torch.Tensor  # float32 [T]
    terminated: torch.Tensor  # bool [T]


def inspect_shard(path, frame_size: int | None = None) -> ShardInfo:
    """Open a shard's header and check metadata, tensor names, dtypes and shapes.

    frame_size: if given, the frames must be this size (e.g. the rest of the dataset's).
    """
    path = Path(path)
    if not path.is_file():
        raise ShardError(f"{path}: no such shard file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            specs = {name: (f.get_slice(name).get_dtype(), tuple(f.get_slice(name).get_shape())) for name in f.keys()}
    except (SafetensorError, OSError) as e:
        raise ShardError(f"{path}: unreadable or truncated safetensors file ({e})") from None

    def fail(what):
        raise ShardError(f"{path}: {what}")

    if meta.get("format") != FORMAT:
        fail(f"not a worldsim trajectory shard (metadata format={meta.get('format')!r}, expected {FORMAT!r})")
    if meta.get("version") != VERSION:
        fail(f"unsupported shard version {meta.get('version')!r} (this reader knows {VERSION!r})")
    missing_meta = [k for k in ("env_id", "episode_id", "chunk_index", "start_step", "frame_size", "action_space")
                    if k not in meta]
    if missing_meta:
        fail(f"metadata lacks {', '.join(missing_meta)}")
    try:
        numbers = {k: int(meta[k]) for k in ("episode_id", "chunk_index", "start_step", "frame_size")}
        action_space = json.loads(meta["action_space"])
        action_dtype, action_shape = _action_spec(action_space)
    except (ValueError, KeyError, TypeError) as e:
        fail(f"bad metadata ({e})")
    missing = [name for name in TENSORS if name not in specs]
    if missing:
        fail(f"missing tensor(s) {', '.join(missing)}")

    size = numbers["frame_size"]
    expected = {
        "frames": ({"U8"}, ("T", size, size, 3)),
        "actions": ({action_dtype}, ("T", *action_shape)),
        "rewards": ({"F32"}, ("T",)),
        "terminated": ({"BOOL", "U8"}, ("T",)),
    }
    for name, (dtypes, shape) in expected.items():
        dtype, actual = specs[name]
        if dtype not in dtypes:
            fail(f"tensor {name} has dtype {dtype}, expected {' or '.join(sorted(dtypes))}")
        if len(actual) != len(shape) or any(e != "T" and a != e for a, e in zip(actual, shape)):
            fail(f"tensor {name} has shape {list(actual)}, expected [{', '.join(map(str, shape))}]")
    lengths = {name: specs[name][1][0] for name in TENSORS}
    if len(set(lengths.values())) != 1:
        fail("mismatched lengths: " + ", ".join(f"{n} {t}" for n, t in lengths.items()))
    if lengths["frames"] == 0:
        fail("empty shard (0 steps)")
    if frame_size is not None and size != frame_size:
        fail(f"frame size {size} differs from the rest of the dataset ({frame_size})")
    return ShardInfo(path, meta["env_id"], numbers["episode_id"], numbers["chunk_index"], numbers["start_step"],
                     lengths["frames"], size, action_space)


def read_shard(path, frame_size: int | None = None) -> Shard:
    """Load and validate one shard (see `inspect_shard` for the checks)."""
    info = inspect_shard(path, frame_size)
    try:
        with safe_open(str(info.path), framework="pt") as f:
            tensors = {name: f.get_tensor(name) for name in TENSORS}
    except (SafetensorError, OSError) as e:
        raise ShardError(f"{info.path}: unreadable tensor data ({e})") from None
    tensors["terminated"] = tensors["terminated"].bool()
    return Shard(info, **tensors)


def scan_directory(directory) -> list[ShardInfo]:
    """Check every shard header in `directory` and their consistency: one frame size and one action
    space (the majority's; the odd file is named), and each episode's chunks tiling it."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ShardError(f"{directory}: no such shard directory")
    paths = sorted(directory.glob("*.safetensors"))
    if not paths:
        raise ShardError(f"{directory}: no .safetensors shards")
    infos = [inspect_shard(p) for p in paths]
    for key in ("frame_size", "action_space"):
        values = Counter(json.dumps(getattr(i, key)) for i in infos)
        usual = values.most_common(1)[0][0]
        for info in infos:
            if json.dumps(getattr(info, key)) != usual:
                what = key.replace("_", " ")
                raise ShardError(f"{info.path}: {what} {getattr(info, key)} differs from the rest of "
                                 f"the directory ({json.loads(usual)})")
    for chunks in _episodes(infos).values():
        step = 0
        for info in chunks:
            if info.start_step != step:
                raise ShardError(f"{info.path}: chunk {info.chunk_index} of episode {info.episode_id} starts at "
                                 f"step {info.start_step}, but the chunks before it end at step {step} (missing chunk?)")
            step += info.length
    return infos


def _episodes(infos: list[ShardInfo]) -> dict[int, list[ShardInfo]]:
    episodes = {}
    for info in infos:
        episodes.setdefault(info.episode_id, []).append(info)
    return {e: sorted(chunks, key=lambda i: i.chunk_index) for e, chunks in sorted(episodes.items())}


class ShardWriter:
    """Writes episodes into `directory` as shards; appends after shards already there (which must
    have the same frame size and action space).

    with ShardWriter(out, env_id="CartPole-v1", action_space=env.action_space, frame_size=64) as w:
        w.write_episode(frames, actions, rewards, terminated)   # numpy or torch, aligned as above
    """

    def __init__(self, directory, *, env_id: str, action_space, frame_size: int, chunk_length: int = 1000):
        if chunk_length < 1:
            raise ValueError(f"chunk_length must be >= 1, got {chunk_length}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.env_id, self.frame_size, self.chunk_length = env_id, frame_size, chunk_length
        self.action_space = describe_action_space(action_space)
        self.action_dtype = torch.int64 if self.action_space["type"] == "Discrete" else torch.float32
        self.action_shape = _action_spec(self.action_space)[1]
        existing = [int(m.group(1)) for p in self.directory.iterdir() if (m := _NAME.fullmatch(p.name))]
        self.next_episode = max(existing, default=-1) + 1
        if existing:  # appending: the new episodes must match the ones there
            there = scan_directory(self.directory)[0]
            if (there.frame_size, there.action_space) != (frame_size, self.action_space):
                raise ShardError(f"{self.directory}: holds {there.frame_size}x{there.frame_size} frames with actions "
                                 f"{there.action_space}; cannot append {frame_size}x{frame_size} frames with actions "
                                 f"{self.action_space}")

    def write_episode(self, frames, actions, rewards, terminated) -> list[Path]:
        """Write one episode of T steps (frames uint8 [T, S, S, 3], actions [T] or [T, A], rewards [T],
        terminated [T]); returns the files written."""
        frames = torch.as_tensor(np.asarray(frames))
        T, S = len(frames), self.frame_size
        if frames.dtype != torch.uint8 or tuple(frames.shape) != (T, S, S, 3) or T == 0:
            raise ValueError(f"frames must be uint8 [T, {S}, {S}, 3] with T >= 1, got {frames.dtype} {tuple(frames.shape)}")
        tensors = {
            "frames": frames,
            "actions": torch.as_tensor(np.asarray(actions)).to(self.action_dtype).reshape(T, *self.action_shape),
            "rewards": torch.as_tensor(np.asarray(rewards)).to(torch.float32).reshape(T),
            "terminated": torch.as_tensor(np.asarray(terminated)).to(torch.bool).reshape(T),
        }
        episode, paths = self.next_episode, []
        self.next_episode += 1
        for chunk, start in enumerate(range(0, T, self.chunk_length)):
            path = self.directory / f"episode_{episode:06d}_{chunk:03d}.safetensors"
            metadata = {"format": FORMAT, "version": VERSION, "env_id": self.env_id, "episode_id": str(episode),
                        "chunk_index": str(chunk), "start_step": str(start), "frame_size": str(S),
                        "action_space": json.dumps(self.action_space)}
            part = {k: v[start:start + self.chunk_length].contiguous() for k, v in tensors.items()}
            temporary = path.with_suffix(".tmp")  # a crash never leaves a half-written shard
            save_file(part, str(temporary), metadata=metadata)
            os.replace(temporary, path)
            paths.append(path)
        return paths

    def close(self) -> Path:
        """Write the `dataset.json` index of every shard in the directory."""
        infos = scan_directory(self.directory)
        index = {
            "format": FORMAT, "version": VERSION, "env_id": self.env_id, "frame_size": self.frame_size,
            "action_space": self.action_space, "episodes": len(_episodes(infos)),
            "steps": sum(i.length for i in infos),
            "files": [{"file": i.path.name, "episode_id": i.episode_id, "chunk_index": i.chunk_index,
                       "start_step": i.start_step, "length": i.length} for i in infos],
        }
        path = self.directory / INDEX_FILE
        path.write_text(json.dumps(index, indent=1) + "\n")
        return path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()


class ShardWindowDataset(Dataset):
    """Every window of `window` consecutive steps (every `stride`-th start) of every episode in a
    shard directory, read lazily. Episodes shorter than the window are skipped.

    Item: dict with the fields of TrajectoryBatch for one window: frames uint8 [T, H, W, 3],
    actions int64 [T] or float32 [T, A], rewards float32 [T], terminated bool [T], first bool []
    (the window starts at step 0 of its episode). Discrete actions are indexed from 0 (the space's
    `start` subtracted), as models take them; the files keep the env's own action values. Batch with `worldsim.data.batch.collate_windows`.
    Attributes: `episodes` (the episodes used, each its list of ShardInfo chunks in order) and
    `frame_size`.
    """

    def __init__(self, directory, window: int, stride: int = 1):
        if window < 1 or stride < 1:
            raise ValueError(f"window and stride must be >= 1, got window={window}, stride={stride}")
        self.window, self.stride = window, stride
        episodes = _episodes(scan_directory(directory))
        lengths = {e: sum(c.length for c in chunks) for e, chunks in episodes.items()}
        self.episodes = [chunks for e, chunks in episodes.items() if lengths[e] >= window]
        if not self.episodes:
            raise ShardError(f"{directory}: no episode has >= {window} steps (longest: {max(lengths.values())})")
        self.frame_size = self.episodes[0][0].frame_size
        counts = [(sum(c.length for c in chunks) - window) // stride + 1 for chunks in self.episodes]
        self.offsets = np.cumsum([0] + counts).tolist()  # first window index of each episode

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range [0, {len(self)})")
        e = bisect.bisect_right(self.offsets, index) - 1
        start = (index - self.offsets[e]) * self.stride
        end = start + self.window
        parts = {name: [] for name in TENSORS}
        for chunk in self.episodes[e]:
            lo, hi = max(start, chunk.start_step), min(end, chunk.start_step + chunk.length)
            if lo >= hi:
                continue
            with safe_open(str(chunk.path), framework="pt") as f:
                for name in TENSORS:
                    parts[name].append(f.get_slice(name)[lo - chunk.start_step:hi - chunk.start_step])
        sample = {name: torch.cat(p) for name, p in parts.items()}
        sample["terminated"] = sample["terminated"].bool()
        sample["first"] = torch.tensor(start == 0)
        space = self.episodes[e][0].action_space
        if space["type"] == "Discrete":
            sample["actions"] = sample["actions"] - int(space.get("start", 0))
        return sample
