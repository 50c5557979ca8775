"""The main window's controllers: QObjects that each own one group of commands, with the views, the
catalog and the worker they act on given to their constructors (``gui.main_window`` wires them)."""
