"""Offline plans: run the real Pulumi program under the SDK's mock engine and capture it."""
