"""Issue 13's acceptance harness: every entry point that reads a user file, on every hostile file, capped.

Each (entry point, file) pair is one job for ``capped_runner``: a child process
that has imported torch and the app, caps its address space at 2 GiB above
that, and gives each job a time cap (see capped_runner). All jobs of a module
run in one batch (a fixture); each pair is its own test case, which asserts:
no traceback, no crash, no cap hit; a refused file is refused with a message
naming it, a good one is handled; plus the case's checks (folder walks stay
inside the folder and count each file once, no terminal escapes reach the
output, strict JSON, a message that says what the file is).

The files: ``hostile_corpus`` (issue 13's classes), and in the slow set also
``corpus.write_bad_corpus`` and ``test_hostile_models.HOSTILE``. A pair that
fails on today's code is marked ``xfail(strict=True)`` with the issue item it
waits for (``known_failing.KNOWN_CAPPED``): once the fix lands it passes, and
the XPASS says which line to remove there.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from tests.reliability import hostile_corpus as hc
from tests.reliability.capped_runner import MEMORY_CAP, WALL_CAP_S, run_jobs
from tests.reliability.hostile_corpus import Hostile
from tests.reliability.known_failing import KNOWN_CAPPED
from tests.support.jsonout import strict_json as _strict_json

pytestmark = [pytest.mark.subprocess, pytest.mark.timeout(3600)]  # the first test's setup runs the whole batch

MODEL = "resnet18"
BASE = ["--device", "cpu"]
FOLDER_TIME_CAP_S = 90.0  # a folder job decodes several files: four float TIFFs are a minute of honest work


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text.encode("ascii", "backslashreplace").decode()).strip("-")


def _hostile_model_cases() -> tuple[Hostile, ...]:
    from tests.reliability.test_hostile_models import HOSTILE

    return tuple(Hostile(slug(h.name), "refused", "issue 12 corpus: " + h.name) for h in HOSTILE)


def _bad_corpus_cases() -> tuple[Hostile, ...]:
    from tests.reliability.corpus import write_bad_corpus

    with tempfile.TemporaryDirectory() as tmp:  # only the names and expectations (the files are tiny)
        cases = write_bad_corpus(Path(tmp))
    return tuple(Hostile(c.name, "ok" if c.expect == "ok" else "refused", "issue 12 corpus") for c in cases)


OLD_WEIGHTS = _hostile_model_cases()
OLD_IMAGES = _bad_corpus_cases()

# Entry points per set. The whole product (every case through every entry point) runs in test_capped_slow;
# test_capped's set (FAST) takes, per set, the entry points that reach each class of problem first. Both are
# marked slow: the FAST batch alone is over a minute on two cores, beyond make check's budget.
IMAGE_ENTRIES = ("classify", "explain", "compare --json", "train scan", "train decode")
FOLDER_ENTRIES = ("classify", "classify --json", "compare --json", "evaluate --json", "train scan", "drop walk",
                  "train decode")
WEIGHTS_ENTRIES = ("weights import --model", "weights import", "classify --weights", "bundle classify --model PATH")
BUNDLE_ENTRIES = ("classify --model PATH", "classify --model NAME", "list_bundles", "compare --models NAME",
                  "explain --model NAME", "export")
CHECKPOINT_ENTRIES = ("train --resume",)
FAST: dict[str, set[str]] = {
    "image": {"classify", "train scan"},
    "folder": {"classify --json", "evaluate --json", "train scan", "drop walk"},
    "weights": {"weights import --model", "classify --weights", "bundle classify --model PATH"},
    "bundle": {"classify --model PATH", "classify --model NAME", "list_bundles"},
    "checkpoint": {"train --resume"},
}
FAST_CASES = {  # (set, entry) -> cases that also run fast: where the issue saw the problem
    ("folder", "classify"): {"invalid_utf8_names"},
    ("folder", "train decode"): {"four_float_tiffs"},
    ("bundle", "compare --models NAME"): {"absurd-params", "absurd-metrics", "ansi-class-names"},
}
FAST_SKIP = {("folder", "four_float_tiffs")}  # four 14 s decodes per entry point: the decode entry is enough


def _is_fast(kind: str, entry: str, case: str) -> bool:
    if case in FAST_CASES.get((kind, entry), ()):
        return True
    return entry in FAST[kind] and (kind, case) not in FAST_SKIP


# ------------------------------------------------------------------ jobs


@dataclass
class Pair:
    kind: str  # image, folder, weights, bundle, checkpoint
    entry: str
    case: Hostile
    slow: bool

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.entry}:{slug(self.case.name)}"


def _pairs() -> list[Pair]:
    pairs = []
    sets = (("image", hc.IMAGES, IMAGE_ENTRIES, False), ("image", OLD_IMAGES, IMAGE_ENTRIES, True),
            ("folder", hc.FOLDERS, FOLDER_ENTRIES, False), ("weights", hc.WEIGHTS, WEIGHTS_ENTRIES, False),
            ("weights", OLD_WEIGHTS, WEIGHTS_ENTRIES, True), ("bundle", hc.BUNDLES, BUNDLE_ENTRIES, False),
            ("checkpoint", hc.CHECKPOINTS, CHECKPOINT_ENTRIES, False))
    for kind, cases, entries, slow in sets:
        for case in cases:
            for entry in entries:
                pairs.append(Pair(kind, entry, case, slow or not _is_fast(kind, entry, case.name)))
    return pairs


PAIRS = _pairs()


@dataclass
class Corpus:
    root: Path
    env: dict[str, str]
    photo: Path
    files: dict[tuple[str, str], Path] = field(default_factory=dict)  # (kind, case name) -> file or folder
    homes: dict[str, Path] = field(default_factory=dict)  # bundle case -> its XDG_DATA_HOME


def _env(root: Path) -> dict[str, str]:
    env = {"CONVNET_STUDIO_OFFLINE": "1", "CONVNET_STUDIO_ONNX": "0", "QT_QPA_PLATFORM": "offscreen"}
    for var, sub in (("TORCH_HOME", "torch"), ("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"),
                     ("XDG_CACHE_HOME", "cache")):
        (root / "home" / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(root / "home" / sub)
    return env


def _scan_folder_for(root: Path, name: str, image: Path, photo: Path) -> Path:
    """A training folder with ``image`` among good photos (so the scan has two usable classes)."""
    folder = root / "scan" / slug(name)
    if folder.exists():
        return folder
    for k, cls in enumerate(hc.CLASSES):
        (folder / cls).mkdir(parents=True)
        for j in range(2):
            (folder / cls / f"good-{j}.jpg").write_bytes(photo.read_bytes()[:-2] + bytes([k, j, 0xFF, 0xD9]))
    os.link(image, folder / hc.CLASSES[0] / image.name)
    return folder


def _good_run(root: Path) -> Path:
    """A real run folder: resnet18 from scratch at 32 px, one epoch on 12 small photos (a few seconds)."""
    from core.training import Trainer, TrainSettings

    data = root / "photos"
    for k, cls in enumerate(hc.CLASSES):
        hc._photos(data / cls, 6, seed=k)
    settings = TrainSettings(data=str(data), model=MODEL, weights="none", strategy="scratch", batch_size=8, lr=1e-3,
                             image_size=32, augment="none", seed=1, cache="memory", epochs=1, name="photos")
    trainer = Trainer(settings, run_dir=root / "run", models_root=root / "run-models",
                      keep_checkpoints=True)  # a finished run is pruned otherwise: keep one to tamper with
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trainer.fit()
    finally:
        torch.set_num_threads(before)
    return root / "run"


def build_corpus(root: Path, *, slow: bool) -> Corpus:
    from PIL import Image

    from core.training import bundles
    from core.zoo import get_spec
    from tests.reliability.corpus import write_bad_corpus
    from tests.reliability.test_hostile_models import HOSTILE, _bundle_state, _meta

    corpus = Corpus(root, _env(root), root / "photo.jpg")
    Image.effect_noise((64, 48), 40).convert("RGB").save(corpus.photo, "JPEG")
    images = hc.write_hostile_images(root / "images")
    corpus.files.update((("image", n), p) for n, p in images.items())
    if slow:
        corpus.files.update((("image", c.name), c.path) for c in write_bad_corpus(root / "bad-images"))
    float_tiff = images["float32_deflate_near_limit.tif"]
    folders = hc.write_hostile_folders(root / "folders", root / "outside", float_tiff)
    corpus.files.update((("folder", n), p) for n, p in folders.items())
    torch.manual_seed(0)
    state = get_spec(MODEL).build().state_dict()
    weights = hc.write_hostile_weights(root / "weights", state)
    if slow:
        (root / "old-weights").mkdir()
        for h in HOSTILE:
            weights[slug(h.name)] = root / "old-weights" / f"{slug(h.name)}.pth"
            h.make(weights[slug(h.name)], state, root / "CANARY")
    corpus.files.update((("weights", n), p) for n, p in weights.items())
    good = bundles.write_bundle("pets", _bundle_state(), _meta(), root=root / "good-bundle")
    made = hc.write_hostile_bundles(root / "bundle-store", good, weights)
    for name, folder in made.items():  # each bundle alone in its own models folder (a FIFO blocks only its own)
        home = root / "bundle-homes" / name
        (home / "convnet-studio" / "models").mkdir(parents=True)
        folder.rename(home / "convnet-studio" / "models" / name)
        corpus.homes[name] = home
        corpus.files[("bundle", name)] = home / "convnet-studio" / "models" / name
    run = _good_run(root / "training")
    corpus.files.update((("checkpoint", n), p) for n, p in hc.write_hostile_checkpoints(root / "runs", run).items())
    return corpus


def job_for(pair: Pair, corpus: Corpus) -> dict:
    """The job that runs ``pair``: a command line (``cli``) or a core API call."""
    out = corpus.root / "out" / slug(pair.id)
    env: dict[str, str] = {}
    job: dict = {"id": pair.id, "env": env}
    k, e, name = pair.kind, pair.entry, pair.case.name
    if k == "weights" and e == "bundle classify --model PATH":
        path = corpus.files[("bundle", f"w-{name}")]
    else:
        path = corpus.files[(k, name)]
    p = str(path)
    photo = str(corpus.photo)
    cli = {
        ("image", "classify"): ["classify", p, "--model", MODEL, "--weights", "none", *BASE],
        ("image", "explain"): ["explain", p, "--model", MODEL, "--weights", "none", "--out", str(out), *BASE],
        ("image", "compare --json"): ["compare", p, "--models", MODEL, "--weights", "none", "--runs", "1", "--json",
                                      *BASE],
        ("folder", "classify"): ["classify", p, "--model", MODEL, "--weights", "none", *BASE],
        ("folder", "classify --json"): ["classify", p, "--model", MODEL, "--weights", "none", "--json", *BASE],
        ("folder", "compare --json"): ["compare", p, "--models", MODEL, "--weights", "none", "--runs", "1",
                                       "--json", *BASE],
        ("folder", "evaluate --json"): ["evaluate", p, "--models", MODEL, "--weights", "none", "--json", *BASE],
        ("weights", "weights import --model"): ["weights", "import", p, "--model", MODEL],
        ("weights", "weights import"): ["weights", "import", p],
        ("weights", "classify --weights"): ["classify", photo, "--model", MODEL, "--weights", p, *BASE],
        ("weights", "bundle classify --model PATH"): ["classify", photo, "--model", p, "--topk", "3", *BASE],
        ("bundle", "classify --model PATH"): ["classify", photo, "--model", p, "--topk", "3", *BASE],
        ("bundle", "classify --model NAME"): ["classify", photo, "--model", name, "--topk", "3", *BASE],
        ("bundle", "compare --models NAME"): ["compare", photo, "--models", name, "--topk", "3", "--runs", "1",
                                              "--json", *BASE],
        ("bundle", "explain --model NAME"): ["explain", photo, "--model", name, "--out", str(out), *BASE],
        ("bundle", "export"): ["export", name, "--format", "torchscript", "--out", str(out) + ".pt"],
        ("checkpoint", "train --resume"): ["train", "--resume", p, "--out", str(out), "--json", *BASE],
    }.get((k, e))
    if cli is not None and k == "bundle" and name == "few-classes":
        cli = [a for i, a in enumerate(cli) if a != "--topk" and cli[i - 1] != "--topk"]  # the default --topk 5
    if cli is not None:
        job.update(entry="cli", args=cli)
    elif e == "list_bundles":
        job.update(entry="list_bundles", args={"root": str(path.parent)})
    elif e in ("train scan", "train decode"):
        root = _scan_folder_for(corpus.root, name, path, corpus.photo) if k == "image" else path
        job.update(entry="scan" if e == "train scan" else "decode", args={"root": str(root)})
    elif e == "drop walk":
        job.update(entry="collect", args={"paths": [p]})
    else:
        raise AssertionError(f"no job for {pair.id}")
    if k == "bundle" and e != "classify --model PATH":
        env["XDG_DATA_HOME"] = str(corpus.homes[name])
    elif k in ("bundle", "weights") and e.endswith("PATH"):
        env["XDG_DATA_HOME"] = str(corpus.root / "empty-home")  # a path is a path: no models folder to fall back on
    if e.startswith("weights import"):
        env["TORCH_HOME"] = str(out / "torch")  # an import that wrongly succeeds must not poison the next job
    if k == "folder":
        job["time_cap"] = FOLDER_TIME_CAP_S
    return job


def run_pairs(root: Path, *, slow: bool, selected: set[str] | None = None) -> tuple[Corpus, dict[str, dict]]:
    corpus = build_corpus(root, slow=slow)
    jobs = [job_for(pair, corpus) for pair in PAIRS if pair.slow == slow and (selected is None or pair.id in selected)]
    return corpus, run_jobs(jobs, env=corpus.env)


def _selected(request) -> set[str]:
    """The pairs this session runs (``-k`` picks a few: only their jobs run)."""
    return {item.callspec.params["pair"].id for item in request.session.items
            if hasattr(item, "callspec") and "pair" in item.callspec.params}


@pytest.fixture(scope="module")
def fast_results(tmp_path_factory: pytest.TempPathFactory, request):
    return run_pairs(tmp_path_factory.mktemp("capped"), slow=False, selected=_selected(request))


@pytest.fixture(scope="module")
def slow_results(tmp_path_factory: pytest.TempPathFactory, request):
    return run_pairs(tmp_path_factory.mktemp("capped-slow"), slow=True, selected=_selected(request))


# ------------------------------------------------------------------ the checks


def _fragments(path: Path) -> list[str]:
    """Printable pieces of the file's name (a message may escape the rest) that a message must show."""
    pieces = [s for s in re.split(r"[\x00-\x1f\x7f\udc80-\udcff]+", path.name) if len(s) >= 3]
    return pieces or [path.parent.name]


def names_the_file(message: str, path: Path) -> bool:
    return all(piece in message for piece in _fragments(path))




def _real_files(folder: Path) -> set[tuple[int, int]]:
    """(device, inode) of every image file inside ``folder``, links not followed."""
    found = set()
    for current, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(current) / name
            if not path.is_symlink() and path.suffix.lower() in (".jpg", ".png", ".tif"):
                st = path.stat()
                found.add((st.st_dev, st.st_ino))
    return found


def _walk_problems(paths: list[str], folder: Path) -> list[str]:
    problems, seen = [], {}
    top = folder.resolve()
    for p in paths:
        real = Path(p).resolve()
        if not real.is_relative_to(top):
            problems.append(f"walked outside the folder: {p}")
            continue
        st = real.stat()
        if (st.st_dev, st.st_ino) in seen:
            problems.append(f"the same file twice: {seen[(st.st_dev, st.st_ino)]} and {p}")
        seen[(st.st_dev, st.st_ino)] = p
    return problems[:5] + ([f"... {len(problems) - 5} more"] if len(problems) > 5 else [])


def _listed_paths(pair: Pair, result: dict) -> list[str] | None:
    """The files a folder job found, where its output lists them."""
    data, entry = result.get("data"), pair.entry
    if entry == "classify --json":
        return [row["path"] for row in _strict_json(result["stdout"])]
    if entry == "compare --json":
        rows = _strict_json(result["stdout"])
        return [p["path"] for p in rows[0]["predictions"]] if rows else []
    if entry == "drop walk":
        return data["images"]
    if entry in ("train scan", "train decode"):
        groups = [p for g in data.get("duplicates", []) for p in g[1:]] if entry == "train scan" else []
        return data["samples"] + groups + [u["path"] for u in data["unreadable"]]
    return None


def problems_of(pair: Pair, result: dict, path: Path) -> list[str]:
    case, out = pair.case, []
    outcome = result["outcome"]
    if outcome in ("traceback", "over_memory", "over_time", "crashed"):
        detail = (result.get("traceback") or result.get("stderr") or "")[-1200:]
        return [f"{outcome} {result.get('detail') or ''} after {result['seconds']} s, peak {result['peak_mb']} MB:\n"
                f"{detail}"]
    file_refused = outcome == "refused"
    message = result["message"]
    if pair.kind == "image" and pair.entry in ("train scan", "train decode"):
        data = result["data"]
        reasons = {Path(u["path"]).name: u["reason"] for u in data["unreadable"]}
        reasons.update((Path(p).name, r) for p, r in data.get("failed", {}).items())
        file_refused = path.name in reasons
        message = f"{path}: {reasons.get(path.name, '')}" if file_refused else ""
        if not file_refused and path.name not in {Path(s).name for s in data["samples"]}:
            out.append("the file is neither a sample nor reported unreadable")
    expect = case.expect
    if pair.entry == "list_bundles" and outcome == "ok":  # a bundle the reader refuses is left out, silently
        file_refused, message = path.name not in result["data"], ""
        if case.name.startswith(("weights-", "w-")):
            expect = "either"  # listing reads meta.json only: bad weights may wait until the model loads
    if expect == "ok" and file_refused:
        out.append(f"refused, should be handled: {message[-400:]!r}")
    if expect == "refused" and not file_refused:
        out.append(f"handled (outcome {outcome}), should be refused; stdout {result['stdout'][:300]!r}")
    if file_refused and pair.kind != "folder" and pair.entry != "list_bundles":
        where = path if pair.kind != "checkpoint" else path / "checkpoint.pt"
        if "json" in pair.entry:  # the failure may be inside the JSON document
            message = f"{message}\n{result['stdout']}"
        if not (names_the_file(message, path) or names_the_file(message, where)):
            out.append(f"the message does not name the file: {message[-400:]!r}")
    if "json" in pair.entry and outcome == "ok":
        try:
            _strict_json(result["stdout"])
        except ValueError as exc:
            out.append(f"--json output is not strict JSON: {exc}")
    if "says_what" in case.check and file_refused:
        if "truncated or corrupt" in message or not re.search(r"text|metadata|chunk", message):
            out.append(f"the message does not say what the file is: {message[-300:]!r}")
    if "no_escapes" in case.check:
        for stream in ("stdout", "stderr"):
            text = result[stream]
            if re.search(r"[\x1b\x07\x08\r\x00\u202e]", text) or re.search(r"(?m)^(FORGED|forged line)", text):
                out.append(f"control characters or a forged line reach {stream}: {text[:300]!r}")
    if pair.kind == "folder":
        try:
            listed = _listed_paths(pair, result) if outcome == "ok" else None
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return out + [f"its output cannot be read: {exc!r}: {result['stdout'][:300]!r}"]
        if listed is not None and ("inside" in case.check or "once" in case.check):
            out += _walk_problems(listed, path)
        if pair.entry == "evaluate --json" and outcome == "ok" and "once" in case.check:
            counted = sum(r["images"] for r in _strict_json(result["stdout"]))
            if counted != len(_real_files(path)):
                out.append(f"evaluate counted {counted} images, the folder holds {len(_real_files(path))} files")
    return out


def _check(pair: Pair, corpus: Corpus, results: dict[str, dict], ledger) -> None:
    result = results[pair.id]
    path = corpus.files[(pair.kind, pair.case.name)]
    if pair.kind == "weights" and pair.entry == "bundle classify --model PATH":
        path = corpus.files[("bundle", f"w-{pair.case.name}")] / "weights.pt"  # the file in the bundle is named
    problems = problems_of(pair, result, path)
    assert not problems, f"{pair.id} ({pair.case.item}):\n" + "\n".join(problems)
    ledger.record("capped", pair.case.name, "held", via=f"{pair.kind}: {pair.entry}", value=result["peak_mb"],
                  seconds=result["seconds"])


def _params(slow: bool) -> list:
    params = []
    for pair in PAIRS:
        if pair.slow != slow:
            continue
        marks = []
        reason = KNOWN_CAPPED.get(pair.id)
        if reason:
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
        params.append(pytest.param(pair, id=pair.id, marks=marks))
    return params


@pytest.mark.slow
@pytest.mark.parametrize("pair", _params(slow=False))
def test_capped(pair: Pair, fast_results, ledger) -> None:
    corpus, results = fast_results
    _check(pair, corpus, results, ledger)


@pytest.mark.slow
@pytest.mark.parametrize("pair", _params(slow=True))
def test_capped_slow(pair: Pair, slow_results, ledger) -> None:
    corpus, results = slow_results
    _check(pair, corpus, results, ledger)


# ------------------------------------------------------------------ the harness catches what it should

SELF_TEST = {"allocate": "over_memory", "block": "over_time", "spin": "over_time", "raise": "traceback",
             "print_bad_name": "traceback", "refuse": "refused", "hang_in_c": "over_time", "segfault": "crashed"}


@pytest.mark.slow
def test_the_harness_sees_every_way_to_fail(tmp_path: Path) -> None:
    """A runner that cannot see a blow-up, a hang, a crash or a traceback would pass everything."""
    jobs = [{"id": what, "entry": "selftest", "args": {"do": what, "tmp": str(tmp_path)}, "time_cap": 2}
            for what in SELF_TEST]
    results = run_jobs(jobs, env=_env(tmp_path))
    assert {k: r["outcome"] for k, r in results.items()} == SELF_TEST, results
    assert results["refuse"]["message"] == f"{tmp_path}: refused on purpose"
    assert results["allocate"]["peak_mb"] < MEMORY_CAP / 2**20 + 64
    assert all(results[k]["seconds"] is None or results[k]["seconds"] < WALL_CAP_S for k in SELF_TEST)
