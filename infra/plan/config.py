"""Stack configuration as the Pulumi CLI hands it to a program.

Values merge project defaults (`Pulumi.yaml`) under the stack file (`stacks/Pulumi.<stack>.yaml`).
Like the engine, every value reaches the program as a string: scalars as text, booleans as
`true`/`false`, objects and lists as JSON. `secure:` values stay ciphertext here (there is no
secrets provider offline) and are marked secret, so they are never printed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigFileError(Exception):
    """A project or stack file that cannot be read as Pulumi would read it."""


@dataclass(frozen=True)
class Project:
    root: Path
    name: str
    main: Path
    stack_config_dir: Path
    declarations: dict[str, dict[str, Any]] = field(default_factory=dict)

    def stack_file(self, stack: str) -> Path:
        return self.stack_config_dir / f"Pulumi.{stack}.yaml"

    def stacks(self) -> list[str]:
        names = (
            p.name[len("Pulumi.") : -len(".yaml")]
            for p in self.stack_config_dir.glob("Pulumi.*.yaml")
        )
        return sorted(names)


@dataclass(frozen=True)
class StackConfig:
    values: dict[str, str]
    secret_keys: list[str]


def load_project(root: Path) -> Project:
    path = root / "Pulumi.yaml"
    if not path.exists():
        raise ConfigFileError(
            f"no Pulumi.yaml in {root}: run from the project root or pass --project-dir"
        )
    doc = yaml.safe_load(path.read_text()) or {}
    name = doc.get("name")
    if not name:
        raise ConfigFileError(f"{path}: 'name' is required")
    main = root / doc.get("main", ".")
    config_dir = root / doc.get("stackConfigDir", ".")
    declarations = {}
    for key, decl in (doc.get("config") or {}).items():
        full = key if ":" in key else f"{name}:{key}"
        declarations[full] = decl if isinstance(decl, dict) else {"value": decl}
    return Project(root, name, main, config_dir, declarations)


def _engine_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def load_stack_config(
    project: Project, stack: str, overrides: dict[str, Any] | None = None
) -> StackConfig:
    path = project.stack_file(stack)
    if not path.exists():
        known = ", ".join(project.stacks()) or "none"
        raise ConfigFileError(f"stack '{stack}' has no config file {path} (stacks found: {known})")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{path} is not valid YAML: {exc}") from exc
    values: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, decl in project.declarations.items():
        if "default" in decl:
            values[key] = _engine_string(decl["default"])
        elif "value" in decl:
            values[key] = _engine_string(decl["value"])
        if decl.get("secret"):
            secret_keys.append(key)
    stack_values = dict(doc.get("config") or {})
    stack_values.update(overrides or {})
    for key, value in stack_values.items():
        full = key if ":" in key else f"{project.name}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[full] = str(value["secure"])
            secret_keys.append(full)
        else:
            values[full] = _engine_string(value)
    return StackConfig(dict(sorted(values.items())), sorted(set(secret_keys)))
