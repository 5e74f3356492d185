"""Trajectory shards: round trip, windows across chunks, and a ShardError naming the file for each fault."""

import json
import re

import gymnasium
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from worldsim.data.batch import collate_windows
from worldsim.data.shards import (FORMAT, VERSION, ShardError, ShardWindowDataset, ShardWriter, read_shard,
                                  scan_directory)

DISCRETE = gymnasium.spaces.Discrete(6)


def episode(T, size=16, seed=0):
    g = np.random.default_rng(seed)
    frames = g.integers(0, 256, (T, size, size, 3), dtype=np.uint8)
    return frames, g.integers(0, 6, T), g.random(T).astype(np.float32), np.arange(T) == T - 1


def write(directory, lengths, size=16, chunk_length=10):
    with ShardWriter(directory, env_id="test/Env-v0", action_space=DISCRETE, frame_size=size,
                     chunk_length=chunk_length) as writer:
        return [writer.write_episode(*episode(T, size, seed=i)) for i, T in enumerate(lengths)]


def good_tensors(T=5, size=16):
    frames, actions, rewards, terminated = episode(T, size)
    return {"frames": torch.from_numpy(frames), "actions": torch.from_numpy(actions),
            "rewards": torch.from_numpy(rewards), "terminated": torch.from_numpy(terminated)}


def good_metadata(size=16):
    return {"format": FORMAT, "version": VERSION, "env_id": "test/Env-v0", "episode_id": "0", "chunk_index": "0",
            "start_step": "0", "frame_size": str(size), "action_space": json.dumps({"type": "Discrete", "n": 6, "start": 0})}


def test_round_trip_in_chunks(tmp_path):
    (paths,) = write(tmp_path, [25])
    assert [p.name for p in paths] == [f"episode_000000_00{i}.safetensors" for i in range(3)]
    shards = [read_shard(p) for p in paths]
    assert [s.info.start_step for s in shards] == [0, 10, 20] and [s.info.length for s in shards] == [10, 10, 5]
    frames, actions, rewards, terminated = episode(25)
    assert torch.equal(torch.cat([s.frames for s in shards]), torch.from_numpy(frames))
    assert torch.equal(torch.cat([s.actions for s in shards]), torch.from_numpy(actions))
    assert torch.equal(torch.cat([s.rewards for s in shards]), torch.from_numpy(rewards))
    assert torch.equal(torch.cat([s.terminated for s in shards]), torch.from_numpy(terminated))
    assert shards[0].info.action_space == {"type": "Discrete", "n": 6, "start": 0}
    index = json.loads((tmp_path / "dataset.json").read_text())
    assert index["episodes"] == 1 and index["steps"] == 25 and len(index["files"]) == 3


def test_writer_appends_episodes_and_stores_box_actions(tmp_path):
    write(tmp_path, [5])
    write(tmp_path, [5])
    assert sorted(i.episode_id for i in scan_directory(tmp_path)) == [0, 1]
    box = gymnasium.spaces.Box(-2.0, 2.0, (2,), dtype=np.float32)
    frames, _, rewards, terminated = episode(4)
    actions = np.random.default_rng(0).uniform(-2, 2, (4, 2)).astype(np.float32)
    with ShardWriter(tmp_path / "box", env_id="Pendulum-v1", action_space=box, frame_size=16) as writer:
        (path,) = writer.write_episode(frames, actions, rewards, terminated)
    shard = read_shard(path)
    assert shard.actions.dtype == torch.float32 and torch.equal(shard.actions, torch.from_numpy(actions))
    assert shard.info.action_space["type"] == "Box" and shard.info.action_space["shape"] == [2]


def test_window_dataset_reads_windows_across_chunks(tmp_path):
    write(tmp_path, [25, 7, 12])  # the 7-step episode is shorter than the window: skipped
    data = ShardWindowDataset(tmp_path, window=8)
    assert len(data) == (25 - 8 + 1) + (12 - 8 + 1)
    frames, actions, _, _ = episode(25)
    sample = data[6]  # steps 6..13 of episode 0: across the chunk boundary at 10
    assert torch.equal(sample["frames"], torch.from_numpy(frames[6:14]))
    assert torch.equal(sample["actions"], torch.from_numpy(actions[6:14]))
    assert sample["first"].item() is False and data[0]["first"].item() is True
    assert data[18]["first"].item() is True  # the first window of the 12-step episode
    batch = collate_windows([data[0], data[18], data[22]])
    assert batch.frames.shape == (3, 8, 16, 16, 3) and batch.first.tolist() == [True, True, False]
    assert batch.terminated.dtype == torch.bool and batch.terminated[2, -1]  # the episode's last step
    with pytest.raises(IndexError):
        data[len(data)]
    with pytest.raises(ShardError, match="no episode has >= 30 steps"):
        ShardWindowDataset(tmp_path, window=30)


def corrupt_cases():
    def missing_tensor(t, m):
        del t["rewards"]

    def wrong_dtype(t, m):
        t["frames"] = t["frames"].float()

    def wrong_shape(t, m):
        t["frames"] = t["frames"][:, :8, :8].contiguous()

    def short_actions(t, m):
        t["actions"] = t["actions"][:-1]

    def bad_action_dtype(t, m):
        t["actions"] = t["actions"].float()

    def not_a_shard(t, m):
        m["format"] = "something-else"

    def bad_metadata(t, m):
        m["action_space"] = "{not json"

    return {
        "missing tensor(s) rewards": missing_tensor,
        "tensor frames has dtype F32, expected U8": wrong_dtype,
        "tensor frames has shape [5, 8, 8, 3], expected [T, 16, 16, 3]": wrong_shape,
        "mismatched lengths: frames 5, actions 4": short_actions,
        "tensor actions has dtype F32, expected I64": bad_action_dtype,
        "not a worldsim trajectory shard": not_a_shard,
        "bad metadata": bad_metadata,
    }


@pytest.mark.parametrize("message", list(corrupt_cases()))
def test_each_inconsistency_raises_shard_error_naming_the_file(tmp_path, message):
    tensors, metadata = good_tensors(), good_metadata()
    corrupt_cases()[message](tensors, metadata)
    path = tmp_path / "episode_000000_000.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(ShardError, match=re.escape(f"{path}: {message}")):
        read_shard(path)


def test_missing_truncated_and_garbage_files_raise_shard_error(tmp_path):
    (path,) = write(tmp_path, [5])[0]
    with pytest.raises(ShardError, match="nope.safetensors: no such shard file"):
        read_shard(tmp_path / "nope.safetensors")
    data = path.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[:-100])
    with pytest.raises(ShardError, match="truncated.safetensors: unreadable or truncated"):
        read_shard(truncated)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00not a safetensors file at all" * 3)
    with pytest.raises(ShardError, match="garbage.safetensors: unreadable or truncated"):
        read_shard(garbage)


def test_directory_level_checks_name_the_odd_file(tmp_path):
    write(tmp_path, [5, 5], size=16)
    with pytest.raises(ShardError, match="holds 16x16 frames .* cannot append 8x8 frames"):
        ShardWriter(tmp_path, env_id="test/Env-v0", action_space=DISCRETE, frame_size=8)
    ((small,),) = write(tmp_path / "small", [5], size=8)
    odd = small.rename(tmp_path / "episode_000007_000.safetensors")  # copied in by hand
    with pytest.raises(ShardError, match=f"{odd.name}: frame size 8 differs from the rest of the directory \\(16\\)"):
        ShardWindowDataset(tmp_path, window=2)
    with pytest.raises(ShardError, match="differs from the rest of the dataset"):
        read_shard(odd, frame_size=16)

    gap = tmp_path / "gap"
    (paths,) = write(gap, [25])
    paths[1].unlink()
    with pytest.raises(ShardError, match=f"{paths[2].name}: chunk 2 of episode 0 starts at step 20, .* end at step 10"):
        scan_directory(gap)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ShardError, match="empty: no .safetensors shards"):
        scan_directory(tmp_path / "empty")
    with pytest.raises(ShardError, match="missing: no such shard directory"):
        scan_directory(tmp_path / "missing")
