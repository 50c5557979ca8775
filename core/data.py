"""Training data: folder scan and report, stratified split, decode-once cache, dataset.

A training folder holds one subfolder per class (nested folders count for their
class), or a ``train/`` + ``val/`` pair of such folders. Hidden and system
folders are ignored. :func:`scan_folder` reads every image's header and content
hash and returns a :class:`ScanReport` (unreadable files with reasons, exact
duplicates, tiny classes, imbalance, tiny images) plus the usable samples;
:func:`split_samples` makes a reproducible stratified train/validation split;
:class:`DecodedImages` decodes every sample once at the training resolution
(exactly the inference preprocessing: shorter side resized, centre crop) into a
uint8 array kept in memory or in a ``.npy`` memmap under a cache folder keyed by
content hashes and size; :class:`ImageDataset` serves uint8 CHW tensors from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

from core.diskcache import DiskCacheError, remove_stale_partials, reserve_npy
from core.doctor.marks import ignored_files, relative_key
from core.errors import Cancelled, ImageError, StudioError
from core.images import image_size, is_image_file, is_known_image, load_image, trim_aspect
from core.io import atomic_write_text
from core.text import noun, plural
from core.userfiles import UnreadableFile, read_json
from core.walk import subfolders, walk_folder

__all__ = [
    "Sample", "ScanReport", "DataSplit", "DecodedImages", "ImageDataset", "scan_folder", "split_samples",
    "decode_sample", "fit_image", "collate_samples", "ProgressFn", "file_digest", "split_layout",
]

ProgressFn = Callable[[int, int], None]  # (done, total)
SYSTEM_NAMES = frozenset({"__macosx", "$recycle.bin", "system volume information", "@eadir", "lost+found",
                          "thumbs.db", "desktop.ini", "__pycache__"})
SPLIT_NAMES = {"train": ("train", "training"), "val": ("val", "valid", "validation")}
MIN_IMAGES_PER_CLASS = 5
IMBALANCE_RATIO = 10.0
TINY_PIXELS = 32
_HASH_CHUNK = 1 << 20
_CACHE_FORMAT = "v1"


def _ignored(name: str) -> bool:
    return name.startswith((".", "~")) or name.casefold() in SYSTEM_NAMES


def _class_folders(folder: Path) -> list[Path]:
    """Real subfolders (folder links are never followed: see core.walk), sorted, hidden/system ones left out."""
    try:
        return subfolders(folder, ignore=_ignored)
    except OSError as exc:
        raise StudioError(f"cannot read the folder {folder}: {exc.strerror or exc}") from None


def _image_files(folder: Path, root: Path, seen: set[tuple[int, int]]):
    """Image files under ``folder`` (core.walk rules, links only inside ``root``), the count of other files,
    and the walk's errors and what it would not follow (``(path, reason)`` lists)."""
    found = walk_folder(folder, ignore=_ignored, inside=root, seen=seen)
    images = [p for p in found.files if is_known_image(p)]  # a HEIC or SVG is reported as unreadable
    others = len(found.files) - len(images) + len(found.others)
    return images, others, found.errors, found.left_out


@dataclass(frozen=True)
class Sample:
    """One usable image: its path, class index, content hash and header size."""

    path: str
    label: int
    digest: str
    width: int = 0
    height: int = 0
    subset: str = ""  # "train" / "val" when the folder came split, else ""


@dataclass
class ScanReport:
    """What a training folder holds and what is wrong with it; ``to_json`` is plain data."""

    root: str
    layout: str  # "classes" or "split"
    classes: list[str]
    counts: dict[str, int]  # usable images per class
    files: int = 0  # image files looked at
    other_files: int = 0  # non-image files inside class folders (ignored)
    loose_images: int = 0  # images directly in the root, outside any class folder (ignored)
    unreadable: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}
    duplicates: list[list[str]] = field(default_factory=list)  # groups; the first of each is kept
    small_classes: list[str] = field(default_factory=list)  # fewer than MIN_IMAGES_PER_CLASS
    empty_classes: list[str] = field(default_factory=list)  # no usable image: left out of ``classes``
    imbalance: float | None = None  # most / fewest images per class
    tiny_images: int = 0  # shorter side below TINY_PIXELS
    not_followed: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}: links, loops (core.walk)
    only_train: list[str] = field(default_factory=list)  # split layout: classes with no validation folder
    only_val: list[str] = field(default_factory=list)  # split layout: classes with no training folder
    ignored: int = 0  # images marked "ignore" (core.doctor.marks): left out, not looked at
    samples: list[Sample] = field(default_factory=list, repr=False)

    @property
    def tiny_share(self) -> float:
        return self.tiny_images / len(self.samples) if self.samples else 0.0

    @property
    def warnings(self) -> list[str]:
        """One sentence per problem, worst first."""
        out = self._layout_warnings()
        if len(self.classes) < 2:
            out.append(f"found {plural(len(self.classes), 'class folder')} with images; training needs at least 2")
        if self.unreadable:
            out.append(f"{plural(len(self.unreadable), 'file')} cannot be read and will be skipped")
        if self.empty_classes:
            out.append(f"{noun(len(self.empty_classes), 'class folder')} without usable images: "
                       f"{', '.join(self.empty_classes)}")
        if self.small_classes:
            out.append(f"{noun(len(self.small_classes), 'class', 'classes')} with fewer than "
                       f"{MIN_IMAGES_PER_CLASS} images: {', '.join(self.small_classes)}")
        if self.imbalance is not None and self.imbalance > IMBALANCE_RATIO:
            out.append(f"classes are strongly imbalanced: the largest has {self.imbalance:.0f}x the images "
                       "of the smallest")
        if self.duplicates:
            extra = sum(len(g) - 1 for g in self.duplicates)
            out.append(f"{plural(extra, 'exact duplicate file')} will be used once")
        if self.tiny_images:
            out.append(f"{plural(self.tiny_images, 'image')} ({100 * self.tiny_share:.0f}%) "
                       f"{noun(self.tiny_images, 'is', 'are')} smaller than {TINY_PIXELS} pixels on a side")
        if self.ignored:
            out.append(f"{plural(self.ignored, 'image')} marked \"ignore\" {noun(self.ignored, 'is', 'are')} left out")
        if self.loose_images:
            out.append(f"{plural(self.loose_images, 'image')} outside class folders "
                       f"{noun(self.loose_images, 'is', 'are')} ignored")
        return out

    def _layout_warnings(self) -> list[str]:
        out = []
        if self.only_val:
            out.append(f"{noun(len(self.only_val), 'class', 'classes')} only in val/, with nothing to train on "
                       f"(the model cannot learn {noun(len(self.only_val), 'it', 'them')}): {', '.join(self.only_val)}")
        if self.only_train:
            out.append(f"{noun(len(self.only_train), 'class', 'classes')} only in train/, with no validation "
                       f"images (accuracy says nothing about {noun(len(self.only_train), 'it', 'them')}): "
                       f"{', '.join(self.only_train)}")
        if self.not_followed:
            out.append(f"{plural(len(self.not_followed), 'link')} or repeated {noun(len(self.not_followed), 'path')} "
                       "not followed (folder links and links leaving the folder are never followed; each file is "
                       "used once)")
        return out

    def without_classes(self, excluded: Iterable[str]) -> ScanReport:
        """This report without the ``excluded`` classes, labels renumbered (the classes a person kept)."""
        excluded = set(excluded)
        if not excluded & set(self.classes):
            return self
        keep = [name for name in self.classes if name not in excluded]
        new_label = {self.classes.index(name): i for i, name in enumerate(keep)}
        samples = [replace(s, label=new_label[s.label]) for s in self.samples if s.label in new_label]
        return replace(self, classes=keep, counts={n: self.counts[n] for n in keep}, samples=samples)

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("samples")
        data.update(images=len(self.samples), tiny_share=round(self.tiny_share, 4), warnings=self.warnings)
        return data


def split_layout(root: Path) -> dict[str, Path] | None:
    """{'train': folder, 'val': folder} when ``root`` holds a train/val split."""
    found: dict[str, Path] = {}
    for folder in _class_folders(root):
        for subset, names in SPLIT_NAMES.items():
            if folder.name.lower() in names and subset not in found:
                found[subset] = folder
    return found if len(found) == 2 else None


def file_digest(path: Path) -> str:
    sha = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def _inspect(path: Path, verify: bool) -> tuple[str, int, int]:
    """(content hash, width, height); raises ImageError."""
    width, height = image_size(path)  # header only; raises ImageError with the reason
    if verify:
        load_image(path)  # full decode: catches truncated pixel data
    try:
        digest = file_digest(path)
    except OSError as exc:
        raise ImageError(path, exc.strerror or str(exc)) from None
    return digest, width, height


def scan_folder(root: str | os.PathLike[str], *, verify: bool = False, progress: ProgressFn | None = None,
                cancel: threading.Event | None = None) -> ScanReport:
    """Scan a training folder; ``verify`` decodes every image fully (slower, catches truncation).

    ``progress(done, total)`` is called every few files and at the end; setting
    ``cancel`` raises :class:`~core.errors.Cancelled` within one file.
    """
    root = Path(root)
    if not root.is_dir():
        raise StudioError(f"{root} is not a folder" if root.exists() else f"{root}: no such folder")
    split = split_layout(root)
    layout = "split" if split else "classes"
    listing: list[tuple[str, str, Path]] = []  # (class name, subset, file)
    class_names: set[str] = set()
    other_files = 0
    not_walked: list[tuple[Path, str]] = []
    walk_errors: list[tuple[Path, str]] = []
    seen: set[tuple[int, int]] = set()  # each real file once, across classes and subsets
    for subset, parent in (split or {"": root}).items():
        for folder in _class_folders(parent):
            class_names.add(folder.name)
            files, others, errors, left = _image_files(folder, root, seen)
            other_files += others
            walk_errors += errors
            not_walked += left
            listing.extend((folder.name, subset, f) for f in files)
    listed, ignored = len(listing), ignored_files(root)
    listing = [item for item in listing if relative_key(root, item[2]) not in ignored] if ignored else listing
    loose = 0 if split else sum(1 for e in os.scandir(root) if e.is_file(follow_symlinks=False)
                                and not _ignored(e.name) and is_image_file(e.name))
    report = ScanReport(root=str(root), layout=layout, classes=[], counts={}, files=len(listing),
                        other_files=other_files, loose_images=loose, ignored=listed - len(listing),
                        not_followed=[{"path": str(p), "reason": r} for p, r in not_walked],
                        unreadable=[{"path": str(p), "reason": r} for p, r in walk_errors])
    found: list[tuple[str, str, Path, str, int, int]] = []
    for done, (name, subset, path) in enumerate(listing, 1):
        if cancel is not None and cancel.is_set():
            raise Cancelled("folder scan")
        try:
            found.append((name, subset, path, *_inspect(path, verify)))
        except ImageError as exc:
            report.unreadable.append({"path": str(path), "reason": exc.reason})
        if progress is not None and (done % 32 == 0 or done == len(listing)):
            progress(done, len(listing))
    _fill(report, sorted(class_names, key=lambda n: (n.casefold(), n)), found)
    if split:
        subsets = {name: {s.subset for s in report.samples if report.classes[s.label] == name}
                   for name in report.classes}
        report.only_train = [n for n, where in subsets.items() if where == {"train"}]
        report.only_val = [n for n, where in subsets.items() if where == {"val"}]
    return report


def _fill(report: ScanReport, names: list[str], found: list[tuple[str, str, Path, str, int, int]]) -> None:
    """Classes, counts, duplicates and the usable samples from the inspected files."""
    first: dict[str, str] = {}  # content hash -> first path with it
    groups: dict[str, list[str]] = {}
    kept: list[tuple[str, str, Path, str, int, int]] = []
    for item in found:
        digest = item[3]
        if digest in first:
            groups.setdefault(digest, [first[digest]]).append(str(item[2]))
            continue
        first[digest] = str(item[2])
        kept.append(item)
    report.duplicates = list(groups.values())
    per_class = {name: sum(1 for k in kept if k[0] == name) for name in names}
    report.empty_classes = [n for n in names if per_class[n] == 0]
    report.classes = [n for n in names if per_class[n] > 0]
    report.counts = {n: per_class[n] for n in report.classes}
    index = {name: i for i, name in enumerate(report.classes)}
    report.samples = [Sample(str(p), index[n], d, w, h, subset) for n, subset, p, d, w, h in kept]
    report.small_classes = [n for n, c in report.counts.items() if c < MIN_IMAGES_PER_CLASS]
    counts = list(report.counts.values())
    report.imbalance = max(counts) / min(counts) if counts else None
    report.tiny_images = sum(1 for s in report.samples if min(s.width, s.height) < TINY_PIXELS)


# -- split ---------------------------------------------------------------------


@dataclass(frozen=True)
class DataSplit:
    """Train and validation samples; class ``i`` is ``classes[i]`` (the map saved with the model)."""

    classes: tuple[str, ...]
    train: tuple[Sample, ...]
    val: tuple[Sample, ...]

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    def to_json(self) -> dict:
        def counts(samples: Sequence[Sample]) -> dict[str, int]:
            return {c: sum(1 for s in samples if s.label == i) for i, c in enumerate(self.classes)}

        return {"classes": list(self.classes), "train": counts(self.train), "val": counts(self.val)}


def split_samples(report: ScanReport, val_fraction: float = 0.2, seed: int = 0) -> DataSplit:
    """Stratified split: each class gives ``round(n * val_fraction)`` images (at least 1 when n >= 2).

    The same report, fraction and seed always give the same split. A folder that
    came with ``train/`` and ``val/`` keeps its own split.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise StudioError(f"the validation fraction must be in [0, 1), got {val_fraction}")
    if report.layout == "split":
        return DataSplit(tuple(report.classes), tuple(s for s in report.samples if s.subset == "train"),
                         tuple(s for s in report.samples if s.subset == "val"))
    rng = np.random.default_rng(seed)
    train: list[Sample] = []
    val: list[Sample] = []
    for label in range(len(report.classes)):
        members = sorted((s for s in report.samples if s.label == label), key=lambda s: s.path)
        order = rng.permutation(len(members))
        n_val = round(len(members) * val_fraction)
        if val_fraction > 0 and len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        chosen = set(order[:n_val].tolist())
        for i, sample in enumerate(members):
            (val if i in chosen else train).append(sample)
    return DataSplit(tuple(report.classes), tuple(train), tuple(val))


# -- decoding ------------------------------------------------------------------


def decode_sample(path: str, size: int) -> np.ndarray:
    """uint8 [size, size, 3]: draft decode, shorter side to ``size`` (bilinear, antialiased), centre crop.

    The same steps as inference with ``Preprocess(resize_size=size, crop_size=size)``.
    """
    return fit_image(load_image(path, draft_size=2 * size), size)


def fit_image(image: Image.Image, size: int) -> np.ndarray:
    """An RGB PIL image as uint8 [size, size, 3]: shorter side resized to ``size``, centre crop."""
    image = F.resize(trim_aspect(image.convert("RGB")), [size], interpolation=InterpolationMode.BILINEAR,
                     antialias=True)
    return np.array(F.center_crop(image, [size]), dtype=np.uint8)  # a writable copy


class DecodedImages:
    """Every sample decoded once to uint8 [N, S, S, 3]; ``failed`` maps an index to its reason.

    With ``cache_dir`` the array is a ``.npy`` memmap named after the samples'
    content hashes and the size, so a later run over the same images reuses it.
    """

    def __init__(self, array: np.ndarray, failed: dict[int, str]) -> None:
        self.array = array
        self.failed = failed

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    def subset(self, start: int, stop: int | None) -> DecodedImages:
        """Rows ``start:stop`` (a view; failures renumbered)."""
        stop = len(self.array) if stop is None else stop
        return DecodedImages(self.array[start:stop],
                             {i - start: reason for i, reason in self.failed.items() if start <= i < stop})

    @classmethod
    def build(cls, samples: Sequence[Sample], size: int, *, cache_dir: str | os.PathLike[str] | None = None,
              workers: int | None = None, progress: ProgressFn | None = None,
              cancel: threading.Event | None = None) -> DecodedImages:
        if cache_dir is not None:
            cached = cls._load(Path(cache_dir), samples, size)
            if cached is not None:
                if progress is not None:
                    progress(len(samples), len(samples))
                return cached
        shape = (len(samples), size, size, 3)
        if cache_dir is None:
            return cls._decode_into(np.zeros(shape, np.uint8), samples, size, workers, progress, cancel)
        folder = Path(cache_dir)
        stem = cls._key(samples, size)
        tmp = folder / f".{stem}.{os.getpid()}.npy"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            remove_stale_partials(folder)
            array = reserve_npy(tmp, shape)  # checks free space, allocates every block: no SIGBUS later
            failed = cls._decode_into(array, samples, size, workers, progress, cancel).failed
            array.flush()
            del array
            atomic_write_text(folder / f"{stem}.json", json.dumps({str(k): v for k, v in failed.items()}))
            os.replace(tmp, folder / f"{stem}.npy")
        except (OSError, StudioError) as exc:
            if isinstance(exc, (DiskCacheError, Cancelled)):
                raise
            raise DiskCacheError(f"cannot write the decoded-image cache in {folder}: "
                                 f"{getattr(exc, 'strerror', None) or exc}") from None
        finally:
            tmp.unlink(missing_ok=True)
        loaded = cls._load(folder, samples, size)
        assert loaded is not None
        return loaded

    @classmethod
    def _decode_into(cls, array: np.ndarray, samples: Sequence[Sample], size: int, workers: int | None,
                     progress: ProgressFn | None, cancel: threading.Event | None) -> DecodedImages:
        failed: dict[int, str] = {}

        def one(index: int) -> None:
            if cancel is not None and cancel.is_set():
                return
            try:
                array[index] = decode_sample(samples[index].path, size)
            except ImageError as exc:
                failed[index] = exc.reason

        total = len(samples)
        block = 64
        with ThreadPoolExecutor(workers or min(4, os.cpu_count() or 1), thread_name_prefix="decode") as pool:
            for start in range(0, total, block):  # in blocks: cancel and progress stay responsive
                if cancel is not None and cancel.is_set():
                    raise Cancelled("decoding the images")
                list(pool.map(one, range(start, min(start + block, total))))
                if progress is not None:
                    progress(min(start + block, total), total)
        if cancel is not None and cancel.is_set():
            raise Cancelled("decoding the images")
        return cls(array, failed)

    @staticmethod
    def _key(samples: Sequence[Sample], size: int) -> str:
        sha = hashlib.sha256(f"{_CACHE_FORMAT}|{size}|".encode())
        for sample in samples:
            sha.update(sample.digest.encode() + b"|")
        return f"decoded-{size}px-{sha.hexdigest()[:24]}"

    @classmethod
    def _load(cls, folder: Path, samples: Sequence[Sample], size: int) -> DecodedImages | None:
        stem = cls._key(samples, size)
        try:
            array = np.load(folder / f"{stem}.npy", mmap_mode="r")
            failed = {int(k): str(v) for k, v in read_json(folder / f"{stem}.json").items()}
        except (OSError, ValueError, AttributeError, UnreadableFile):
            return None
        if array.shape != (len(samples), size, size, 3) or array.dtype != np.uint8:
            return None
        return cls(array, failed)


class ImageDataset(torch.utils.data.Dataset):
    """(uint8 [3, S, S] tensor or None, label, index) per sample; None when the file cannot be decoded.

    Serves from a :class:`DecodedImages` when given, else decodes the file on every access.
    ``transform`` (an augmentation on uint8 CHW tensors) runs per sample.
    """

    def __init__(self, samples: Sequence[Sample], size: int, *, decoded: DecodedImages | None = None,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.samples = list(samples)
        self.size = size
        self.decoded = decoded
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor | None, int, int, str | None]:
        sample = self.samples[index]
        if self.decoded is not None:
            if index in self.decoded.failed:
                return None, sample.label, index, self.decoded.failed[index]
            array = np.array(self.decoded.array[index])  # a private, writable copy
        else:
            try:
                array = decode_sample(sample.path, self.size)
            except ImageError as exc:
                return None, sample.label, index, exc.reason
        tensor = torch.from_numpy(array).permute(2, 0, 1)
        if self.transform is not None:
            tensor = self.transform(tensor)
        return tensor.contiguous(), sample.label, index, None


def collate_samples(items: list[tuple[torch.Tensor | None, int, int, str | None]]):
    """Stack the decodable samples: (images uint8 [B,3,S,S], labels [B], skipped [(index, reason)])."""
    good = [item for item in items if item[0] is not None]
    skipped = [(index, reason or "unreadable") for image, _, index, reason in items if image is None]
    if not good:
        return None, None, skipped
    images = torch.stack([item[0] for item in good])
    labels = torch.tensor([item[1] for item in good], dtype=torch.long)
    return images, labels, skipped
