"""A page's title block holds words: markup there shows up in the browser tab and history."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.core.test_csp import ROOT, templates

TITLE_BLOCK = re.compile(r"{%\s*block title\s*%}(.*?){%\s*endblock", re.S)


@pytest.mark.parametrize("template", templates(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_title_block_holds_no_markup(template: Path) -> None:
    for title in TITLE_BLOCK.findall(template.read_text()):
        assert "<" not in title and "\n" not in title.strip(), f"{template.name}: {title[:80]!r}"


def test_the_scanner_finds_a_title_with_a_section_in_it() -> None:
    broken = '{% block title %}My usage<section class="card">…</section>\n{% endblock %}'
    assert "<section" in TITLE_BLOCK.findall(broken)[0]
