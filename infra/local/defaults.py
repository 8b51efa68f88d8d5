"""Defaults of a local run, apart from the run itself so the CLI can show them without
importing pandas, moto and the scenario (every `mlops-kit` command would pay for that)."""

DEFAULT_DAYS = 9
"""Budget: a default run must take under a minute on two cores; a monitored day costs ~4 s."""
DEFAULT_HISTORY_DAYS = 62
"""Every training cut-off then has a full 28-day lookback behind it; with less, the baseline's
28-day features are truncated and serving traffic reads as drift from the first day."""
DEFAULT_SHIFT_DAY = 2
DEFAULT_BAD_BATCH_DAY = 4
DEFAULT_CUSTOMERS = 600
DEFAULT_REQUESTS_PER_DAY = 30
DEFAULT_SEED = 7
