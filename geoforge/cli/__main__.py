"""``python -m geoforge.cli``."""

from geoforge.cli import main

main()
