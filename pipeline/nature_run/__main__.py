import sys

from pipeline.nature_run.generator import main

sys.exit(main())
