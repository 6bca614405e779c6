"""``python -m nn``: the same as the ``autograd-core`` command."""
import sys

from nn.apps.cli import main

sys.exit(main())
