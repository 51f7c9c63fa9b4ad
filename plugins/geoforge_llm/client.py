"""Sending requests: the two backends, the reply cache, the run's request budget, and a thread
pool per process so that requests are in flight while geoforge verifies and renders.

A request is a JSON-ready dict (``backend``, ``model``, ``messages``, ``temperature``,
``max_tokens``); its SHA-256 is the cache key, so a reply is reused only for exactly the same
model, prompt file, program and instruction. :meth:`Client.submit` returns a future of an
:class:`Outcome`: the reply's text, or a short fixed reason why there is none (``no reply:
timeout``, ``no reply: HTTP 503``, ``request budget spent``). A fault that no retry can fix (a
refused API key, an unknown model or endpoint, a backend that cannot be loaded) is an
:class:`LLMError`: its message is written once to stderr (by whichever process meets it, a
worker included), and that request and every later one of the process get its reason (``no
reply: key refused (HTTP 401)``) without being sent, so the run counts it and goes on.

API keys are read from the environment when the backend is made and are handed only to the
``openai`` client: they are never part of a request, a cache entry, a reason or a message.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from geoforge_llm.config import LLMConfig


class LLMError(Exception):
    """A fault of the set-up, not of one reply: the endpoint refused the key (HTTP 401/403),
    does not know the model or path (404), or the backend cannot be loaded. The message says
    what to fix; ``reason`` is the counted phrase. Neither ever holds the key."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Outcome:
    """What came of one request: the reply ``text`` (``None`` if there is none), the
    ``reason`` there is none (``""`` if there is one), and whether it came from the cache."""

    text: str | None
    reason: str = ""
    cached: bool = False


class Backend(Protocol):
    """Something that answers a chat request with text."""

    def complete(self, request: dict[str, Any]) -> str:
        """The reply's text; raises on failure (mapped by :meth:`reason`)."""
        ...

    def reason(self, error: Exception) -> str:
        """The counted reason for ``error``; raises LLMError if no retry can fix it."""
        ...


class OpenAIBackend:
    """Any OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp's server, Ollama,
    OpenAI) through the ``openai`` client, which retries 408, 409, 429, 5xx, timeouts and
    dropped connections ``config.retries`` times with exponential backoff and honours
    ``Retry-After``. Raises LLMError if ``openai`` is not installed, or if no key is set for
    OpenAI's own endpoint (``base_url`` unset)."""

    def __init__(self, config: LLMConfig) -> None:
        try:
            import openai
        except ImportError:
            raise LLMError(
                "the llm_rewrite plugin needs `openai`: pip install 'geoforge[llm]'",
                "no reply: openai not installed",
            ) from None
        key = os.environ.get(config.api_key_env, "")
        if not key and config.base_url is None:
            raise LLMError(
                f"no API key: set ${config.api_key_env}, or point --llm-base-url at a local server",
                "no reply: no API key",
            )
        self.openai = openai
        self.client = openai.OpenAI(
            api_key=key or "unused",  # local servers ignore it; the client insists on one
            base_url=config.base_url,
            timeout=config.timeout,
            max_retries=config.retries,
        )

    def complete(self, request: dict[str, Any]) -> str:
        response = self.client.chat.completions.create(
            model=request["model"],
            messages=request["messages"],
            temperature=request["temperature"],
            max_tokens=request["max_tokens"],
        )
        return response.choices[0].message.content or ""

    def reason(self, error: Exception) -> str:
        openai = self.openai
        if isinstance(error, openai.APITimeoutError):
            return "no reply: timeout"
        if isinstance(error, openai.APIStatusError):
            status = error.status_code
            if status in (401, 403):
                raise LLMError(
                    f"the endpoint refused the API key (HTTP {status}): check the key's variable",
                    f"no reply: key refused (HTTP {status})",
                )
            if status == 404:
                raise LLMError(
                    "the endpoint answered HTTP 404: check --llm-base-url and --llm-model",
                    "no reply: unknown model or endpoint (HTTP 404)",
                )
            return f"no reply: HTTP {status}"
        if isinstance(error, openai.APIConnectionError):
            return "no reply: connection failed"
        return "no reply: malformed response"  # e.g. a 200 without choices


class TransformersBackend:
    """A causal LM on disk through ``transformers`` (``config.model`` is its directory or a
    name in the local Hugging Face cache; nothing is downloaded). Greedy decoding of at most
    ``max_tokens`` tokens, with the tokenizer's chat template if it has one, else the messages
    as ``role: text`` paragraphs. Raises LLMError if ``transformers`` or ``torch`` is missing or
    the model does not load."""

    def __init__(self, config: LLMConfig) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise LLMError(
                "--llm-backend transformers needs `transformers` and `torch`: pip install 'geoforge[train]'",
                "no reply: transformers not installed",
            ) from None
        self.torch = torch
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(config.model, local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(config.model, local_files_only=True).eval()
        except Exception as e:
            raise LLMError(
                f"cannot load the model {config.model}: {type(e).__name__}: {e}",
                "no reply: the model does not load",
            ) from None

    def complete(self, request: dict[str, Any]) -> str:
        tok: Any = self.tokenizer
        messages = request["messages"]
        if getattr(tok, "chat_template", None):
            encoded = tok.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
        else:
            text = "\n\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\n\nassistant:"
            encoded = tok(text, return_tensors="pt")
        ids = encoded["input_ids"]
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        with self.torch.no_grad():
            out = self.model.generate(
                ids,
                attention_mask=self.torch.ones_like(ids),
                max_new_tokens=request["max_tokens"],
                do_sample=False,
                pad_token_id=pad,
            )
        return str(tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True))

    def reason(self, error: Exception) -> str:
        return f"no reply: {type(error).__name__}"


BACKENDS: dict[str, Callable[[LLMConfig], Backend]] = {
    "openai": OpenAIBackend,
    "transformers": TransformersBackend,
}


def request_key(request: dict[str, Any]) -> str:
    """The cache key of ``request``: SHA-256 hex of its canonical JSON."""
    text = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class ReplyCache:
    """Replies on disk, one JSON file per request key under ``root`` (``None``: no cache).
    Writes are atomic (a temporary file renamed), so processes may share a cache; an entry
    that does not read is a miss."""

    def __init__(self, root: str | Path | None) -> None:
        self.root = Path(root).expanduser() if root else None

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        """The cached reply for ``key``, or ``None``."""
        if self.root is None:
            return None
        try:
            reply = json.loads(self._path(key).read_text(encoding="utf-8"))["reply"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return reply if isinstance(reply, str) else None

    def put(self, key: str, reply: str, about: dict[str, str]) -> None:
        """Store ``reply`` under ``key`` with ``about`` (model, prompt hash, program hash,
        task: what a person reading the cache needs; never a key or an endpoint)."""
        if self.root is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({**about, "reply": reply}, sort_keys=True, ensure_ascii=False, indent=1)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False) as f:
            f.write(body)
        os.replace(f.name, path)


class Budget:
    """The run's request budget (``limit`` requests; ``None``: unlimited), shared by the run's
    processes through ``ledger``, a directory in which each request claims a numbered file
    with ``O_CREAT | O_EXCL`` (atomic on every platform). Without a ledger the budget is this
    process's."""

    def __init__(self, limit: int | None, ledger: str | None = None) -> None:
        self.limit = limit
        self.ledger = Path(ledger) if ledger else None
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Claim one request; False once the budget is spent."""
        with self._lock:
            while self.limit is None or self._next < self.limit:
                n, self._next = self._next, self._next + 1
                if self.ledger is None:
                    return True
                try:
                    os.close(os.open(self.ledger / f"{n:09d}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                    return True
                except FileExistsError:
                    continue  # another process took this one
            return False


def spent(ledger: str | Path) -> int:
    """Requests sent so far by the run whose ledger is ``ledger``."""
    return sum(1 for _ in Path(ledger).iterdir()) if Path(ledger).is_dir() else 0


class Client:
    """One process's requests for one configuration: cache first, then the budget, then the
    backend, made on first use (this is where ``openai`` or ``torch`` is imported), in a pool
    of ``config.lanes`` threads."""

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self.cache = ReplyCache(config.cache)
        self.budget = Budget(config.budget, config.ledger)
        self.pool = ThreadPoolExecutor(config.lanes, thread_name_prefix="geoforge-llm")
        self.fatal: LLMError | None = None
        self._backend: Backend | None = None
        self._lock = threading.Lock()

    def submit(self, request: dict[str, Any], about: dict[str, str]) -> Future[Outcome]:
        """Send ``request`` in the pool; the future holds its :class:`Outcome`."""
        return self.pool.submit(self._run, request, about)

    def _stop(self, error: LLMError) -> Outcome:
        """Latch a set-up fault: say why once, on stderr, and answer this and every later
        request of the process with its reason."""
        with self._lock:
            if self.fatal is None:
                self.fatal = error
                sys.stderr.write(f"warning: llm_rewrite: {error}; no more requests from this process\n")
            return Outcome(None, self.fatal.reason)

    def _backend_for(self) -> Backend:
        with self._lock:
            if self.fatal is not None:
                raise self.fatal
            if self._backend is None:
                self._backend = BACKENDS[self.config.backend](self.config)
            return self._backend

    def _run(self, request: dict[str, Any], about: dict[str, str]) -> Outcome:
        key = request_key(request)
        hit = self.cache.get(key)
        if hit is not None:
            return Outcome(hit, cached=True)
        try:
            backend = self._backend_for()
        except LLMError as e:
            return self._stop(e)
        if not self.budget.take():
            return Outcome(None, "request budget spent")
        try:
            text = backend.complete(request)
        except Exception as e:
            try:
                return Outcome(None, backend.reason(e))
            except LLMError as fatal:
                return self._stop(fatal)
        self.cache.put(key, text, about)
        return Outcome(text)


_CLIENTS: dict[tuple[LLMConfig, int], Client] = {}
_CLIENTS_LOCK = threading.Lock()


def client_for(config: LLMConfig) -> Client:
    """This process's :class:`Client` for ``config`` (a forked worker makes its own)."""
    with _CLIENTS_LOCK:
        key = (config, os.getpid())
        if key not in _CLIENTS:
            _CLIENTS[key] = Client(config)
        return _CLIENTS[key]
