"""``python -m convcli``."""

import sys

from convcli.cli import main

sys.exit(main())
