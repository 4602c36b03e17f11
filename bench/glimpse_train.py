"""Training speed of the glimpse network: Fovea's loop against the widely used PyTorch version's loop as its
users run it, on the real MNIST, same model sizes (6 glimpses of 8x8, 1 scale, 128 + 128 -> 256, batch
128, Adam 3e-4), in the same process, one after the other.

The anchor, written out below as that version has it: a torchvision ``MNIST`` dataset with ``ToTensor``
and ``Normalize`` behind a ``DataLoader`` (a random sampler over the training split, its default 4
workers), a retina that cuts each image's patch in a Python loop over the batch and shrinks the wider
ones with ``avg_pool2d``, the model stepped one glimpse at a time, and ``loss.item()`` / accuracy read
back every batch. Fovea: the digits held in memory as uint8 and taken by index, one gather per scale
for the whole batch, the running sums kept on the device.

Both train ``--batches`` batches (the epoch's time is that scaled to 422 batches, 54,000 images); the
ratio of the two is printed. One JSON line per figure.

    FOVEA_ASSETS_DIR=../shared/data .venv/bin/python bench/glimpse_train.py --batches 150
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.glimpse_paper_table import FolderContext, machine  # noqa: E402
from shared.kinds import parse_spec  # noqa: E402
from worker.inputs.mnist import prepare  # noqa: E402
from worker.kinds import training_plugin  # noqa: E402

EPOCH_BATCHES = 422  # 54,000 training images of 128


# --- the anchor: the widely used PyTorch version's modules and loop ------------------------------


class Retina:
    def __init__(self, g: int, k: int, s: float) -> None:
        self.g, self.k, self.s = g, k, s

    def foveate(self, x: torch.Tensor, l: torch.Tensor) -> torch.Tensor:  # noqa: E741
        phi = []
        size = self.g
        for _ in range(self.k):
            phi.append(self.extract_patch(x, l, size))
            size = int(self.s * size)
        for i in range(1, len(phi)):
            phi[i] = F.avg_pool2d(phi[i], phi[i].shape[-1] // self.g)
        return torch.cat(phi, 1).view(x.shape[0], -1)

    def extract_patch(self, x: torch.Tensor, l: torch.Tensor, size: int) -> torch.Tensor:  # noqa: E741
        B, C, H, W = x.shape
        start = (0.5 * ((l + 1.0) * H)).long()
        end = start + size
        x = F.pad(x, (size // 2, size // 2, size // 2, size // 2))
        patch = []
        for i in range(B):
            patch.append(x[i, :, start[i, 1] : end[i, 1], start[i, 0] : end[i, 0]])
        return torch.stack(patch)


class AnchorModel(nn.Module):
    def __init__(self, g: int = 8, k: int = 1, s: float = 2, c: int = 1, h_g: int = 128, h_l: int = 128,
                 std: float = 0.05, hidden: int = 256, classes: int = 10) -> None:  # fmt: skip
        super().__init__()
        self.std = std
        self.retina = Retina(g, k, s)
        self.fc1 = nn.Linear(k * g * g * c, h_g)
        self.fc2 = nn.Linear(2, h_l)
        self.fc3 = nn.Linear(h_g, h_g + h_l)
        self.fc4 = nn.Linear(h_l, h_g + h_l)
        self.i2h = nn.Linear(h_g + h_l, hidden)
        self.h2h = nn.Linear(hidden, hidden)
        self.loc_fc = nn.Linear(hidden, hidden // 2)
        self.loc_out = nn.Linear(hidden // 2, 2)
        self.baseline = nn.Linear(hidden, 1)
        self.classifier = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor, l_prev: torch.Tensor, h_prev: torch.Tensor, last: bool = False) -> Any:
        phi = self.retina.foveate(x, l_prev)
        what = self.fc3(F.relu(self.fc1(phi)))
        where = self.fc4(F.relu(self.fc2(l_prev.flatten(1))))
        g_t = F.relu(what + where)
        h_t = F.relu(self.i2h(g_t) + self.h2h(h_prev))
        mu = torch.tanh(self.loc_out(F.relu(self.loc_fc(h_t.detach()))))
        l_t = torch.distributions.Normal(mu, self.std).rsample().detach()
        log_pi = torch.distributions.Normal(mu, self.std).log_prob(l_t).sum(dim=1)
        l_t = torch.clamp(l_t, -1, 1)
        b_t = self.baseline(h_t.detach()).squeeze()
        if last:
            return h_t, l_t, b_t, F.log_softmax(self.classifier(h_t), dim=1), log_pi
        return h_t, l_t, b_t, log_pi


def anchor_epoch(batches: int, workers: int, root: str) -> float:
    from torch.utils.data import DataLoader, SubsetRandomSampler
    from torchvision import datasets, transforms

    normalize = transforms.Normalize((0.1307,), (0.3081,))
    dataset = datasets.MNIST(
        root, train=True, download=False, transform=transforms.Compose([transforms.ToTensor(), normalize])
    )
    indices = list(range(len(dataset)))[6000:]
    loader = DataLoader(dataset, batch_size=128, sampler=SubsetRandomSampler(indices), num_workers=workers)
    torch.manual_seed(0)
    model = AnchorModel()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    glimpses = 6
    started = time.perf_counter()
    for i, (x, y) in enumerate(loader):
        if i == batches:
            break
        h_t = torch.zeros(x.shape[0], 256)
        l_t = torch.FloatTensor(x.shape[0], 2).uniform_(-1, 1)
        log_pi, baselines = [], []
        for _ in range(glimpses - 1):
            h_t, l_t, b_t, p = model(x, l_t, h_t)
            baselines.append(b_t)
            log_pi.append(p)
        h_t, l_t, b_t, log_probas, p = model(x, l_t, h_t, last=True)
        log_pi.append(p)
        baselines.append(b_t)
        baselines_t, log_pi_t = torch.stack(baselines).transpose(1, 0), torch.stack(log_pi).transpose(1, 0)
        predicted = torch.max(log_probas, 1)[1]
        reward = (predicted.detach() == y).float().unsqueeze(1).repeat(1, glimpses)
        loss_action = F.nll_loss(log_probas, y)
        loss_baseline = F.mse_loss(baselines_t, reward)
        loss_reinforce = torch.mean(torch.sum(-log_pi_t * (reward - baselines_t.detach()), dim=1), dim=0)
        loss = loss_action + loss_baseline + loss_reinforce * 0.01
        _ = loss.item(), (100 * ((predicted == y).float().sum() / len(y))).item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - started) / batches * EPOCH_BATCHES


def fovea_epoch(batches: int, out: Path) -> float:
    spec = parse_spec({"kind": "glimpse_train", "input": "builtin:mnist"})
    pipeline: Any = training_plugin("glimpse_train").pipeline(spec, FolderContext(out))
    pipeline.load_data()
    pipeline.build(resuming=False)
    trainer = pipeline.trainer
    order = trainer._order()
    started = time.perf_counter()
    for batch in range(batches):
        trainer.batch_index = batch
        trainer.step(order[batch * 128 : (batch + 1) * 128])
    float(trainer.running[0])  # wait for the device
    return (time.perf_counter() - started) / batches * EPOCH_BATCHES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4, help="the anchor's DataLoader workers (its default)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    assets = Path(os.environ.get("FOVEA_ASSETS_DIR", "../shared/data"))
    with tempfile.TemporaryDirectory() as folder:
        root = str(prepare(assets, Path(folder) / "mnist"))
        fovea = fovea_epoch(args.batches, Path(folder) / "fovea")
        anchor = anchor_epoch(args.batches, args.workers, root)
    common = {"batches": args.batches, "machine": machine()}
    print(
        json.dumps(
            {"figure": "anchor epoch (DataLoader, per-image retina loop)", "seconds": round(anchor, 2), **common}
        )
    )
    print(json.dumps({"figure": "fovea epoch", "seconds": round(fovea, 2), **common}))
    print(json.dumps({"figure": "speed-up", "ratio": round(anchor / fovea, 2), **common}))


if __name__ == "__main__":
    main()
