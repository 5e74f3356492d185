import torch

from worldsim.episode_noise import EpisodeNoise

SHAPE = (3, 4, 4)


def by_hand(seed: int, steps: int) -> list[torch.Tensor]:
    """An episode's noise for `steps` steps: its own generator, two frames a step, in order."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, *SHAPE, generator=g) for _ in range(steps)]


def test_each_episode_draws_from_its_own_seed_in_order():
    noise = EpisodeNoise([5, 7], SHAPE)
    steps = [noise.next() for _ in range(3)]
    assert steps[0].shape == (2, 2, *SHAPE)
    for b, seed in enumerate([5, 7]):
        for got, want in zip(steps, by_hand(seed, 3)):
            assert torch.equal(got[:, b], want)


def test_drawing_ahead_changes_no_number_and_reseeding_redraws_only_its_episodes():
    plain, ahead = EpisodeNoise([1, 2, 3], SHAPE), EpisodeNoise([1, 2, 3], SHAPE)
    for step in range(4):
        if step == 2:  # episode 1 restarts while `ahead` holds its next noise
            plain.reseed([1], [9])
            ahead.reseed([1], [9])
        assert torch.equal(plain.next(), ahead.next())
        ahead.draw_ahead()
    assert torch.equal(ahead.next()[:, 1], by_hand(9, 3)[2])


def test_a_saved_state_resumes_at_the_step_not_drawn_yet():
    noise = EpisodeNoise([4, 6], SHAPE)
    noise.next()
    noise.draw_ahead()
    resumed = EpisodeNoise.from_states(noise.rng_states(), SHAPE)
    expected = noise.next()
    assert torch.equal(resumed.next(), expected)
    assert torch.equal(expected[:, 0], by_hand(4, 2)[1])
