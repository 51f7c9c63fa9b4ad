"""A chat-completions server on loopback, for tests and for measuring the plugin offline.

:class:`ChatServer` is a real HTTP server (``http.server`` in a thread) that speaks the
``POST /v1/chat/completions`` protocol of OpenAI-compatible endpoints, so the ``openai``
client talks to it exactly as to vLLM or OpenAI. It answers each request from a *script*: a
list of :class:`Reply` values used in arrival order, or a function of the request body. It
counts requests and keeps their bodies and ``Authorization`` headers, so a test can check
what was sent (and that a key was sent only in that header).

:func:`editing_reply` is a script function that edits like a careful LLM would, by rules: it
changes a number, bends a perpendicular or a midpoint, or removes the last point of the
program in the prompt, and changes the first number of a caption. ``benchmarks/llm_requests.py``
uses it to measure requests per accepted negative.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer: ``text`` as a 200 completion; or an error ``status`` (e.g. 429,
    503) with ``retry_after_ms``; or, with ``hang`` > 0, no answer for ``hang`` seconds."""

    text: str = ""
    status: int = 200
    retry_after_ms: int = 0
    hang: float = 0.0


Script = list[Reply] | Callable[[dict[str, Any]], Reply | str]


@dataclass
class ChatServer:
    """Serve ``script`` on ``127.0.0.1`` at a free port; use as a context manager. ``url`` is
    the ``base_url`` to give the client. A list script that runs out answers 500."""

    script: Script
    requests: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._queue = list(self.script) if isinstance(self.script, list) else None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                reply = server._answer(self.path, body, self.headers.get("Authorization", ""))
                if reply.hang:
                    server._stop.wait(reply.hang)
                    return
                if reply.status != 200:
                    payload = {"error": {"message": f"scripted {reply.status}", "type": "scripted"}}
                    self._send(reply.status, payload, reply.retry_after_ms)
                    return
                self._send(200, _completion(body, reply.text), 0)

            def _send(self, status: int, payload: dict[str, Any], retry_ms: int) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if retry_ms:
                    self.send_header("retry-after-ms", str(retry_ms))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The endpoint's base URL, ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def count(self) -> int:
        """Requests received so far (every attempt, retries included)."""
        with self._lock:
            return len(self.requests)

    def _answer(self, path: str, body: dict[str, Any], auth: str) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.authorizations.append(auth)
            if not path.endswith("/chat/completions"):
                return Reply(status=404)
            if self._queue is not None:
                return self._queue.pop(0) if self._queue else Reply(status=500)
        assert callable(self.script)
        reply = self.script(body)
        return Reply(reply) if isinstance(reply, str) else reply

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    """A chat-completions response body holding ``text``."""
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", ""),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def editing_reply(body: dict[str, Any]) -> str:
    """A rule-based stand-in for an LLM: the program (or caption) of the request's last
    message, edited as its instruction asks where a rule applies, else returned unchanged."""
    user = str(body["messages"][-1]["content"])
    instruction = user.rsplit("Change: ", 1)[-1]
    fenced = re.search(r"```geoforge\n(.*?)\n```", user, re.S)
    if fenced is None:  # a caption edit: change its first number
        caption = re.search(r"```\n(.*?)\n```", user, re.S)
        text = caption.group(1) if caption else ""
        edited = re.sub(r"(?<![\w.])(\d+)(?![\w.])", lambda m: str(int(m.group(1)) + 2), text, count=1)
        return f"```\n{edited}\n```"
    clauses = [c.strip() for c in fenced.group(1).split(";")]
    if instruction.startswith("Remove"):
        program = _remove_last_point(clauses)
    elif instruction.startswith("Change a relation"):
        program = _bend(clauses)
    else:
        program = _change_value(clauses)
    return "Here is the edited program:\n```geoforge\n" + "; ".join(program) + "\n```"


def _change_value(clauses: list[str]) -> list[str]:
    """The first ``s_angle``/``aconst`` angle + 15°, or the first ``lconst`` length × 13/10."""
    for i, c in enumerate(clauses):
        m = re.search(r"\b(s_angle|aconst)((?: \w+)+) (-?\d+)\b", c)
        if m:
            return [
                *clauses[:i],
                c.replace(m.group(0), f"{m.group(1)}{m.group(2)} {int(m.group(3)) + 15}"),
                *clauses[i + 1 :],
            ]
        m = re.search(r"\blconst (\w+) (\w+) (\S+?)(?=,|$)", c)
        if m:
            return [
                *clauses[:i],
                c.replace(m.group(0), f"lconst {m.group(1)} {m.group(2)} {m.group(3)}*13/10"),
                *clauses[i + 1 :],
            ]
    return clauses


def _bend(clauses: list[str]) -> list[str]:
    """The first ``foot x a b c`` as ``on_line x b c, aconst b c a x 70``, or the first
    ``midpoint x a b`` as ``on_line x a b, rconst2 x a b 2``."""
    for i, c in enumerate(clauses):
        m = re.search(r"\bfoot (\w+) (\w+) (\w+) (\w+)", c)
        if m:
            x, a, b, d = m.groups()
            return [
                *clauses[:i],
                c.replace(m.group(0), f"on_line {x} {b} {d}, aconst {b} {d} {a} {x} 70"),
                *clauses[i + 1 :],
            ]
        m = re.search(r"\bmidpoint (\w+) (\w+) (\w+)", c)
        if m:
            x, a, b = m.groups()
            return [
                *clauses[:i],
                c.replace(m.group(0), f"on_line {x} {a} {b}, rconst2 {x} {a} {b} 2"),
                *clauses[i + 1 :],
            ]
    return _change_value(clauses)


def _remove_last_point(clauses: list[str]) -> list[str]:
    """Without the last clause's points and every clause and statement that names them."""
    built = [c for c in clauses if "=" in c]
    if len(built) < 4:
        return clauses
    gone = set(built[-1].split("=")[0].split())
    return [c for c in clauses if c != built[-1] and not gone & set(c.replace(",", " ").split())]
