"""The README opens with the two set-up-and-go commands, and CI runs the test one."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_has_the_main_and_test_commands_and_ci_runs_the_test_one() -> None:
    commands = re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())
    main, tests = commands[0], commands[1]
    assert "pip install" in main and "annoray quickstart" in main
    assert "pip install" in tests and "pytest" in tests
    assert tests in (ROOT / ".ci/run").read_text()
