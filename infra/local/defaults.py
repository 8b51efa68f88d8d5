"""Defaults of a local run, apart from the run itself so the CLI can show them without
importing pandas, moto and the scenario (every `mlops-kit` command would pay for that)."""

DEFAULT_DAYS = 20
"""The story needs three weeks: customers change on day 1, drift shows within days (too early
to retrain: nothing is labelled yet), a week of labels shows the quality drop, the retrain
deploys on day 10 or so, and its own traffic is labelled a week later."""
MIN_HISTORY_DAYS = 42
"""`ml_code.features.build.MIN_DATA_DAYS`, kept here as a number so the CLI can check
`--history-days` without importing pandas (a test holds the two equal)."""
DEFAULT_HISTORY_DAYS = 45
"""The 42 days a training set needs (28 of features before the first cut-off, two label
windows after it), and a few more."""
DEFAULT_SHIFT_DAY = 1
DEFAULT_BAD_BATCH_DAY = 4
DEFAULT_CUSTOMERS = 600
DEFAULT_REQUESTS_PER_DAY = 20
"""Ranking requests a day: each costs ~25 ms of pandas and scikit-learn in the endpoint, so
this is what the minute buys; the drift window (a week, at least 100 requests) and the quality
alarm (five days in a row) are what make so few requests enough."""
DEFAULT_SEED = 7
SIMULATION_START = "2026-01-07"
"""The first simulated day (a Wednesday). Shoppers' activity follows the weekday, so a run that
started on the real date would tell a different story on each day of the week; a run is a
function of its seed and options alone."""
