"""Tags every taggable child carries: `{"Name": name, **platform_tags, **own_tags}`."""

from __future__ import annotations

from collections.abc import Mapping


def tags_for(name: str, *tag_sets: Mapping[str, str]) -> dict[str, str]:
    merged = {"Name": name}
    for tag_set in tag_sets:
        merged.update(tag_set)
    return merged
