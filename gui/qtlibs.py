"""Check, before Qt loads, that the system libraries its platform plugin (and Qt Multimedia) need are installed.

``python -m gui.qtlibs [--platform xcb|offscreen|...] [--install]``

A PySide6 wheel bundles Qt but not the X11/xcb, OpenGL, fontconfig and D-Bus
libraries of the system. When one is missing, Qt aborts with "Could not load the
Qt platform plugin" and, for xcb, names the wrong library. This module finds the
platform plugin (and the PySide6 modules the app imports) on disk without
importing Qt, runs ``ldd`` on them, maps every library reported "not found" to
its distribution package and prints the one command that installs them (exit
status 1). With ``--install``, as root with apt-get (or dnf) on the PATH, it
installs them itself and checks again. ``make run`` and ``make test`` call it
before anything imports Qt. Nothing to check (not Linux, no ``ldd``): exit 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

README_HINT = 'other distributions: see README.md, "Two commands"'

# soname -> (Debian/Ubuntu package, Fedora package). Everything PySide6 6.x's
# platform plugins (xcb with its GL integrations, offscreen, wayland, eglfs) and
# QtCore/QtGui/QtWidgets/QtSvg link from the system, plus what those libraries
# pull in themselves.
PACKAGES: dict[str, tuple[str, str]] = {
    # xcb and its utility libraries (Qt >= 6.5 links libxcb-cursor)
    "libxcb.so.1": ("libxcb1", "libxcb"),
    # Qt Multimedia (the Live view) links PulseAudio's client library even for video without sound
    "libpulse.so.0": ("libpulse0", "pulseaudio-libs"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-ewmh.so.2": ("libxcb-ewmh2", "xcb-util-wm"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xinerama.so.0": ("libxcb-xinerama0", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-glx.so.0": ("libxcb-glx0", "libxcb"),
    "libxcb-present.so.0": ("libxcb-present0", "libxcb"),
    "libxcb-dri3.so.0": ("libxcb-dri3-0", "libxcb"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    # X11
    "libX11.so.6": ("libx11-6", "libX11"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libXau.so.6": ("libxau6", "libXau"),
    "libXdmcp.so.6": ("libxdmcp6", "libXdmcp"),
    "libXext.so.6": ("libxext6", "libXext"),
    "libXrender.so.1": ("libxrender1", "libXrender"),
    "libXi.so.6": ("libxi6", "libXi"),
    "libXfixes.so.3": ("libxfixes3", "libXfixes"),
    "libSM.so.6": ("libsm6", "libSM"),
    "libICE.so.6": ("libice6", "libICE"),
    # OpenGL / EGL (glvnd)
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libGLX.so.0": ("libglx0", "libglvnd-glx"),
    "libGLdispatch.so.0": ("libglvnd0", "libglvnd"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libgbm.so.1": ("libgbm1", "mesa-libgbm"),
    "libdrm.so.2": ("libdrm2", "libdrm"),
    "libvulkan.so.1": ("libvulkan1", "vulkan-loader"),
    # Wayland
    "libwayland-client.so.0": ("libwayland-client0", "libwayland-client"),
    "libwayland-cursor.so.0": ("libwayland-cursor0", "libwayland-cursor"),
    "libwayland-egl.so.1": ("libwayland-egl1", "libwayland-egl"),
    # fonts, D-Bus, GLib and what they pull in
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgobject-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libpng16.so.16": ("libpng16-16", "libpng"),
    "libexpat.so.1": ("libexpat1", "expat"),
    "libz.so.1": ("zlib1g", "zlib"),
    "libzstd.so.1": ("libzstd1", "libzstd"),
    "libbrotlidec.so.1": ("libbrotli1", "brotli"),
    "libbrotlicommon.so.1": ("libbrotli1", "brotli"),
    "libpcre2-8.so.0": ("libpcre2-8-0", "pcre2"),
    "libbsd.so.0": ("libbsd0", "libbsd"),
    "libmd.so.0": ("libmd0", "libmd"),
    "libffi.so.8": ("libffi8", "libffi"),
}

# The PySide6 extension modules the app imports (gui/, tests/): their Qt libraries link the
# GL/EGL, fontconfig, xkbcommon and D-Bus libraries even before a platform plugin loads.
MODULES = ("QtCore", "QtGui", "QtWidgets", "QtSvg", "QtMultimedia")  # QtMultimedia: the Live view (live extra)

_NOT_FOUND = re.compile(r"^\s*(\S+)\s*=>\s*not found\s*$")


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package that ships ``soname`` (table, else Debian's library naming policy)."""
    return PACKAGES[soname][0] if soname in PACKAGES else debian_policy_name(soname)


def debian_policy_name(soname: str) -> str:
    """Debian policy 8.1: libfoo.so.3 is in libfoo3, libfoo-2.so.3 in libfoo-2-3."""
    match = re.fullmatch(r"(lib.+?)\.so\.(\d+)(?:\..*)?", soname)
    if not match:
        return soname
    name, major = match.group(1).lower().replace("_", "-"), match.group(2)
    return f"{name}-{major}" if name[-1].isdigit() else f"{name}{major}"


def fedora_package(soname: str) -> str:
    """The Fedora package name, else the soname as an RPM capability dnf resolves itself."""
    if soname in PACKAGES:
        return PACKAGES[soname][1]
    return f"'{soname}()(64bit)'" if sys.maxsize > 2**32 else f"'{soname}'"


def parse_missing(ldd_output: str) -> list[str]:
    """The sonames ``ldd`` reports as "not found", each once, in order of first mention."""
    seen: dict[str, None] = {}
    for line in ldd_output.splitlines():
        match = _NOT_FOUND.match(line)
        if match:
            seen.setdefault(match.group(1))
    return list(seen)


def platform_name(value: str | None = None) -> str:
    """The plugin Qt will try first: ``--platform``, else ``$QT_QPA_PLATFORM``, else xcb.

    ``"wayland;xcb"`` lists (Qt tries them in order) and ``"offscreen:fontengine=x"`` options
    reduce to the first plugin's name.
    """
    raw = value if value else os.environ.get("QT_QPA_PLATFORM", "")
    first = raw.split(";")[0].split(":")[0].strip()
    return first or "xcb"


def pyside_dir() -> Path | None:
    """PySide6's package folder, located without importing it (importing QtGui is what fails)."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def targets(pyside: Path, platform: str) -> list[Path]:
    """The platform plugin (with xcb's GL integrations) and the PySide6 modules the app loads."""
    plugins = pyside / "Qt" / "plugins"
    found = sorted((plugins / "platforms").glob(f"libq{platform}.so"))
    if platform == "xcb":  # GL integrations: in xcbglintegrations/, some wheels put them beside the plugin
        found += sorted((plugins / "platforms").glob("libqxcb-*-integration.so"))
        found += sorted((plugins / "xcbglintegrations").glob("*.so"))
    for module in MODULES:
        found += sorted(pyside.glob(f"{module}.*.so"))[:1]
    return found


def run_ldd(paths: list[Path]) -> str:
    """``ldd``'s report on ``paths`` (stdout; a path it cannot read only adds a line)."""
    try:
        result = subprocess.run(
            ["ldd", *map(str, paths)], capture_output=True, text=True, timeout=60, env={**os.environ, "LC_ALL": "C"}
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""  # cannot tell: let Qt speak for itself
    return result.stdout


def package_manager() -> str | None:
    """``"apt"`` on Debian/Ubuntu, ``"dnf"`` on Fedora/RHEL, else None."""
    if shutil.which("apt-get"):
        return "apt"
    if shutil.which("dnf"):
        return "dnf"
    return None


def packages_for(missing: list[str], manager: str | None) -> list[str]:
    """The packages to install for ``missing`` sonames, each once, in order."""
    lookup = fedora_package if manager == "dnf" else debian_package
    return list(dict.fromkeys(lookup(name) for name in missing))


def install_command(packages: list[str], manager: str | None, *, root: bool) -> str:
    """The exact command line a user runs (``sudo`` unless already root)."""
    tool = "dnf install" if manager == "dnf" else "apt-get install"
    return ("" if root else "sudo ") + " ".join([tool, *packages])


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def install(packages: list[str], manager: str) -> bool:
    """Install ``packages`` non-interactively (root only); True when the package manager succeeded."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if manager == "apt":
        steps = [
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        ]
    else:
        steps = [["dnf", "install", "-y", "-q", *(p.strip("'") for p in packages)]]
    for step in steps:
        print("+ " + " ".join(step), file=sys.stderr, flush=True)
        if subprocess.run(step, env=env).returncode != 0:
            return False
    return True


def missing_libraries(platform: str) -> tuple[list[str], str | None]:
    """(missing sonames, None) or ([], why nothing could be checked / an error message)."""
    pyside = pyside_dir()
    if pyside is None:
        return [], "error: PySide6 is not installed in this Python (run `make run`, which installs it)"
    plugin = pyside / "Qt" / "plugins" / "platforms" / f"libq{platform}.so"
    if not plugin.is_file():
        names = sorted(p.name[4:-3] for p in plugin.parent.glob("libq*.so") if "-integration" not in p.name)
        return [], f"error: Qt has no platform plugin {platform!r} (this PySide6 has: {', '.join(names)})"
    return parse_missing(run_ldd(targets(pyside, platform))), None


# Libraries the PySide6 wheels ship themselves: missing means a broken install, not a system package.
BUNDLED = ("libQt6", "libpyside6", "libshiboken6", "libicu")


def report(platform: str, missing: list[str], manager: str | None) -> str:
    """What to print when libraries are missing: what, then the one command that fixes it."""
    bundled = [name for name in missing if name.startswith(BUNDLED)]
    if bundled:
        return (f"PySide6 is incomplete ({', '.join(bundled)} not found): reinstall it, "
                "e.g. `make clean-venv` then `make run`")
    head = (f"Qt ({platform} platform plugin, Qt Multimedia) needs system libraries that are missing: "
            f"{', '.join(missing)}")
    if manager is None:
        return f"{head}\nInstall the packages that provide them ({README_HINT})."
    command = install_command(packages_for(missing, manager), manager, root=is_root())
    return f"{head}\nInstall them with:\n    {command}\n({README_HINT})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gui.qtlibs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", help="Qt platform plugin (default: $QT_QPA_PLATFORM, else xcb)")
    parser.add_argument("--install", action="store_true", help="as root with apt-get or dnf: install what is missing")
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux") or shutil.which("ldd") is None:
        return 0  # the macOS and Windows wheels carry everything; without ldd there is nothing to ask
    platform = platform_name(args.platform)
    missing, error = missing_libraries(platform)
    if error:
        print(error, file=sys.stderr)
        return 2
    if not missing:
        return 0
    manager = package_manager()
    if args.install and manager and is_root() and not any(name.startswith(BUNDLED) for name in missing):
        packages = packages_for(missing, manager)
        print(f"installing the system libraries Qt ({platform} plugin, Qt Multimedia) needs: {' '.join(packages)}",
              file=sys.stderr)
        if install(packages, manager):
            missing, _ = missing_libraries(platform)
            if not missing:
                return 0
    print(report(platform, missing, manager), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
