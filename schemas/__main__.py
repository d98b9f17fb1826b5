"""`python -m schemas archive`: add the current schemas to schemas/history/.

Run it after changing a schema, and commit what it writes.
"""

from __future__ import annotations

import sys

from schemas.registry import REGISTRY, archive


def main(argv: list[str]) -> int:
    if argv != ["archive"]:
        print("usage: python -m schemas archive", file=sys.stderr)
        return 2
    for path in archive(REGISTRY):
        print(f"archived {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
