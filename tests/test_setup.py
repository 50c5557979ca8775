"""Set-up: the Qt system-library check (gui/qtlibs.py), the Makefile's install lanes, the README's lists.

Everything here runs without root and without a network: ldd output is faked where a test needs a
library to be missing, and make runs with ``-n`` (or on a throwaway .venv of stamp files).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gui import qtlibs

ROOT = Path(__file__).resolve().parents[1]

# A stock Debian box without the xcb utility libraries, as ldd reports it on Qt 6's xcb plugin.
FAKE_LDD = """\
/x/PySide6/Qt/plugins/platforms/libqxcb.so:
\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /x/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f01)
\tlibxkbcommon-x11.so.0 => not found
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-randr.so.0 => /lib/x86_64-linux-gnu/libxcb-randr.so.0 (0x00007f01)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f01)
\tlibxcb-icccm.so.4 => not found
\t/lib64/ld-linux-x86-64.so.2 (0x00007f01)
/x/PySide6/QtGui.abi3.so:
\tlibEGL.so.1 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-xinput.so.0 => not found
"""
FAKE_MISSING = [
    "libxkbcommon-x11.so.0", "libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1",
    "libEGL.so.1", "libxcb-xinput.so.0",
]


def test_parse_missing_lists_each_not_found_library_once_in_order() -> None:
    assert qtlibs.parse_missing(FAKE_LDD) == FAKE_MISSING
    assert qtlibs.parse_missing("\tnot a dynamic executable\n\tstatically linked\n") == []


@pytest.mark.parametrize(
    ("soname", "debian", "fedora"),
    [
        ("libxcb-cursor.so.0", "libxcb-cursor0", "xcb-util-cursor"),
        ("libxcb-icccm.so.4", "libxcb-icccm4", "xcb-util-wm"),
        ("libxcb-keysyms.so.1", "libxcb-keysyms1", "xcb-util-keysyms"),
        ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0", "libxkbcommon-x11"),
        ("libxcb-render-util.so.0", "libxcb-render-util0", "xcb-util-renderutil"),
        ("libEGL.so.1", "libegl1", "libglvnd-egl"),
        ("libGL.so.1", "libgl1", "libglvnd-glx"),
        ("libGLdispatch.so.0", "libglvnd0", "libglvnd"),
        ("libfontconfig.so.1", "libfontconfig1", "fontconfig"),
        ("libdbus-1.so.3", "libdbus-1-3", "dbus-libs"),
        ("libglib-2.0.so.0", "libglib2.0-0", "glib2"),
    ],
)
def test_known_libraries_map_to_their_packages(soname: str, debian: str, fedora: str) -> None:
    assert qtlibs.debian_package(soname) == debian
    assert qtlibs.fedora_package(soname) == fedora


def test_unknown_libraries_follow_debian_naming_policy_and_rpm_capabilities() -> None:
    assert qtlibs.debian_package("libxcb-foo.so.0") == "libxcb-foo0"
    assert qtlibs.debian_package("libfoo-2.so.7.1.0") == "libfoo-2-7"
    assert qtlibs.debian_package("libSomeThing_x.so.3") == "libsomething-x3"
    assert qtlibs.fedora_package("libxcb-foo.so.0") in ("'libxcb-foo.so.0()(64bit)'", "'libxcb-foo.so.0'")
    # The policy rule reproduces the table wherever Debian follows its own policy.
    for soname, (package, _) in qtlibs.PACKAGES.items():
        if soname.startswith(("libxcb-", "libxkbcommon", "libEGL", "libGL.", "libdbus", "libfontconfig")):
            assert qtlibs.debian_policy_name(soname) == package


def test_one_install_line_with_the_exact_command() -> None:
    missing = qtlibs.parse_missing(FAKE_LDD)
    packages = qtlibs.packages_for(missing, "apt")
    assert packages == ["libxkbcommon-x11-0", "libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libegl1",
                        "libxcb-xinput0"]
    assert qtlibs.install_command(packages, "apt", root=False) == "sudo apt-get install " + " ".join(packages)
    assert qtlibs.install_command(packages, "apt", root=True) == "apt-get install " + " ".join(packages)
    assert qtlibs.install_command(["xcb-util-wm"], "dnf", root=False) == "sudo dnf install xcb-util-wm"
    # Fedora: one package for several sonames, each once
    assert qtlibs.packages_for(["libxcb-icccm.so.4", "libxcb-ewmh.so.2"], "dnf") == ["xcb-util-wm"]


@pytest.mark.parametrize(
    ("arg", "env", "expected"),
    [
        (None, None, "xcb"),
        ("offscreen", "wayland", "offscreen"),
        (None, "offscreen", "offscreen"),
        (None, "wayland;xcb", "wayland"),
        (None, "offscreen:fontengine=freetype", "offscreen"),
        (None, "  ", "xcb"),
    ],
)
def test_platform_name(monkeypatch: pytest.MonkeyPatch, arg, env, expected) -> None:
    if env is None:
        monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    else:
        monkeypatch.setenv("QT_QPA_PLATFORM", env)
    assert qtlibs.platform_name(arg) == expected


@pytest.fixture
def fake_pyside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PySide6 folder with an xcb and an offscreen plugin, an xcb GL integration and two modules."""
    root = tmp_path / "PySide6"
    for rel in (
        "Qt/plugins/platforms/libqxcb.so",
        "Qt/plugins/platforms/libqoffscreen.so",
        "Qt/plugins/xcbglintegrations/libqxcb-glx-integration.so",
        "QtGui.abi3.so",
        "QtWidgets.abi3.so",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    monkeypatch.setattr(qtlibs, "pyside_dir", lambda: root)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(qtlibs.shutil, "which", lambda name: f"/usr/bin/{name}" if name in ("ldd", "apt-get") else None)
    return root


def test_targets_are_the_plugin_its_gl_integrations_and_the_modules(fake_pyside: Path) -> None:
    names = [p.name for p in qtlibs.targets(fake_pyside, "xcb")]
    assert names == ["libqxcb.so", "libqxcb-glx-integration.so", "QtGui.abi3.so", "QtWidgets.abi3.so"]
    assert [p.name for p in qtlibs.targets(fake_pyside, "offscreen")][0] == "libqoffscreen.so"


def test_missing_libraries_print_the_command_and_exit_1(fake_pyside, monkeypatch, capsys) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(qtlibs, "run_ldd", lambda paths: seen.append([p.name for p in paths]) or FAKE_LDD)
    monkeypatch.setattr(qtlibs, "is_root", lambda: False)
    monkeypatch.setattr(qtlibs, "install", lambda *a: pytest.fail("installs only as root"))
    assert qtlibs.main(["--platform", "xcb", "--install"]) == 1
    err = capsys.readouterr().err
    commands = [line.strip() for line in err.splitlines() if "apt-get install" in line]
    assert commands == ["sudo apt-get install libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 "
                        "libegl1 libxcb-xinput0"]
    assert "libxcb-cursor.so.0" in err and "README.md" in err
    assert seen and seen[0][0] == "libqxcb.so"


def test_nothing_missing_is_silent_success(fake_pyside, monkeypatch, capsys) -> None:
    monkeypatch.setattr(qtlibs, "run_ldd", lambda paths: "\tlibc.so.6 => /lib/libc.so.6 (0x1)\n")
    assert qtlibs.main(["--platform", "offscreen"]) == 0
    assert capsys.readouterr().err == ""


def test_as_root_with_apt_it_installs_once_and_checks_again(fake_pyside, monkeypatch, capsys) -> None:
    outputs = iter([FAKE_LDD, "\tlibxcb-cursor.so.0 => /lib/libxcb-cursor.so.0 (0x1)\n"])
    monkeypatch.setattr(qtlibs, "run_ldd", lambda paths: next(outputs))
    monkeypatch.setattr(qtlibs, "is_root", lambda: True)
    calls: list[tuple[list[str], str]] = []
    monkeypatch.setattr(qtlibs, "install", lambda packages, manager: calls.append((packages, manager)) or True)
    assert qtlibs.main(["--platform", "xcb", "--install"]) == 0
    assert calls == [(qtlibs.packages_for(FAKE_MISSING, "apt"), "apt")]


def test_a_failed_install_still_prints_the_command(fake_pyside, monkeypatch, capsys) -> None:
    monkeypatch.setattr(qtlibs, "run_ldd", lambda paths: FAKE_LDD)
    monkeypatch.setattr(qtlibs, "is_root", lambda: True)
    monkeypatch.setattr(qtlibs, "install", lambda packages, manager: False)
    assert qtlibs.main(["--install"]) == 1
    assert "\n    apt-get install libxkbcommon-x11-0 " in capsys.readouterr().err


def test_a_library_pyside6_ships_itself_means_reinstall_not_apt(fake_pyside, monkeypatch, capsys) -> None:
    monkeypatch.setattr(qtlibs, "run_ldd", lambda paths: FAKE_LDD + "\tlibQt6XcbQpa.so.6 => not found\n")
    monkeypatch.setattr(qtlibs, "is_root", lambda: True)
    monkeypatch.setattr(qtlibs, "install", lambda *a: pytest.fail("apt cannot fix a broken wheel"))
    assert qtlibs.main(["--install"]) == 1
    err = capsys.readouterr().err
    assert "PySide6 is incomplete" in err and "libQt6XcbQpa.so.6" in err and "apt-get" not in err


def test_install_runs_apt_noninteractively_update_once(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[tuple[list[str], str | None]] = []

    def fake_run(cmd, env=None, **kw):
        ran.append((cmd, (env or {}).get("DEBIAN_FRONTEND")))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(qtlibs.subprocess, "run", fake_run)
    assert qtlibs.install(["libxcb-cursor0", "libxcb-icccm4"], "apt")
    assert ran == [
        (["apt-get", "update", "-qq"], "noninteractive"),
        (["apt-get", "install", "-y", "-qq", "--no-install-recommends", "libxcb-cursor0", "libxcb-icccm4"],
         "noninteractive"),
    ]


def test_an_unknown_platform_names_the_ones_there_are(fake_pyside, capsys) -> None:
    assert qtlibs.main(["--platform", "cocoa"]) == 2
    assert "no platform plugin 'cocoa'" in (err := capsys.readouterr().err) and "offscreen, xcb" in err


@pytest.mark.subprocess
def test_the_module_imports_no_qt() -> None:
    code = "import sys, gui.qtlibs; sys.exit(any(m.startswith(('PySide6', 'shiboken6')) for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60).returncode == 0


@pytest.mark.subprocess
@pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("ldd"), reason="needs ldd")
def test_real_offscreen_check_passes_here() -> None:
    """The suite itself runs offscreen, so on this machine that check must pass for real."""
    done = subprocess.run([sys.executable, "-m", "gui.qtlibs", "--platform", "offscreen"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")


# --- README ----------------------------------------------------------------------------------

def _readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text[text.index("## Two commands"):text.index("\n## ", text.index("## Two commands") + 1)]


def _listed(tool: str) -> list[str]:
    lines = [line for line in _readme_section().splitlines() if line.startswith(f"sudo {tool} install ")]
    assert len(lines) == 1, f"README: one `sudo {tool} install` line"
    return lines[0].split()[3:]


def test_readme_package_lists_are_real_package_names() -> None:
    debian = {deb for deb, _ in qtlibs.PACKAGES.values()} | {"make", "python3-venv"}
    fedora = {fed for _, fed in qtlibs.PACKAGES.values()} | {"make", "python3"}
    assert set(_listed("apt-get")) <= debian
    assert set(_listed("dnf")) <= fedora


# Pulled in by the packages the README lists (or part of every Debian system).
DEPENDENCIES = {
    "linux-vdso.so.1", "libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1", "libstdc++.so.6",
    "libgcc_s.so.1", "libz.so.1", "libzstd.so.1", "liblzma.so.5", "liblz4.so.1", "libsystemd.so.0", "libcap.so.2",
    "libgcrypt.so.20", "libgpg-error.so.0", "libmd.so.0", "libbsd.so.0", "libpcre2-8.so.0", "libexpat.so.1",
    "libpng16.so.16", "libbrotlidec.so.1", "libbrotlicommon.so.1", "libffi.so.8", "libXau.so.6", "libXdmcp.so.6",
    "libX11.so.6", "libxcb.so.1", "libGLX.so.0", "libGLdispatch.so.0", "libxcb-glx.so.0",
    # libpulse0's own dependencies (Qt Multimedia, the live extra)
    "libpulsecommon-16.1.so", "libsndfile.so.1", "libasyncns.so.0", "libFLAC.so.12", "libogg.so.0", "libopus.so.0",
    "libvorbis.so.0", "libvorbisenc.so.2", "libmp3lame.so.0", "libmpg123.so.0", "libresolv.so.2", "libkrb5.so.3",
    "libgssapi_krb5.so.2", "libk5crypto.so.3", "libcom_err.so.2", "libkrb5support.so.0", "libkeyutils.so.1",
}


@pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("ldd"), reason="needs ldd")
def test_readme_debian_line_covers_what_this_pyside6_xcb_plugin_links() -> None:
    pyside = qtlibs.pyside_dir()
    assert pyside is not None
    report = qtlibs.run_ldd(qtlibs.targets(pyside, "xcb"))
    resolved = re.findall(r"^\s*(\S+)\s*=>\s*(not found|/\S*)", report, re.M)
    bundled = str(pyside.parent)  # PySide6's Qt and shiboken6 sit beside it in site-packages
    system = {name for name, where in resolved if not where.startswith(bundled)} - DEPENDENCIES
    assert "libxcb-cursor.so.0" in system  # the check really read the plugin
    listed = set(_listed("apt-get"))
    assert {s: qtlibs.debian_package(s) for s in system if qtlibs.debian_package(s) not in listed} == {}
    fedora = set(_listed("dnf"))
    assert {s: qtlibs.fedora_package(s) for s in system if qtlibs.fedora_package(s) not in fedora} == {}


def test_readme_names_the_size_the_cpu_variant_and_the_fast_lane() -> None:
    section = _readme_section()
    assert "about 6 GB" in section and "CUDA" in section
    assert "make run TORCH=cpu" in section and "make check" in section


# --- Makefile --------------------------------------------------------------------------------

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _make(*args: str, venv: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    return subprocess.run(["make", "--no-print-directory", *args, f"VENV={venv}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def _stamps(venv: Path, *names: str) -> None:
    venv.mkdir(parents=True, exist_ok=True)
    newer = (ROOT / "pyproject.toml").stat().st_mtime + 10
    for i, name in enumerate(names):
        (venv / name).touch()
        os.utime(venv / name, (newer + i, newer + i))


@pytest.mark.subprocess
@needs_make
def test_make_run_torch_cpu_installs_torch_from_the_cpu_index_first(tmp_path: Path) -> None:
    lines = _make("-n", "run", "TORCH=cpu", venv=tmp_path / "v").stdout.splitlines()
    index = next(i for i, line in enumerate(lines) if "--index-url https://download.pytorch.org/whl/cpu" in line)
    assert '"torch>=2.10" "torchvision>=0.25"' in lines[index]  # pyproject's own requirements
    project = next(i for i, line in enumerate(lines) if 'install --quiet -e ".[onnx,doctor,live]"' in line)
    qt = next(i for i, line in enumerate(lines) if "-m gui.qtlibs --install" in line)
    launch = next(i for i, line in enumerate(lines) if line.endswith("main.py"))
    assert index < project < qt < launch
    default = _make("-n", "run", venv=tmp_path / "v").stdout
    assert "download.pytorch.org" not in default and "[test]" not in default and "doctor,test" not in default


@pytest.mark.subprocess
@needs_make
def test_make_run_after_make_test_installs_nothing(tmp_path: Path) -> None:
    _stamps(tmp_path / "v", ".installed-run", ".installed")
    out = _make("-n", "run", venv=tmp_path / "v").stdout
    assert "pip install" not in out and "gui.qtlibs --install" in out


@pytest.mark.subprocess
@needs_make
def test_make_test_after_make_run_adds_only_the_test_extras(tmp_path: Path) -> None:
    _stamps(tmp_path / "v", ".installed-run")
    lines = _make("-n", "test", venv=tmp_path / "v").stdout.splitlines()
    installs = [line for line in lines if "pip install" in line]
    assert len(installs) == 1 and '".[onnx,doctor,live,test]"' in installs[0]
    assert not any("-m venv" in line for line in lines)
    assert lines[-2:] == [f"{tmp_path / 'v'}/bin/python -m gui.qtlibs --install --platform offscreen",
                          f"QT_QPA_PLATFORM=offscreen {tmp_path / 'v'}/bin/python -m pytest"]


@pytest.mark.subprocess
@needs_make
def test_make_check_is_the_offscreen_fast_lane(tmp_path: Path) -> None:
    _stamps(tmp_path / "v", ".installed-run", ".installed")
    lines = _make("-n", "check", venv=tmp_path / "v").stdout.splitlines()
    assert lines[-1].endswith('pytest -q -m "not slow"')
    assert lines[:2] == [f"{tmp_path / 'v'}/bin/ruff check --output-format concise .",
                         f"{tmp_path / 'v'}/bin/lint-imports --no-cache"]


@pytest.mark.subprocess
@needs_make
def test_make_test_runs_the_same_checks_before_the_suite(tmp_path: Path) -> None:
    _stamps(tmp_path / "v", ".installed-run", ".installed")
    lines = _make("-n", "test", venv=tmp_path / "v").stdout.splitlines()
    assert lines[:2] == _make("-n", "check", venv=tmp_path / "v").stdout.splitlines()[:2]
    assert lines[-1].endswith("-m pytest")


@pytest.mark.subprocess
@needs_make
@pytest.mark.parametrize(("installed", "ok"), [("2.9.1+cpu", True), ("2.9.1", False), (None, True)])
def test_torch_cpu_on_a_venv_with_another_build_stops(tmp_path: Path, installed: str | None, ok: bool) -> None:
    venv = tmp_path / "v"
    (venv / "bin").mkdir(parents=True)
    if installed:
        (venv / "bin" / "python").write_text(f"#!/bin/sh\necho {installed}\n")
        (venv / "bin" / "python").chmod(0o755)
    done = _make("torch-variant", "TORCH=cpu", venv=venv)
    assert (done.returncode == 0) == ok, done.stderr
    if not ok:
        assert "make clean-venv" in done.stderr and "2.9.1" in done.stderr
