"""README.rst is valid reStructuredText (a broken table or link renders as garbage on PyPI)."""

from pathlib import Path

import docutils.core

README = Path(__file__).resolve().parents[2] / "README.rst"


def test_readme_renders_without_warnings():
    messages = []

    class Collect:
        def write(self, text):
            messages.append(text)

    docutils.core.publish_string(README.read_text(), writer="null",
                                 settings_overrides={"report_level": 2, "halt_level": 5, "warning_stream": Collect()})
    assert messages == []
