"""A small, offline fake of the Hugging Face Hub file endpoints, for tests.

``FakeHub`` is a stdlib-only (``http.server`` + ``threading``) HTTP server bound to
``127.0.0.1`` on a free port.  It answers the requests that the *real*
``huggingface_hub`` client (written against 2.4.0) makes for ``hf_hub_download``,
``snapshot_download`` and ``model_info``/``repo_info``, so Forger's Hub code can be
tested end to end without a network.  It can also serve arbitrary plain URLs
(``add_url``), standing in for checkpoint hosts such as
``http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/NAME.pth``.

Importing this module never imports ``huggingface_hub``; only the optional helper
``configure_hf_hub_client`` does, lazily.

Endpoints served
----------------
``HEAD``/``GET {url}/{repo_id}/resolve/{revision}/{filename}``            (models)
``HEAD``/``GET {url}/datasets/{repo_id}/resolve/...`` and ``/spaces/...``  (datasets, spaces)
    200 with ``X-Repo-Commit`` (fake 40-hex commit of (repo, revision)),
    ``ETag: "<sha256 of content>"`` (as the Hub does for LFS files),
    ``Content-Length``, ``Accept-Ranges: bytes`` (``Range`` -> 206 is honoured, the
    client uses it to resume).  ``revision`` may be a branch/tag name given to
    ``add_file`` or the commit hash of one (``hub.commit_hash(...)``).
    With ``FakeHub(cdn_redirect=True)`` the resolve URL instead answers 302 like the
    real Hub does for LFS files: ``Location: http://localhost:PORT/_cdn/<sha256>``
    (a *different origin*, so the client strips ``Authorization`` and downloads
    from there), ``X-Linked-Etag``, ``X-Linked-Size``, ``X-Repo-Commit``.
    No ``X-Xet-*`` header is ever sent, so the client never takes the hf_xet path.
``GET {url}/api/{models|datasets|spaces}/{repo_id}[/revision/{rev}]``
    ``{"id", "sha", "private", "siblings": [{"rfilename"}], ...}`` (model_info,
    repo_info, and the first call of snapshot_download).
``GET {url}/api/{models|datasets|spaces}/{repo_id}/tree/{rev}[/{path}]?recursive=...``
    list_repo_tree (second call of snapshot_download); one page, no ``Link`` header.
``HEAD``/``GET`` any path registered with ``add_url``  (query string ignored).

Write API (what ``HfApi.create_repo`` and ``upload_folder`` / ``create_commit`` send in 2.4.0,
with ``HF_HUB_DISABLE_XET``; every write needs ``Authorization: Bearer <any token>``, else 401):

``POST {url}/api/repos/create``  JSON ``{"name", "organization", "type"?, "visibility"?}``
    200 ``{"url": "{url}/[datasets/|spaces/]{repo_id}", ...}``; 409 if the repo exists (the client's
    ``exist_ok=True`` accepts that).  A ``"private"`` repo belongs to the creating token: its files
    answer 401 to any other (or no) token, and only that token may write to it.
``POST {url}/api/validate-yaml``  (README.md front matter, checked before an upload)
    200 ``{"errors": [], "warnings": []}``; 400 with an error if a ``---`` front matter is not closed.
``POST {url}/api/{models|datasets|spaces}/{repo_id}/preupload/{rev}``  JSON ``{"files": [{"path",
    "sample", "size"}]}``
    200 ``{"files": [{"path", "uploadMode": "regular", "shouldIgnore": false, "oid"}]}``: every file
    is "regular" (so the client never takes the LFS ``/info/lfs/objects/batch`` path); ``oid`` is the
    git blob id of the file already there (the client then skips unchanged files), else null.
``POST {url}/api/{models|datasets|spaces}/{repo_id}/commit/{rev}``  NDJSON: a ``header`` line
    (``summary``, ``description``), then ``file`` lines (base64 ``content``), ``deletedFile`` /
    ``deletedFolder`` lines, and ``lfsFile`` lines only for content the server already holds.
    200 ``{"commitOid", "commitUrl", "success": true}``; the revision gets a new commit hash.
    Each commit is also appended to ``hub.commits``.

Errors (verified against ``huggingface_hub/utils/_http.py::hf_raise_for_status`` and
``file_download.py`` in 2.4.0):

=====================================  ===================================================  =====================================
case                                    response                                             ``hf_hub_download`` raises
=====================================  ===================================================  =====================================
unknown repo (or wrong repo_type)       404, ``X-Error-Code: RepoNotFound``                  ``RepositoryNotFoundError``
unknown revision                        404, ``X-Error-Code: RevisionNotFound``              ``RevisionNotFoundError``
unknown file                            404, ``X-Error-Code: EntryNotFound`` + X-Repo-Commit ``RemoteEntryNotFoundError`` (alias
                                                                                             ``EntryNotFoundError``)
private file, no ``Authorization``      401, ``X-Error-Code: RepoNotFound``                  ``RepositoryNotFoundError``
private file, wrong bearer token        401, ``X-Error-Message: Invalid credentials in       ``HfHubHTTPError`` (status 401; NOT a
                                        Authorization header`` (no error code)               RepositoryNotFoundError)
=====================================  ===================================================  =====================================

The ``X-Error-Code`` header is what matters: ``hf_raise_for_status`` only maps a *bare*
401 to ``RepositoryNotFoundError`` for ``https://`` URLs, and a bare 404 becomes a
generic ``HfHubHTTPError`` (which ``hf_hub_download`` turns into
``LocalEntryNotFoundError``).  Privacy is per file (``private_token``); the API
endpoints treat a repo as private when *all* its files are private.

Pointing an already-imported ``huggingface_hub`` (2.4.0) at the server
-----------------------------------------------------------------------
``huggingface_hub.constants`` reads every environment variable ONCE, at import time.
Setting ``HF_ENDPOINT`` / ``HF_HOME`` / ``HF_HUB_OFFLINE`` later with
``monkeypatch.setenv`` changes nothing for the current process (only for subprocesses
and for a process that imports huggingface_hub afterwards).  In a pytest test, in
this order (``configure_hf_hub_client(monkeypatch, hub.url, tmp_path / "hf_home")``
does exactly this):

1. env, for subprocesses / late imports: ``HF_ENDPOINT=hub.url``, ``HF_HOME=<tmp>``,
   ``HF_HUB_CACHE=<tmp>/hub``, ``HF_HUB_DISABLE_TELEMETRY=1``, ``HF_HUB_DISABLE_XET=1``,
   ``NO_PROXY``/``no_proxy`` += ``127.0.0.1,localhost``; delete ``HF_HUB_OFFLINE``,
   ``TRANSFORMERS_OFFLINE``, ``HF_TOKEN``, ``HUGGING_FACE_HUB_TOKEN``,
   ``HF_OIDC_RESOURCE`` (``get_token()`` reads the token env vars at call time).
2. endpoint: ``constants.ENDPOINT = hub.url`` AND
   ``constants.HUGGINGFACE_CO_URL_TEMPLATE = hub.url + "/{repo_id}/resolve/{revision}/{filename}"``
   (``hf_hub_url`` formats the template; ``ENDPOINT`` alone is not enough).  Also
   ``huggingface_hub.hf_api.api.endpoint = hub.url``: the module-level ``HfApi()``
   behind ``huggingface_hub.model_info``/``repo_info``/... captured the endpoint at
   import.  ``snapshot_download`` and new ``HfApi()`` objects read
   ``constants.ENDPOINT`` at call time.  (Alternative without patching the endpoint:
   ``hf_hub_download(..., endpoint=hub.url)`` / ``snapshot_download(..., endpoint=...)``
   / ``HfApi(endpoint=...)`` all exist in 2.4.0.)
3. fresh cache: ``constants.HF_HUB_CACHE`` (read at call time by ``hf_hub_download``
   and ``snapshot_download`` when ``cache_dir`` is None) plus ``HF_HOME``,
   ``HUGGINGFACE_HUB_CACHE``, ``HF_ASSETS_CACHE``, ``HF_XET_CACHE``, and
   ``HF_TOKEN_PATH``/``HF_STORED_TOKENS_PATH`` (so no real token file is picked up).
4. modes: ``constants.HF_HUB_OFFLINE = False``, ``constants.HF_HUB_DISABLE_XET = True``
   (belt and braces: the server never sends ``X-Xet-Hash`` anyway),
   ``constants.HF_HUB_DISABLE_TELEMETRY = True`` (hf_hub_download sends no telemetry).
5. ``huggingface_hub.close_session()``: drop the shared ``httpx`` client so it is
   rebuilt with the current proxy env and holds no connection to an old server.

Offline mode at run time: ``monkeypatch.setattr(huggingface_hub.constants,
"HF_HUB_OFFLINE", True)``.  ``constants.is_offline_mode()`` returns that module
global and the client's request hook raises ``OfflineModeIsEnabled`` before any
byte is sent; ``hf_hub_download`` then falls back to ``refs/<revision>`` in the
cache (or raises ``LocalEntryNotFoundError``).  ``local_files_only=True`` is the
per-call equivalent.

Example::

    with FakeHub() as hub:
        hub.add_file("org/repo", "latest_net_G.pth", b"...")
        configure_hf_hub_client(monkeypatch, hub.url, tmp_path / "hf_home")
        path = huggingface_hub.hf_hub_download("org/repo", "latest_net_G.pth")
        assert ("HEAD", "/org/repo/resolve/main/latest_net_G.pth") in hub.requests
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["FakeHub", "configure_hf_hub_client"]

_REPO_TYPES = ("model", "dataset", "space")
_URL_PREFIX = {"dataset": "datasets", "space": "spaces"}  # as huggingface_hub.constants.REPO_TYPES_URL_PREFIXES
_PREFIX_TO_TYPE = {"datasets": "dataset", "spaces": "space"}
_API_TO_TYPE = {"models": "model", "datasets": "dataset", "spaces": "space"}

# /api/{models|datasets|spaces}/{repo_id}/{preupload|commit}/{rev}: the write API (rev is %-quoted).
_WRITE_RE = re.compile(r"^/api/(models|datasets|spaces)/([^/]+(?:/[^/]+)?)/(preupload|commit)/([^/]+)$")
# /[datasets/|spaces/]{repo_id}/resolve/{revision}/{filename}; repo_id is "name" or "namespace/name".
_RESOLVE_RE = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+(?:/[^/]+)?)/resolve/([^/]+)/(.+)$")
# /api/{models|datasets|spaces}/{repo_id}[/revision/{rev} | /tree/{rev}[/{path}]]
_API_RE = re.compile(r"^/api/(models|datasets|spaces)/([^/]+(?:/[^/]+)?)(?:/(revision|tree)/([^/]+)(/.*)?)?$")

_LAST_MODIFIED = "2024-01-01T00:00:00.000Z"


@dataclass(frozen=True)
class _File:
    data: bytes
    sha256: str
    git_oid: str
    private_token: str | None


def _git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _normalize_repo_type(repo_type: str | None) -> str:
    repo_type = repo_type or "model"
    if repo_type not in _REPO_TYPES:
        raise ValueError(f"repo_type must be one of {_REPO_TYPES}, got {repo_type!r}")
    return repo_type


class FakeHub:
    """Fake Hugging Face Hub (file + minimal API endpoints) on ``http://127.0.0.1:PORT``.

    Args:
        cdn_redirect: answer ``/resolve/`` with a 302 to ``http://localhost:PORT/_cdn/<sha256>``
            (different origin), like the real Hub does for LFS files, instead of a direct 200.
    """

    def __init__(self, *, cdn_redirect: bool = False) -> None:
        self.cdn_redirect = cdn_redirect
        #: ``(method, path)`` of every request received, path without query string, as sent (still %-quoted).
        self.requests: list[tuple[str, str]] = []
        #: request headers (lower-cased names), same order/index as ``requests``.
        self.request_headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        # (repo_type, repo_id) -> revision name -> filename -> _File
        self._repos: dict[tuple[str, str], dict[str, dict[str, _File]]] = {}
        self._urls: dict[str, bytes] = {}
        self._blobs: dict[str, bytes] = {}  # sha256 -> data, for /_cdn/
        self._owners: dict[tuple[str, str], str] = {}  # private repos made through the API -> the creator's token
        self._generation: dict[tuple[str, str, str], int] = {}  # commits through the API per (type, repo, revision)
        #: one dict per commit received: repo_id, repo_type, revision, summary, description, files, deleted.
        self.commits: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ content
    def add_file(
        self,
        repo_id: str,
        filename: str,
        data: bytes,
        *,
        revision: str = "main",
        repo_type: str = "model",
        private_token: str | None = None,
    ) -> None:
        """Add (or replace) ``filename`` in ``repo_id`` at ``revision``.

        A file with ``private_token`` answers 401 unless the request carries
        ``Authorization: Bearer <private_token>``.
        """
        repo_type = _normalize_repo_type(repo_type)
        filename = filename.strip("/")
        if not filename or not revision:
            raise ValueError("filename and revision must be non-empty")
        data = bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        f = _File(data=data, sha256=sha, git_oid=_git_blob_oid(data), private_token=private_token)
        with self._lock:
            self._repos.setdefault((repo_type, repo_id), {}).setdefault(revision, {})[filename] = f
            self._blobs[sha] = data

    def add_repo(self, repo_id: str, *, revision: str = "main", repo_type: str = "model") -> None:
        """Create an (empty) repo/revision, e.g. to get EntryNotFound rather than RepoNotFound."""
        repo_type = _normalize_repo_type(repo_type)
        with self._lock:
            self._repos.setdefault((repo_type, repo_id), {}).setdefault(revision, {})

    def commit_hash(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> str:
        """The fake 40-hex commit hash the server reports for (repo, revision): fixed, and new after each
        commit through the write API."""
        repo_type = _normalize_repo_type(repo_type)
        generation = self._generation.get((repo_type, repo_id, revision), 0)
        suffix = f"#{generation}" if generation else ""
        return hashlib.sha1(f"{repo_type}:{repo_id}@{revision}{suffix}".encode()).hexdigest()

    def add_url(self, path: str, data: bytes) -> None:
        """Serve ``data`` at ``{url}{path}`` (GET/HEAD).  ``path`` may be a full URL: only its path is kept,
        so ``add_url("http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/x.pth", b"..")`` serves
        ``{hub.url}/cyclegan/pretrained_models/x.pth``."""
        if "://" in path:
            path = urlsplit(path).path
        if not path.startswith("/"):
            path = "/" + path
        with self._lock:
            self._urls[path] = bytes(data)

    def url_for(self, path: str) -> str:
        """Absolute URL of ``path`` on this server (server must be started)."""
        if "://" in path:
            path = urlsplit(path).path
        return self.url + (path if path.startswith("/") else "/" + path)

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeHub is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeHub":
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.hub = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="FakeHub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> "FakeHub":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ lookup (used by the handler)
    def _resolve_revision(self, revs: dict[str, dict[str, _File]], repo_type: str, repo_id: str, rev: str):
        """Return ``(commit, files)`` for a revision name or commit hash, or None."""
        if rev in revs:
            return self.commit_hash(repo_id, rev, repo_type), revs[rev]
        for name, files in revs.items():
            if self.commit_hash(repo_id, name, repo_type) == rev.lower():
                return rev.lower(), files
        return None


def _bearer(headers: Any) -> str | None:
    auth = headers.get("Authorization")
    if auth and auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeHub/1.0"
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers after stop()

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        pass

    @property
    def hub(self) -> FakeHub:
        return self.server.hub  # type: ignore[attr-defined]

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_POST(self) -> None:
        hub = self.hub
        path = urlsplit(self.path).path
        with hub._lock:
            hub.requests.append(("POST", path))
            hub.request_headers.append({k.lower(): v for k, v in self.headers.items()})
        try:
            body = self._read_body()
            if path == "/api/validate-yaml":
                self._validate_yaml(body)
                return
            token = _bearer(self.headers)
            if token is None:
                self._error(401, None, "Invalid username or password.", head=False)
                return
            if path == "/api/repos/create":
                self._create_repo(json.loads(body), token)
                return
            m = _WRITE_RE.match(path)
            if m is None:
                self._error(404, None, "Not found", head=False)
            elif m.group(3) == "preupload":
                self._preupload(m, json.loads(body), token)
            else:
                self._commit(m, body, token)
        except (BrokenPipeError, ConnectionResetError):
            pass

    # ------------------------------------------------------------------ plumbing
    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        head: bool,
        content_type: str = "text/plain; charset=utf-8",
    ) -> None:
        self.send_response(status)
        hdrs = {"Content-Type": content_type, "Content-Length": str(len(body))}
        hdrs.update(headers or {})
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _error(self, status: int, code: str | None, message: str, *, head: bool, extra: dict | None = None) -> None:
        headers = {"X-Error-Message": message}
        if code is not None:
            headers["X-Error-Code"] = code
        headers.update(extra or {})
        body = json.dumps({"error": message}).encode()
        self._send(status, body, headers, head=head, content_type="application/json")

    def _send_bytes(self, data: bytes, headers: dict[str, str], *, head: bool) -> None:
        """200, or 206 for a satisfiable single ``Range: bytes=a-b``."""
        total = len(data)
        headers = {"Accept-Ranges": "bytes", **headers}
        rng = self.headers.get("Range")
        if rng and not head:
            m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", rng)
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = int(m.group(2)) if m.group(2) else total - 1
                else:  # suffix range: last N bytes
                    start, end = max(total - int(m.group(2)), 0), total - 1
                end = min(end, total - 1)
                if start >= total or start > end:
                    self._send(416, b"", {"Content-Range": f"bytes */{total}"}, head=head)
                    return
                headers["Content-Range"] = f"bytes {start}-{end}/{total}"
                self._send(206, data[start : end + 1], headers, head=head, content_type="application/octet-stream")
                return
        self.send_response(200)
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(total), **headers}
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _dispatch(self, *, head: bool) -> None:
        hub = self.hub
        split = urlsplit(self.path)
        path = split.path
        with hub._lock:
            hub.requests.append((self.command, path))
            hub.request_headers.append({k.lower(): v for k, v in self.headers.items()})
        try:
            with hub._lock:
                plain = hub._urls.get(path)
            if plain is not None:
                self._send_bytes(plain, {"ETag": f'"{hashlib.sha256(plain).hexdigest()}"'}, head=head)
                return
            if path.startswith("/_cdn/"):
                with hub._lock:
                    blob = hub._blobs.get(path[len("/_cdn/") :])
                if blob is None:
                    self._error(404, None, "Not found", head=head)
                else:
                    self._send_bytes(blob, {"ETag": f'"{path[len("/_cdn/"):]}"'}, head=head)
                return
            m = _API_RE.match(path)
            if m:
                if head:
                    self._error(405, None, "Method not allowed", head=head)
                    return
                self._api(m, parse_qs(split.query))
                return
            m = _RESOLVE_RE.match(path)
            if m:
                self._resolve(m, head=head)
                return
            self._error(404, None, "Not found", head=head)
        except (BrokenPipeError, ConnectionResetError):
            pass

    # ------------------------------------------------------------------ /resolve/
    def _resolve(self, m: re.Match, *, head: bool) -> None:
        hub = self.hub
        repo_type = _PREFIX_TO_TYPE.get(m.group(1) or "", "model")
        repo_id = unquote(m.group(2))
        rev = unquote(m.group(3))
        filename = unquote(m.group(4))
        with hub._lock:
            revs = hub._repos.get((repo_type, repo_id))
            resolved = None if revs is None else hub._resolve_revision(revs, repo_type, repo_id, rev)
        if revs is None:
            self._error(404, "RepoNotFound", "Repository not found", head=head)
            return
        if resolved is None:
            self._error(404, "RevisionNotFound", "Invalid rev id: " + rev, head=head)
            return
        commit, files = resolved
        f = files.get(filename)
        if f is None:
            self._error(
                404, "EntryNotFound", f"{filename} does not exist on \"{rev}\"", head=head,
                extra={"X-Repo-Commit": commit},
            )
            return
        if f.private_token is not None:
            token = _bearer(self.headers)
            if token is None:
                self._error(401, "RepoNotFound", "Repository not found", head=head)
                return
            if token != f.private_token:
                self._error(401, None, "Invalid credentials in Authorization header", head=head)
                return
        if hub.cdn_redirect:
            location = f"http://localhost:{hub.port}/_cdn/{f.sha256}"
            headers = {
                "Location": location,
                "X-Repo-Commit": commit,
                "ETag": f'"{f.git_oid}"',  # the real Hub's ETag here is the LFS pointer's; the client prefers X-Linked-Etag
                "X-Linked-Etag": f'"{f.sha256}"',
                "X-Linked-Size": str(len(f.data)),
            }
            self._send(302, b"", headers, head=head)
            return
        self._send_bytes(f.data, {"X-Repo-Commit": commit, "ETag": f'"{f.sha256}"'}, head=head)

    # ------------------------------------------------------------------ /api/
    def _api(self, m: re.Match, query: dict[str, list[str]]) -> None:
        hub = self.hub
        repo_type = _API_TO_TYPE[m.group(1)]
        repo_id = unquote(m.group(2))
        kind = m.group(3)  # None | "revision" | "tree"
        rev = unquote(m.group(4)) if m.group(4) else "main"
        sub = unquote(m.group(5) or "").strip("/")
        with hub._lock:
            revs = hub._repos.get((repo_type, repo_id))
            resolved = None if revs is None else hub._resolve_revision(revs, repo_type, repo_id, rev)
            all_files = [] if revs is None else [f for files in revs.values() for f in files.values()]
        if revs is None:
            self._error(404, "RepoNotFound", "Repository not found", head=False)
            return
        owner = hub._owners.get((repo_type, repo_id))
        private = owner is not None or (bool(all_files) and all(f.private_token is not None for f in all_files))
        token = _bearer(self.headers)
        allowed = ({owner} | {f.private_token for f in all_files}) - {None}
        if private and token not in allowed:
            if token is None:
                self._error(401, "RepoNotFound", "Repository not found", head=False)
            else:
                self._error(401, None, "Invalid credentials in Authorization header", head=False)
            return
        if resolved is None:
            self._error(404, "RevisionNotFound", "Invalid rev id: " + rev, head=False)
            return
        commit, files = resolved
        visible = {
            name: f for name, f in sorted(files.items()) if f.private_token is None or f.private_token == token
        }
        if kind == "tree":
            recursive = query.get("recursive", ["False"])[-1].lower() in ("1", "true")
            payload = self._tree(visible, sub, recursive)
            if payload is None:
                self._error(404, "EntryNotFound", f"{sub} does not exist on \"{rev}\"", head=False)
                return
        else:
            payload = {
                "_id": commit[:24],
                "id": repo_id,
                "author": repo_id.split("/")[0] if "/" in repo_id else None,
                "sha": commit,
                "lastModified": _LAST_MODIFIED,
                "createdAt": _LAST_MODIFIED,
                "private": private,
                "gated": False,
                "disabled": False,
                "tags": [],
                "siblings": [{"rfilename": name} for name in visible],
            }
        body = json.dumps(payload).encode()
        self._send(200, body, {"X-Repo-Commit": commit}, head=False, content_type="application/json")

    # ------------------------------------------------------------------ the write API
    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()  # the empty line after the last chunk
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _json(self, payload: Any) -> None:
        self._send(200, json.dumps(payload).encode(), head=False, content_type="application/json")

    def _repo_url(self, repo_type: str, repo_id: str) -> str:
        prefix = _URL_PREFIX.get(repo_type, "")
        return f"{self.hub.url}/{prefix + '/' if prefix else ''}{repo_id}"

    def _validate_yaml(self, body: bytes) -> None:
        content = json.loads(body or b"{}").get("content", "")
        if content.startswith("---") and "\n---" not in content[3:]:
            self._send(400, json.dumps({"errors": [{"message": "metadata front matter is not closed by ---"}]})
                       .encode(), head=False, content_type="application/json")
            return
        self._json({"errors": [], "warnings": []})

    def _create_repo(self, payload: dict[str, Any], token: str) -> None:
        hub = self.hub
        repo_type = _normalize_repo_type(payload.get("type"))
        name, organization = payload["name"], payload.get("organization")
        repo_id = f"{organization}/{name}" if organization else name
        url = self._repo_url(repo_type, repo_id)
        with hub._lock:
            exists = (repo_type, repo_id) in hub._repos
            if not exists:
                hub._repos[(repo_type, repo_id)] = {"main": {}}
                if payload.get("visibility") == "private":
                    hub._owners[(repo_type, repo_id)] = token
        if exists:  # the client reads "url" from this body too (exist_ok=True)
            message = f"You already created this {repo_type} repo"
            self._send(409, json.dumps({"error": message, "url": url}).encode(), {"X-Error-Message": message},
                       head=False, content_type="application/json")
            return
        self._json({"url": url, "name": repo_id, "id": hashlib.sha1(url.encode()).hexdigest()[:24]})

    def _writable(self, m: re.Match, token: str) -> tuple[str, str, str, dict[str, _File]] | None:
        """(repo_type, repo_id, revision, files) of a write request, or None after answering with the error."""
        hub = self.hub
        repo_type, repo_id, rev = _API_TO_TYPE[m.group(1)], unquote(m.group(2)), unquote(m.group(4))
        with hub._lock:
            revs = hub._repos.get((repo_type, repo_id))
            owner = hub._owners.get((repo_type, repo_id))
            files = None if revs is None else revs.get(rev)
        if revs is None or (owner is not None and token != owner):
            self._error(404, "RepoNotFound", "Repository not found", head=False)
            return None
        if files is None:
            self._error(404, "RevisionNotFound", "Invalid rev id: " + rev, head=False)
            return None
        return repo_type, repo_id, rev, files

    def _preupload(self, m: re.Match, payload: dict[str, Any], token: str) -> None:
        target = self._writable(m, token)
        if target is None:
            return
        files = target[3]
        self._json({"files": [
            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
             "oid": files[f["path"]].git_oid if f["path"] in files else None}
            for f in payload.get("files", [])]})

    def _commit(self, m: re.Match, body: bytes, token: str) -> None:
        hub = self.hub
        target = self._writable(m, token)
        if target is None:
            return
        repo_type, repo_id, rev, _ = target
        if parse_qs(urlsplit(self.path).query).get("create_pr"):
            self._error(400, None, "FakeHub does not open pull requests", head=False)
            return
        items = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not items or items[0].get("key") != "header":
            self._error(400, None, "the commit payload must start with a header line", head=False)
            return
        added: dict[str, bytes] = {}
        deleted: list[tuple[str, bool]] = []  # (path, is_folder)
        for item in items[1:]:
            key, value = item.get("key"), item.get("value", {})
            if key == "file":
                added[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                with hub._lock:
                    data = hub._blobs.get(value.get("oid", ""))
                if data is None:
                    self._error(400, None, "FakeHub has no LFS storage: preupload answers 'regular'", head=False)
                    return
                added[value["path"]] = data
            elif key in ("deletedFile", "deletedFolder"):
                deleted.append((value["path"].strip("/"), key == "deletedFolder"))
            else:
                self._error(400, None, f"unknown commit operation {key!r}", head=False)
                return
        with hub._lock:
            owner = hub._owners.get((repo_type, repo_id))
            files = dict(hub._repos[(repo_type, repo_id)][rev])
            for path, folder in deleted:
                for name in [n for n in files if n == path or (folder and n.startswith(path + "/"))]:
                    del files[name]
            for path, data in added.items():
                sha = hashlib.sha256(data).hexdigest()
                files[path] = _File(data=data, sha256=sha, git_oid=_git_blob_oid(data), private_token=owner)
                hub._blobs[sha] = data
            hub._repos[(repo_type, repo_id)][rev] = files
            key = (repo_type, repo_id, rev)
            hub._generation[key] = hub._generation.get(key, 0) + 1
            commit = hub.commit_hash(repo_id, rev, repo_type)
            header = items[0].get("value", {})
            hub.commits.append({"repo_id": repo_id, "repo_type": repo_type, "revision": rev,
                                "summary": header.get("summary"), "description": header.get("description"),
                                "files": sorted(added), "deleted": [p for p, _ in deleted]})
        self._json({"success": True, "commitOid": commit,
                    "commitUrl": f"{self._repo_url(repo_type, repo_id)}/commit/{commit}", "hookOutput": ""})

    @staticmethod
    def _tree(files: dict[str, _File], sub: str, recursive: bool) -> list[dict] | None:
        prefix = sub + "/" if sub else ""
        entries: dict[str, dict] = {}
        for name, f in files.items():
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :].split("/")
            # folders between `sub` and the file
            depth = len(rest) - 1 if recursive else min(len(rest) - 1, 1)
            for i in range(1, depth + 1):
                folder = prefix + "/".join(rest[:i])
                entries.setdefault(
                    folder,
                    {"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(), "size": 0, "path": folder},
                )
            if recursive or len(rest) == 1:
                entries[name] = {
                    "type": "file",
                    "oid": f.git_oid,
                    "size": len(f.data),
                    "path": name,
                    "lfs": {"oid": f.sha256, "size": len(f.data), "pointerSize": 134},
                }
        if sub and not entries:
            return None
        return [entries[k] for k in sorted(entries)]


# ---------------------------------------------------------------------- client helper (lazy import)
def configure_hf_hub_client(monkeypatch: Any, endpoint: str, hf_home: "os.PathLike[str] | str") -> None:
    """Point the already-imported ``huggingface_hub`` at ``endpoint`` with a fresh cache in ``hf_home``.

    ``monkeypatch`` is pytest's fixture (anything with ``setenv``/``delenv``/``setattr``), so everything is
    undone at teardown.  Follows the recipe in the module docstring, in that order.
    """
    import huggingface_hub
    from huggingface_hub import constants, hf_api

    endpoint = endpoint.rstrip("/")
    home = os.fspath(hf_home)
    os.makedirs(home, exist_ok=True)
    hub_cache = os.path.join(home, "hub")

    # 1. environment (for subprocesses and late imports; get_token() reads the token vars at call time)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HOME", home)
    monkeypatch.setenv("HF_HUB_CACHE", hub_cache)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE",
                "HF_TOKEN_PATH", "HUGGINGFACE_HUB_CACHE", "HF_XET_CACHE", "HF_ASSETS_CACHE"):
        monkeypatch.delenv(var, raising=False)
    for var in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(var, "")
        monkeypatch.setenv(var, ",".join(x for x in (current, "127.0.0.1", "localhost") if x))

    # 2. endpoint (both constants; plus the module-level HfApi behind huggingface_hub.model_info & co)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(hf_api.api, "endpoint", endpoint)

    # 3. fresh cache and no stored token
    token_path = os.path.join(home, "token")
    for name, value in (
        ("HF_HOME", home),
        ("HF_HUB_CACHE", hub_cache),
        ("HUGGINGFACE_HUB_CACHE", hub_cache),
        ("HF_ASSETS_CACHE", os.path.join(home, "assets")),
        ("HF_XET_CACHE", os.path.join(home, "xet")),
        ("HF_TOKEN_PATH", token_path),
        ("HF_STORED_TOKENS_PATH", os.path.join(home, "stored_tokens")),
    ):
        monkeypatch.setattr(constants, name, value)

    # 4. modes
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)

    # 5. rebuild the shared httpx client lazily (current proxy env, no connection to an old server)
    huggingface_hub.close_session()
