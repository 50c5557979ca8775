"""CapturePanel: hold Space to save frames at N a second, counters, refusals, and the wizard on the folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QSettings, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication, QWidget

from core.live.frames import Frame
from gui.controllers.training import TrainingController
from gui.settings import Settings
from gui.widgets.capture_panel import CapturePanel
from tests.gui.helpers import TIMEOUT_MS

pytestmark = pytest.mark.gui


def video_frames(count: int, fps: float = 25, start: float = 0.0) -> list[Frame]:
    images = np.random.default_rng(0).integers(0, 255, (count, 20, 28, 3), dtype=np.uint8)
    return [Frame(i, start + i / fps, images[i], arrived=500.0 + i / fps) for i in range(count)]


@pytest.fixture
def panel(qtbot, tmp_path: Path) -> CapturePanel:
    made = CapturePanel(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(made)
    yield made
    made.shutdown()


def autorepeat(panel: CapturePanel, kind: QEvent.Type) -> None:
    QApplication.sendEvent(panel, QKeyEvent(kind, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier, " ", True))


def test_holding_space_saves_five_frames_a_second(qtbot, panel: CapturePanel, tmp_path: Path) -> None:
    folder = tmp_path / "shots"
    (folder / "dog").mkdir(parents=True)
    for n in (1, 2):
        (folder / "dog" / f"dog-{n:04d}.jpg").write_bytes(b"x")
    panel.set_folder(str(folder))
    assert [panel.counts_list.item(i).text() for i in range(panel.counts_list.count())] == ["dog: 2"]
    assert panel.class_edit.completer().model().stringList() == ["dog"]
    panel.class_edit.setText("cat")
    panel.show()
    panel.setFocus()
    qtbot.waitUntil(panel.hasFocus, timeout=TIMEOUT_MS)

    stream = video_frames(75)
    with qtbot.waitSignal(panel.capturingChanged, timeout=TIMEOUT_MS) as started:
        qtbot.keyPress(panel, Qt.Key.Key_Space)
    assert started.args == [True]
    for frame in stream[:50]:  # 2 media-seconds at 25 fps; the key repeats meanwhile
        autorepeat(panel, QEvent.Type.KeyRelease)
        autorepeat(panel, QEvent.Type.KeyPress)
        panel.offer(frame)
    assert panel.capturing
    qtbot.keyRelease(panel, Qt.Key.Key_Space)
    assert not panel.capturing
    for frame in stream[50:]:  # shown after the release: not saved
        panel.offer(frame)
    qtbot.waitUntil(lambda: panel.pending == 0 and panel.counts.get("cat") == 10, timeout=TIMEOUT_MS)
    names = sorted(p.name for p in (folder / "cat").iterdir())
    assert names == [f"cat-{n:04d}.jpg" for n in range(1, 11)]
    assert panel.counts == {"cat": 10, "dog": 2}
    assert [panel.counts_list.item(i).text() for i in range(panel.counts_list.count())] == ["cat: 10", "dog: 2"]
    with qtbot.waitSignal(panel.trainRequested, timeout=TIMEOUT_MS) as asked:
        panel.train_button.click()
    assert asked.args == [str(folder)]
    with qtbot.waitSignal(panel.doctorRequested, timeout=TIMEOUT_MS) as examined:
        panel.doctor_button.click()
    assert examined.args == [str(folder)]
    # the folder is remembered
    again = CapturePanel(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    assert again.folder == str(folder) and again.class_edit.text() == "cat" and again.counts == panel.counts


def test_button_holds_and_refusals_do_not_capture(qtbot, panel: CapturePanel, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    panel.set_folder(str(tmp_path / "link"))
    panel.class_edit.setText("cat")
    with qtbot.waitSignal(panel.failed, timeout=TIMEOUT_MS) as refused:
        panel.hold_button.pressed.emit()
    assert "symbolic link" in refused.args[0] and not panel.capturing
    panel.set_folder(str(real))
    panel.class_edit.setText("../up")
    with qtbot.waitSignal(panel.failed, timeout=TIMEOUT_MS):
        panel.set_capturing(True)
    assert not panel.capturing and list(real.iterdir()) == []
    panel.class_edit.setText("cup")
    panel.hold_button.pressed.emit()
    for frame in video_frames(10, fps=10):  # 1 s at 10 fps, 5 a second kept
        panel.offer(frame)
    panel.hold_button.released.emit()
    qtbot.waitUntil(lambda: panel.counts.get("cup") == 5, timeout=TIMEOUT_MS)
    assert len(list((real / "cup").iterdir())) == 5


class ReadyCatalog:
    ready = True


@pytest.mark.slow  # ~4 s: the wizard imports torch and pyqtgraph, scans the folder, opens the doctor
@pytest.mark.usefixtures("one_torch_thread")
def test_training_controller_opens_the_wizard_on_the_folder(qtbot, tmp_path: Path) -> None:
    from gui.wizard.wizard import DATA, DOCTOR
    from tests.support.digits import write_digit_classes

    folder = write_digit_classes(tmp_path / "digits", ("a", "b"), 6)
    window = QWidget()
    qtbot.addWidget(window)
    settings = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    controller = TrainingController(window, settings, ReadyCatalog(), None, choose_model=lambda _name: None)
    try:
        controller.train_on_folder(str(folder))
        wizard = controller.train_wizard
        assert wizard.currentId() == DATA and wizard.plan.folder == str(folder)
        qtbot.waitUntil(wizard.data_page.isComplete, timeout=TIMEOUT_MS)
        assert wizard.plan.classes == ["a", "b"]
        controller.examine_folder(str(folder))
        assert controller.train_wizard is not wizard
        qtbot.waitUntil(lambda: controller.train_wizard.currentId() == DOCTOR, timeout=TIMEOUT_MS)
    finally:
        controller.shutdown()
