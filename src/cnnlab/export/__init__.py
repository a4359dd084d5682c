"""Export: execute the numbered notebooks and turn them into an HTML report, a reveal.js deck and a .pptx.

Everything written is self-contained (no CDN), so it opens offline and survives being copied alone.
"""

from .build import build
from .html import export_report
from .notebooks import NotebookExecutionError, discover_notebooks, execute_notebooks
from .powerpoint import export_pptx
from .slides import export_slides

__all__ = [
    "NotebookExecutionError",
    "build",
    "discover_notebooks",
    "execute_notebooks",
    "export_pptx",
    "export_report",
    "export_slides",
]
