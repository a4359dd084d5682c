"""`python -m cnnlab ...` (and `torchrun ... -m cnnlab train ...`): the same command line as `cnnlab`."""

import sys

from .cli import main

sys.exit(main())
