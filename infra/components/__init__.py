"""One ComponentResource per concern, each shaped alike (see ../shared/CONVENTIONS.md)."""
