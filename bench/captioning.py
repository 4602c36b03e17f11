"""Captioning speed against the widely used PyTorch "Show, Attend and Tell" tutorial's way, in one run.

- Training epoch: the tutorial's loop (a ``DataLoader`` over (image, caption) pairs, the frozen encoder
  recomputed for every pair of every batch, captions sorted by length and the batch shrunk step by step,
  ``pack_padded_sequence`` for the loss, gradients clipped by value; the images come from memory, with no
  loader worker, where the tutorial reads HDF5 through one) against Fovea's ``captioning_train``
  loop (``CaptionTrainer``: every image encoded once, its features cached and reused; batched teacher
  forcing). Five captions per image, as in COCO and Flickr8k. The one-time feature pass is printed too.
- Captioning: the tutorial's ``caption_image_beam_search`` (one image at a time, beam 5) against Fovea's
  ``caption`` compute path (a batch of images through the encoder, then one beam search for the batch).

Same sizes on both sides: embedding, attention and LSTM 512 (the tutorial's), dropout 0.5, a 10,000-word
vocabulary (the paper's), the encoder's grid pooled to 14 x 14 as the tutorial does (ResNet-50 at 256 px on
a GPU, the tutorial's ResNet-101 being absent from the zoo; ResNet-18 at 224 px on a CPU). Weights and data
are random (timings only); random captions never end, so both decoders run ``--steps`` steps per image.
One JSON line per figure.

    .venv/bin/python bench/captioning.py [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.specs.captioning import CaptioningTrainSpec  # noqa: E402
from worker.inputs.caption_set import CaptionSet  # noqa: E402
from worker.inputs.vocabulary import SPECIAL, Vocabulary  # noqa: E402
from worker.nets.caption_decoder import AttentionDecoder  # noqa: E402
from worker.nets.caption_search import beam_search  # noqa: E402
from worker.nets.grid_encoder import GridEncoder  # noqa: E402
from worker.nets.zoo import normalize  # noqa: E402
from worker.pipelines.captioning_data import Prepared, encode_all  # noqa: E402
from worker.pipelines.captioning_loop import CaptionTrainer  # noqa: E402

VOCAB, SIZE, CAPTIONS_PER_IMAGE = 10_000, 512, 5


def emit(**figure: Any) -> None:
    print(json.dumps(figure), flush=True)


# --- the tutorial, as it is written (its models.py, train.py and caption.py, condensed) -----------------


class TutorialEncoder(nn.Module):
    def __init__(self, arch: str) -> None:
        super().__init__()
        resnet = torchvision.models.get_model(arch, weights=None)
        self.resnet = nn.Sequential(*list(resnet.children())[:-2])
        self.adaptive_pool = nn.AdaptiveAvgPool2d((14, 14))
        for p in self.resnet.parameters():
            p.requires_grad = False

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.adaptive_pool(self.resnet(images)).permute(0, 2, 3, 1)


class TutorialAttention(nn.Module):
    def __init__(self, encoder_dim: int, decoder_dim: int, attention_dim: int) -> None:
        super().__init__()
        self.encoder_att = nn.Linear(encoder_dim, attention_dim)
        self.decoder_att = nn.Linear(decoder_dim, attention_dim)
        self.full_att = nn.Linear(attention_dim, 1)
        self.relu, self.softmax = nn.ReLU(), nn.Softmax(dim=1)

    def forward(self, encoder_out: torch.Tensor, decoder_hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        att1, att2 = self.encoder_att(encoder_out), self.decoder_att(decoder_hidden)
        alpha = self.softmax(self.full_att(self.relu(att1 + att2.unsqueeze(1))).squeeze(2))
        return (encoder_out * alpha.unsqueeze(2)).sum(dim=1), alpha


class TutorialDecoder(nn.Module):
    def __init__(self, encoder_dim: int, vocab: int) -> None:
        super().__init__()
        self.encoder_dim, self.vocab_size = encoder_dim, vocab
        self.attention = TutorialAttention(encoder_dim, SIZE, SIZE)
        self.embedding = nn.Embedding(vocab, SIZE)
        self.dropout = nn.Dropout(p=0.5)
        self.decode_step = nn.LSTMCell(SIZE + encoder_dim, SIZE, bias=True)
        self.init_h, self.init_c = nn.Linear(encoder_dim, SIZE), nn.Linear(encoder_dim, SIZE)
        self.f_beta, self.sigmoid = nn.Linear(SIZE, encoder_dim), nn.Sigmoid()
        self.fc = nn.Linear(SIZE, vocab)

    def init_hidden_state(self, encoder_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = encoder_out.mean(dim=1)
        return self.init_h(mean), self.init_c(mean)

    def forward(self, encoder_out: torch.Tensor, captions: torch.Tensor, lengths: torch.Tensor) -> tuple[Any, ...]:
        batch = encoder_out.size(0)
        encoder_out = encoder_out.view(batch, -1, self.encoder_dim)
        lengths, order = lengths.squeeze(1).sort(dim=0, descending=True)
        encoder_out, captions = encoder_out[order], captions[order]
        embeddings = self.embedding(captions)
        h, c = self.init_hidden_state(encoder_out)
        decode_lengths = (lengths - 1).tolist()
        predictions = torch.zeros(batch, max(decode_lengths), self.vocab_size, device=encoder_out.device)
        alphas = torch.zeros(batch, max(decode_lengths), encoder_out.size(1), device=encoder_out.device)
        for t in range(max(decode_lengths)):
            bt = sum(length > t for length in decode_lengths)
            context, alpha = self.attention(encoder_out[:bt], h[:bt])
            context = self.sigmoid(self.f_beta(h[:bt])) * context
            h, c = self.decode_step(torch.cat([embeddings[:bt, t, :], context], dim=1), (h[:bt], c[:bt]))
            predictions[:bt, t, :] = self.fc(self.dropout(h))
            alphas[:bt, t, :] = alpha
        return predictions, captions, decode_lengths, alphas


class PairDataset(Dataset[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    """The tutorial's CaptionDataset: one item per caption, its image looked up as i // captions_per_image."""

    def __init__(self, images: torch.Tensor, captions: torch.Tensor, lengths: torch.Tensor, preprocessing: str) -> None:
        self.images, self.captions, self.lengths, self.preprocessing = images, captions, lengths, preprocessing

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        image = normalize(self.images[i // CAPTIONS_PER_IMAGE].float()[None], self.preprocessing)[0]
        return image, self.captions[i], self.lengths[i : i + 1]


def tutorial_epoch(encoder: nn.Module, decoder: TutorialDecoder, data: PairDataset, device: torch.device) -> None:
    optimizer = torch.optim.Adam(decoder.parameters(), lr=4e-4)
    decoder.train()
    for images, captions, lengths in DataLoader(data, batch_size=32, shuffle=True):
        images, captions, lengths = images.to(device), captions.to(device), lengths.to(device)
        scores, sorted_captions, decode_lengths, alphas = decoder(encoder(images), captions, lengths)
        targets = sorted_captions[:, 1:]
        scores = pack_padded_sequence(scores, decode_lengths, batch_first=True).data
        targets = pack_padded_sequence(targets, decode_lengths, batch_first=True).data
        loss = nn.functional.cross_entropy(scores, targets) + 1.0 * ((1.0 - alphas.sum(dim=1)) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        for group in optimizer.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    param.grad.data.clamp_(-5.0, 5.0)
        optimizer.step()


@torch.no_grad()
def tutorial_beam_search(
    encoder: nn.Module, decoder: TutorialDecoder, image: torch.Tensor, k: int, steps: int
) -> list[int]:
    """caption.py's caption_image_beam_search for one image."""
    encoder_out = encoder(image[None])
    encoder_out = encoder_out.view(1, -1, decoder.encoder_dim).expand(k, -1, -1)
    prev = torch.full((k, 1), 1, dtype=torch.long, device=image.device)
    seqs, top_scores = prev, torch.zeros(k, 1, device=image.device)
    complete, complete_scores = [], []
    h, c = decoder.init_hidden_state(encoder_out)
    for step in range(1, steps + 1):
        embeddings = decoder.embedding(prev).squeeze(1)
        context, _ = decoder.attention(encoder_out, h)
        context = decoder.sigmoid(decoder.f_beta(h)) * context
        h, c = decoder.decode_step(torch.cat([embeddings, context], dim=1), (h, c))
        scores = torch.log_softmax(decoder.fc(h), dim=1)
        scores = top_scores.expand_as(scores) + scores
        flat = scores[0] if step == 1 else scores.view(-1)
        top_scores, top_words = flat.topk(k, 0, True, True)
        prev_index, next_index = top_words // decoder.vocab_size, top_words % decoder.vocab_size
        seqs = torch.cat([seqs[prev_index], next_index.unsqueeze(1)], dim=1)
        incomplete = [i for i, word in enumerate(next_index.tolist()) if word != 2]
        finished = list(set(range(len(next_index))) - set(incomplete))
        for i in finished:
            complete.append(seqs[i].tolist())
            complete_scores.append(float(top_scores[i]))
        k -= len(finished)
        if k == 0:
            break
        seqs, h, c = seqs[incomplete], h[prev_index[incomplete]], c[prev_index[incomplete]]
        encoder_out, top_scores = encoder_out[prev_index[incomplete]], top_scores[incomplete].unsqueeze(1)
        prev = next_index[incomplete].unsqueeze(1)
    return complete[complete_scores.index(max(complete_scores))] if complete else seqs[0].tolist()


# --- the run -------------------------------------------------------------------------------------------


def timed(work: Any, device: torch.device) -> float:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    work()
    sync()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=None, help="training images (5 captions each)")
    parser.add_argument("--steps", type=int, default=20, help="decoding steps per image")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    arch, side = ("resnet50", 256) if cuda else ("resnet18", 224)
    images_count = args.images or (5000 if cuda else 160)
    caption_images = min(512 if cuda else 48, images_count)
    machine = torch.cuda.get_device_name() if cuda else f"CPU, {args.threads} threads"
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (images_count, 3, side, side), dtype=torch.uint8, generator=generator)
    lengths = torch.randint(8, 16, (images_count * CAPTIONS_PER_IMAGE,), generator=generator) + 2
    captions = torch.zeros((len(lengths), int(lengths.max())), dtype=torch.long)
    for i, n in enumerate(lengths.tolist()):
        captions[i, :n] = torch.cat(
            [torch.tensor([1]), torch.randint(4, VOCAB, (n - 2,), generator=generator), torch.tensor([2])]
        )

    torch.manual_seed(0)
    tutorial_encoder = TutorialEncoder(arch).to(device).eval()
    encoder_dim = 2048 if arch == "resnet50" else 512
    tutorial_decoder = TutorialDecoder(encoder_dim, VOCAB).to(device)
    pairs = PairDataset(images, captions, lengths, "imagenet")
    anchor = timed(lambda: tutorial_epoch(tutorial_encoder, tutorial_decoder, pairs, device), device)
    emit(figure="training_epoch_anchor", seconds=round(anchor, 2), pairs=len(pairs), encoder=arch, machine=machine)

    network = torchvision.models.get_model(arch, weights=None)
    encoder = GridEncoder(network, "layer4", grid=14, coordinates=False).to(device).eval().requires_grad_(False)
    encoded: dict[str, Any] = {}
    seconds_features = timed(lambda: encoded.update(out=encode_all(encoder, images, "imagenet", device)), device)
    features, grid = encoded["out"]
    spec = CaptioningTrainSpec.model_validate(
        {
            "kind": "captioning_train",
            "input": "builtin:captioned_shapes",
            "encoder": {"arch": arch, "layer": "layer4", "grid": 14, "input_size": side},
            "coordinates": False,
            "epochs": 1,
            "batch_size": 32,
            "max_length": 20,
        }
    )
    words = Vocabulary([*SPECIAL, *(f"w{i}" for i in range(VOCAB - len(SPECIAL)))])
    val = [0]  # one image: the epoch's validation decode costs (almost) nothing on either side
    prepared = Prepared(
        vocabulary=words,
        encoder=encoder,
        grid=grid,
        feature_dim=encoder_dim,
        captions=captions.to(device),
        caption_image=(torch.arange(len(captions)) // CAPTIONS_PER_IMAGE).to(device),
        images=None,
        features=features,
        references=[[["w1"]]] * images_count,
        split_images={"train": list(range(images_count)), "val": val, "test": val},
        source=CaptionSet([], [], [], [], []),
        too_long=0,
        examples={},
    )
    decoder = AttentionDecoder(VOCAB, encoder_dim, SIZE, SIZE, SIZE, 0.5).to(device)
    trainer = CaptionTrainer(spec, prepared, encoder, decoder)
    fovea = timed(lambda: trainer.train_for(1e9), device)
    emit(
        figure="training_epoch_fovea",
        seconds=round(fovea, 2),
        feature_pass_once_seconds=round(seconds_features, 2),
        speedup_per_epoch=round(anchor / fovea, 2),
        speedup_first_epoch_with_feature_pass=round(anchor / (fovea + seconds_features), 2),
        goal=5.0,
    )

    subset = images[:caption_images].to(device)
    tutorial_decoder.eval()
    anchor = timed(
        lambda: [
            tutorial_beam_search(
                tutorial_encoder, tutorial_decoder, normalize(img.float()[None], "imagenet")[0], 5, args.steps
            )
            for img in subset
        ],
        device,
    )
    emit(figure="caption_beam5_anchor", images_per_second=round(caption_images / anchor, 2), steps=args.steps)
    decoder.eval()
    batch = 128 if cuda else 16

    def fovea_captions() -> None:
        for start in range(0, caption_images, batch):
            with torch.no_grad():
                grid_out = encoder(normalize(subset[start : start + batch].float(), "imagenet"))
                annotations = grid_out.reshape(len(grid_out), -1, grid_out.shape[-1])
            beam_search(decoder, annotations, start=1, end=2, beam_size=5, max_length=args.steps)

    fovea = timed(fovea_captions, device)
    anchor_rate, fovea_rate = caption_images / anchor, caption_images / fovea
    emit(
        figure="caption_beam5_fovea",
        images_per_second=round(fovea_rate, 2),
        batch=batch,
        speedup=round(fovea_rate / anchor_rate, 2),
        goal=20.0,
    )


if __name__ == "__main__":
    main()
