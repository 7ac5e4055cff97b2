"""The what-if page's server: a Starlette app (one static page + a JSON API) run by uvicorn on 127.0.0.1.

Routes: ``GET /`` the page; ``GET /static/<file>`` its script and style sheet (shipped in the package: the page
loads nothing from elsewhere, and its Content-Security-Policy forbids it); ``POST /api/<answer>`` with a JSON
object body: ``summary``, ``intervene``, ``effect``, ``counterfactual``, ``samples`` (CSV) and ``upload``; for a
table without a graph ``discover`` (starts ``condfip.discover`` off the request thread), ``discovery`` (its
progress, then the proposed DAG with each edge's confidence) and ``accept`` (the discovered graph, as proposed
or edited, or a graph file instead, as the table's graph).

Every bad request gets a 4xx with a JSON body ``{"error": "<one line>"}``: 400 for bad fields or files (the
input layer's ``InputError`` messages), 404/405 for unknown routes or methods, 409 for a table whose graph is
not accepted yet, 410 for an upload the server no longer holds, 413 for a body over the size limit, 503 when
the discovery queue is full. An unexpected failure is a 500 with one line too; its
traceback goes to the server's log only.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import socket
import sys
import tempfile
import threading
from importlib import resources
from pathlib import Path

from condfip.commands import one_line
from condfip.errors import InputError
from condfip.web import answers, fields
from condfip.web.discovery import (
    Discoverer,
    Discovery,
    DiscoveryBusy,
    accepted_graph,
    discovered_name,
    discovered_workspace,
)
from condfip.web.sessions import SessionGone, SessionStore
from condfip.web.workspace import Workspace, build_workspace, load_workspace, read_table, sachs_workspace

try:
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route
except ImportError:  # pragma: no cover - the web extra is not installed
    raise InputError("condfip serve needs the web extra; fix: pip install 'condfip[web]'") from None

MAX_UPLOAD_FILE = 4 * 1024 * 1024  # bytes per uploaded file (the model uses at most 1000 context rows)
MAX_UPLOAD_BODY = 2 * MAX_UPLOAD_FILE * 4 // 3 + 64 * 1024  # two files, base64-encoded, plus the JSON around them
MAX_BODY = 64 * 1024  # every other request
DRAIN_FACTOR = 4  # an oversized body up to this many times the limit is read (and dropped) before the 413
DATA_SUFFIXES = (".csv", ".parquet", ".pq")
GRAPH_SUFFIXES = (".csv", ".gml", ".graphml")
STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8"}
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:",
                    "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}

log = logging.getLogger("condfip.web")


class RequestError(Exception):
    """A refused request: HTTP ``status`` and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": one_line(message)}, status_code=status, headers=SECURITY_HEADERS)


def _mib(nbytes: int) -> str:
    return f"{nbytes / 1024 / 1024:.1f} MiB"


async def _body(request: Request, limit: int) -> dict:
    """The request's JSON object; more than ``limit`` bytes is refused (413). An oversized body is read to its
    end and dropped, up to ``DRAIN_FACTOR * limit`` bytes, so that the client reads the answer rather than a
    reset connection; a larger one is refused before reading."""
    declared = request.headers.get("content-length")
    size = int(declared) if declared is not None and declared.isdigit() else None
    shown = f"the request ({_mib(size)})" if size else "the request"
    refused = RequestError(413, f"{shown} is over the page's limit of {_mib(limit)}; fix: send less (uploads: at "
                                f"most {_mib(MAX_UPLOAD_FILE)} per file)")
    if size is not None and size > DRAIN_FACTOR * limit:
        raise refused
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > DRAIN_FACTOR * limit:
            raise refused
    if size > limit:
        raise refused
    try:
        body = json.loads(b"".join(chunks) or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise RequestError(400, "the request body is not valid JSON; fix: send a JSON object") from None
    if not isinstance(body, dict):
        raise RequestError(400, f"the request body must be a JSON object, got {type(body).__name__}")
    return body


def _upload_file(body: dict, field: str, suffixes: tuple[str, ...], folder: Path) -> tuple[Path, str]:
    """``body[field] = {"name": ..., "content": base64}`` written into ``folder``: (path, shown name)."""
    from condfip.demo import sanitise

    item = body.get(field)
    what = "data table" if field == "data" else "graph file"
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(item.get("content"), str):
        raise RequestError(400, f"the upload has no {what}; fix: choose a {what} ({', '.join(suffixes)})")
    name = sanitise(Path(item["name"]).name)
    if Path(name).suffix.lower() not in suffixes:
        raise RequestError(400, f"{what} {name!r} has an unsupported file type; fix: upload a "
                                f"{' or '.join(suffixes)} file")
    try:
        content = base64.b64decode(item["content"], validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, f"{what} {name!r} is not valid base64; fix: let the page read the file") from None
    if len(content) > MAX_UPLOAD_FILE:
        raise RequestError(413, f"{what} {name!r} is {_mib(len(content))}, over the page's limit of "
                                f"{_mib(MAX_UPLOAD_FILE)} per file; fix: upload fewer rows (the model uses at most "
                                f"1000 context rows) or use the CLI for large files")
    path = folder / (f"{field}-{name}")
    path.write_bytes(content)
    return path, name


def _as_uploaded(err: InputError, files: dict[Path, str]) -> InputError:
    """The input layer names a file by its path: the same message naming each file as uploaded."""
    message = str(err)
    for path, name in files.items():
        message = message.replace(str(path), name)
    return InputError(message)


def page_summary(workspace: Workspace) -> dict:
    """``answers.summary`` plus the server's settings the page needs: the upload limit, discovery's default
    subsamples."""
    from condfip.discover import DEFAULT_RESAMPLES

    return {**answers.summary(workspace), "upload_limit_bytes": MAX_UPLOAD_FILE,
            "discovery_resamples": DEFAULT_RESAMPLES}


def create_app(store: SessionStore, model, discoverer: Discoverer | None = None) -> Starlette:
    """The app: the page and the JSON API over ``store`` (the server's dataset plus the sessions' uploads and
    discoveries); ``discoverer`` runs the discoveries (default: a new one)."""
    discoverer = Discoverer() if discoverer is None else discoverer

    def entry_of(token: str | None):
        try:
            return store.get(token)
        except SessionGone as err:
            raise RequestError(410, str(err)) from None

    def workspace_of(body: dict) -> Workspace:
        workspace = entry_of(fields.session(body))
        if not isinstance(workspace, Workspace):
            raise RequestError(409, "this tab's table has no graph yet; fix: accept the discovered graph, or "
                                    "upload a graph file")
        return workspace

    def discovery_of(body: dict) -> Discovery:
        discovery = entry_of(fields.token(body, "discovery"))
        if not isinstance(discovery, Discovery):
            raise RequestError(400, "the discovery token names no discovery; fix: start one from the upload")
        return discovery

    def interventions_of(body: dict, workspace, required: bool = False):
        chosen, checked = fields.interventions(body, workspace.columns, required=required)
        for item in checked:
            workspace.check_reach(item["node"], item["kind"], item["value"])
        return chosen, checked

    def summary(body: dict) -> dict:
        return page_summary(workspace_of(body))

    def intervene(body: dict) -> dict:
        workspace = workspace_of(body)
        chosen, checked = interventions_of(body, workspace)
        n = fields.integer(body, "n", 1000, 10, fields.MAX_PLOTTED_ROWS, " (the page plots at most that many rows)")
        seed = fields.integer(body, "seed", 0, 0, 2**31 - 1)
        return answers.intervene(workspace, chosen, checked, n, seed)

    def effect(body: dict) -> dict:
        workspace = workspace_of(body)
        chosen, _ = interventions_of(body, workspace, required=True)
        target = fields.node(body, "target", workspace.columns)
        n = fields.integer(body, "n", 500, 10, fields.MAX_EFFECT_ROWS)
        bootstrap = fields.integer(body, "bootstrap", 20, 0, fields.MAX_BOOTSTRAP,
                                   " (each replicate re-infers the SCM; 0, or at least 20)")
        seed = fields.integer(body, "seed", 0, 0, 2**31 - 1)
        return answers.effect(workspace, chosen, target, n, bootstrap, seed)

    def counterfactual(body: dict) -> dict:
        workspace = workspace_of(body)
        chosen, _ = interventions_of(body, workspace)
        row = fields.integer(body, "row", 0, 0, len(workspace.data) - 1, " (a row number of the data)")
        return answers.counterfactual(workspace, chosen, row)

    def samples(body: dict) -> Response:
        workspace = workspace_of(body)
        chosen, _ = interventions_of(body, workspace)
        n = fields.integer(body, "n", 1000, 1, fields.MAX_ROWS, " (use `condfip sample` for more rows)")
        seed = fields.integer(body, "seed", 0, 0, 2**31 - 1)
        text = answers.samples_csv(workspace, chosen, n, seed)
        return Response(text, media_type="text/csv", headers={
            **SECURITY_HEADERS, "Content-Disposition": 'attachment; filename="condfip-samples.csv"'})

    def opened(workspace: Workspace) -> dict:
        token = store.add(workspace)
        return {"session": token, "summary": page_summary(workspace)}

    def upload(body: dict) -> dict:
        with tempfile.TemporaryDirectory(prefix="condfip-upload-") as folder:
            data_path, data_name = _upload_file(body, "data", DATA_SUFFIXES, Path(folder))
            graph_path, graph_name = _upload_file(body, "graph", GRAPH_SUFFIXES, Path(folder))
            try:
                workspace = load_workspace(data_path, graph_path, model, f"{data_name} + {graph_name}")
            except InputError as err:
                raise _as_uploaded(err, {data_path: data_name, graph_path: graph_name}) from None
        return opened(workspace)

    def discover(body: dict) -> dict:
        """A data table without a graph: check it (the page's and discovery's limits) and start the discovery
        with the library's default method; the answer has the token to poll."""
        from condfip.discover import DEFAULT_RESAMPLES, check_data, default_method

        resamples = fields.integer(body, "resamples", DEFAULT_RESAMPLES, fields.MIN_RESAMPLES, fields.MAX_RESAMPLES,
                                   " (subsamples for the edges' confidence)")
        with tempfile.TemporaryDirectory(prefix="condfip-upload-") as folder:
            data_path, data_name = _upload_file(body, "data", DATA_SUFFIXES, Path(folder))
            try:
                frame, notes = read_table(data_path)
            except InputError as err:
                raise _as_uploaded(err, {data_path: data_name}) from None
        method = default_method(*frame.shape)
        check_data(frame, method)
        discovery = Discovery(name=data_name, data=frame, notes=notes, method=method, resamples=resamples)
        try:
            discoverer.start(discovery)
        except DiscoveryBusy as err:
            raise RequestError(503, str(err)) from None
        return {"discovery": store.add(discovery), **discovery.answer()}

    def discovery(body: dict) -> dict:
        return discovery_of(body).answer()

    def accept(body: dict) -> dict:
        """The discovered graph (as proposed, or the page's edited ``edges``) or an uploaded graph file as the
        table's graph: a new workspace, as an upload opens one."""
        found = discovery_of(body)
        if "graph" in body:
            with tempfile.TemporaryDirectory(prefix="condfip-upload-") as folder:
                graph_path, graph_name = _upload_file(body, "graph", GRAPH_SUFFIXES, Path(folder))
                try:
                    workspace = build_workspace(found.data, found.notes, graph_path, model,
                                                f"{found.name} + {graph_name}")
                except InputError as err:
                    raise _as_uploaded(err, {graph_path: graph_name}) from None
            return opened(workspace)
        graph, source = accepted_graph(found, fields.edges(body, found.columns))
        workspace = build_workspace(found.data, found.notes, graph, model, discovered_name(found.name, found.method),
                                    graph_from=source)
        return opened(workspace)

    # the answers are CPU-bound numpy / torch work: one at a time. Run side by side from the thread pool they
    # fight over the BLAS and torch thread pools (50 concurrent intervention requests took 41 s in all, against
    # about 0.03 s each one after another; README, "The what-if page")
    answering = threading.Lock()

    def one_at_a_time(handler, body):
        with answering:
            return handler(body)

    def api(handler, limit: int = MAX_BODY):
        async def endpoint(request: Request) -> Response:
            try:
                body = await _body(request, limit)
                result = await run_in_threadpool(one_at_a_time, handler, body)
            except RequestError as err:
                return _error(err.status, str(err))
            except InputError as err:
                return _error(400, str(err))
            except Exception as err:
                log.exception("condfip serve: %s failed", request.url.path)
                return _error(500, f"internal error ({type(err).__name__}) answering {request.url.path}; the "
                                   f"server's log has the details")
            if isinstance(result, Response):
                return result
            return JSONResponse(result, headers=SECURITY_HEADERS)

        return endpoint

    def static(name: str):
        async def endpoint(request: Request) -> Response:
            text = (resources.files("condfip.web") / "static" / name).read_bytes()
            return Response(text, media_type=STATIC[name], headers=SECURITY_HEADERS)

        return endpoint

    async def http_error(request: Request, exc: HTTPException) -> Response:
        what = "no such page" if exc.status_code == 404 else exc.detail
        return _error(exc.status_code, f"{request.method} {request.url.path}: {what}")

    routes = [Route("/", static("index.html")),
              *[Route(f"/static/{name}", static(name)) for name in STATIC if name != "index.html"],
              Route("/api/summary", api(summary), methods=["POST"]),
              Route("/api/intervene", api(intervene), methods=["POST"]),
              Route("/api/effect", api(effect), methods=["POST"]),
              Route("/api/counterfactual", api(counterfactual), methods=["POST"]),
              Route("/api/samples", api(samples), methods=["POST"]),
              Route("/api/upload", api(upload, MAX_UPLOAD_BODY), methods=["POST"]),
              Route("/api/discover", api(discover, MAX_UPLOAD_BODY), methods=["POST"]),
              Route("/api/discovery", api(discovery), methods=["POST"]),
              Route("/api/accept", api(accept, MAX_UPLOAD_BODY), methods=["POST"])]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free port chosen by the system)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except (OSError, OverflowError) as err:
        reason = getattr(err, "strerror", None) or err
        raise InputError(f"cannot listen on {host}:{port} ({reason}); fix: choose another --port (0: any free "
                         f"port) or --host") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def prepare(data: str | Path | None, graph: str | Path | None, weights: str | Path | None = None,
            capacity: int | None = None) -> Starlette:
    """The app on DATA + GRAPH (both or neither; neither: the Sachs demo data; GRAPH ``auto``: discovered from
    DATA now, as the CLI's ``--graph auto``) with the given weights."""
    from condfip.commands import GRAPH_AUTO
    from condfip.inference import load_pretrained

    if (data is None) != (graph is None):
        raise InputError("condfip serve takes DATA and --graph GRAPH together (or neither, for the Sachs demo "
                         "data); fix: pass both, e.g. condfip serve data.csv --graph graph.csv (--graph auto: "
                         "discover it; or open the page and upload the table alone to check a discovered graph)")
    model = load_pretrained(weights)
    if data is None:
        default = sachs_workspace(model)
    elif str(graph) == GRAPH_AUTO:
        default = discovered_workspace(data, model, Path(data).name)
    else:
        default = load_workspace(data, graph, model, f"{Path(data).name} + {Path(graph).name}")
    store = SessionStore(default) if capacity is None else SessionStore(default, capacity)
    return create_app(store, model)


def serve(data: str | Path | None = None, graph: str | Path | None = None, *, host: str = "127.0.0.1",
          port: int = 0, weights: str | Path | None = None, echo=print) -> None:
    """Build the app, listen on ``host:port`` (default 127.0.0.1, a free port), print the address and serve
    until interrupted."""
    import uvicorn

    sock = bind(host, port)  # first: a taken port is refused before the model loads
    app = prepare(data, graph, weights)
    if host not in ("127.0.0.1", "localhost", "::1"):
        echo(f"warning: listening on {host}: anyone who can reach this machine can use the page and its uploads")
    echo(f"condfip serve: {url_of(sock)}  (Ctrl-C to stop)")
    sys.stdout.flush()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])
