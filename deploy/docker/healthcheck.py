"""Docker HEALTHCHECK: exit 0 when the worker's /health answers 200, else 1.

Reads the port from Valence's own settings (VALENCE_HTTP_PORT), like the worker does.
"""

from __future__ import annotations

import sys
import urllib.request

from stream.config import Settings


def main() -> int:
    url = f"http://127.0.0.1:{Settings().http_port}/health"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
