"""The README documents every setting, and every FOVEA_ variable it names is real: a setting of
shared/settings.py, a variable the CLI client reads, or one the compose files interpolate."""

from __future__ import annotations

import re

from shared.settings import Settings
from tests.support.compose import COMPOSE, GPUS, REPO, variables

README = (REPO / "README.md").read_text()
FIELDS = {name.upper() for name in Settings.model_fields}


def configuration_table() -> set[str]:
    section = README.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z0-9_]+)`", row.split("|")[1])}


def test_every_setting_in_the_table_exists_and_every_setting_is_in_it() -> None:
    documented = configuration_table()
    assert documented - FIELDS == set(), "documented but not a setting"
    assert FIELDS - documented == set(), "a setting the README does not document"


def test_every_fovea_variable_the_readme_names_is_real() -> None:
    client = "\n".join(path.read_text() for path in (REPO / "cli").glob("*.py"))
    compose = set(variables(COMPOSE)) | set(variables(GPUS))
    for name in sorted(set(re.findall(r"FOVEA_[A-Z0-9_]+", README))):
        setting = name.removeprefix("FOVEA_")
        assert setting in FIELDS or f'"{name}"' in client or name in compose, name


def test_the_checks_can_fail() -> None:
    assert "API_KEYS" in configuration_table() and "NO_SUCH_SETTING" not in FIELDS
