"""``python -m benchmarks.screenshots``: the main window's screenshots and ``compare.png``."""

import sys

from benchmarks.screenshots.main_window import main

sys.exit(main())
