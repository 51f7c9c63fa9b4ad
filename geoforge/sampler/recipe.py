"""Recipes: TOML files that set a corpus's size, family mix, difficulty and caption styles.

Example (``corpora/smoke.toml``)::

    [corpus]
    name = "smoke"
    samples = 64
    seed = 0

    [families]            # relative weights
    triangle = 4
    quadrilateral = 3
    circle = 3
    parallel = 1
    composite = 2

    [difficulty]
    min_clauses = 2
    max_clauses = 8
    givens = 0.6

    [captions]
    styles = ["descriptive", "facts", "question"]

Every key is checked: an unknown key, a wrong type or an impossible mix raises RecipeError
naming the file and the key.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from geoforge.errors import GeoforgeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FAMILY_NAMES = ("triangle", "quadrilateral", "circle", "parallel", "composite")
STYLE_NAMES = ("descriptive", "facts", "question")


class RecipeError(GeoforgeError):
    """A recipe file is malformed; the message names the file and the key."""

    exit_code = 2


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe. ``families`` maps family names to weights; ``image_size`` is pixels;
    ``shard_size`` samples per WebDataset shard."""

    name: str = "corpus"
    samples: int = 1000
    seed: int = 0
    image_size: int = 448
    shard_size: int = 1000
    families: dict[str, float] = field(default_factory=lambda: {"triangle": 1.0})
    min_clauses: int = 1
    max_clauses: int = 10
    givens: float = 0.5
    styles: tuple[str, ...] = STYLE_NAMES

    def to_json(self) -> dict[str, Any]:
        """The resolved recipe as a JSON-ready dict (sorted keys)."""
        data = asdict(self)
        data["styles"] = list(self.styles)
        return data

    def config_hash(self) -> str:
        """SHA-256 (16 hex digits) of the resolved recipe's canonical JSON."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:16]


_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "corpus": {"name": str, "samples": int, "seed": int, "image_size": int, "shard_size": int},
    "families": {name: (int, float) for name in FAMILY_NAMES},
    "difficulty": {"min_clauses": int, "max_clauses": int, "givens": (int, float)},
    "captions": {"styles": list},
}


def load_recipe(path: str | Path) -> Recipe:
    """Read and check a recipe TOML file. Raises RecipeError naming the file and key, and for a
    file that sets nothing (empty, or comments only)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise RecipeError(f"{path}: cannot read recipe: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise RecipeError(
            f"{path}: cannot read recipe: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})"
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: invalid TOML: {e}") from None
    if not data:  # every key has a default, but a file that sets none is a mistake, not a choice
        raise RecipeError(
            f"{path}: the recipe sets nothing (the file is empty or holds only comments); "
            "expected tables such as [corpus] and [families] (docs/recipes.md)"
        )
    return recipe_from_dict(data, str(path))


def _fail(where: str, key: str, message: str) -> RecipeError:
    return RecipeError(f"{where}: `{key}`: {message}")


def recipe_from_dict(data: dict[str, Any], where: str = "<recipe>") -> Recipe:
    """Check a recipe given as a dict (as TOML would give) and build a :class:`Recipe`."""
    values: dict[str, Any] = {}
    for section, body in data.items():
        if section not in _SCHEMA:
            near = difflib.get_close_matches(section, _SCHEMA, n=1)
            raise _fail(
                where,
                section,
                "unknown section" + (f" (did you mean `{near[0]}`?)" if near else ""),
            )
        if not isinstance(body, dict):
            raise _fail(where, section, "expected a table such as [" + section + "]")
        for key, value in body.items():
            full = f"{section}.{key}"
            want = _SCHEMA[section].get(key)
            if want is None:
                near = difflib.get_close_matches(key, _SCHEMA[section], n=1)
                raise _fail(where, full, "unknown key" + (f" (did you mean `{near[0]}`?)" if near else ""))
            if isinstance(value, bool) or not isinstance(value, want):
                names = " or ".join(t.__name__ for t in (want if isinstance(want, tuple) else (want,)))
                raise _fail(where, full, f"expected {names}, got {type(value).__name__} {value!r}")
            values[full] = value
    families = {k.split(".", 1)[1]: float(v) for k, v in values.items() if k.startswith("families.")}
    for key, weight in families.items():
        if weight < 0:
            raise _fail(where, f"families.{key}", f"weight must be ≥ 0, got {weight}")
    if families and sum(families.values()) <= 0:
        raise _fail(where, "families", "every weight is 0: no family can be drawn")
    styles = tuple(values.get("captions.styles", STYLE_NAMES))
    for s in styles:
        if s not in STYLE_NAMES:
            raise _fail(where, "captions.styles", f"unknown style {s!r}: expected {', '.join(STYLE_NAMES)}")
    if not styles:
        raise _fail(where, "captions.styles", "no caption style")
    recipe = Recipe(
        name=values.get("corpus.name", "corpus"),
        samples=values.get("corpus.samples", 1000),
        seed=values.get("corpus.seed", 0),
        image_size=values.get("corpus.image_size", 448),
        shard_size=values.get("corpus.shard_size", 1000),
        families=families or {"triangle": 1.0},
        min_clauses=values.get("difficulty.min_clauses", 1),
        max_clauses=values.get("difficulty.max_clauses", 10),
        givens=float(values.get("difficulty.givens", 0.5)),
        styles=styles,
    )
    checks = [
        ("corpus.samples", recipe.samples >= 1, "must be ≥ 1"),
        ("corpus.seed", recipe.seed >= 0, f"must be ≥ 0 (numpy seeds are non-negative), got {recipe.seed}"),
        ("corpus.image_size", 64 <= recipe.image_size <= 4096, "must be 64 to 4096 pixels"),
        ("corpus.shard_size", recipe.shard_size >= 1, "must be ≥ 1"),
        ("difficulty.min_clauses", recipe.min_clauses >= 1, "must be ≥ 1"),
        (
            "difficulty.max_clauses",
            recipe.max_clauses >= recipe.min_clauses,
            "must be ≥ min_clauses",
        ),
        ("difficulty.givens", 0.0 <= recipe.givens <= 1.0, "must be a probability in [0, 1]"),
    ]
    for key, ok, message in checks:
        if not ok:
            raise _fail(where, key, message)
    return recipe
