# geoforge's fixtures for plugin authors (`geoforge_positive`, a right triangle with an altitude).
pytest_plugins = ["geoforge.testing"]
