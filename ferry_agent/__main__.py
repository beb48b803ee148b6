"""`python -m ferry_agent`: the same as `ferry-agent`."""

import sys

from ferry_agent.cli import main

sys.exit(main())
