"""The sampler: coverage of families and features, determinism, the recipe's clause range,
and (slow) the variety and legibility of a 5,000-sample run of the paper's 4K recipe."""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from geoforge.sampler import RecipeError, sample_spec
from geoforge.sampler.families import FAMILIES
from geoforge.sampler.features import FEATURES
from geoforge.sampler.recipe import FAMILY_NAMES, load_recipe, recipe_from_dict

ROOT = Path(__file__).resolve().parents[1]
ALL_FAMILIES = {
    "families": dict.fromkeys(FAMILY_NAMES, 1),
    "difficulty": {"min_clauses": 3, "max_clauses": 10},
}
#: The base kinds families record in ``Spec.features`` besides the FEATURES table.
KINDS = {
    "scalene",
    "isosceles",
    "equilateral",
    "right",
    "square",
    "rectangle",
    "rhombus",
    "parallelogram",
    "trapezoid",
    "isosceles_trapezoid",
    "kite",
    "cyclic_quadrilateral",
    "circle",
    "transversal",
}


@pytest.fixture(scope="module")
def specs():  # type: ignore[no-untyped-def]
    recipe = recipe_from_dict(ALL_FAMILIES)
    rng = np.random.default_rng(2025)
    return recipe, [sample_spec(recipe, rng) for _ in range(300)]


def test_every_family_and_feature_appears_in_300_specs(specs) -> None:
    _, drawn = specs
    families = Counter(s.family for s in drawn)
    features = Counter(f for s in drawn for f in s.features)
    assert set(families) == set(FAMILY_NAMES)
    assert set(FAMILIES) | {"composite"} == set(FAMILY_NAMES)
    missing = {f.name for f in FEATURES} - set(features)
    assert not missing, f"features never drawn: {sorted(missing)}"
    assert not KINDS - set(features), f"kinds never drawn: {sorted(KINDS - set(features))}"
    # Equal weights: no family is starved (expected 60 each).
    assert min(families.values()) >= 30, families


def test_clause_count_stays_within_recipe_range(specs) -> None:
    recipe, drawn = specs
    counts = [len(s.program.clauses) for s in drawn]
    assert min(counts) >= recipe.min_clauses == 3
    assert max(counts) <= recipe.max_clauses == 10


def test_narrow_clause_range_is_respected() -> None:
    recipe = recipe_from_dict({**ALL_FAMILIES, "difficulty": {"min_clauses": 7, "max_clauses": 7}})
    rng = np.random.default_rng(0)
    assert {len(sample_spec(recipe, rng).program.clauses) for _ in range(40)} == {7}


def test_composite_figures_add_at_least_two_features(specs) -> None:
    _, drawn = specs
    added = {f.name for f in FEATURES}
    for s in drawn:
        if s.family == "composite":
            assert sum(f in added for f in s.features) >= 2, s.features


def test_features_appear_at_most_once_per_figure(specs) -> None:
    _, drawn = specs
    for s in drawn:
        assert len(s.features) == len(set(s.features)), s.features


def test_specs_are_deterministic_from_generator_state(specs) -> None:
    recipe, _ = specs
    a = np.random.default_rng(np.random.SeedSequence([3, 17]))
    b = np.random.default_rng(np.random.SeedSequence([3, 17]))
    for _ in range(20):
        x, y = sample_spec(recipe, a), sample_spec(recipe, b)
        assert x.program.text() == y.program.text()
        assert x.claims == y.claims and x.targets == y.targets
        assert (x.family, x.features) == (y.family, y.features)
    assert a.bit_generator.state == b.bit_generator.state


def test_different_generator_states_give_different_specs(specs) -> None:
    _, drawn = specs
    assert len({s.program.canonical_hash() for s in drawn}) >= 0.95 * len(drawn)


def test_recipe_range_no_family_fits_raises_naming_difficulty() -> None:
    # The smallest figures (a triangle, or a circle with one feature) have 3 clauses.
    recipe = recipe_from_dict({**ALL_FAMILIES, "difficulty": {"min_clauses": 1, "max_clauses": 2}})
    with pytest.raises(RecipeError, match="`difficulty`") as info:
        sample_spec(recipe, np.random.default_rng(0))
    assert "between 1 and 2 clauses" in str(info.value)


def test_parallel_only_recipe_below_its_size_raises() -> None:
    recipe = recipe_from_dict(
        {"families": {"parallel": 1}, "difficulty": {"min_clauses": 1, "max_clauses": 5}}
    )
    with pytest.raises(RecipeError, match="`difficulty`"):
        sample_spec(recipe, np.random.default_rng(0))


@pytest.mark.parametrize("text", ["", "# a recipe, to be written\n\n"])
def test_a_recipe_file_that_sets_nothing_is_refused_naming_it(text: str, tmp_path: Path) -> None:
    # every key has a default, so an empty file would silently make a triangles-only corpus
    path = tmp_path / "empty.toml"
    path.write_text(text)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(info.value).startswith(f"{path}: the recipe sets nothing")
    assert info.value.exit_code == 2
    (tmp_path / "one.toml").write_text("[corpus]\nsamples = 3\n")  # one setting is enough
    assert load_recipe(tmp_path / "one.toml").samples == 3


def test_a_recipe_that_is_not_utf8_is_one_line_naming_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "bin.toml"
    path.write_bytes(b"[corpus]\nname = '\xff'\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(info.value) == f"{path}: cannot read recipe: not UTF-8 text (byte 0xff at offset 17)"


# --- slow: the paper's 4K recipe at scale ---------------------------------------------------

N_SLOW = 5000


def _check_sample(index: int) -> dict:
    """Make sample ``index`` of mmgeo-4k, rebuild its layout, and report what the test needs."""
    from geoforge.generate import REALISE_TRIES, make_sample
    from geoforge.program import parse_program
    from geoforge.realise import realise
    from geoforge.render import layout

    recipe = load_recipe(ROOT / "corpora" / "mmgeo-4k.toml")
    sample = make_sample(recipe, recipe.seed, index)
    meta = sample.meta
    scene = realise(
        parse_program(str(meta["program"])), seed=int(meta["realise_seed"]), max_tries=REALISE_TRIES
    )
    plan = layout(scene, recipe.image_size)
    size = recipe.image_size
    xy = np.array(list(plan.points.values()))
    boxes = plan.boxes
    return {
        "hash": meta["canonical_hash"],
        "family": meta["family"],
        "features": meta["features"],
        "clashes": plan.clashes,
        "points_out": int(((xy < 0) | (xy > size)).any(axis=1).sum()),
        "labels_out": int(((boxes < 0) | (boxes > size)).any(axis=1).sum()),
        "rejections": [d for d in meta["draws"] if d != "accepted"],
    }


@pytest.mark.slow
def test_mmgeo_4k_5000_samples_are_varied_and_legible() -> None:
    workers = max(1, min(8, os.cpu_count() or 1))
    with ProcessPoolExecutor(workers) as pool:
        rows = list(pool.map(_check_sample, range(N_SLOW), chunksize=50))
    distinct = len({r["hash"] for r in rows}) / N_SLOW
    families = Counter(r["family"] for r in rows)
    features = Counter(f for r in rows for f in r["features"])
    rejections: Counter[str] = Counter()
    for r in rows:
        rejections.update(r["rejections"])
    print(
        f"\nmmgeo-4k x{N_SLOW}: distinct canonical_hash {distinct:.2%}; families {dict(families)}; "
        f"rejections {dict(rejections)}"
    )
    assert distinct >= 0.95
    assert set(families) == set(FAMILY_NAMES)
    assert {f.name for f in FEATURES} <= set(features)
    assert sum(r["clashes"] for r in rows) == 0
    assert sum(r["points_out"] for r in rows) == 0
    assert sum(r["labels_out"] for r in rows) == 0


def test_crowded_figures_are_the_ones_whose_layout_has_points_too_close(specs) -> None:
    from geoforge.errors import GeoforgeError
    from geoforge.generate import crowded, illegible
    from geoforge.program import parse_program
    from geoforge.realise import realise
    from geoforge.render import layout
    from geoforge.render.layout import fitted_scale

    _, drawn = specs
    seen = Counter()
    for spec in drawn[:150]:
        try:
            scene = realise(spec.program, seed=0, max_tries=20)
        except GeoforgeError:
            continue
        plan = layout(scene, 448)
        if crowded(scene, 448):  # then too close at whatever scale the layout chose
            seen["crowded"] += 1
            assert plan.scale <= fitted_scale(scene, 448)
            assert illegible(plan) in ("illegible: points too close", "illegible: label collision")
        elif plan.scale == fitted_scale(scene, 448):
            seen["first scale"] += 1
            assert illegible(plan) != "illegible: points too close"
    assert seen["first scale"] >= 50 and seen["crowded"] >= 3, seen
    pinned = realise(parse_program("A@0_0 = free A; B@0.1_0 = free B; C@4_2 = free C"), seed=0)
    assert crowded(pinned, 448) and illegible(layout(pinned, 448)) == "illegible: points too close"
