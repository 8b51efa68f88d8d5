"""Tests of the Lambda handlers as plain functions against moto."""
