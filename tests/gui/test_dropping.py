"""A dropped file:// URL names the file byte for byte, also when its name is not UTF-8."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QMimeData, QUrl

from gui.dropping import local_path, paths_from_mime


def test_a_dropped_url_with_bytes_that_are_not_utf8_names_the_real_file(tmp_path: Path) -> None:
    name = os.fsdecode(b"photo-\xff\xfe.jpg")  # what os.listdir gives for such a name
    target = tmp_path / name
    target.write_bytes(b"x")
    url = QUrl("file://" + os.fsencode(str(tmp_path)).decode("ascii") + "/photo-%FF%FE.jpg")
    assert local_path(url) == str(target) and os.path.exists(local_path(url))
    assert QUrl(url).toLocalFile() != str(target)  # Qt's own conversion loses the bytes: why local_path exists
    mime = QMimeData()
    mime.setUrls([url])
    assert paths_from_mime(mime) == [str(target)]
    mime = QMimeData()
    mime.setText(url.toString(QUrl.ComponentFormattingOption.FullyEncoded))
    assert paths_from_mime(mime) == [str(target)]


def test_ordinary_and_unicode_names_are_unchanged(tmp_path: Path) -> None:
    for name in ("plain.jpg", "été 2024.png", "猫.webp"):
        path = tmp_path / name
        assert local_path(QUrl.fromLocalFile(str(path))) == str(path)


def test_a_dropped_video_goes_to_live_but_a_gif_stays_an_image(tmp_path) -> None:
    from gui.dropping import is_video_path

    for name in ("clip.mp4", "CLIP.WEBM", "clip.mkv", "clip.mov", "clip.avi", "anim.gif", "photo.jpg"):
        (tmp_path / name).write_bytes(b"x")
    assert [n for n in sorted(p.name for p in tmp_path.iterdir()) if is_video_path(str(tmp_path / n))] == [
        "CLIP.WEBM", "clip.avi", "clip.mkv", "clip.mov", "clip.mp4"]
    assert not is_video_path(str(tmp_path / "missing.mp4")) and not is_video_path(str(tmp_path))
