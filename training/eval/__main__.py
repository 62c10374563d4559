"""``python -m training.eval``: see ``training.eval.run``."""

import sys

from training.eval.run import main

sys.exit(main())
