"""One action factory (labelme ``_utils/qt.py`` style); menus and toolbar built from lists.

``ACTIONS`` is the table of every command in the window: its text, icon,
shortcuts and tip. The window creates them (``create_actions``), then connects
each to a callable of the controller that does it (``connect_actions``, which
refuses an action left without one). Menus and the toolbar are lists of action
names (``None`` is a separator).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import SimpleNamespace

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar, QToolBar, QWidget

from gui.icons import icon as themed_icon


def new_action(
    parent: QObject,
    text: str,
    slot: Callable[[], object] | None = None,
    *,
    shortcuts: Iterable[str | QKeySequence.StandardKey] = (),
    icon: str | None = None,
    tip: str | None = None,
    checkable: bool = False,
    enabled: bool = True,
    role: QAction.MenuRole | None = None,
) -> QAction:
    """A QAction with its icon, shortcuts (first one shown in menus) and a tip naming them."""
    action = QAction(text, parent)
    if icon:
        action.setIcon(themed_icon(icon))
        action.setProperty("icon_name", icon)
    keys = [QKeySequence(s) for s in shortcuts]
    keys = [k for k in keys if not k.isEmpty()]
    if keys:
        action.setShortcuts(keys)
    plain = text.replace("&", "").rstrip("…").rstrip(".")
    shown_tip = tip or plain
    if keys:
        shown_tip += f"  ({keys[0].toString(QKeySequence.SequenceFormat.NativeText)})"
    action.setToolTip(shown_tip)
    action.setStatusTip(tip or plain)
    action.setCheckable(checkable)
    action.setEnabled(enabled)
    if role is not None:
        action.setMenuRole(role)
    if slot is not None:
        action.triggered.connect(lambda _checked=False: slot())
    return action


def add_actions(target: QMenu | QToolBar | QMenuBar, items: Iterable[QAction | QMenu | QWidget | None]) -> None:
    """Fill a menu or toolbar: None is a separator, a QMenu a submenu, a QWidget is embedded."""
    for item in items:
        if item is None:
            target.addSeparator()
        elif isinstance(item, QMenu):
            target.addMenu(item)
        elif isinstance(item, QAction):
            target.addAction(item)
        elif isinstance(item, QWidget) and isinstance(target, QToolBar):
            target.addWidget(item)
        else:
            raise TypeError(f"cannot add {item!r} to {type(target).__name__}")


def retint_icons(actions: Iterable[QAction]) -> None:
    """Re-render themed icons after a palette change (light <-> dark)."""
    for action in actions:
        name = action.property("icon_name")
        if name:
            action.setIcon(themed_icon(name))


# name: (text, icon, shortcuts, tip); what each one does is given by the window (``connect_actions``)
ACTIONS: dict[str, tuple[str, str | None, tuple, str]] = {
    "open": ("&Open Images…", "open", (QKeySequence.StandardKey.Open,), "Open photos to classify"),
    "open_folder": ("Open &Folder…", "folder", ("Ctrl+Shift+O",), "Open a folder of photos (searched recursively)"),
    "paste": ("&Paste", "paste", (QKeySequence.StandardKey.Paste,),
              "Classify an image or file paths from the clipboard"),
    "import_weights": ("&Import Weights…", "import", ("Ctrl+I",), "Import a pretrained weights file you were given"),
    "download_weights": ("&Download Weights", "download", ("Ctrl+Shift+D",),
                         "Download the pretrained weights of the current model"),
    "train_model": ("&Train a Model…", "train", ("Ctrl+T",), "Fine-tune a network on a folder of your own photos"),
    "manage_models": ("Manage Saved &Models…", "model", ("Ctrl+Shift+T",),
                      "See and delete your trained models and training runs, with their sizes"),
    "export": ("&Export Results…", "export", ("Ctrl+E",), "Save the predictions as CSV or JSON"),
    "quit": ("&Quit", "quit", ("Ctrl+Q",), "Quit ConvNet Studio"),
    "clear": ("C&lear Gallery", "clear", ("Ctrl+L", "Ctrl+Shift+Backspace"), "Remove every photo from the gallery"),
    "reclassify": ("&Classify Again", "refresh", ("F5", "Ctrl+R"), "Classify every photo again with the current model"),
    "stop": ("&Stop", "stop", ("Esc",), "Stop classifying"),
    "choose_model": ("Choose &Model…", "model", ("Ctrl+M",), "Pick another network"),
    "choose_device": ("Choose De&vice…", "chip", ("Ctrl+Shift+M",), "Pick where the network runs"),
    "make_int8": ("Make int&8 Variant…", "chip", ("Ctrl+Shift+8",),
                  "Quantize the current model to int8 for the CPU, calibrated and checked on a folder of your photos; "
                  "it is used only if it keeps fp32's answers"),
    "compare": ("Com&pare Models…", "compare", ("Ctrl+K",),
                "Compare architectures side by side on the selected photos"),
    "live": ("&Live…", "chip", ("Ctrl+Shift+L",),
             "Classify a camera or a video file as it plays, with Grad-CAM and a second model"),
    "zoom_in": ("&Larger Thumbnails", "zoom-in", (QKeySequence.StandardKey.ZoomIn, "Ctrl+="), "Show larger thumbnails"),
    "zoom_out": ("S&maller Thumbnails", "zoom-out", (QKeySequence.StandardKey.ZoomOut,), "Show smaller thumbnails"),
    "about": ("&About ConvNet Studio", "about", ("F1",), "Versions and the device in use"),
}

# shorter labels for toolbar buttons
ICON_TEXT = {"open": "Open", "open_folder": "Folder", "reclassify": "Reclassify", "export": "Export",
             "clear": "Clear", "import_weights": "Import Weights", "download_weights": "Download Weights"}
ROLES = {"quit": QAction.MenuRole.QuitRole, "about": QAction.MenuRole.AboutRole}

# disabled until the model registry (and with it torch) has loaded
REGISTRY_ACTIONS = ("import_weights", "download_weights", "compare", "choose_model", "choose_device", "train_model",
                    "manage_models", "live", "make_int8")

MENUS: list[tuple[str, list[str | None]]] = [
    ("&File", ["open", "open_folder", None, "import_weights", "download_weights", None, "train_model", "manage_models",
               None, "export", None, "quit"]),
    ("&Edit", ["paste", None, "clear"]),
    ("&Classify", ["reclassify", "stop", None, "choose_model", "choose_device", None, "make_int8", None, "compare"]),
    ("&View", ["live", None, "zoom_in", "zoom_out"]),
    ("&Help", ["about"]),
]

TOOLBAR_LEAD: list[str | None] = ["open", "open_folder", "paste"]
TOOLBAR_RUN: list[str | None] = ["reclassify", "stop"]
TOOLBAR_TAIL: list[str | None] = ["export", "clear"]


def create_actions(parent: QObject) -> SimpleNamespace:
    """Every action of ``ACTIONS`` as attributes by name, not connected yet (``connect_actions``).

    Made before the objects that act on them, since some of those show them (the weights banner's buttons)."""
    made = {}
    for name, (text, icon_name, keys, tip) in ACTIONS.items():
        action = new_action(parent, text, shortcuts=keys, icon=icon_name, tip=tip, role=ROLES.get(name))
        action.setObjectName(f"action_{name}")
        if name in ICON_TEXT:
            action.setIconText(ICON_TEXT[name])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        made[name] = action
    return SimpleNamespace(**made)


def connect_actions(actions: SimpleNamespace, commands: Mapping[str, Callable[[], object]]) -> None:
    """Connect each action to its command: ``commands`` names every action of ``ACTIONS``, no more, no less."""
    missing, unknown = set(ACTIONS) - set(commands), set(commands) - set(ACTIONS)
    if missing or unknown:
        raise ValueError(f"actions without a command: {sorted(missing)}; commands for no action: {sorted(unknown)}")
    for name, command in commands.items():
        if not callable(command):
            raise TypeError(f"the command of {name!r} is not callable: {command!r}")
        getattr(actions, name).triggered.connect(lambda _checked=False, command=command: command())


def build_menus(menubar: QMenuBar, actions: SimpleNamespace) -> dict[str, QMenu]:
    menus = {}
    for title, names in MENUS:
        menu = menubar.addMenu(title)
        add_actions(menu, pick(actions, names))
        menus[title.replace("&", "")] = menu
    return menus


def pick(actions: SimpleNamespace, names: Iterable[str | None]) -> list[QAction | None]:
    """The actions named, in order (``None``, a separator, stays ``None``)."""
    return [getattr(actions, name) if name else None for name in names]
