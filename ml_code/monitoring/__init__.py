"""Model monitoring: training baselines, feature drift and model quality on captured traffic."""
