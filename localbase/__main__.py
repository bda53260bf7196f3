import sys

from localbase.cli import main

sys.exit(main())
