"""``python -m ecgnet``: the ``ecgnet`` command."""
import sys

from .cli import main

sys.exit(main())
