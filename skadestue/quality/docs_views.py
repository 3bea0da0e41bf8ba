"""Data Docs page views that load and compile GX's Jinja templates once per process.

GX creates new views (and with them a new Jinja ``Environment``) for every Data Docs build,
so each gate's build read and compiled the same ~40 templates again: about half of a
build's time. These subclasses hand every view of a class the Environment its first view
made, so templates stay compiled in its cache; the templates, filters and the HTML are
GX's own (the filters only use the view's template environment, which is the same). They
are named in the site config (``site_section_builders.*.view`` and
``site_index_builder.view``, GX's documented way to choose a view class) by
:func:`skadestue.quality.gx_runtime.build_data_docs`.
"""

from __future__ import annotations

import threading
from typing import Any

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView

_ENVIRONMENTS: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.Lock()


def _share_environment(view: Any, custom_styles_directory: Any, custom_views_directory: Any) -> None:
    """Give ``view`` the Environment of the first view of its class and directories."""
    key = (type(view), custom_styles_directory, custom_views_directory)
    with _LOCK:
        view.env = _ENVIRONMENTS.setdefault(key, view.env)


class CachedJinjaPageView(DefaultJinjaPageView):
    """GX's page view (suite and validation-result pages), templates compiled once."""

    def __init__(self, custom_styles_directory: Any = None, custom_views_directory: Any = None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        _share_environment(self, custom_styles_directory, custom_views_directory)


class CachedJinjaIndexPageView(DefaultJinjaIndexPageView):
    """GX's index page view, templates compiled once."""

    def __init__(self, custom_styles_directory: Any = None, custom_views_directory: Any = None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        _share_environment(self, custom_styles_directory, custom_views_directory)


def view_config(index: bool = False) -> dict[str, str]:
    """The ``view`` entry of a GX site config that selects one of these classes."""
    return {"module_name": __name__,
            "class_name": CachedJinjaIndexPageView.__name__ if index else CachedJinjaPageView.__name__}
