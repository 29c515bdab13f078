"""`python -m unillm` runs the unillm command."""

from unillm.cli import main

main()
