"""`python -m pipeline_defs ...`: the `sluice` command."""

from pipeline_defs.console import main

main()
