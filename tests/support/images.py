"""Test images and archives, made on the fly: good photos of every mode, and broken members of every kind."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def png(width: int = 48, height: int = 40, seed: int = 0, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    array[height // 4 : height // 2, width // 4 : width // 2] = 255  # a bright square to find
    image = Image.fromarray(array).convert(mode) if mode != "RGB" else Image.fromarray(array)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(width: int = 48, height: int = 40, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def bomb_png(side: int = 12000) -> bytes:
    """A 1-bit PNG of side x side pixels (144 M by default): tiny on disk, huge decoded."""
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


BROKEN_KINDS = {
    "broken/zero.png": "empty file",
    "broken/notes.txt": "not an image",
    "broken/truncated.jpg": "corrupt or truncated",
    "broken/corrupt.png": "corrupt",
    "broken/bomb.png": "over the limit",
    "broken/huge.png": "over the limit",
    "../escape.png": "path traversal",
    "/etc/absolute.png": "absolute path",
    "broken/link.png": "link member",
    "broken/hardlink.png": "link member",
}
"""Member name -> a phrase its failure reason must contain."""


def add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def tar_with_broken_members(path: Path, good: int, *, huge_bytes: int) -> dict[str, str]:
    """A tar of ``good`` valid images plus one member of every broken kind; returns name -> expected reason."""
    with tarfile.open(path, "w") as archive:
        for i in range(good):
            data = png(seed=i) if i % 2 else jpeg(seed=i)
            add_bytes(archive, f"good/img{i:04d}.{'png' if i % 2 else 'jpg'}", data)
        full = jpeg(seed=999, width=64, height=64)
        add_bytes(archive, "broken/zero.png", b"")
        add_bytes(archive, "broken/notes.txt", b"these are not pixels\n" * 10)
        add_bytes(archive, "broken/truncated.jpg", full[: len(full) // 2])
        add_bytes(archive, "broken/corrupt.png", b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50)
        add_bytes(archive, "broken/bomb.png", bomb_png())
        add_bytes(archive, "broken/huge.png", png(seed=1) + b"\x00" * huge_bytes)
        add_bytes(archive, "../escape.png", png(seed=2))
        add_bytes(archive, "/etc/absolute.png", png(seed=3))
        link = tarfile.TarInfo("broken/link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
        hard = tarfile.TarInfo("broken/hardlink.png")
        hard.type, hard.linkname = tarfile.LNKTYPE, "good/img0000.jpg"
        archive.addfile(hard)
    return dict(BROKEN_KINDS)


def zip_of(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def tar_of(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz" if path.name.endswith(".gz") else "w") as archive:
        for name, data in members.items():
            add_bytes(archive, name, data)
