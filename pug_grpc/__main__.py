"""``python -m pug_grpc``: the same command line as ``pug-grpc``."""

import sys

from pug_grpc._cli import main

if __name__ == "__main__":
    sys.exit(main())
