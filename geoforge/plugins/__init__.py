"""Loading plugins and calling them safely: the one typed entry point to pluggy.

Plugins come from, in this order: the entry point group ``geoforge`` (the built-in
perturbations are registered there too), the ``GEOFORGE_PLUGINS`` environment variable
(``os.pathsep``-separated file paths or module names) and ``--plugin PATH.py|module``.
``--no-plugin NAME`` skips one by name (an entry point's name, a module's name or a file's
stem). A plugin that fails to import, has a misspelt hook (pluggy's ``check_pending``) or raises
while registering is reported with its name and the exception, skipped and counted; the run
goes on. Like tox's plugin manager, :class:`PluginHost` wraps each hook in a typed method so
the rest of geoforge never calls ``pm.hook`` directly.

Running a perturbation (:meth:`PluginHost.candidates`) is isolated three ways (DESIGN.md,
"Verification rules"): the plugin reads its own read-only copy of the positive
(:func:`geoforge.perturb.read_only`), so it cannot change what the verifier compares against;
candidates are pulled one at a time, so the caller's check cap stops even an endless
generator; and each plugin has a wall-clock budget per positive, enforced with ``SIGALRM``
(:func:`signal.setitimer`) in the main thread of a process and only between candidates
elsewhere. A plugin that raises, tries to mutate the positive or runs out of time is reported,
counted and skipped for that positive; the run goes on.
"""

from geoforge.plugins.checks import candidate_problem
from geoforge.plugins.host import MAX_GARBAGE, MAX_NOTED, PluginHost, plugin_rng
from geoforge.plugins.spec import (
    DEFAULT_TIME_BUDGET,
    ENTRY_POINT_GROUP,
    ENV_VAR,
    PluginFailure,
    PluginInfo,
    PluginSpec,
)

__all__ = [
    "DEFAULT_TIME_BUDGET",
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "MAX_GARBAGE",
    "MAX_NOTED",
    "PluginFailure",
    "PluginHost",
    "PluginInfo",
    "PluginSpec",
    "candidate_problem",
    "plugin_rng",
]
