"""Suite-wide fixtures and markers: tests never read or write the user's caches or settings.

Markers (registered in pyproject.toml) say what a test needs, so that a lane can pick:

* ``gui``: it needs a QApplication. Set here for every test under tests/gui and every test that asks
  for ``qtbot``, ``qapp`` or ``make_window``; such a test also gets the Qt isolation below
  (``isolated_settings``, ``no_dangling_qthreads``), napari style.
* ``subprocess``: it starts a Python subprocess; set by hand beside the test.
* ``slow``: left out of ``make check``; set by hand with the reason when it is not obvious.
"""

from __future__ import annotations

import os
import traceback
import weakref
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QSettings, QThread, QThreadPool

from tests.support.loopback import loopback  # noqa: F401 - a fixture, for every test that serves files

TESTS = Path(__file__).resolve().parent
QT_FIXTURES = {"qtbot", "qapp", "make_window"}
# Qt messages that mean a thread-affinity bug, whatever the test checked
_THREAD_MESSAGES = (
    "thread",  # "QObject: Cannot create children for a parent that is in a different thread", ...
    "QBasicTimer",
    "killTimer",
    "Destroyed while",
)
# Qt messages that mention a thread but are not a threading mistake: Qt Multimedia's one-time notice that
# it converts video frames on the CPU (no GPU here), from a class named ThreadLocalRhiHolder
_NOT_THREAD_MISTAKES = ("No RHI backend. Using CPU conversion",)


@pytest.hookimpl(tryfirst=True)  # before -m deselects by these markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TESTS / "gui" in item.path.parents or QT_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.gui)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fresh TORCH_HOME, config and data folders for every test."""
    root = tmp_path_factory.mktemp("home")
    for var, sub in (
        ("TORCH_HOME", "torch"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        (root / sub).mkdir()
        monkeypatch.setenv(var, str(root / sub))
    monkeypatch.setenv("CONVNET_STUDIO_OFFLINE", "1")  # a test that wants the network says so
    # No background ONNX export after every model load (3 s of CPU each): the tests of that path
    # ask for it with InferenceEngine(onnx=True).
    monkeypatch.setenv("CONVNET_STUDIO_ONNX", "0")
    return root


@pytest.fixture
def fake_pretrained(isolated_home: Path):
    """Write random-init weights under a model's real file name in the hub cache.

    Returns a function: ``fake_pretrained("resnet18") -> Path``. The state dict
    is exactly what the pretrained file would hold (same keys and shapes). It
    stands in for the published file, so its hash is recorded in the app's hash
    cache as the one its name promises (the app calls it "pretrained");
    ``official=False`` leaves it as what it is, a file under the official name
    whose hash does not match ("unverified").
    """
    from core.zoo import get_spec

    def write(name: str, *, seed: int = 0, official: bool = True) -> Path:
        spec = get_spec(name)
        assert spec.weights_file, f"{name} has no pretrained weights"
        torch.manual_seed(seed)
        model = _reference_architecture(name) or spec.build()
        ckpt = Path(torch.hub.get_dir()) / "checkpoints"
        ckpt.mkdir(parents=True, exist_ok=True)
        path = ckpt / spec.weights_file
        state = {k: v for k, v in model.state_dict().items() if not k.endswith((".alpha", ".beta"))}
        torch.save(state, path)
        if official:
            from core.weights_store import official_prefix, remember_hash

            prefix = official_prefix(spec.weights_file)
            remember_hash(path, prefix + "0" * (64 - len(prefix)))
        return path

    return write


def _reference_architecture(name: str):
    """torchvision's own model for ``name`` as its pretrained file holds it (GoogLeNet with aux heads)."""
    import torchvision

    builder = getattr(torchvision.models, name, None)
    if builder is None:
        return None
    extra = {"aux_logits": True, "init_weights": True} if name == "googlenet" else {}
    return builder(weights=None, **extra)


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def one_torch_thread():
    """Two CPU cores shared with other work: one intra-op thread is much faster than two fighting.

    Modules that train or classify on the GUI's threads use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- Qt isolation for the tests marked gui ---------------------------------------------------------


@pytest.fixture(autouse=True)
def qt_isolation(request: pytest.FixtureRequest) -> None:
    """For a ``gui`` test: no user settings, no dangling threads, no thread warnings."""
    if request.node.get_closest_marker("gui") is not None:
        request.getfixturevalue("isolated_settings")
        request.getfixturevalue("no_dangling_qthreads")


@pytest.fixture
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """QSettings never read or write the user's file (env override + Qt's own search paths)."""
    path = tmp_path / "settings" / "convnet-studio.ini"
    path.parent.mkdir()
    monkeypatch.setenv("CONVNET_STUDIO_SETTINGS", str(path))
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
            QSettings.setPath(fmt, scope, str(tmp_path / "qsettings"))
    return path


@pytest.fixture
def no_dangling_qthreads(qapp, qtbot, qtlog, monkeypatch: pytest.MonkeyPatch):
    """Fail a test that leaves a QThread or pool thread running, or logs a thread warning."""
    started: list[tuple[weakref.ref, str]] = []
    original_start = QThread.start

    def start_and_remember(self, *args, **kwargs):
        started.append((weakref.ref(self), "".join(traceback.format_stack(limit=6)[:-1])))
        return original_start(self, *args, **kwargs)

    monkeypatch.setattr(QThread, "start", start_and_remember)
    yield
    dangling = []
    for ref, where in started:
        thread = ref()
        try:
            if thread is not None and thread.isRunning():
                dangling.append((thread, where))
        except RuntimeError:  # the C++ object is gone, so it had stopped
            pass
    for thread, _ in dangling:  # clean up so one failure does not cascade
        thread.quit()
        qtbot.waitUntil(thread.isFinished, timeout=5000)
    pool = QThreadPool.globalInstance()
    busy_pool = pool.activeThreadCount()
    pool.waitForDone(5000)
    assert not dangling, "QThread left running, started at:\n" + "\n".join(w for _, w in dangling)
    assert busy_pool == 0, "global QThreadPool still had work running after the test"
    bad = [r.message for r in qtlog.records if any(m.lower() in r.message.lower() for m in _THREAD_MESSAGES)
           and not any(m in r.message for m in _NOT_THREAD_MISTAKES)]
    assert not bad, f"Qt thread warnings: {bad}"


@pytest.fixture
def make_window(qtbot):
    """``make_window(wait_registry=True) -> MainWindow``, shown; closed (and checked stopped) at teardown.

    The registry loads after the first paint; by default this waits for it (the pickers are filled)."""
    from gui.main_window import MainWindow
    from tests.gui.helpers import wait_registry

    windows = []

    def make(*, wait_registry_loaded: bool = True, **kwargs):
        window = MainWindow(**kwargs)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        if wait_registry_loaded:
            wait_registry(qtbot, window)
        return window

    yield make
    for window in windows:
        window.close()
        assert not window.client.running, "inference thread still running after close"
