"""Pull-request review: what a change does to each stack's plan, before anyone runs `pulumi up`."""
