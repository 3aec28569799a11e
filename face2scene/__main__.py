"""``python -m face2scene`` is the ``face2scene`` command."""
import sys

from .cli import main

sys.exit(main())
