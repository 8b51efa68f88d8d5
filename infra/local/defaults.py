"""Defaults of a local run, apart from the run itself so the CLI can show them without
importing pandas, moto and the scenario (every `mlops-kit` command would pay for that)."""

DEFAULT_DAYS = 24
"""The story needs three and a half weeks: customers change on day 1, drift shows some days
later (too early to retrain: nothing after it is labelled yet), a week later the labels show
the change and one run learns it, and its own traffic is labelled a week after that."""
MIN_HISTORY_DAYS = 41
"""`ml_code.features.build.MIN_DATA_DAYS`, kept here as a number so the CLI can check
`--history-days` without importing pandas (a test holds the two equal)."""
DEFAULT_HISTORY_DAYS = 45
"""The 41 days a training set needs (28 of features before the oldest of seven daily cut-offs,
a label window after the newest), and a few more."""
DEFAULT_SHIFT_DAY = 1
DEFAULT_BAD_BATCH_DAY = 4
DEFAULT_CUSTOMERS = 600
DEFAULT_REQUESTS_PER_DAY = 60
"""Ranking requests a day: each costs ~25 ms of pandas and scikit-learn in the endpoint. Quality
is judged on the rankings with a purchase (about a third of them) over a five-day window, and
a shortfall must stand out from the sampling error of that window and of the held-out result:
at 20 a day a drop of a fifth in NDCG@10 is about one standard error, at 60 about two."""
DEFAULT_SEED = 7
SIMULATION_START = "2026-01-07"
"""The first simulated day (a Wednesday). Shoppers' activity follows the weekday, so a run that
started on the real date would tell a different story on each day of the week; a run is a
function of its seed and options alone."""
