"""The sampler: random textbook figures (Programs with claims) from a recipe.

``sample_spec(recipe, rng)`` draws a family by weight, builds its base figure, then adds
features until the program reaches a clause count drawn from the recipe's difficulty range.
``composite`` figures combine a base family with at least two features, preferring features
that bring in a new kind of object (a circumcircle, then a tangent). Everything is a pure
function of the generator's state.
"""

from __future__ import annotations

import numpy as np

from geoforge.sampler.builder import Builder, Spec
from geoforge.sampler.families import FAMILIES
from geoforge.sampler.features import FEATURES
from geoforge.sampler.recipe import Recipe, RecipeError, load_recipe

__all__ = ["Builder", "Recipe", "RecipeError", "Spec", "load_recipe", "sample_spec"]

#: Attempts at drawing a figure that fits the recipe's clause range before giving up.
MAX_DRAWS = 50


def _draw(recipe: Recipe, rng: np.random.Generator) -> Spec:
    names = sorted(recipe.families)
    weights = np.array([recipe.families[n] for n in names])
    family = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    b = Builder(rng)
    givens = bool(rng.uniform() < recipe.givens)
    base = family if family != "composite" else b.choice(["triangle", "quadrilateral", "circle"])
    FAMILIES[base](b, givens)
    target = int(rng.integers(recipe.min_clauses, recipe.max_clauses + 1))
    minimum = {"composite": 2, "circle": 1}.get(family, 0)
    added = 0
    while len(b.clauses) < target or added < minimum:
        options = [f for f in FEATURES if f.needs in b.context and f.name not in b.features]
        if not options:
            break
        if family == "composite" and added == 0 and "circle" not in b.context:
            options = [f for f in options if f.name == "circumcircle"] or options
        feature = options[int(rng.integers(len(options)))]
        feature.add(b)
        b.features.append(feature.name)
        added += 1
    return b.spec(family)


def sample_spec(recipe: Recipe, rng: np.random.Generator) -> Spec:
    """Draw one figure that fits the recipe's clause range.

    Raises RecipeError naming ``difficulty`` if no family mix fits it after
    :data:`MAX_DRAWS` draws.
    """
    for _ in range(MAX_DRAWS):
        spec = _draw(recipe, rng)
        if recipe.min_clauses <= len(spec.program.clauses) <= recipe.max_clauses:
            return spec
    raise RecipeError(
        f"`difficulty`: no figure of the families {sorted(recipe.families)} has between "
        f"{recipe.min_clauses} and {recipe.max_clauses} clauses ({MAX_DRAWS} draws): widen the range"
    )
