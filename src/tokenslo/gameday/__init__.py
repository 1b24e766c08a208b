"""The game day: one command that runs load, experiments, evaluation and the report."""
