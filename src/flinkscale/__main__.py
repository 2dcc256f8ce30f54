import sys

from flinkscale.cli import main

sys.exit(main())
