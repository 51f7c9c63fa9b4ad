"""The plugin host: loads plugins per a :class:`~geoforge.plugins.spec.PluginSpec`, registers
what they register, and runs their perturbations isolated (see :mod:`geoforge.plugins`)."""

from __future__ import annotations

import itertools
import os
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pluggy

from geoforge import hookspecs
from geoforge.budget import Budget, PluginTimeout
from geoforge.errors import UsageError
from geoforge.perturb import (
    Candidate,
    Perturbation,
    Positive,
    Rejected,
    read_only,
)
from geoforge.plugins.checks import candidate_problem, mutation_hint, perturbation_problem
from geoforge.plugins.loading import (
    distribution_of,
    file_loader,
    hook_hint,
    module_loader,
    same_origin,
    source_digest,
    validation_message,
    version_of,
)
from geoforge.plugins.spec import (
    DEFAULT_TIME_BUDGET,
    ENTRY_POINT_GROUP,
    ENV_VAR,
    PluginFailure,
    PluginInfo,
    PluginSpec,
)

#: Distinct messages of one failure key that one positive's record keeps.
MAX_NOTED = 3

#: Garbage items one perturbation may yield for one positive before its stream is ended: they
#: are dropped before the check cap, which would otherwise never stop an endless stream of them.
MAX_GARBAGE = 20

_END = object()


class PluginHost:
    """Loads plugins per a :class:`PluginSpec` and calls their hooks with failures isolated.

    ``perturbations`` maps names to registered perturbations; ``failures`` counts failures by
    ``"plugin: stage"``; ``messages`` holds one line per distinct failure (reported once);
    ``seconds`` the wall-clock seconds spent per ``"perturbation: propose"`` (its own code, as
    its time budget counts it) and ``"perturbation: verify"`` (the verifier on its candidates,
    counted by :func:`geoforge.negatives.make_negatives`), so a slow plugin can be named.
    """

    def __init__(self, spec: PluginSpec | None = None) -> None:
        self.spec = spec or PluginSpec()
        self.pm = pluggy.PluginManager("geoforge")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.perturbations: dict[str, Perturbation] = {}
        self.owner: dict[str, str] = {}
        self.failures: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()
        self.messages: list[str] = []
        self.noted: dict[str, list[str]] = {}  # distinct messages per key since take_noted()
        self.tracebacks: dict[str, str] = {}  # the first traceback per failure key (for --debug)
        self.skipped: set[str] = set()  # plugins and perturbations that --no-plugin skipped
        self._loaded = False
        self._load()
        self._loaded = True

    # --- loading ---------------------------------------------------------------------------

    def _fail(
        self, info: PluginInfo, stage: str, exc: BaseException, hint: str = "", perturbation: str = ""
    ) -> None:
        """Report ``exc`` raised by ``info``'s code at ``stage``, counted under ``"who:
        stage"``: the ``perturbation`` whose code raised (named in the message when it is not
        the plugin's own name), else the plugin, so that each perturbation of a plugin gets its
        own count and first message."""
        import traceback

        if isinstance(exc, pluggy.PluginValidationError):
            why = validation_message(exc)
        else:
            why = f"{type(exc).__name__}: {exc}"
        of = f" of {perturbation}" if perturbation and perturbation != info.name else ""
        message = f"plugin {info.name} ({info.origin}) failed {stage}{of}: {why}{hint}"
        info.error = info.error or message
        key = f"{perturbation or info.name}: {stage}"
        self.tracebacks.setdefault(key, "".join(traceback.format_exception(exc)))
        self._note(key, message)

    def _sources(self) -> list[tuple[str, str, str, Callable[[], ModuleType], tuple[str, str] | None]]:
        """``(name, source, origin, loader, (distribution, version) or None)`` per plugin."""
        found: list[tuple[str, str, str, Callable[[], ModuleType], tuple[str, str] | None]] = []
        if self.spec.entry_points:
            for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
                dist = ep.dist.name if ep.dist else ""
                source = "built-in" if dist == "geoforge" else "entry point"
                found.append(
                    (ep.name, source, ep.value, ep.load, (dist, ep.dist.version) if ep.dist else None)
                )
        env = os.environ.get(ENV_VAR, "") if self.spec.env else ""
        extra = [("environment", item) for item in env.split(os.pathsep) if item.strip()]
        extra += [("file", p) for p in self.spec.paths] + [("module", m) for m in self.spec.modules]
        for source, item in extra:
            item = item.strip()
            if item.endswith(".py") or os.sep in item:
                kind = source if source != "module" else "file"
                found.append((Path(item).stem, kind, item, file_loader(item), None))
            else:
                found.append(
                    (item.rsplit(".", 1)[-1], source, item, module_loader(item), distribution_of(item))
                )
        return found

    def _load(self) -> None:
        for name, source, origin, load, dist in self._sources():
            if name in self.spec.disabled:
                self.skipped.add(name)
                continue
            first = next((p for p in self.plugins if p.name == name), None)
            if first is not None:
                if not same_origin(first.origin, origin):  # the same plugin named twice is harmless
                    self._duplicate(name, source, origin, first)
                continue
            info = PluginInfo(
                name, dist[1] if dist else "unknown", source, origin, distribution=dist[0] if dist else ""
            )
            self.plugins.append(info)
            try:
                module = load()
                info.version = dist[1] if dist else version_of(module)
                info.sha256 = "" if dist else source_digest(module)
            except Exception as e:  # a broken plugin must not stop the run
                self._fail(info, "to import", e)
                continue
            try:
                if self.pm.is_registered(module):
                    raise ValueError(
                        f"module {module.__name__} is already loaded as plugin {self.pm.get_name(module)}"
                    )
                self.pm.register(module, name=name)
            except pluggy.PluginValidationError as e:  # a hook with arguments its spec lacks
                self._fail(info, "validation", e)
                continue
            except Exception as e:
                self._fail(info, "to register", e)
                continue
            try:
                self.pm.check_pending()
            except pluggy.PluginValidationError as e:
                self.pm.unregister(name=name)
                self._fail(info, "validation", e, hook_hint(module))
        self._call_register("geoforge_register_constructions", self._register_construction)
        self._call_register("geoforge_register_perturbations", self._register_perturbation)

    def _duplicate(self, name: str, source: str, origin: str, first: PluginInfo) -> None:
        """Report a second plugin called ``name`` (skipped: names must be unique)."""
        message = (
            f"plugin {name} ({source} {origin}) skipped: a plugin called {name} is already loaded from "
            f"{first.origin} ({first.source}); rename one of them"
        )
        self.failures[f"{name}: duplicate name"] += 1
        if message not in self.messages:
            self.messages.append(message)

    def _call_register(self, hook: str, register: Callable[[PluginInfo, Any], Any]) -> None:
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            info = next(p for p in self.plugins if p.name == impl.plugin_name)
            try:
                impl.function(register=lambda *a, _info=info, **k: register(_info, *a, **k))
            except Exception as e:
                self._fail(info, f"in {hook}", e)
                self._drop(info)

    def _drop(self, info: PluginInfo) -> None:
        """Skip a plugin that failed while registering, with whatever it registered before
        the failure: a half-registered plugin would run although it is reported as failed."""
        from geoforge.constructions import REGISTRY

        for name in info.registers.pop("perturbations", []):
            self.perturbations.pop(name, None)
            self.owner.pop(name, None)
        for name in info.registers.pop("constructions", []):
            if name in REGISTRY and REGISTRY[name].source == info.name:
                del REGISTRY[name]
        info.provenance.clear()
        if self.pm.has_plugin(info.name):
            self.pm.unregister(name=info.name)

    def _register_construction(self, info: PluginInfo, *args: Any, **kwargs: Any) -> None:
        from geoforge.constructions import REGISTRY, register_construction

        kwargs.setdefault("source", info.name)
        # The construction table is process-wide: a plugin loaded again by another host (a
        # worker, a test) re-registers its own constructions; anything else is a duplicate.
        signature = args[0] if args else kwargs.get("signature", "")
        name = signature.split()[0] if isinstance(signature, str) and signature.split() else ""
        mine = name in REGISTRY and REGISTRY[name].source == kwargs["source"]
        if name in info.registers.get("constructions", []):
            raise ValueError(f"construction `{name}` is registered twice by plugin {info.name}")
        previous = REGISTRY.pop(name) if mine else None
        try:
            c = register_construction(*args, **kwargs)
        except Exception:
            if previous is not None:
                REGISTRY[name] = previous
            raise
        info.registers.setdefault("constructions", []).append(c.name)

    def _register_perturbation(self, info: PluginInfo, perturbation: Any) -> None:
        problem = perturbation_problem(perturbation)
        if problem:
            raise TypeError(f"register() got an instance of {type(perturbation).__name__} whose {problem}")
        name = perturbation.name
        if name in self.perturbations:
            raise ValueError(f"perturbation `{name}` is already registered by plugin {self.owner[name]}")
        if name in self.spec.disabled:
            self.skipped.add(name)
            return
        self.perturbations[name] = perturbation
        self.owner[name] = info.name
        info.registers.setdefault("perturbations", []).append(name)
        provenance = getattr(perturbation, "provenance", None)
        if isinstance(provenance, dict) and provenance:
            info.provenance[name] = {str(k): str(v) for k, v in provenance.items()}

    def check_disabled(self) -> None:
        """Raise UsageError, with a close-match suggestion, for a ``--no-plugin`` name that
        matches no plugin and no perturbation (a typo would otherwise skip nothing)."""
        import difflib

        known = {p.name for p in self.plugins} | set(self.perturbations) | self.skipped
        for name in self.spec.disabled:
            if name not in known:
                near = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f" (did you mean `{near[0]}`?)" if near else ""
                raise UsageError(f"--no-plugin {name}: no plugin or perturbation is called `{name}`{hint}")

    # --- calling ---------------------------------------------------------------------------

    def ordered(self, kind: str, order: Iterable[str] = ()) -> list[Perturbation]:
        """Perturbations of ``kind``: those named in ``order`` first, in that order, then the
        rest by name. The pipeline's configuration, not the plugins, decides the order."""
        names = [n for n in order if n in self.perturbations]
        names += sorted(n for n in self.perturbations if n not in names)
        return [self.perturbations[n] for n in names if self.perturbations[n].kind == kind]

    def candidates(
        self,
        perturbation: Perturbation,
        positive: Positive,
        rng: np.random.Generator,
        budget: float | None = DEFAULT_TIME_BUDGET,
    ) -> Iterator[Candidate | Rejected]:
        """Run ``perturbation.propose`` lazily, yielding its well-formed candidates one at a time
        (and the :class:`~geoforge.perturb.Rejected` proposals it reports, for the caller to count).

        Nothing runs until the first ``next()``, and the plugin's generator is advanced once per
        candidate the caller asks for, never drained, so a check cap applied by the caller also
        stops an endless generator. The plugin receives its own :func:`read_only` copy of
        ``positive``; ``positive`` itself is never handed out.

        ``budget`` is the wall-clock time in seconds that the plugin's own code (the
        ``propose`` call and each ``next()``) may take in total for this positive; time spent by
        the caller between candidates (verification) does not count. ``None`` means no budget.
        In the main thread of a process where ``signal.setitimer`` exists (Unix; ``generate``'s
        worker processes run there), an ``ITIMER_REAL`` alarm interrupts the plugin even inside
        a single ``next()`` that never returns (``while True: pass``, ``time.sleep(1e9)``);
        the alarm is always cleared and the previous ``SIGALRM`` handler and timer restored.
        Elsewhere (another thread, Windows, a C-installed ``SIGALRM`` handler) the budget is
        checked only when ``next()`` returns, so a plugin that blocks forever inside one call
        cannot be stopped there.

        Never raises for the plugin's faults: an exception from its code (including the
        ``ValueError``/``TypeError``/``FrozenInstanceError`` of an attempt to mutate the
        read-only positive, and ``SystemExit``) is reported once and counted as
        ``"<perturbation>: in propose"``; running out of budget as ``"<perturbation>: time budget"``; an
        item that is not a candidate of the perturbation's kind is dropped and counted as
        ``"<perturbation>: garbage"``. The stream then ends (for a garbage item, it goes on, up to
        :data:`MAX_GARBAGE` of them). An error or a hang in the generator's clean-up (``close``)
        is counted as ``"<perturbation>: in close"`` or ``"<perturbation>: time budget"``.
        ``KeyboardInterrupt`` propagates.
        """
        owner = self.owner.get(perturbation.name, perturbation.name)
        info = next((p for p in self.plugins if p.name == owner), PluginInfo(owner, "?", "?", "?"))
        clock = Budget(budget)
        it: Iterator[object] | None = None
        garbage = 0
        try:
            try:
                with clock.running():
                    it = iter(perturbation.propose(read_only(positive), rng))
                while True:
                    try:
                        with clock.running():
                            item = next(it, _END)
                    except GeneratorExit as e:  # raised by the plugin itself, not by our caller
                        it = None
                        self._fail(info, "in propose", e, perturbation=perturbation.name)
                        return
                    if item is _END:
                        return
                    problem = candidate_problem(item, perturbation.kind)
                    if problem is None:
                        yield item  # type: ignore[misc]
                        continue
                    what = f"plugin {owner} ({info.origin}) proposed garbage from {perturbation.name}"
                    self._note(f"{perturbation.name}: garbage", f"{what}: {problem}")
                    garbage += 1
                    if garbage >= MAX_GARBAGE:  # an endless stream of garbage never reaches the cap
                        return
            except PluginTimeout:
                it = None  # the generator was interrupted; closing it could block again
                message = (
                    f"plugin {owner} ({info.origin}) exceeded its time budget of {budget:g} s in "
                    f"propose of {perturbation.name}; skipped for this positive"
                )
                self._note(f"{perturbation.name}: time budget", message)
                info.error = info.error or message
            except PluginFailure:  # --strict-plugins stopping the run: already worded
                raise
            except (Exception, SystemExit) as e:  # a broken plugin must not stop the run
                it = None
                self._fail(info, "in propose", e, mutation_hint(e), perturbation.name)
        finally:
            close = getattr(it, "close", None)
            if close is not None:  # run the plugin's own clean-up (finally blocks), on its budget
                try:
                    with clock.running():
                        close()
                except PluginTimeout:
                    message = (
                        f"plugin {owner} ({info.origin}) exceeded its time budget of {budget:g} s in "
                        f"the clean-up (close) of {perturbation.name}"
                    )
                    self._note(f"{perturbation.name}: time budget", message)
                    info.error = info.error or message
                except (Exception, SystemExit) as e:  # e.g. a generator that ignores close()
                    self._fail(info, "in close", e, perturbation=perturbation.name)
            self.seconds[f"{perturbation.name}: propose"] += clock.spent

    def propose(
        self,
        perturbation: Perturbation,
        positive: Positive,
        rng: np.random.Generator,
        limit: int | None = None,
        budget: float | None = DEFAULT_TIME_BUDGET,
    ) -> list[Candidate | Rejected]:
        """The first ``limit`` (all if ``None``) candidates of :meth:`candidates` as a list: what
        was produced before an exception or the end of the ``budget`` (seconds) is kept. With
        ``limit=None`` an endless generator is stopped only by the budget."""
        stream = self.candidates(perturbation, positive, rng, budget)
        try:
            return list(itertools.islice(stream, limit))
        finally:
            stream.close()  # type: ignore[attr-defined]

    def _note(self, key: str, message: str) -> None:
        """Count a failure under ``key`` and keep ``message`` once (in ``messages``, and in what
        :meth:`take_noted` gives). Raises PluginFailure for a failure during a run under ``spec.strict``."""
        if self.spec.strict and self._loaded:
            raise PluginFailure(f"plugin failure with --strict-plugins: {message}")
        self.failures[key] += 1
        if message not in self.messages:
            self.messages.append(message)
        noted = self.noted.setdefault(key, [])
        if message not in noted:
            noted.append(message)

    def take_noted(self) -> dict[str, str]:
        """The failures noted since the last call, one line per key: its first message, then
        what each other distinct message adds after their common start (``...: expected
        ImageCandidate, got str; also: got int``), at most :data:`MAX_NOTED` of them. What one
        positive's negatives record, so that it depends on that positive only, not on what the
        process met before (shards stay the same for any number of workers)."""
        out = {}
        for key, messages in self.noted.items():
            first, rest = messages[0], messages[1:MAX_NOTED]
            shown = messages[:MAX_NOTED]
            same = 0  # the characters every shown message starts with
            while same < len(first) and all(len(m) > same and m[same] == first[same] for m in shown):
                same += 1
            cut = first.rfind(": ", 0, same) + 2 if rest and ": " in first[:same] else 0
            out[key] = first + "".join(f"; also: {m[cut:]}" for m in rest)
            if len(messages) > MAX_NOTED:
                out[key] += f"; and {len(messages) - MAX_NOTED} more"
        self.noted = {}
        return out


def plugin_rng(root: int, name: str) -> np.random.Generator:
    """The generator for perturbation ``name`` under the per-positive ``root`` seed: the same
    for the same pair in every process, and independent of which other plugins are loaded, how
    much randomness they use and in what order their candidates are pulled."""
    return np.random.default_rng(np.random.SeedSequence([root, zlib.crc32(name.encode())]))
