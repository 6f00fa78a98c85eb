"""The `valence` command line: operator tools over the worker, the broker and the models.

Nothing in the worker core (`stream/`) imports this package.
"""

from stream.cli.main import main

__all__ = ["main"]
