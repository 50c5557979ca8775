"""Screenshots of the Live window for the README: ``python -m benchmarks.screenshots.live``.

A generated video of scikit-image's "chelsea" (a cat) plays in the Live window with Grad-CAM on: one
model (ResNet-18), then the split view (ResNet-18 and AlexNet), each at 1280x800, 800x600 and 1920x1080, saved as
``resources/screenshots/live[-split][-800x600].png``. The picture is paused once every pane has shown a
heat map. Never touches the network or the user's settings: the models run untrained (random weights),
and the window says so.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from benchmarks.screenshots import OUT_DIR, wait_until
from tests.support.video import photo_scenes, write_video

SIZES = ((1280, 800, ""), (800, 600, "-800x600"), (1920, 1080, "-1920x1080"))


def _shoot(app, window, target: Path, width: int, height: int) -> Path:
    window.resize(width, height)
    app.processEvents()
    shown = dict.fromkeys(range(len(window.panes)), 0)
    for number, pane in enumerate(window.panes):
        pane.resultShown.connect(lambda r, key=number: shown.__setitem__(key, shown[key] + (r.cam is not None)))
    window.source.set_paused(False)
    if not wait_until(app, lambda: all(n >= 2 for n in shown.values()), 300):
        raise SystemExit("no Grad-CAM result in time")
    window.source.set_paused(True)
    wait_until(app, lambda: window.source.paused, 10)
    app.processEvents()
    window.grab().save(str(target))
    return target


def capture_live(out_dir: Path = OUT_DIR, *, device: str = "cpu") -> list[Path]:
    work = Path(tempfile.mkdtemp(prefix="convnet-studio-live-shot-"))
    os.environ.setdefault("CONVNET_STUDIO_OFFLINE", "1")
    os.environ["CONVNET_STUDIO_SETTINGS"] = str(work / "settings.ini")
    from gui.app import create_app  # noqa: PLC0415 - lazy: after the settings file is chosen
    from gui.live.window import LiveWindow  # noqa: PLC0415 - as above

    app = create_app()
    video = work / "cat.mp4"
    write_video(video, photo_scenes(30.0, ("chelsea",)), fps=25, size=360)
    window = LiveWindow(str(video), model="resnet18", second_model="alexnet", device=device)
    window.capture.set_folder(str(work / "captures"))
    window.capture.class_edit.setText("cat")
    window.show()
    window.set_cam(True)
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = []
    for split, name in ((False, "live"), (True, "live-split")):
        window.set_split(split)
        for width, height, suffix in SIZES:
            saved.append(_shoot(app, window, out_dir / f"{name}{suffix}.png", width, height))
    window.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.screenshots.live", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"folder for the PNGs (default {OUT_DIR})")
    parser.add_argument("--device", default="cpu", help="where the models run")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    for path in capture_live(args.out, device=args.device):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
