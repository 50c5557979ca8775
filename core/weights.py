"""Find, download, verify, import and safely load pretrained weights.

Official weights live in torch's hub cache (``checkpoints_dir()``), shared with
torchvision, under torchvision's own file names (``resnet18-f37072fd.pth``),
and only files whose SHA-256 matches that name are ever put there; other
imported files live in the app's own folder (``core.weights_store``, which
also decides which file a model uses and labels it: ``weights_info``).
Files are checked structurally before torch reads them (``core.torchfile``).
Every load goes through ``torch.load(..., weights_only=True)``; there is no
unsafe fallback anywhere.  Every write goes through ``core.io.atomic_path`` (a temp file in the
same folder, fsync, ``os.replace``), so the cache never holds a partial file.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

from core import torchfile, torchload, weights_store
from core.errors import Cancelled, DownloadError, WeightsError
from core.io import atomic_path
from core.meta import build_on_meta
from core.models import get_spec
from core.weights_store import WeightsInfo
from core.zoo import list_specs
from core.zoo.spec import ModelSpec

__all__ = [
    "MAX_WEIGHTS_BYTES", "OFFLINE_ENV", "checkpoints_dir", "cached_path", "expected_path",
    "download", "load_state_dict_file", "check_fits", "load_into", "import_weights", "list_weights",
    "weights_info", "WeightsInfo", "installed_rows",
]

MAX_WEIGHTS_BYTES = 2 * 1024**3
OFFLINE_ENV = "CONVNET_STUDIO_OFFLINE"
CHUNK_BYTES = 1024 * 1024
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's convention: name-<sha256 prefix>.pth
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
_BATCHES_TRACKED = "num_batches_tracked"

ProgressFn = Callable[[int, "int | None"], None]  # (bytes done, bytes total or None)
StateDict = dict[str, torch.Tensor]


# -- where weights live ------------------------------------------------------
def checkpoints_dir() -> Path:
    """torch's hub checkpoint folder (follows ``TORCH_HOME`` at call time)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def expected_path(spec: ModelSpec) -> Path:
    """Where ``spec``'s pretrained weights are (or will be) cached."""
    if not spec.weights_file:
        raise WeightsError(f"'{spec.name}' has no pretrained weights")
    return checkpoints_dir() / spec.weights_file


def cached_path(spec: ModelSpec) -> Path | None:
    """The weights file ``spec`` uses, or None when there is none here (or none exist).

    The newest of the official file in the hub cache and the files imported
    into the app's folder (``core.weights_store``); a saved model bundle's spec
    answers its own ``local_weights`` file. Hashes nothing: see ``weights_info``.
    """
    if spec.local_weights is not None:
        return spec.local_weights
    if not spec.weights_file:
        return None
    return weights_store.choose(_official_file(spec), spec.weights_file, verify=False).path


def weights_info(spec: ModelSpec) -> WeightsInfo:
    """What ``spec``'s default weights are: official (hash verified), imported, unverified, bundle or none."""
    if spec.local_weights is not None:
        return WeightsInfo("bundle", spec.local_weights, source_name=spec.local_weights.parent.name)
    if not spec.weights_file:
        return WeightsInfo("none")
    return weights_store.choose(_official_file(spec), spec.weights_file, verify=True)


def _official_file(spec: ModelSpec) -> Path | None:
    path = expected_path(spec)
    return path if path.is_file() else None


def list_weights() -> list[tuple[ModelSpec, Path | None]]:
    """Every pretrained registry entry with the file it uses (None when missing)."""

    return [(spec, cached_path(spec)) for spec in list_specs() if spec.pretrained]


# -- download ----------------------------------------------------------------
def _import_hint(spec: ModelSpec) -> str:
    return (f"import a weights file instead: python main.py weights import FILE --model {spec.name} "
            "(or File > Import weights in the app)")


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _open(url: str, timeout: float):  # -> http.client.HTTPResponse
    request = urllib.request.Request(url, headers={"User-Agent": "convnet-studio"})
    handlers = []
    if urllib.parse.urlsplit(url).hostname in _LOOPBACK_HOSTS:
        handlers.append(urllib.request.ProxyHandler({}))  # never send loopback through a proxy
    return urllib.request.build_opener(*handlers).open(request, timeout=timeout)


MIRROR_ENV = "CONVNET_STUDIO_MIRROR"


def mirror_url(spec: ModelSpec) -> str | None:
    """The weights URL under ``$CONVNET_STUDIO_MIRROR`` (same file name), or None when unset."""
    base = os.environ.get(MIRROR_ENV, "").strip()
    if not base or not spec.weights_url:
        return None
    return base.rstrip("/") + "/" + os.path.basename(urllib.parse.urlsplit(spec.weights_url).path)


def download(spec: ModelSpec, *, url: str | None = None, progress: ProgressFn | None = None,
             cancel: threading.Event | None = None, timeout: float = 30.0) -> Path:
    """Download ``spec``'s weights into the cache and return the file.

    The file is named after the URL's basename; its SHA-256 must start with the
    hash in that name.  ``progress(done, total_or_None)`` is called once before
    the first chunk and after each chunk; ``cancel`` is checked before each
    chunk and raises ``Cancelled``.  ``url`` defaults to the mirror in
    ``$CONVNET_STUDIO_MIRROR``, else torchvision's URL; an explicit ``url`` or a
    mirror ignores ``CONVNET_STUDIO_OFFLINE``.  On any failure nothing is left in the cache.
    """
    explicit = url is not None or mirror_url(spec) is not None
    url = url if url is not None else (mirror_url(spec) or spec.weights_url)
    if not url:
        raise WeightsError(f"'{spec.name}' has no pretrained weights to download")
    if not explicit and _offline():
        raise DownloadError(f"cannot download pretrained weights for '{spec.name}': no network "
                            f"({OFFLINE_ENV} is set); {_import_hint(spec)}")
    name = os.path.basename(urllib.parse.urlsplit(url).path)
    if not _SAFE_NAME.fullmatch(name):
        raise DownloadError(f"cannot download weights for '{spec.name}': bad file name in URL {url}")
    hash_prefix = match.group(1) if (match := HASH_REGEX.search(name)) else ""
    folder = checkpoints_dir()
    folder.mkdir(parents=True, exist_ok=True)
    if cancel is not None and cancel.is_set():
        raise Cancelled("download")
    try:
        response = _open(url, timeout)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"cannot download weights for '{spec.name}': the server answered "
                            f"HTTP {exc.code} {exc.reason} for {url}") from None
    except ValueError as exc:  # unknown scheme, malformed URL
        raise DownloadError(f"cannot download weights for '{spec.name}': bad URL {url} ({exc})") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _network_error(spec, url, exc) from None
    with response:
        length = response.headers.get("Content-Length", "")
        total = int(length) if length.isdigit() else None
        with _atomic_file(folder / name) as tmp:
            digest = _stream(response, tmp, spec, url, total, progress, cancel)
            if not digest.startswith(hash_prefix):
                raise DownloadError(
                    f"downloaded weights for '{spec.name}' are corrupt: SHA-256 {digest[:16]}... "
                    f"does not start with {hash_prefix} from the file name {name}; nothing was saved, "
                    "try again")
    weights_store.remember_hash(folder / name, digest)
    return folder / name


def _network_error(spec: ModelSpec, url: str, exc: BaseException) -> DownloadError:
    reason = getattr(exc, "reason", None) or exc
    return DownloadError(f"cannot download pretrained weights for '{spec.name}' from {url}: "
                         f"no network connection? ({reason}); {_import_hint(spec)}")


def _stream(response, tmp: Path, spec: ModelSpec, url: str, total: int | None,
            progress: ProgressFn | None, cancel: threading.Event | None) -> str:
    """Copy the body into ``tmp`` chunk by chunk; return its SHA-256 hex digest."""
    sha, done = hashlib.sha256(), 0
    if (total or 0) > MAX_WEIGHTS_BYTES:
        raise DownloadError(f"cannot download weights for '{spec.name}': {url} is {_size(total or 0)}, "
                            f"more than the {_size(MAX_WEIGHTS_BYTES)} allowed")
    if progress is not None:
        progress(0, total)
    with open(tmp, "wb") as out:
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled("download")
            try:
                chunk = response.read(CHUNK_BYTES)
            except (OSError, http.client.HTTPException) as exc:
                raise _network_error(spec, url, exc) from None
            if not chunk:
                break
            out.write(chunk)
            sha.update(chunk)
            done += len(chunk)
            if done > MAX_WEIGHTS_BYTES:
                raise DownloadError(f"cannot download weights for '{spec.name}': {url} is larger than "
                                    f"the {_size(MAX_WEIGHTS_BYTES)} allowed")
            if progress is not None:
                progress(done, total)
    if total is not None and done != total:
        raise DownloadError(f"download of weights for '{spec.name}' was cut off after "
                            f"{_size(done)} of {_size(total)}; nothing was saved, try again")
    return sha.hexdigest()


@contextlib.contextmanager
def _atomic_file(dest: Path) -> Iterator[Path]:
    """Yield a temp path next to ``dest``: fsynced and renamed onto ``dest`` on success, deleted otherwise."""
    with atomic_path(dest, suffix=".part", error=WeightsError) as tmp:
        yield tmp


# -- safe loading ------------------------------------------------------------
def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


def load_state_dict_file(
    path: str | os.PathLike[str], *, max_bytes: int = MAX_WEIGHTS_BYTES, mmap: bool = True,
    spec: ModelSpec | None = None,
) -> StateDict:
    """Load a state dict safely (``weights_only=True``, never anything else).

    Accepts a dict of tensors, or a checkpoint dict holding one under
    ``'state_dict'`` or ``'model'``; strips a DataParallel ``module.`` prefix;
    refuses empty, oversized, malformed or non-finite files with ``WeightsError``.
    The file's structure is checked first (``core.torchfile``): only dense
    tensors backed by bytes in the file; with ``spec``, its keys and shapes must
    fit that architecture before any tensor data is read.
    """
    path = Path(path)
    plan = torchload.plan_file(path, max_bytes=max_bytes, what="weights file")
    refs = _extract_state_dict(plan.root, kind=torchfile.TensorRef)
    if refs is None:
        raise WeightsError(f"{path} is not a valid PyTorch weights file (it holds a "
                           f"{type(plan.root).__name__}, not a state dict of tensors)")
    if spec is not None:
        try:
            skeleton = _unprefixed({k: r.skeleton() for k, r in refs.items()})
            _raise_unless_fits(_meta_model(spec).state_dict(), spec.adapt_state_dict(skeleton), spec.name)
        except WeightsError as exc:
            raise WeightsError(f"{path}: {exc}") from None
    obj = torchload.load_planned(path, plan, mmap=mmap)
    state = _extract_state_dict(obj)
    if state is None:  # the plan said otherwise: the file changed under us
        raise WeightsError(f"{path} changed while it was being read")
    state = _unprefixed(state)
    bad = _first_non_finite(state)
    if bad is not None:
        raise WeightsError(f"{path} contains NaN/Inf values in '{bad}'")
    return state


def _unprefixed(state: dict) -> dict:
    if all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def _is_tensor_dict(obj: object, kind: type) -> bool:
    return (isinstance(obj, dict) and len(obj) > 0
            and all(isinstance(k, str) and isinstance(v, kind) for k, v in obj.items()))


def _extract_state_dict(obj: object, kind: type = torch.Tensor) -> dict | None:
    """The dict of tensors (``kind``: torch.Tensor, or TensorRef in a file's plan) ``obj`` is or holds."""
    if _is_tensor_dict(obj, kind):
        return dict(obj)  # type: ignore[arg-type]
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if _is_tensor_dict(obj.get(key), kind):
                return dict(obj[key])
    return None


def _first_non_finite(state: Mapping[str, torch.Tensor]) -> str | None:
    """The first key whose tensor holds a NaN or an infinity, or None.

    A tensor's 2-norm is finite whenever all of its values are (squares are
    never negative, so an inf or NaN cannot cancel), and ``torch._foreach_norm``
    takes all tensors of one dtype in one call: one fast pass over ResNet-50's
    100 MB instead of 320 ``isfinite().all()`` calls, 10-20x less CPU. A norm
    that overflows on huge but finite values is confirmed exactly, tensor by
    tensor, so the answer is the same as checking every value.
    """
    named = [(k, t.detach()) for k, t in state.items() if t.is_floating_point() and not t.is_meta and t.numel()]
    flagged: set[str] = set()
    for dtype in {t.dtype for _, t in named}:
        group = [(k, t) for k, t in named if t.dtype == dtype]
        for (key, tensor), ok in zip(group, _norms_finite([t for _, t in group])):
            if not ok and not bool(torch.isfinite(tensor).all()):
                flagged.add(key)
    return next((key for key, _ in named if key in flagged), None)


def _norms_finite(tensors: list[torch.Tensor]) -> list[bool]:
    wide = torch.float64 if tensors[0].dtype == torch.float64 else torch.float32
    try:
        norms = torch._foreach_norm(tensors, 2, dtype=wide)
    except (RuntimeError, TypeError, AttributeError):  # a build or dtype without the fused op
        norms = [torch.linalg.vector_norm(t, 2, dtype=wide) for t in tensors]
    return torch.isfinite(torch.stack(norms)).tolist()


# -- fitting a model ---------------------------------------------------------
def _listed(keys: list[str], limit: int = 3) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def _fit_problems(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> list[str]:
    missing = [k for k in expected if k not in state and not k.endswith(_BATCHES_TRACKED)]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
              for k in expected if k in state and state[k].shape != expected[k].shape]
    kinds = [f"{k} {str(state[k].dtype).removeprefix('torch.')} vs {str(expected[k].dtype).removeprefix('torch.')}"
             for k in expected if k in state and not _loadable_as(state[k], expected[k])]
    named = (("missing keys", missing), ("unexpected keys", unexpected),
             ("shape mismatches (file vs model)", shapes), ("type mismatches (file vs model)", kinds))
    return [f"{what}: {_listed(keys)}" for what, keys in named if keys]


def _loadable_as(value: torch.Tensor, ref: torch.Tensor) -> bool:
    """A float slot takes floats of any precision (cast on load); a complex value fits nowhere real."""
    if value.is_complex() or ref.is_complex():
        return value.is_complex() and ref.is_complex()
    return value.is_floating_point() or not ref.is_floating_point()


def check_fits(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, name: str | None = None) -> None:
    """Raise ``WeightsError`` unless ``state_dict`` has exactly ``model``'s keys and shapes.

    A float parameter or buffer also needs a floating-point tensor (of any
    precision): an integer or complex one would fail later, inside the forward pass.

    Missing BatchNorm ``num_batches_tracked`` counters are tolerated (torchvision's
    older files lack them).  Works on a model built on the meta device.
    """
    _raise_unless_fits(model.state_dict(), state_dict, name or type(model).__name__)


def _raise_unless_fits(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], what: str) -> None:
    problems = _fit_problems(expected, state)
    if problems:
        raise WeightsError(f"these weights do not fit {what} (for another architecture?): " + "; ".join(problems))


def load_into(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
              spec: ModelSpec | None = None) -> nn.Module:
    """Adapt (``spec.adapt_state_dict``), check and load weights into ``model``; return it.

    Loads with ``assign=True``, so a model built under ``torch.device("meta")``
    receives the file's (CPU) tensors; the model takes ownership of them.
    Floating tensors are cast to the model's dtype.
    """
    state = dict(spec.adapt_state_dict(state_dict)) if spec is not None else dict(state_dict)
    expected = model.state_dict()  # once: check and fill from the same dict
    _raise_unless_fits(expected, state, spec.name if spec is not None else type(model).__name__)
    for key, ref in expected.items():
        if key not in state:  # only num_batches_tracked gets here (check_fits)
            state[key] = torch.zeros((), dtype=torch.long)
        elif state[key].is_floating_point() and state[key].dtype != ref.dtype:
            state[key] = state[key].to(ref.dtype)
    model.load_state_dict(state, strict=True, assign=True)
    return model


# -- importing a file --------------------------------------------------------
def _meta_model(spec: ModelSpec) -> nn.Module:
    return build_on_meta(spec)


def _detect_spec(state: StateDict, specs: list[ModelSpec]) -> ModelSpec:
    """First pretrained spec fitting ``state`` as is, else the first fitting after its adapter."""
    expected = {spec.name: _meta_model(spec).state_dict() for spec in specs}
    for adapt in (False, True):
        for spec in specs:
            try:
                candidate = spec.adapt_state_dict(state) if adapt else state
            except Exception:  # noqa: BLE001 - an adapter that cannot handle a foreign state dict: no fit
                continue
            if not _fit_problems(expected[spec.name], candidate):
                return spec
    raise WeightsError("this file does not match any known architecture "
                       "(name the model with --model to see what differs)")


def import_weights(path: str | os.PathLike[str], *, model: str | None = None) -> tuple[ModelSpec, Path]:
    """Install a weights file as ``model``'s weights (or the first registry entry it fits); returns where.

    The file is loaded safely and checked against every entry sharing that
    official file name. Only a file whose SHA-256 starts with the hash in the
    official name (``resnet18-f37072fd.pth``) is installed under that name in
    torch's hub cache, byte for byte; any other file (fine-tuned, re-saved,
    random) goes to the app's own folder (``core.weights_store``) as a plain
    state dict with a sidecar naming it, and is labelled "imported" wherever it
    is used. Either way it is the newest install, so it is what the model uses.
    """
    path = Path(path)
    spec = get_spec(model) if model is not None else None
    state = load_state_dict_file(path, spec=spec)
    specs = [s for s in list_specs() if s.pretrained]
    try:  # a file that fits no architecture: the message names the file
        spec = spec or _detect_spec(state, specs)
        if not spec.weights_file:
            raise WeightsError(f"'{spec.name}' has no pretrained weights file to import into; "
                               "load a fine-tuned model bundle instead")
        sharing = [s for s in specs if s.weights_file == spec.weights_file and s.name != spec.name]
        for user in [spec, *sharing]:  # the installed file must load for every entry that reads it
            check_fits(_meta_model(user), user.adapt_state_dict(state), name=user.name)
    except WeightsError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    digest = weights_store.file_sha256(path)
    prefix = weights_store.official_prefix(spec.weights_file)
    if prefix and digest.startswith(prefix):
        return spec, _install_official(path, spec, digest)
    return spec, _install_imported(path, spec, state, digest)


def _install_official(source: Path, spec: ModelSpec, digest: str) -> Path:
    """Copy the official file into the hub cache, checking the bytes copied are the bytes hashed."""
    dest = expected_path(spec)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _atomic_file(dest) as tmp:
        sha = hashlib.sha256()
        with open(source, "rb") as src, open(tmp, "wb") as out:
            while chunk := src.read(CHUNK_BYTES):
                sha.update(chunk)
                out.write(chunk)
        if sha.hexdigest() != digest:
            raise WeightsError(f"{source} changed while it was being imported; nothing was installed")
    weights_store.remember_hash(dest, digest)
    return dest


def _install_imported(source: Path, spec: ModelSpec, state: StateDict, digest: str) -> Path:
    """A plain state dict in the app's weights folder, named by the source's hash, with its sidecar."""
    folder = weights_store.imports_dir() / spec.name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(f"cannot write into {folder}: {exc.strerror or exc}") from None
    stem = digest[:12]
    dest = folder / f"{stem}.pth"
    with _atomic_file(dest) as tmp:
        torch.save(state, tmp)
    with _atomic_file(folder / f"{stem}.json") as tmp:
        tmp.write_text(weights_store.sidecar_json(spec.name, spec.weights_file or "", source, digest, dest.name),
                       encoding="utf-8")
    return dest


def installed_rows() -> list[dict]:
    """``weights list``: per pretrained entry its official file's state, then the files imported for it.

    ``status`` of an official-name file is "official" or "hash mismatch: not
    the official file" (hashes cached, see ``core.weights_store.file_sha256``);
    ``in_use`` marks the file the model uses (``weights_info``).
    """
    rows = []
    for spec in (s for s in list_specs() if s.pretrained):
        official, used = _official_file(spec), weights_info(spec).path
        status = "not downloaded"
        if official is not None:
            digest = weights_store.file_sha256(official)
            ok = digest.startswith(weights_store.official_prefix(spec.weights_file) or "\0")
            status = "official" if ok else "hash mismatch: not the official file"
        rows.append({"model": spec.name, "kind": "official", "file": spec.weights_file, "cached": official is not None,
                     "path": str(official) if official else None, "size": spec.weights_size, "status": status,
                     "in_use": official is not None and used == official, "source_name": None, "imported_at": None})
        for entry in weights_store.imported_files(spec.weights_file):
            if entry.model == spec.name:
                rows.append({"model": spec.name, "kind": "imported", "file": entry.path.name, "cached": True,
                             "path": str(entry.path), "size": entry.path.stat().st_size, "status": "imported",
                             "in_use": used == entry.path, "source_name": entry.source_name,
                             "imported_at": entry.imported_at})
    return rows
