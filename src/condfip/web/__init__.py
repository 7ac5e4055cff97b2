"""``condfip serve``: a local what-if page over one dataset, its DAG and the SCM inferred from them.

Modules: ``workspace`` (a loaded dataset + SCM), ``fields`` (the JSON API's checked request fields), ``answers``
(what the API answers, from the library's API), ``sessions`` (per-browser uploads by random token),
``server`` (the Starlette app and ``serve``), ``static/`` (the page: plain HTML, JS and SVG, no downloads).
Needs the ``web`` extra: ``pip install 'condfip[web]'``.
"""


def serve(*args, **kwargs):
    """See :func:`condfip.web.server.serve`."""
    from condfip.web.server import serve as run

    return run(*args, **kwargs)
