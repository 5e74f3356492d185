"""Evaluation episodes: seeds disjoint from training, ground truth = the true maze's replay."""

import math

import pytest
import torch

from worldsim.evaluation.tasks import context_border_colour
from worldsim.maze.core import FORWARD, FORWARD_LEFT, FORWARD_RIGHT, NOOP, TURN_LEFT, TURN_RIGHT, MazeWorld
from worldsim.maze.episodes import (EVAL_SEED_OFFSET, TRAIN_SEED_LIMIT, cue_recall_episode, cue_recall_trajectory,
                                    eval_seed, reasoning_episode, retrieval_episode, reverse_actions)


def replay(episode, image_size):
    """Frames a fresh maze renders for the episode's actions: uint8 [T, H, W, 3]."""
    world = MazeWorld(1, maze_size=episode.maze_size, image_size=image_size)
    frames = [world.reset(seeds=[episode.seed])[0]]
    for action in episode.actions[:-1]:
        frames.append(world.step(action.view(1))[0][0])
    return torch.stack(frames)


def test_evaluation_seeds_are_disjoint_from_training_seeds():
    assert TRAIN_SEED_LIMIT <= EVAL_SEED_OFFSET == eval_seed(0)
    assert eval_seed(5) == 2**31 + 5 and eval_seed(2**31 - 1) == 2**32 - 1
    with pytest.raises(ValueError):
        eval_seed(-1)
    with pytest.raises(ValueError):
        eval_seed(2**31)


def test_reverse_actions_reverses_and_mirrors():
    actions = torch.tensor([FORWARD, TURN_LEFT, FORWARD_LEFT, TURN_RIGHT, FORWARD_RIGHT, NOOP])
    assert reverse_actions(actions).tolist() == [NOOP, FORWARD_LEFT, TURN_LEFT, FORWARD_RIGHT, TURN_RIGHT, FORWARD]


def test_retrieval_walks_back_along_the_context_path():
    N = 60
    e = retrieval_episode(0, context_length=N, image_size=32)
    turn = 18  # 180 degrees at 10 degrees a step
    assert e.frames.shape == (2 * N + turn + 1, 32, 32, 3) and e.actions.shape == (2 * N + turn + 1,)
    assert e.context_length == N and e.seed == eval_seed(0) and e.kind == "retrieval"
    assert (e.actions[N:N + turn] == TURN_LEFT).all()
    assert torch.equal(e.actions[N + turn:2 * N + turn], reverse_actions(e.actions[:N]))
    assert torch.equal(e.frames, replay(e, 32))  # the ground truth is the true maze's rendering
    # Return step j stands where context frame N - j stood, facing the other way.
    back = e.poses[N + turn:].flip(0)  # [N + 1, 3]
    assert torch.allclose(back[:, :2], e.poses[:N + 1, :2], atol=1e-4)
    turned = (back[:, 2] - e.poses[:N + 1, 2]) % (2 * math.pi)
    assert torch.allclose(turned, torch.full_like(turned, math.pi), atol=1e-4)
    assert e.poses[:N, :2].std(0).sum() > 0.2  # the context does travel


def test_reasoning_continues_with_random_actions():
    e = reasoning_episode(1, context_length=40, generate_length=20, image_size=32)
    assert e.frames.shape[0] == e.actions.shape[0] == 60 and e.context_length == 40
    assert torch.equal(e.frames, replay(e, 32))
    assert len(set(e.actions[40:-1].tolist())) > 1


def test_cue_recall_picks_a_cue_the_frame_border_does_not_show():
    # the border shows the target ball; a touched target moves on to another ball, which can be the
    # cue. Episode 7 tries ball 1 first, which ends as the target, then ball 2.
    e = cue_recall_episode(7, away_length=100, image_size=32)
    first_try = cue_recall_episode(7, away_length=100, image_size=32, cue=1)
    assert (first_try.cue_object, context_border_colour(first_try)) == (1, 1)
    assert (e.cue_object, context_border_colour(e)) == (2, 0)
    # in episode 3 every ball ends as the target: the last try is kept, and scoring leaves it out
    kept = cue_recall_episode(3, away_length=100, image_size=32)
    assert context_border_colour(kept) == kept.cue_object


def test_cue_recall_keeps_the_cue_out_of_view_and_ends_the_context_as_it_comes_back():
    e = cue_recall_episode(2, away_length=500, look_length=8, image_size=32)
    T = e.frames.shape[0]
    assert e.cue_mask.shape == (T, 32, 32) and e.cue_colour is not None and e.protocol == 2
    seen = e.cue_mask.flatten(1).any(1)  # [T]
    last_seen = int(seen[:e.context_length].nonzero()[-1])
    assert last_seen < e.context_length - 500  # seen, then out of view for >= 500 frames ...
    assert seen[e.context_length] and seen[-8:].all()  # ... back in view as the model takes over
    assert torch.equal(e.frames, replay(e, 32))
    cue_pixels = e.frames[-1][e.cue_mask[-1]].float()  # [P, 3], the cue ball shaded
    colour = torch.tensor(e.cue_colour, dtype=torch.float32)
    cosine = torch.nn.functional.cosine_similarity(cue_pixels, colour.expand_as(cue_pixels), dim=1)
    assert cosine.min() > 0.99


def test_cue_recall_protocol_1_rebuilds_the_episodes_scored_before_protocol_2():
    # benchmarks/results/stage5_w512/recall.json (2026-12-03): episode 0, cue 0, 581 context frames + 114
    e = cue_recall_episode(0, cue=0, protocol=1)
    assert (e.context_length, e.frames.shape[0] - e.context_length, e.protocol) == (581, 114, 1)
    with pytest.raises(ValueError, match="protocol must be one of"):
        cue_recall_episode(0, protocol=3)


def test_cue_recall_refuses_a_maze_too_small_to_hide_the_cue():
    # in this 5x5 maze every free cell without a ball sees the cue from some heading
    with pytest.raises(ValueError, match="cannot be kept out of view; use a larger maze"):
        cue_recall_episode(1, away_length=10, maze_size=5, image_size=16)


def test_cue_recall_trajectory_sees_a_ball_loses_it_for_the_away_length_and_comes_back():
    actions, poses = cue_recall_trajectory(11, length=400, away_length=100, maze_size=7, image_size=16)
    assert actions.shape == (400,) and poses.shape == (400, 3)
    world = MazeWorld(1, maze_size=7, image_size=16)
    world.reset(seeds=[11])
    in_view, walked = [], []  # per frame: the balls in view; the pose
    for action in actions:
        in_view.append(set(world.render_object_ids()[0].unique().tolist()) - {-1})
        walked.append([*world.position[0].tolist(), float(world.heading_radians()[0])])
        world.step(action.view(1))
    assert torch.equal(torch.tensor(walked), poses)

    def longest_absence(ball):  # the most frames between two sightings of `ball`
        seen = [t for t, balls in enumerate(in_view) if ball in balls]
        return max((b - a for a, b in zip(seen, seen[1:])), default=0)

    assert max(longest_absence(ball) for ball in range(world.n_objects)) > 100
    assert cue_recall_trajectory(11, length=60, away_length=100, maze_size=7, image_size=16) is None  # too short
    with pytest.raises(ValueError, match="training maze seeds"):
        cue_recall_trajectory(eval_seed(0), length=400, away_length=100)
