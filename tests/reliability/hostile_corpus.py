"""Issue 13's hostile corpus, made at test time in a folder the caller owns (nothing big is committed).

Five sets, each a static tuple of :class:`Hostile` cases (so tests can
parametrize on their names) and a writer that makes the files:

- ``IMAGES``      decode-memory and decode-time attacks: a deflated float32
                  TIFF just under the pixel limit (0.3 MB that decodes to GBs),
                  2,000 zTXt chunks, 1xN and Nx1 strips, headers that declare a
                  huge size over a few bytes of data, truncations, file names
                  with invalid UTF-8 or terminal escapes.
- ``FOLDERS``     walks: a symlink to a folder *outside* (standing in for ``/``:
                  many files, none of them ours), a symlink loop, the same files
                  reached twice, four float TIFFs decoded at once, names with
                  invalid UTF-8.
- ``WEIGHTS``     files that pass ``weights_only=True`` and still hurt: an
                  allowed ``bytearray(4e9)`` (the file is tiny: the pickle only
                  *calls* it), stride-0 tensors, meta tensors, sparse tensors,
                  wrong dtypes and shapes; plus every case of
                  ``test_hostile_models.HOSTILE``.
- ``BUNDLES``     saved-model folders: ``meta.json`` as a FIFO, a link to
                  ``/dev/zero``, huge, a folder; absurd values; control
                  characters and ANSI escapes in class names; each weights case
                  as the bundle's ``weights.pt``.
- ``CHECKPOINTS`` run folders for ``train --resume`` whose checkpoint was
                  tampered with.

``expect`` is what a fixed app does: ``"refused"`` (a clear message naming the
file), ``"ok"`` (handled normally) or ``"either"`` (both are fine: what matters is
that memory and time stay bounded). ``check`` names extra checks the harness
runs on the output (see test_capped_entry_points).
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tests.reliability.corpus import encoded, photo_jpeg, png_chunk, tiff_bytes

PIXEL_LIMIT_SIDE = 9459  # 9459² = 89,472,681: just under core.images.MAX_PIXELS (89,478,485)
STRIP = 20_000_000  # 1 x 20M and 20M x 1: inside the pixel limit, 60 MB of RGB
OUTSIDE_FILES = 1500  # files in the folder a symlink leads out to (stands in for "/")


@dataclass(frozen=True)
class Hostile:
    name: str  # unique; also the file/folder name where it is a plain one
    expect: str  # "refused", "ok" or "either"
    item: str  # what issue 13 says about this class ("item 6: decode memory")
    check: tuple[str, ...] = ()  # extra checks: "inside", "once", "no_escapes", "says_what"


# ------------------------------------------------------------------ byte builders


def deflated_zeros(n: int, *, row: bytes | None = None, rows: int = 0) -> bytes:
    """zlib stream of ``n`` zero bytes (or ``rows`` copies of ``row``), built in chunks (never all in memory)."""
    packer, out = zlib.compressobj(9), []
    if row is not None:
        per = max(1, (1 << 22) // len(row))
        block, left = row * per, rows
        while left > 0:
            take = min(left, per)
            out.append(packer.compress(block[: take * len(row)]))
            left -= take
    else:
        block = bytes(1 << 22)
        while n > 0:
            out.append(packer.compress(block[: min(n, len(block))]))
            n -= len(block)
    out.append(packer.flush())
    return b"".join(out)


def float_tiff_near_limit() -> bytes:
    """A deflate-compressed float32 TIFF of 9459 x 9459 zeros: 0.35 MB on disk, 358 MB of samples."""
    side = PIXEL_LIMIT_SIDE
    return tiff_bytes(side, side, 1, 32, 3, deflated_zeros(side * side * 4), compression=8)


def rgb_png_strip(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = deflated_zeros(0, row=bytes(1 + 3 * width), rows=height)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def many_ztxt_png(chunks: int = 2000) -> bytes:
    """A valid 2x2 PNG after ``chunks`` zTXt chunks: each under Pillow's per-chunk limit, 80 MB of text in all."""
    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    text = b"".join(png_chunk(b"zTXt", b"Comment%d\x00\x00" % i + zlib.compress(b"A" * 40_000, 9))
                    for i in range(chunks))
    raw = (b"\x00" + bytes(6)) * 2
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + text + png_chunk(b"IDAT", zlib.compress(raw))
            + png_chunk(b"IEND", b""))


def declared_png(width: int, height: int) -> bytes:
    """A PNG header declaring ``width`` x ``height`` over 64 bytes of pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(bytes(64)))
            + png_chunk(b"IEND", b""))


def declared_jpeg(width: int, height: int) -> bytes:
    """A baseline JPEG whose frame header declares ``width`` x ``height`` (the scan data is 64x48's, cut short)."""
    jpeg = photo_jpeg()
    sof = jpeg.index(b"\xff\xc0") + 5
    return jpeg[:sof] + struct.pack(">HH", height, width) + jpeg[sof + 4:]


def declared_webp(width: int, height: int) -> bytes:
    """An extended (VP8X) WebP whose canvas is ``width`` x ``height``, then a tiny real frame."""
    small = encoded(Image.new("RGB", (8, 8), (10, 200, 10)), "WEBP", lossless=True)
    frame = small[12:]  # the VP8L chunk
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (width - 1).to_bytes(3, "little") \
        + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + frame
    return b"RIFF" + struct.pack("<I", len(body)) + body


# ------------------------------------------------------------------ images

IMAGES: tuple[Hostile, ...] = (
    Hostile("float32_deflate_near_limit.tif", "either", "item 6: decode memory is bounded in bytes, not pixels"),
    Hostile("truncated_float32_deflate.tif", "refused", "item 6: decode memory (and a truncation)"),
    Hostile("many_ztxt.png", "refused", "smaller: 2,000 zTXt chunks are reported as what they are",
            check=("says_what",)),
    Hostile("one_by_20M.png", "either", "item 6: extreme aspect ratio, bounded memory and time"),
    Hostile("20M_by_one.png", "either", "item 6: extreme aspect ratio, bounded memory and time"),
    Hostile("declared_near_limit.png", "refused", "item 6: a header declaring 89M pixels over 64 bytes"),
    Hostile("declared_near_limit.jpg", "either", "item 6: a header declaring 89M pixels over a 64x48 scan"),
    Hostile("declared_huge.webp", "refused", "item 6: a WebP canvas of 16384x16384"),
    Hostile("truncated_progressive.jpg", "refused", "truncated"),
    Hostile("name-\udcff\udcfe-invalid-utf8.jpg", "ok", "item 9: invalid UTF-8 file name, strict UTF-8 stdout"),
    Hostile("name-\x1b[31mred\x1b[0m-\nforged line.jpg", "ok", "item 9: terminal escapes in a file name",
            check=("no_escapes",)),
)


def _image_bytes(name: str, float_tiff: bytes) -> bytes:
    near = int(PIXEL_LIMIT_SIDE)
    makers: dict[str, Callable[[], bytes]] = {
        "float32_deflate_near_limit.tif": lambda: float_tiff,
        "truncated_float32_deflate.tif": lambda: float_tiff[: len(float_tiff) // 2],
        "many_ztxt.png": many_ztxt_png,
        "one_by_20M.png": lambda: rgb_png_strip(1, STRIP),
        "20M_by_one.png": lambda: rgb_png_strip(STRIP, 1),
        "declared_near_limit.png": lambda: declared_png(near, near),
        "declared_near_limit.jpg": lambda: declared_jpeg(near, near),
        "declared_huge.webp": lambda: declared_webp(16384, 16384),
        "truncated_progressive.jpg": lambda: encoded(Image.effect_noise((640, 480), 60).convert("RGB"), "JPEG",
                                                     progressive=True)[:6000],
    }
    return makers[name]() if name in makers else photo_jpeg()


def write_hostile_images(folder: Path) -> dict[str, Path]:
    """Every image case in ``folder``; returns name -> path (``os.fsencode`` gives the real bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    float_tiff = float_tiff_near_limit()
    out = {}
    for case in IMAGES:
        out[case.name] = folder / case.name
        out[case.name].write_bytes(_image_bytes(case.name, float_tiff))
    return out


# ------------------------------------------------------------------ folders

# Each folder has class subfolders named like ImageNet categories (so ``evaluate`` can score them).
FOLDERS: tuple[Hostile, ...] = (
    Hostile("symlink_outside", "either", "item 7: a link to a folder outside (stands in for '/') is not walked",
            check=("inside", "once")),
    Hostile("symlink_loop", "either", "item 7: a symlink loop ends and each file is counted once",
            check=("inside", "once")),
    Hostile("same_files_twice", "either", "item 7: files reached twice through a link are counted once",
            check=("inside", "once")),
    Hostile("invalid_utf8_names", "either", "item 9: file and folder names with invalid UTF-8",
            check=("no_escapes",)),
    Hostile("four_float_tiffs", "either", "item 6: total decode memory across concurrent decodes"),
)

CLASSES = ("tabby", "goldfish")


def _photos(folder: Path, count: int, seed: int) -> list[Path]:
    from tests.support.photos import write_photos

    folder.mkdir(parents=True, exist_ok=True)
    made = write_photos(folder, count, size=(40, 30))
    for i, path in enumerate(made):  # distinct content per folder: no accidental duplicates across classes
        Image.effect_noise((40, 30), 30 + seed * 7 + i).convert("RGB").save(path, "JPEG", quality=90)
    return made


def write_hostile_folders(root: Path, outside: Path, float_tiff: Path) -> dict[str, Path]:
    """The folder cases under ``root``; ``outside`` (created, not under ``root``) is where the escape link goes."""
    out: dict[str, Path] = {}
    outside.mkdir(parents=True, exist_ok=True)
    for i in range(OUTSIDE_FILES):
        (outside / f"other-user-{i:04d}.txt").write_bytes(b"not yours\n")
    _photos(outside / "pictures", 6, seed=9)

    def base(name: str) -> Path:
        folder = root / name
        for k, cls in enumerate(CLASSES):
            _photos(folder / cls, 3, seed=k)
        out[name] = folder
        return folder

    folder = base("symlink_outside")
    os.symlink(outside, folder / CLASSES[0] / "escape")  # like a link to "/" in a photo folder
    folder = base("symlink_loop")
    os.symlink(folder, folder / CLASSES[0] / "loop")  # tabby/loop -> the folder itself
    os.symlink(folder / CLASSES[1], folder / CLASSES[1] / "again")  # goldfish/again -> goldfish
    folder = base("same_files_twice")
    os.symlink(folder / CLASSES[0], folder / CLASSES[1] / "more")  # tabby's files reached again from goldfish
    os.symlink(next((folder / CLASSES[0]).iterdir()), folder / CLASSES[1] / "alias.jpg")
    folder = base("invalid_utf8_names")
    jpeg = photo_jpeg()
    for k, cls in enumerate(CLASSES):
        (folder / cls / os.fsdecode(b"photo-\xff\xfe-%d.jpg" % k)).write_bytes(jpeg[:-2] + bytes([k, 0xFF, 0xD9]))
    weird = folder / CLASSES[1] / os.fsdecode(b"sub-\xe9t\xe9")
    _photos(weird, 1, seed=5)
    folder = root / "four_float_tiffs"
    for k, cls in enumerate(CLASSES):
        (folder / cls).mkdir(parents=True)
        for j in range(2):
            shutil.copyfile(float_tiff, folder / cls / f"float-{k}{j}.tif")
    out["four_float_tiffs"] = folder
    return out


# ------------------------------------------------------------------ weights


def torch_zip_with_pickle(path: Path, pickle_bytes: bytes) -> None:
    """A real torch zip archive whose ``data.pkl`` is ``pickle_bytes`` (what weights_only unpickles)."""
    import torch

    buffer = io.BytesIO()
    torch.save({}, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            out.writestr(info.filename, pickle_bytes if info.filename.endswith("/data.pkl") else src.read(info))


def bytearray_pickle(n: int, key: str = "fc.weight") -> bytes:
    """``{key: bytearray(n)}`` as protocol-2 opcodes: the file is tiny, unpickling allocates ``n`` bytes."""
    k = key.encode()
    return (b"\x80\x02}" + b"X" + struct.pack("<I", len(k)) + k + b"cbuiltins\nbytearray\n"
            + b"\x8a" + bytes([8]) + n.to_bytes(8, "little") + b"\x85R" + b"s.")


WEIGHTS: tuple[Hostile, ...] = (
    Hostile("bytearray_4e9", "refused", "item 4: an allowed bytearray(4e9) in a 0.5 KB file"),
    Hostile("stride0_1e11_elements", "refused", "item 4: an expanded (stride-0) tensor of 1e11 elements"),
    Hostile("stride0_right_shape", "refused", "item 4: a stride-0 tensor of the right shape, one float of data"),
    Hostile("meta_tensors", "refused", "item 4: tensors with no data (meta device)"),
    Hostile("one_meta_tensor", "refused", "item 4: one tensor with no data (meta device)"),
    Hostile("sparse_tensor", "refused", "item 4: a sparse tensor"),
    Hostile("int8_in_float_slot", "refused", "item 4: an int8 tensor where a float one goes"),
    Hostile("transposed_shape", "refused", "item 4: right size, wrong shape"),
    Hostile("scalar_for_matrix", "refused", "item 4: a scalar where a matrix goes"),
)


def write_hostile_weights(folder: Path, state: dict) -> dict[str, Path]:
    """The new weights cases for resnet18 (``state`` is a good resnet18 state dict)."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    out = {case.name: folder / f"{case.name}.pth" for case in WEIGHTS}
    torch_zip_with_pickle(out["bytearray_4e9"], bytearray_pickle(4_000_000_000))
    changed = {
        "stride0_1e11_elements": {"conv1.weight": torch.zeros(1).expand(100_000, 1_000_000)},
        "stride0_right_shape": {"fc.weight": torch.zeros(1).expand(*state["fc.weight"].shape)},
        "one_meta_tensor": {"fc.weight": torch.empty(state["fc.weight"].shape, device="meta")},
        "sparse_tensor": {"fc.weight": state["fc.weight"].to_sparse()},
        "int8_in_float_slot": {"fc.weight": state["fc.weight"].to(torch.int8)},
        "transposed_shape": {"conv1.weight": state["conv1.weight"].permute(2, 3, 1, 0).contiguous()},
        "scalar_for_matrix": {"fc.weight": torch.tensor(1.0)},
    }
    for name, change in changed.items():
        torch.save({**state, **change}, out[name])
    torch.save({k: torch.empty(v.shape, dtype=v.dtype, device="meta") for k, v in state.items()},
               out["meta_tensors"])
    return out


# ------------------------------------------------------------------ bundles

BUNDLES: tuple[Hostile, ...] = (
    Hostile("meta-fifo", "refused", "item 5: meta.json is a FIFO"),
    Hostile("meta-dev-zero", "refused", "item 5: meta.json is a link to /dev/zero"),
    Hostile("meta-dev-urandom", "refused", "item 5: meta.json is a link to /dev/urandom"),
    Hostile("meta-huge-sparse", "refused", "item 5: meta.json is an 8 GiB sparse file"),
    Hostile("meta-is-a-folder", "refused", "item 5: meta.json is a folder"),
    Hostile("weights-fifo", "refused", "item 5: weights.pt is a FIFO"),
    Hostile("weights-sparse-1.9G", "refused", "item 4: weights.pt is 1.9 GiB of zeros (a cap on bytes read)"),
    Hostile("absurd-params", "either", "tracebacks: a bundle with absurd metadata values (params 10**400)"),
    Hostile("absurd-metrics", "either", "tracebacks: absurd metric values (1e308, -1, strings)"),
    Hostile("ansi-class-names", "either", "item 9: ANSI escapes and newlines in class names",
            check=("no_escapes",)),
    Hostile("control-class-names", "either", "item 9: control characters in class names", check=("no_escapes",)),
    Hostile("few-classes", "ok", "smaller: a 3-class bundle works with the default --topk 5"),
)


def write_hostile_bundles(root: Path, good: Path, weights: dict[str, Path]) -> dict[str, Path]:
    """Each bundle case as a folder ``root/NAME`` copied from the ``good`` bundle, then broken.

    Every case in ``weights`` (name -> hostile weights file) becomes ``root/w-NAME`` too.
    """
    import json

    root.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    def copy(name: str) -> Path:
        folder = root / name
        shutil.copytree(good, folder, symlinks=True, copy_function=os.link)  # hard links: no 45 MB copies
        (folder / "meta.json").unlink()  # written afresh below, never through the shared link
        shutil.copyfile(good / "meta.json", folder / "meta.json")
        meta = json.loads((folder / "meta.json").read_text())
        meta["name"] = name
        (folder / "meta.json").write_text(json.dumps(meta))
        out[name] = folder
        return folder

    def meta_of(folder: Path) -> dict:
        return json.loads((folder / "meta.json").read_text())

    def put_meta(folder: Path, meta: dict) -> None:
        (folder / "meta.json").write_text(json.dumps(meta))

    f = copy("meta-fifo")
    (f / "meta.json").unlink()
    os.mkfifo(f / "meta.json")
    for name, target in (("meta-dev-zero", "/dev/zero"), ("meta-dev-urandom", "/dev/urandom")):
        f = copy(name)
        (f / "meta.json").unlink()
        os.symlink(target, f / "meta.json")
    f = copy("meta-huge-sparse")
    with open(f / "meta.json", "r+b") as fh:
        fh.truncate(8 * 2**30)
    f = copy("meta-is-a-folder")
    (f / "meta.json").unlink()
    (f / "meta.json").mkdir()
    f = copy("weights-fifo")
    (f / "weights.pt").unlink()
    os.mkfifo(f / "weights.pt")
    f = copy("weights-sparse-1.9G")
    (f / "weights.pt").unlink()  # a hard link to the good bundle's file: never write through it
    with open(f / "weights.pt", "wb") as fh:
        fh.truncate(1_900_000_000)
    meta = meta_of(f)
    meta.pop("weights_sha256", None)
    put_meta(f, meta)
    f = copy("absurd-params")
    put_meta(f, {**meta_of(f), "params": 10**400})
    f = copy("absurd-metrics")
    put_meta(f, {**meta_of(f), "metrics": {"val_acc": 1e308, "val_loss": -1, "top1": "high", "epochs": 10**30},
                 "training": {"epochs": 10**30, "image_size": -5, "lr": 1e308}})
    f = copy("ansi-class-names")
    put_meta(f, {**meta_of(f), "classes": ["cat\x1b[2J\x1b[31m", "dog\nFORGED: 99.99%", "bird\r\x1b]0;owned\x07"]})
    f = copy("control-class-names")
    put_meta(f, {**meta_of(f), "classes": ["cat\x00", "dog\x08\x08\x08", "bird\u202e"]})
    copy("few-classes")
    for name, path in weights.items():
        f = copy(f"w-{name}")
        (f / "weights.pt").unlink()
        shutil.copyfile(path, f / "weights.pt")
        meta = meta_of(f)
        meta.pop("weights_sha256", None)  # a checksum would only be a fig leaf: the tensors themselves are hostile
        put_meta(f, meta)
    return out


# ------------------------------------------------------------------ checkpoints

CHECKPOINTS: tuple[Hostile, ...] = (
    Hostile("intact", "either", "control: the untampered run"),
    Hostile("model-stride0", "refused", "item 4: a stride-0 tensor in the checkpoint's model state"),
    Hostile("model-meta", "refused", "item 4: meta tensors in the checkpoint's model state"),
    Hostile("model-sparse", "refused", "item 4: a sparse tensor in the checkpoint's model state"),
    Hostile("bytearray-4e9", "refused", "item 4: an allowed bytearray(4e9) as the checkpoint"),
    Hostile("settings-absurd", "refused", "tracebacks: train --resume on a tampered checkpoint (absurd settings)"),
    Hostile("settings-not-a-dict", "refused", "tracebacks: train --resume on a tampered checkpoint"),
    Hostile("optimizer-wrong", "refused", "tracebacks: train --resume on a tampered checkpoint (optimizer)"),
    Hostile("truncated", "refused", "train --resume on a cut-short checkpoint"),
)


def write_hostile_checkpoints(root: Path, run: Path) -> dict[str, Path]:
    """Copies of the run folder ``run`` (holding a real ``checkpoint.pt``), each with a tampered checkpoint."""
    import torch

    from core.training.checkpoint import CHECKPOINT_NAME

    root.mkdir(parents=True, exist_ok=True)
    base = torch.load(run / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    out: dict[str, Path] = {}
    for case in CHECKPOINTS:
        folder = root / case.name
        shutil.copytree(run, folder, copy_function=os.link)  # hard links: the checkpoints are 100+ MB
        out[case.name] = folder
    model = base["model"]

    def save(name: str, **changes) -> None:
        (out[name] / CHECKPOINT_NAME).unlink()  # never write through the shared link
        torch.save({**base, **changes}, out[name] / CHECKPOINT_NAME)

    save("model-stride0", model={**model, "conv1.weight": torch.zeros(1).expand(100_000, 1_000_000)})
    save("model-meta", model={k: torch.empty(v.shape, dtype=v.dtype, device="meta") for k, v in model.items()})
    save("model-sparse", model={**model, "fc.weight": model["fc.weight"].to_sparse()})
    (out["bytearray-4e9"] / CHECKPOINT_NAME).unlink()
    torch_zip_with_pickle(out["bytearray-4e9"] / CHECKPOINT_NAME, bytearray_pickle(4_000_000_000, "model"))
    save("settings-absurd", settings={**base["settings"], "epochs": 10**23, "seed": 10**30, "image_size": -1,
                                      "batch_size": 10**12})
    save("settings-not-a-dict", settings="resnet18 please")
    optimizer = base.get("optimizer") or {}
    broken = {**optimizer, "state": {0: {"exp_avg": torch.zeros(3)}}, "param_groups": "everything"}
    save("optimizer-wrong", optimizer=broken)
    data = (out["truncated"] / CHECKPOINT_NAME).read_bytes()
    (out["truncated"] / CHECKPOINT_NAME).unlink()
    (out["truncated"] / CHECKPOINT_NAME).write_bytes(data[: len(data) // 3])
    return out
