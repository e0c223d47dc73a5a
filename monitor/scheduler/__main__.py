"""`python -m monitor.scheduler serve|status ...`: the main CLI with the scheduler commands attached."""
from monitor.scheduler.cli import main

main()
