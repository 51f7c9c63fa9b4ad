"""``generate --resume`` continues a run only when nothing that the shards contain would change.

A run writes its manifest twice: at the start with ``"complete": false`` (the settings it was
started with), and at the end in full. ``--resume`` compares the settings of the stored manifest
with the new run's, one by one (:data:`SETTINGS`), and refuses any difference by name: a kept
shard would otherwise hold samples of another run (mixed shards), or the manifest would describe
settings its shards were not made with. It also refuses a change that would delete or replace a
complete shard (a lower ``--n``); deleting shards always needs ``--overwrite``.
"""

from __future__ import annotations

import json

from geoforge.errors import UsageError
from geoforge.store import Store

#: Settings a resumed run must share with the run it continues, and how the user sets each, in
#: the order they are compared: the recipe first, since its seed and size are the defaults of
#: --seed and --n (another recipe was said to be another --seed the user never passed).
SETTINGS = {
    "config_hash": "the recipe",
    "samples": "--n",
    "seed": "--seed",
    "geoforge_version": "the geoforge version",
    "negatives": "the negative settings (--image-negatives, --caption-negatives, --retrieval-negatives)",
    "plugins": "the plugin set (--plugin, --no-plugin, GEOFORGE_PLUGINS, installed plugins)",
    "qa": "--qa",
    "retrieval_pool": "--retrieval-pool",
}


def settings_of(manifest: dict[str, object]) -> dict[str, object]:
    """The :data:`SETTINGS` of a manifest, in comparable form: plugins as sorted ``name
    version`` strings (:func:`_plugin_id`), Q&A as its config, everything through a JSON round
    trip."""
    plugins = manifest.get("plugins") or []
    qa = manifest.get("qa")
    found = {
        "samples": manifest.get("samples"),
        "seed": manifest.get("seed"),
        "config_hash": manifest.get("config_hash"),
        "geoforge_version": manifest.get("geoforge_version"),
        "negatives": manifest.get("negatives"),
        "plugins": sorted(_plugin_id(p) for p in plugins),  # type: ignore[arg-type]
        "qa": qa.get("config") if isinstance(qa, dict) else None,
        "retrieval_pool": manifest.get("retrieval_pool") or "shard",  # older manifests: shard
    }
    return json.loads(json.dumps(found, sort_keys=True))


def _plugin_id(plugin: dict[str, object]) -> str:
    """``name version``, and for a plugin file the start of its source digest: an edited file
    with the same ``__version__`` is another plugin set."""
    digest = plugin.get("sha256")
    return f"{plugin['name']} {plugin['version']}" + (f" sha256:{str(digest)[:12]}" if digest else "")


def check_resume(
    out: Store, head: dict[str, object], keep: set[int], n: int, shard_size: int
) -> dict[str, object] | None:
    """Raise UsageError if resuming the corpus ``out`` with the settings of the manifest
    ``head`` (this run's, before any sample is made) would change what its shards contain,
    naming the setting and both values, or would drop or replace one of the complete shards
    ``keep`` (``n`` samples in shards of ``shard_size``). Returns the stored manifest (``None``
    when there is none)."""
    manifest = None
    if out.is_file("manifest.json"):
        try:
            manifest = json.loads(out.read_text("manifest.json"))
            if not isinstance(manifest, dict):
                raise TypeError(
                    f"a JSON {'null' if manifest is None else type(manifest).__name__}, expected an object"
                )
            stored = settings_of(manifest)
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, KeyError, AttributeError) as e:
            raise UsageError(
                f"{out.label('manifest.json')}: cannot be read to resume ({e}); "
                "pass --overwrite to start again"
            ) from None
        now = settings_of(head)
        for key, how in SETTINGS.items():
            if stored[key] != now[key]:
                raise UsageError(
                    f"--resume: {how} changed since the run being resumed "
                    f"({_difference(stored[key], now[key])}); resume with the same settings, or pass "
                    "--overwrite to start again"
                )
        _check_kept_bytes(out, manifest, keep)
    n_shards = (n + shard_size - 1) // shard_size
    beyond = sorted(s for s in keep if s >= n_shards)
    if beyond:
        raise UsageError(
            f"--resume with --n {n} would delete {len(beyond)} complete shard(s) from "
            f"shard-{beyond[0]:06d}.tar; pass --overwrite to replace the corpus"
        )
    return manifest


def _check_kept_bytes(out: Store, manifest: dict[str, object], keep: set[int]) -> None:
    """Raise UsageError if a complete shard ``keep`` holds is no longer as long as the manifest
    of the run that wrote it records (``shard_bytes``; corpora made before 2026-12-05 have none
    and are not checked): resuming would keep a damaged shard."""
    recorded = manifest.get("shard_bytes")
    if not isinstance(recorded, dict):
        return
    for index in sorted(keep):
        name = f"shard-{index:06d}.tar"
        want = recorded.get(name)
        have = out.size(name)
        if want is not None and have != want:
            raise UsageError(
                f"--resume: {out.label(name)} holds {have} bytes, but the run that wrote it recorded "
                f"{want}: it was damaged since; check the corpus with `geoforge corpus verify`, then "
                "delete that shard to have --resume make it again, or pass --overwrite"
            )


def _difference(there: object, now: object, path: str = "") -> str:
    """What differs between two settings: for mappings, each differing field by its dotted
    path (``image: 2 there, 4 now``); for lists (the plugin set), the items added and removed
    (``added misplaced_point 0.1.0; removed my_plugin 0.2``), so that a long list is not cut
    short before its difference; else both values."""
    if isinstance(there, dict) and isinstance(now, dict):
        keys = sorted(k for k in there.keys() | now.keys() if there.get(k) != now.get(k))
        return "; ".join(_difference(there.get(k), now.get(k), f"{path}{k}.") for k in keys)
    field = f"{path[:-1]}: " if path else ""
    if isinstance(there, list) and isinstance(now, list):
        added = [x if isinstance(x, str) else _short(x) for x in now if x not in there]
        removed = [x if isinstance(x, str) else _short(x) for x in there if x not in now]
        if added or removed:
            parts = ([f"added {', '.join(added)}"] if added else []) + (
                [f"removed {', '.join(removed)}"] if removed else []
            )
            return field + "; ".join(parts)
    return f"{field}{_short(there)} there, {_short(now)} now"


def _short(value: object) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."
