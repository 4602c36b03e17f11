"""The captioner's networks: attention is a distribution over the locations, the doubly stochastic penalty
is zero exactly when every location gets one unit of attention over the caption, the attention's entropy
runs from 0 (one location) to log L (all alike) over the caption's steps, greedy decoding is beam
search of width 1, a wider beam never finds a less probable caption, and the reported log-probability
is the model's own for the caption it returns."""

from __future__ import annotations

import pytest
import torch

from worker.nets.attention import attention_entropy, doubly_stochastic_penalty
from worker.nets.caption_decoder import AttentionDecoder
from worker.nets.caption_search import beam_search, greedy
from worker.nets.grid_encoder import GridEncoder, backbone, with_coordinates

START, END = 1, 2


def _decoder(seed: int, vocab: int = 12, feature_dim: int = 10, query: str = "previous") -> AttentionDecoder:
    torch.manual_seed(seed)
    decoder = AttentionDecoder(
        vocab, feature_dim, embed_dim=8, attention_dim=8, decoder_dim=16, dropout=0.5, query=query
    ).eval()
    with torch.no_grad():  # sharper than at initialisation, so that captions end at various lengths
        decoder.out.weight.mul_(3.0)
        decoder.out.weight[END].mul_(5.0)
        decoder.out_context.weight.mul_(4.0)
    return decoder


def _features(seed: int, batch: int = 6, locations: int = 9, dim: int = 10) -> torch.Tensor:
    return 2.0 * torch.randn(batch, locations, dim, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def _teacher_log_prob(decoder: AttentionDecoder, features: torch.Tensor, tokens: list[int], ended: bool) -> float:
    """log p(tokens [, <end>] | image) by teacher forcing, one image."""
    targets = [*tokens, END] if ended else tokens
    inputs = torch.tensor([[START, *targets[:-1]]])
    out = decoder(features[None], inputs)
    log_p = torch.log_softmax(out.logits[0], dim=-1)
    return float(log_p[torch.arange(len(targets)), torch.tensor(targets)].sum())


def test_attention_sums_to_one_over_locations_at_every_step() -> None:
    decoder = _decoder(0)
    features = _features(0)
    out = decoder(features, torch.randint(3, 12, (6, 7)), generator=torch.Generator().manual_seed(1))
    assert out.alphas.shape == (6, 7, 9) and bool((out.alphas >= 0).all())
    torch.testing.assert_close(out.alphas.sum(-1), torch.ones(6, 7))
    hard = decoder(features, torch.randint(3, 12, (6, 7)), hard=True, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(hard.alphas.sum(-1), torch.ones(6, 7))
    assert hard.location_log_probs is not None and bool((hard.location_log_probs <= 0).all())
    decoded = beam_search(decoder, features, start=START, end=END, beam_size=3, max_length=8)
    for alphas in decoded.alphas:
        torch.testing.assert_close(alphas.sum(-1), torch.ones(len(alphas)))


def test_doubly_stochastic_penalty_is_zero_for_uniform_attention_over_t_equal_l_steps() -> None:
    locations = 12
    uniform = torch.full((2, locations, locations), 1.0 / locations)
    mask = torch.ones(2, locations)
    torch.testing.assert_close(doubly_stochastic_penalty(uniform, mask), torch.zeros(2))
    peaked = torch.zeros(2, locations, locations)
    peaked[:, :, 0] = 1.0  # every step on location 0: (1 - 12)^2 + 11 * 1
    torch.testing.assert_close(doubly_stochastic_penalty(peaked, mask), torch.full((2,), 121.0 + 11.0))
    # Padded steps do not count: half the steps masked leaves each location half a unit short.
    half = mask.clone()
    half[:, locations // 2 :] = 0
    torch.testing.assert_close(doubly_stochastic_penalty(uniform, half), torch.full((2,), locations * 0.25))


def test_attention_entropy_is_zero_on_one_location_and_log_l_on_all_alike_per_unmasked_step() -> None:
    locations = 9
    uniform = torch.full((2, 4, locations), 1.0 / locations)
    peaked = torch.zeros(2, 4, locations)
    peaked[:, :, 3] = 1.0
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    torch.testing.assert_close(attention_entropy(peaked, mask), torch.zeros(2))
    expected = torch.log(torch.tensor(float(locations))) * torch.tensor([4.0, 2.0])
    torch.testing.assert_close(attention_entropy(uniform, mask), expected)
    # Its gradient sharpens: a step down it moves mass towards the location that already has the most.
    energies = torch.tensor([[[0.5, 0.2, 0.1]]], requires_grad=True)
    attention_entropy(torch.softmax(energies, dim=-1), torch.ones(1, 1)).sum().backward()
    assert energies.grad is not None and float(energies.grad[0, 0, 0]) < 0 < float(energies.grad[0, 0, 2])


@pytest.mark.parametrize("query", ["previous", "current"])
@pytest.mark.parametrize("seed", [0, 2, 3])
def test_beam_of_width_one_is_greedy_decoding(seed: int, query: str) -> None:
    decoder, features = _decoder(seed, query=query), _features(seed)
    g = greedy(decoder, features, start=START, end=END, max_length=10)
    b = beam_search(decoder, features, start=START, end=END, beam_size=1, max_length=10)
    assert b.tokens == g.tokens
    assert b.log_probs == pytest.approx(g.log_probs, abs=1e-6)
    for x, y in zip(b.alphas, g.alphas, strict=True):
        torch.testing.assert_close(x, y)
    assert len({len(t) for t in g.tokens}) > 1, "captions should end at different lengths in this test"


@pytest.mark.parametrize("query", ["previous", "current"])
@pytest.mark.parametrize("seed", range(6))
def test_wider_beams_never_find_a_less_probable_caption(seed: int, query: str) -> None:
    decoder, features = _decoder(seed, query=query), _features(seed, batch=8)
    g = greedy(decoder, features, start=START, end=END, max_length=10)
    previous = g.log_probs
    for width in (2, 3, 5, 8):
        b = beam_search(decoder, features, start=START, end=END, beam_size=width, max_length=10)
        for image, (wide, narrow) in enumerate(zip(b.log_probs, g.log_probs, strict=True)):
            assert wide >= narrow - 1e-5, (width, image)
            ended = len(b.tokens[image]) < 10  # a caption of max_length words never reached <end>
            reported = _teacher_log_prob(decoder, features[image], b.tokens[image], ended)
            assert wide == pytest.approx(reported, abs=1e-4)  # its score is the model's log p(caption)
        previous = b.log_probs
    assert sum(w > n + 1e-4 for w, n in zip(previous, g.log_probs, strict=True)) >= 1, "the beam should help"


def test_each_image_is_decoded_as_if_it_were_alone() -> None:
    decoder, features = _decoder(7), _features(7, batch=5)
    together = beam_search(decoder, features, start=START, end=END, beam_size=4, max_length=10)
    for image in range(5):
        alone = beam_search(decoder, features[image : image + 1], start=START, end=END, beam_size=4, max_length=10)
        assert alone.tokens[0] == together.tokens[image]
        assert alone.log_probs[0] == pytest.approx(together.log_probs[image], abs=1e-5)


def test_grid_encoder_gives_locations_with_their_coordinates() -> None:
    torch.manual_seed(0)
    encoder = GridEncoder(backbone("tiny_cnn"), "features", grid=None, coordinates=True).eval()
    with torch.no_grad():
        out = encoder(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 8, 8, 64 + 2)
    torch.testing.assert_close(out[0, 0, 0, -2:], torch.tensor([-0.875, -0.875]))  # top left: x, y
    torch.testing.assert_close(out[1, 2, 7, -2:], torch.tensor([0.875, -0.375]))  # row 2, last column
    pooled = GridEncoder(backbone("mobilenet_v2"), "features.13", grid=7, coordinates=False).eval()
    with torch.no_grad():
        assert pooled(torch.rand(1, 3, 224, 224)).shape == (1, 7, 7, 96)
    assert with_coordinates(torch.zeros(1, 1, 1, 3)).tolist() == [[[[0.0, 0.0, 0.0, 0.0, 0.0]]]]


def test_without_the_gate_the_context_is_the_attended_average() -> None:
    torch.manual_seed(0)
    gated = AttentionDecoder(12, 10, embed_dim=8, attention_dim=8, decoder_dim=16, gate=True)
    plain = AttentionDecoder(12, 10, embed_dim=8, attention_dim=8, decoder_dim=16, gate=False)
    assert plain.gate is None and not any(name.startswith("gate.") for name in plain.state_dict())
    plain.load_state_dict({k: v for k, v in gated.state_dict().items() if not k.startswith("gate.")})
    features = _features(4)
    keys, h, _ = plain.start(features)
    alpha, context, _ = plain.glimpse(features, keys, h, "soft")
    torch.testing.assert_close(context, torch.einsum("bl,bld->bd", alpha, features))
    keys, h, _ = gated.start(features)
    alpha_g, context_g, _ = gated.glimpse(features, keys, h, "soft")
    torch.testing.assert_close(alpha_g, alpha)  # the gate scales the context, never the attention
    beta = torch.sigmoid(gated.gate(h)) if gated.gate is not None else None
    assert beta is not None and bool((beta < 1).all())
    torch.testing.assert_close(context_g, beta * context)


def test_a_learned_initial_state_tells_the_decoder_nothing_of_the_image() -> None:
    torch.manual_seed(0)
    mean = AttentionDecoder(12, 10, embed_dim=8, attention_dim=8, decoder_dim=16)
    learned = AttentionDecoder(12, 10, embed_dim=8, attention_dim=8, decoder_dim=16, initial_state="learned")
    learned.load_state_dict(mean.state_dict())
    features = _features(5)
    _, h, c = learned.start(features)
    torch.testing.assert_close(h, learned.init_h.bias.expand(len(features), -1))
    torch.testing.assert_close(c, learned.init_c.bias.expand(len(features), -1))
    _, h_mean, _ = mean.start(features)
    assert not torch.allclose(h_mean[0], h_mean[1])  # the paper's: each image starts from its own summary


@torch.no_grad()
def test_with_the_current_query_the_word_just_read_chooses_the_map() -> None:
    features = _features(5, batch=1)
    said, other = torch.tensor([[START, 4, 7]]), torch.tensor([[START, 4, 9]])  # only the last word read differs
    for query, depends in (("previous", False), ("current", True)):
        decoder = _decoder(5, query=query)
        first, second = decoder(features, said).alphas[0], decoder(features, other).alphas[0]
        torch.testing.assert_close(first[:2], second[:2])  # the steps before it read the same words
        assert (not torch.allclose(first[2], second[2])) is depends, query
    with pytest.raises(ValueError, match="query"):
        AttentionDecoder(12, 10, query="next")
