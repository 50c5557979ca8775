"""Export a saved model bundle to TorchScript or ONNX.

Both take the network's own input: a float batch [N, 3, S, S] normalised with
the bundle's mean and std (its ``meta.json`` travels inside the TorchScript file
as an extra file, and as ONNX metadata), and return logits [N, classes].
ONNX needs the optional extra: ``pip install convnet-studio[onnx]``.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
from pathlib import Path

import torch

from core.errors import StudioError
from core.io import check_user_target, write_user_file
from core.training.bundles import META_NAME, Bundle, load_bundle_model
from core.training.settings import EXPORT_FORMATS
from core.userfiles import read_small_file

__all__ = ["FORMATS", "export_bundle", "ONNX_HINT"]

FORMATS = EXPORT_FORMATS
ONNX_HINT = "ONNX export needs the optional ONNX packages: pip install convnet-studio[onnx]"


def _meta_text(bundle: Bundle) -> str:
    return read_small_file(bundle.folder / META_NAME).decode("utf-8", errors="replace")


def export_bundle(name_or_path: str | os.PathLike[str], fmt: str, out: str | os.PathLike[str], *,
                  overwrite: bool = False, hint: str = "") -> Path:
    """Write the bundle's model to ``out`` in ``fmt`` ("torchscript" or "onnx"); returns the file.

    ``out`` follows :func:`core.io.write_user_file`: a new name or (with ``overwrite``) a regular file.
    """
    if fmt not in FORMATS:
        raise StudioError(f"unknown export format '{fmt}' (choose one of: {', '.join(FORMATS)})")
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401, PLC0415 - optional extra (onnx): checked before the slow part
        except ImportError:
            raise StudioError(ONNX_HINT) from None
    out = Path(out)
    check_user_target(out, overwrite=overwrite, hint=hint)  # before the slow part
    model, bundle = load_bundle_model(name_or_path)
    size = bundle.preprocess.crop_size
    example = torch.zeros(1, 3, size, size)
    if fmt == "torchscript":
        return _torchscript(model, example, bundle, out, overwrite, hint)
    return _onnx(model, example, bundle, out, overwrite, hint)


def _torchscript(model: torch.nn.Module, example: torch.Tensor, bundle: Bundle, out: Path, overwrite: bool,
                 hint: str) -> Path:
    # torch.jit is deprecated upstream (FutureWarning) but still the one format LibTorch/C++ loads.
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(model, example, check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={META_NAME: _meta_text(bundle)})
    return write_user_file(out, buffer.getvalue(), overwrite=overwrite, hint=hint)


def _onnx(model: torch.nn.Module, example: torch.Tensor, bundle: Bundle, out: Path, overwrite: bool,
          hint: str) -> Path:
    import onnx  # noqa: PLC0415 - optional extra (onnx), present: export_bundle checked

    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(model, (example,), tmp, input_names=["image"], output_names=["logits"],
                              dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False,
                              opset_version=17)
        proto = onnx.load(tmp)
        entry = proto.metadata_props.add()
        entry.key, entry.value = "convnet_studio_meta", json.dumps(json.loads(_meta_text(bundle)))
        return write_user_file(out, proto.SerializeToString(), overwrite=overwrite, hint=hint)
    except StudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - the exporter raises many kinds; say which model failed
        raise StudioError(f"ONNX export of '{bundle.name}' failed: {type(exc).__name__}: {str(exc)[:300]}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
