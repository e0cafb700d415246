"""`python -m supervisor`: the `staff` command (for checkouts and subprocesses without the script)."""

import sys

from supervisor.client.cli.main import main

sys.exit(main())
