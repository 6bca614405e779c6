"""``python -m nn``: the same as the ``autograd-core`` command."""
import sys

from nn.cli import main

sys.exit(main())
