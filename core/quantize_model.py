"""Making a model's int8 variant from a folder of the user's images: the one recipe the ``quantize`` command
and the window's Classify > Make int8 Variant… both follow.

1. The images of the folder, shuffled with a fixed seed (so a class-folder layout is calibrated on every
   class, not the first ones).
2. For a saved model whose training folder is still there, the check runs on its validation images with
   their labels (so the verdict also compares validation accuracy); else calibration and check are
   separate images of the folder (``core.quantize.split_images``).
3. The fp32 export classify runs (made now, in a child process, when it is missing), then
   ``core.quantize.quantize``: int8 is kept only where it keeps its answers.

Imports torch only to make a missing export or to read a saved model's training split.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from pathlib import Path

from core import quantize
from core.errors import StudioError
from core.images import collect_images

DEFAULT_CALIBRATE = 100
DEFAULT_CHECK = 200
MAX_IMAGES = 5000


@dataclass(frozen=True)
class Int8Result:
    model: str
    fp32: Path
    verdict: quantize.Verdict
    check_source: str  # "validation images of the saved model" or the folder
    overlapping: bool  # too few images: the check reused calibration images
    notes: tuple[str, ...] = ()  # why the validation images were not used, if they were not

    @property
    def int8(self) -> Path | None:
        return quantize.int8_path(self.fp32) if self.verdict.accepted else None


def make_int8(model: str, folder: str | Path, *, weights: str = "default", calibrate: int = DEFAULT_CALIBRATE,
              check: int = DEFAULT_CHECK, progress: quantize.ProgressFn | None = None,
              cancel: threading.Event | None = None) -> Int8Result:
    """Calibrate ``model``'s int8 variant on ``folder``'s images and check it; raises StudioError on bad input,
    ``Cancelled`` when ``cancel`` is set."""
    from core.models import get_spec  # noqa: PLC0415 - lazy: the zoo imports torch; the window calls this off its thread

    if not (1 <= calibrate <= MAX_IMAGES and 1 <= check <= MAX_IMAGES):
        raise StudioError(f"the calibration and check sets must have between 1 and {MAX_IMAGES} images")
    if weights == "none":
        raise StudioError("a random-init model has nothing worth quantizing")
    spec = get_spec(model)
    images = sorted(collect_images([str(folder)]).images, key=str)
    if not images:
        raise StudioError(f"{folder}: no images found")
    random.Random(0).shuffle(images)
    notes: list[str] = []
    labelled = _validation_images(model, spec.categories, notes)
    if labelled:
        calibration, checked = images[:calibrate], [Path(p) for p in labelled][:check]
        overlapping = bool({str(p) for p in calibration} & {str(p) for p in checked})
    else:
        calibration, checked, overlapping = quantize.split_images(images, calibrate, check)
    fp32 = fp32_export(model, weights)
    verdict = quantize.quantize(fp32, spec.preprocess, calibration, checked,
                                labels_of=(lambda path: labelled.get(str(path))) if labelled else None,
                                progress=progress, cancel=cancel)
    source = "validation images of the saved model" if labelled else str(folder)
    return Int8Result(spec.name, fp32, verdict, source, overlapping, tuple(notes))


def fp32_export(model: str, weights: str) -> Path:
    """The cached fp32 export classify uses, made now (in a child process) when it is missing."""
    from core.inference import InferenceEngine  # noqa: PLC0415 - lazy: torch, only when called

    with InferenceEngine(device="cpu", onnx=True) as engine:
        info = engine.load(model, weights)
        if info.untrained:
            raise StudioError(f"{model} has no weights file (random init): nothing worth quantizing")
        path = engine.onnx_file(model, weights, wait=None)
    if path is None:
        raise StudioError(f"could not make the ONNX export of {model} (is the onnx extra installed?)")
    return path


def _validation_images(model: str, classes: tuple[str, ...], notes: list[str]) -> dict[str, int]:
    """{path: class index} of a saved model's validation split, re-made from its training folder; {} when it
    is a registry model or the folder is gone or changed (``notes`` then says why, for a saved model)."""
    from core.bundle_files import find_bundle  # noqa: PLC0415 - lazy: imports the zoo, so torch (~2 s)
    from core.data import scan_folder, split_samples  # noqa: PLC0415 - as above

    try:
        bundle = find_bundle(model)
        training = bundle.training if bundle is not None else {}
        folder = training.get("data") if isinstance(training, dict) else None
        if not isinstance(folder, str) or not folder or not Path(folder).is_dir():
            return {}
        split = split_samples(scan_folder(folder), float(training.get("val_fraction", 0.2)),
                              int(training.get("seed", 0)))
    except (StudioError, OSError, ValueError, TypeError) as exc:
        notes.append(f"the saved model's validation images are not used ({exc})")
        return {}
    if tuple(split.classes) != tuple(classes):
        notes.append("the training folder's classes changed since the model was saved: no accuracy check")
        return {}
    return {str(Path(s.path)): s.label for s in split.val}

