import sys

from pipeline.gridding.cli import main

sys.exit(main())
