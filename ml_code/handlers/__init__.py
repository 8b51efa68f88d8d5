"""Lambda handlers: plain functions over boto3 clients, run in AWS or against the emulator."""
