"""The wiring and the running exporter: targets built from settings, the poll job, the scheduler."""
