"""Retail dataset: its schema, a synthetic generator, loaders and validation."""
