"""`python -m monitor.scheduler serve|status ...`: the main CLI, which carries the scheduler commands."""
from monitor.cli import main

main()
