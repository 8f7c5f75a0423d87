"""Built-in defaults and limits that the flags' help states, in a module that imports nothing: tasks.py
reads them when invoke loads it, and `invoke --list` or `--help` should load no driver for them (the
modules they belong to import psycopg)."""

DEMO_SCALE = 0.05  # demo.py: 150k claims, 50k drift events, 15k uploads: seeds in seconds
TRAFFIC_TOP = 10  # verify.py, --traffic: how many statements, heaviest first
DJANGO_MAX_NAME = 30  # django_state.py: Django's models.Index.max_name_length (models.E034)
