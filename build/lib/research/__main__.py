"""`python -m research`: the same command line as the `research` console script."""

import sys

from research.cli import main

sys.exit(main())
