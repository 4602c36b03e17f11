"""The glimpse network's parts alone: the sensor against direct crops (zero outside the image, nested
scales, area-averaged), the REINFORCE term's gradient against the sign of (reward - baseline), the
policy's log-probability against torch.distributions, and the episode's shapes and randomness."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from worker.inputs.mnist_tasks import Task, compose
from worker.nets.glimpse import GlimpseConfig, RecurrentAttention, draws, hybrid_loss, reinforce_term
from worker.nets.glimpse_sensor import boxes, centres, crop, glimpse, patch_widths


def _direct_crop(image: torch.Tensor, cx: int, cy: int, width: int) -> torch.Tensor:
    """The square by plain slicing of a zero-padded copy, one image at a time (the reference)."""
    pad = width
    padded = F.pad(image, (pad, pad, pad, pad))
    top, left = cy - width // 2 + pad, cx - width // 2 + pad
    return padded[:, top : top + width, left : left + width]


def test_patches_equal_direct_crops_at_known_locations() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(5, 3, 20, 20, generator=generator)
    # centre pixel = floor((l + 1) / 2 * 20): (0, 0) -> 10; -1 -> 0; 1 -> 20 (half outside); 0.1 -> 11
    locations = torch.tensor([[0.0, 0.0], [-1.0, -1.0], [1.0, 1.0], [0.1, -0.55], [-0.3, 0.95]])
    xs, ys = centres(locations, 20, 20)
    assert xs.tolist() == [10, 0, 20, 11, 7] and ys.tolist() == [10, 0, 20, 4, 19]
    for width in (4, 7, 12):
        got = crop(images, locations, width)
        for i in range(5):
            assert torch.equal(got[i], _direct_crop(images[i], int(xs[i]), int(ys[i]), width))
    # a location in the middle: the patch is the image's own pixels, rows and columns the right way round
    assert torch.equal(crop(images, torch.tensor([[0.0, -0.5]] * 5), 4)[0], images[0, :, 3:7, 8:12])


def test_outside_the_image_reads_zero() -> None:
    images = torch.ones(2, 1, 10, 10)
    corner = crop(images, torch.tensor([[-1.0, -1.0], [1.0, 1.0]]), 6)
    # top-left corner: centre (0, 0), rows and columns -3..2 -> the first three of each are outside
    assert corner[0, 0, :3].sum() == 0 and corner[0, 0, :, :3].sum() == 0 and corner[0, 0, 3:, 3:].min() == 1
    # bottom-right: centre (10, 10), the covered area is rows and columns 7..12 -> 7..9 inside
    assert corner[1, 0, 3:].sum() == 0 and corner[1, 0, :, 3:].sum() == 0 and corner[1, 0, :3, :3].min() == 1


def test_scales_nest_and_are_area_averages() -> None:
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(3, 1, 40, 40, generator=generator)
    locations = torch.tensor([[0.2, -0.1], [0.9, 0.9], [-0.6, 0.4]])
    assert patch_widths(4, 3, 2.0) == [4, 8, 16]
    seen = glimpse(images, locations, 4, 3, 2.0)
    assert seen.shape == (3, 3, 1, 4, 4)
    for k, width in enumerate([4, 8, 16]):
        expected = F.avg_pool2d(crop(images, locations, width), width // 4)
        torch.testing.assert_close(seen[:, k], expected)
    drawn = boxes(locations, 40, 40, [4, 8, 16])
    for inner, outer in ((0, 1), (1, 2)):  # every box lies inside the next, about the same centre
        assert (drawn[:, outer, :2] <= drawn[:, inner, :2]).all() and (drawn[:, outer, 2:] >= drawn[:, inner, 2:]).all()
    # the centre of the twice-as-wide patch, shrunk, is the inner patch shrunk the same way
    torch.testing.assert_close(seen[:, 1, :, 1:3, 1:3], F.avg_pool2d(seen[:, 0], 2))


def test_the_reinforce_gradient_has_the_sign_of_reward_minus_baseline() -> None:
    std = 0.1
    mean = torch.zeros(4, 1, 2, requires_grad=True)
    sample = torch.tensor([[[0.05, -0.02]]] * 4)
    log_pi = torch.distributions.Normal(mean, std).log_prob(sample).sum(-1)
    reward = torch.tensor([1.0, 1.0, 0.0, 0.0])
    baseline = torch.tensor([[0.3], [0.9], [0.2], [0.7]], requires_grad=True)
    reinforce_term(log_pi, reward, baseline).backward()
    assert mean.grad is not None
    advantage = reward - baseline.detach()[:, 0]
    # A descent step moves the mean by -grad: towards the sample where the reward beat the baseline
    step = -mean.grad[:, 0]
    towards = (step * (sample[:, 0] - mean.detach()[:, 0])).sum(dim=1)
    assert torch.equal(torch.sign(towards), torch.sign(advantage))
    assert baseline.grad is None or baseline.grad.abs().sum() == 0  # the baseline is learned by its own loss


def test_the_policys_log_probability_is_torchs_and_one_glimpse_has_no_choices() -> None:
    config = GlimpseConfig(image_size=28, glimpses=4, hidden=16, glimpse_hidden=8, location_hidden=8, std=0.17)
    torch.manual_seed(0)
    model = RecurrentAttention(config)
    images = torch.rand(3, 1, 28, 28)
    start, noise = draws(config, 3, torch.Generator().manual_seed(2))
    episode = model(images, start, noise)
    assert episode.logits.shape == (3, 10) and episode.log_pi.shape == (3, 3) and episode.locations.shape == (3, 4, 2)
    assert torch.equal(episode.locations[:, 0], start)
    # each location after the first is the policy's mean plus std * noise, clamped
    state = model.core.initial(3, images.device)
    for t in range(3):
        state = model.core(model.glimpse(images, episode.locations[:, t]), state)
        mean, sample, log_pi = model.locator(state[0], noise[:, t])
        torch.testing.assert_close(episode.locations[:, t + 1], sample.clamp(-1, 1))
        expected = torch.distributions.Normal(mean, 0.17).log_prob(mean + 0.17 * noise[:, t]).sum(-1)
        torch.testing.assert_close(episode.log_pi[:, t], expected)
    losses = hybrid_loss(episode, torch.tensor([0, 1, 2]), 0.01)
    losses.total.backward()
    single = RecurrentAttention(GlimpseConfig(image_size=28, glimpses=1, hidden=16))
    alone = single(images, start, noise[:, :0])
    assert alone.log_pi.shape == (3, 0) and hybrid_loss(alone, torch.tensor([0, 1, 2]), 1.0).reinforce == 0


@pytest.mark.parametrize("core", ["rnn", "lstm"])
def test_random_locations_ignore_the_policy(core: str) -> None:
    config = GlimpseConfig(image_size=20, glimpses=3, hidden=8, core=core, random_locations=True)
    model = RecurrentAttention(config)
    start, noise = draws(config, 2, torch.Generator().manual_seed(0))
    assert noise.abs().max() <= 1.0  # uniform places, not normal noise
    episode = model(torch.rand(2, 1, 20, 20), start, noise)
    torch.testing.assert_close(episode.locations[:, 1:], noise)


def test_cluttered_canvases_hold_the_digit_in_its_box_and_repeat_from_the_seed() -> None:
    digits = torch.zeros(6, 28, 28, dtype=torch.uint8)
    digits[:, 4:24, 10:18] = 200
    pool = torch.full((10, 28, 28), 90, dtype=torch.uint8)
    task = Task.of("mnist_cluttered", 60, 4)
    canvas, box = compose(digits, pool, task, torch.Generator().manual_seed(3))
    again, box_again = compose(digits, pool, task, torch.Generator().manual_seed(3))
    assert torch.equal(canvas, again) and torch.equal(box, box_again)
    for i in range(6):
        x0, y0, x1, y1 = box[i].tolist()
        assert x1 - x0 == 28 and y1 - y0 == 28 and x0 >= 0 and x1 <= 60 and y1 <= 60
        assert torch.equal(canvas[i, y0 + 4 : y0 + 24, x0 + 10 : x0 + 18], digits[i, 4:24, 10:18])
        # four 8x8 distractors of value 90, outside the digit's strokes (a max never darkens the digit)
        assert 0 < int((canvas[i] == 90).sum()) <= 4 * 64


def test_shrinking_by_block_means_equals_area_pooling() -> None:
    from worker.nets.glimpse_sensor import shrink

    patches = torch.rand(5, 3, 48, 48, generator=torch.Generator().manual_seed(3))
    for size in (12, 16, 48, 10):  # whole-number factors, none, and a fractional one (pooled as before)
        assert torch.allclose(shrink(patches, size), F.adaptive_avg_pool2d(patches, size), atol=1e-6), size
