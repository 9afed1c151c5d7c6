"""Writing a report to a file whose extension says the format: HTML or JSON.

The drift report, the endpoint drift report and the shadow diff report each have a
``write(path)`` method built on :func:`write_report`, so they accept the same extensions
and refuse others with the same message.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ferryman.errors import InvalidInputError

#: File extensions (lower case) written as HTML.
HTML_SUFFIXES = (".html", ".htm")
#: File extension (lower case) written as JSON.
JSON_SUFFIX = ".json"


def write_report(
    path: str | os.PathLike[str],
    *,
    to_html: Callable[[], str],
    to_json: Callable[[], str],
) -> Path:
    """Write a report as HTML (``.html``, ``.htm``) or JSON (``.json``), by the path's extension.

    The extension is compared case-insensitively; the file is UTF-8, and JSON ends with a
    newline. Only the rendering the extension asks for is called.

    Args:
        path: Where to write; an existing file is replaced.
        to_html: Renders the report as a standalone HTML page.
        to_json: Renders the report as a JSON string.

    Returns:
        The path written.

    Raises:
        InvalidInputError: Another file extension.
        MissingDependencyError: HTML asked and ``to_html`` needs Plotly, which is not
            installed (raised by ``to_html``).
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix in HTML_SUFFIXES:
        text = to_html()
    elif suffix == JSON_SUFFIX:
        text = to_json() + "\n"
    else:
        raise InvalidInputError(
            f"Unsupported report file {str(target)!r}: expected .html or .json."
        )
    target.write_text(text, encoding="utf-8")
    return target
