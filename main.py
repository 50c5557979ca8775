"""ConvNet Studio entry point: no arguments (or only paths) opens the window;
a subcommand (classify, models, weights, ...) runs headless."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from core.defaults import SUBCOMMANDS  # noqa: PLC0415 - imports nothing

    args = sys.argv[1:] if argv is None else argv
    if args and (args[0] in SUBCOMMANDS or args[0] in ("-h", "--help", "--version")):
        from core.cli import run_cli  # noqa: PLC0415 - lazy: the window never loads the CLI (~0.1 s)

        return run_cli(args)
    from gui.quick_route import prewarm_launch  # noqa: PLC0415 - lazy: QtCore only

    prewarm_launch(args)  # launched with photos: the first prediction's session opens while Qt's widgets load
    from gui.app import run_app  # noqa: PLC0415 - lazy: a headless subcommand never loads Qt

    return run_app(args)


if __name__ == "__main__":
    sys.exit(main())
