"""Per-browser-session uploads: each upload (a workspace, or a table whose graph is being discovered) gets a
random token, and only a request carrying that token sees it.

The store is bounded: it keeps the ``capacity`` most recently used uploads. A token it no longer holds (evicted,
or the server restarted) is answered with :class:`SessionGone`, which the page shows; it never falls back to
other data silently.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from condfip.web.workspace import Workspace

if TYPE_CHECKING:
    from condfip.web.discovery import Discovery

CAPACITY = 16


class SessionGone(LookupError):
    """A request named an upload this server no longer holds."""


class SessionStore:
    """Uploaded workspaces (and discoveries) by random token, at most ``capacity`` of them (least recently used
    dropped)."""

    def __init__(self, default: Workspace, capacity: int = CAPACITY):
        self.default = default
        self.capacity = int(capacity)
        self._uploads: OrderedDict[str, Workspace | Discovery] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._uploads)

    def add(self, workspace: Workspace | Discovery) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._uploads[token] = workspace
            while len(self._uploads) > self.capacity:
                self._uploads.popitem(last=False)
        return token

    def get(self, token: str | None) -> Workspace | Discovery:
        """The upload behind ``token``; no token: the server's own dataset."""
        if token is None:
            return self.default
        with self._lock:
            workspace = self._uploads.get(token)
            if workspace is None:
                raise SessionGone(f"this page's upload is no longer on the server (it keeps the {self.capacity} "
                                  f"most recent uploads, and none after a restart); fix: upload the files again")
            self._uploads.move_to_end(token)
            return workspace
