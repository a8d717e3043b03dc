"""MkDocs hooks for the documentation site (``mkdocs.yml``: ``hooks``).

mer's docstrings use Sphinx's cross-reference roles (``:class:`mer.Prediction```,
``:func:`~mer.audio.load```), which mkdocstrings renders as plain text with the role in front;
this hook drops the role (and the ``~`` that would shorten the name) from the rendered page, so
the reference reads ``mer.Prediction`` in code type instead of ``:class:mer.Prediction``.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):(<code>)~?")


def on_page_content(html: str, **kwargs: Any) -> str:
    return _ROLE.sub(r"\1", html)
