import sys

from pipeline.dataset.assemble import main

sys.exit(main())
