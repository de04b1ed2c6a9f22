"""Config fuzzing: invalid configs derived from the schema, one mutation at a time.

Every mutation of the default ``config.yaml`` below is invalid by construction and must be
a :class:`ConfigError` whose message names the offending key (``model.quantile``,
``splits.val``) and shows the offending value; any other exception is a bug. The
generator walks ``schemas/config.schema.yaml`` (every leaf key, section, bound, enum,
pattern, array constraint and required key) and adds the cross-key classes that
``check_consistency`` guards (splits, region boxes, grid, levels, bins, model, advection,
FSS windows).
"""
from __future__ import annotations

import copy
import datetime
import math
import os
import random
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pipeline.common.config import deep_update, load_config, load_schema, validate_config
from pipeline.common.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
BASE = yaml.safe_load((ROOT / "config.yaml").read_text())
SCHEMA = load_schema()
MISSING = "missing"  # what a message shows for a missing required key


@dataclass(frozen=True)
class Case:
    cls: str  # mutation class
    what: str  # the mutation, for failure reports
    config: dict  # the mutated config
    key: str  # the message must name this key
    shown: tuple[str, ...]  # ... and contain one of these (the offending value)


# -- the schema walk ---------------------------------------------------------------------

def resolve(node: dict) -> dict:
    """Follow a ``$ref`` into ``definitions`` (the sibling keys are descriptions only)."""
    ref = node.get("$ref")
    return SCHEMA["definitions"][ref.rsplit("/", 1)[1]] if ref else node


def walk(schema: dict = SCHEMA, path: tuple = ()):
    """``(path, subschema)`` of every property, depth first (sections before their keys)."""
    for name, sub in schema.get("properties", {}).items():
        sub = resolve(sub)
        yield path + (name,), sub
        if sub.get("type") == "object":
            yield from walk(sub, path + (name,))


def objects():
    """``(path, subschema)`` of the top level and of every object (sections, boxes, date ranges)."""
    yield (), SCHEMA
    yield from ((p, s) for p, s in walk() if s.get("type") == "object")


def leaves():
    return [(p, s) for p, s in walk() if s.get("type") != "object"]


def dotted(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def get(config: dict, path):
    """The value at ``path``; in the main config, a key it leaves out gives its schema default
    (e.g. radar.model.hidden, whose default is written only in the schema)."""
    node = config
    try:
        for p in path:
            node = node[p]
        return node
    except KeyError:
        default = dict(walk()).get(tuple(path), {}).get("default") if config is BASE else None
        if default is None:
            raise
        return copy.deepcopy(default)


def mutated(path, value=None, delete: bool = False, base: dict = BASE) -> dict:
    """A deep copy of ``base`` with ``path`` set to ``value`` (or deleted)."""
    config = copy.deepcopy(base)
    node = config
    for p in path[:-1]:
        node = node.setdefault(p, {})
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = copy.deepcopy(value)
    return config


def shows(value) -> tuple[str, ...]:
    return (repr(value), str(value))


def case(cls, path, value, key=None, shown=None) -> Case:
    return Case(cls, f"{dotted(path)} = {value!r}", mutated(path, value), key or dotted(path),
                shown or shows(value))


def types_of(node: dict) -> set[str]:
    """JSON types a node allows (of ``oneOf`` alternatives too; a ``const`` alternative adds none)."""
    if "oneOf" in node:
        return {t for alt in node["oneOf"] for t in types_of(alt)}
    t = node.get("type", [])
    return set(t if isinstance(t, list) else [t])


#: A value of each JSON type; a wrong-type mutation takes those of the types a key does not allow.
SAMPLES = {"number": 2.5, "integer": 3, "string": "not-a-value", "boolean": True, "null": None,
           "array": [1.5, "x"], "object": {"k": 1}}


def wrong_values(node: dict) -> list:
    ok = types_of(node)
    if "number" in ok:
        ok |= {"integer"}
    return [v for t, v in SAMPLES.items() if t not in ok]  # 2.5 is no integer (2.0 would be)


# -- mutation classes from the schema ---------------------------------------------------

def wrong_type_cases():
    for path, node in walk():
        for value in wrong_values(node):
            yield case("wrong_type", path, value)
        items = node.get("items")
        if items:  # one item of a wrong type inside an otherwise valid list
            good = list(get(BASE, path))
            for value in wrong_values(items)[:2]:
                yield case("wrong_type", path, good[:-1] + [value], key=dotted(path), shown=shows(value))


def bound_values(node: dict) -> list:
    integer = node.get("type") == "integer"
    step = 1 if integer else 0.5
    out = []
    if "minimum" in node:
        out.append(node["minimum"] - step)
    if "exclusiveMinimum" in node:
        out += [node["exclusiveMinimum"], node["exclusiveMinimum"] - step]
    if "maximum" in node:
        out.append(node["maximum"] + step)
    if "exclusiveMaximum" in node:
        out += [node["exclusiveMaximum"], node["exclusiveMaximum"] + step]
    return out


def out_of_range_cases():
    for path, node in leaves():
        for alt in node.get("oneOf", [node]):
            for value in bound_values(alt):
                yield case("out_of_range", path, value)
        items = node.get("items", {})
        good = get(BASE, path) if "items" in node else None
        for value in bound_values(items):
            yield case("out_of_range", path, good[:-1] + [value], key=dotted(path), shown=shows(value))


def non_finite_cases():
    for path, node in leaves():
        numeric = types_of(node) & {"number", "integer"}
        if numeric:
            for value in (math.nan, math.inf, -math.inf):
                yield case("non_finite", path, value)
        if types_of(node.get("items", {})) & {"number"}:
            good = get(BASE, path)
            yield case("non_finite", path, good[:-1] + [math.nan], key=dotted(path), shown=("nan",))


def enum_cases():
    for path, node in leaves():
        if "enum" in node:
            allowed = node["enum"]
            if node.get("type") == "integer":
                bad = [v for v in (6, 24) if v not in allowed]
            else:
                bad = ["not-an-option", str(allowed[0]).upper()]
            for value in bad:
                yield case("enum", path, value)
        for alt in node.get("oneOf", []):
            if "const" in alt:
                for value in ("automatic", str(alt["const"]).capitalize()):
                    yield case("enum", path, value)
        items = node.get("items", {})
        if "enum" in items:
            good = list(get(BASE, path))
            yield case("enum", path, good[:-1] + ["humidity"], key=dotted(path), shown=shows("humidity"))


PATTERN_BAD = {r"^\d{4}-\d{2}-\d{2}$": ["2021-5-05", "20210505", "2021/05/05", "2021-05-05T00:00"],
               r"^\d{4}-\d{2}$": ["2020-1", "2020-01-01", "202001"]}


def pattern_cases():
    for path, node in leaves():
        for value in PATTERN_BAD.get(node.get("pattern"), []):
            yield case("pattern", path, value)


def array_cases():
    for path, node in leaves():
        if node.get("minItems"):
            yield case("array", path, [])
        if node.get("uniqueItems"):
            good = list(get(BASE, path))
            yield case("array", path, good + good[:1])
        if node.get("minLength"):
            yield case("array", path, "")


def unknown_key_cases():
    for path, node in objects():
        allowed = list(node.get("properties", {}))
        yield Case("unknown_key", f"{dotted(path) or '<top>'}.surprise", mutated(path + ("surprise",), 12345),
                   dotted(path + ("surprise",)), ("12345",))
        required = set(node.get("required", []))
        for name in allowed:
            present = get(BASE, path)
            if name in required or name not in present or len(name) < 4:
                continue
            typo = name[:-1]
            config = mutated(path + (name,), delete=True)
            get(config, path)[typo] = copy.deepcopy(present[name])
            yield Case("unknown_key", f"{dotted(path + (name,))} misspelt {typo}", config, dotted(path + (typo,)),
                       shows(present[name]))


def missing_required_cases():
    for path, node in objects():
        for name in node.get("required", []):
            yield Case("missing_required", f"del {dotted(path + (name,))}", mutated(path + (name,), delete=True),
                       dotted(path + (name,)), (MISSING,))


def wrong_section_cases():
    for path, _ in objects():
        if path:
            for value in ("section", 7, [], None):
                yield case("wrong_type", path, value)


# -- cross-key classes (check_consistency) ---------------------------------------------

def split_cases():
    s = ("splits",)
    yield case("dates", s + ("val", "start"), "2021-02-30")
    yield case("dates", s + ("train", "end"), "2021-13-01")
    yield case("dates", s + ("test", "start"), "2022-00-10")
    yield case("dates", s + ("train", "start"), "1500-01-01")
    yield case("dates", s + ("test", "end"), "2300-12-31")
    yield case("dates", ("period", "start"), "2020-13")
    yield case("dates", ("period", "end"), "2022-00")
    yield case("dates", ("period", "start"), "1600-01")
    yield case("period_order", ("period", "start"), "2023-01")
    yield case("split_order", s + ("val", "end"), "2021-05-01")  # end before its start
    yield case("split_order", s + ("test", "end"), "2021-12-31")
    yield case("split_overlap", s + ("val", "start"), "2021-04-15")  # inside train
    yield case("split_overlap", s + ("test", "start"), "2021-12-01")
    for start in ("2021-05-01", "2021-05-02", "2021-05-03"):  # gap < the 3-day input window
        yield case("split_gap", s + ("val", "start"), start)
    yield case("split_gap", s + ("test", "start"), "2021-12-29")
    yield case("split_gap", ("frames", "input_steps"), 20)  # a 10-day window: the 4-day gap is too short
    swapped = copy.deepcopy(BASE)
    swapped["splits"]["train"], swapped["splits"]["val"] = swapped["splits"]["val"], swapped["splits"]["train"]
    yield Case("split_order", "train and val swapped", swapped, "splits.val.start", ("2020-01-01",))
    yield case("split_short", s + ("val",), {"start": "2021-05-05", "end": "2021-05-06"}, shown=("2021-05-06",))
    yield case("split_short", s + ("test",), {"start": "2022-01-01", "end": "2022-01-01"}, shown=("2022-01-01",))
    yield case("split_short", ("frames", "lead_steps"), 1000)  # no split holds 1006 frames


def region_cases():
    r = ("regions",)
    r1, r2 = BASE["regions"]["region1"], BASE["regions"]["region2"]
    for what, box in {"gap": dict(r2, lon_min=105.0, lon_max=111.0),
                      "overlap": dict(r2, lon_min=110.0, lon_max=116.0),
                      "identical": dict(r1),
                      "corner": dict(r2, lat_min=22.0, lat_max=28.0),
                      "far": {"lat_min": -10.0, "lat_max": -4.0, "lon_min": 10.0, "lon_max": 16.0},
                      "north_offset": dict(r1, lat_min=34.0, lat_max=40.0, lon_min=113.0, lon_max=119.0),
                      "lat_mismatch": dict(r2, lat_min=28.5),
                      "lat_taller": dict(r2, lat_max=36.0)}.items():
        shown = {"lat_mismatch": ("28.5",), "lat_taller": ("36.0",)}.get(what, shows(box))
        yield case("regions_join", r + ("region2",), box, shown=shown)
    yield case("regions_join", r + ("region1",), dict(r1, lon_min=113.0, lon_max=119.0),
               shown=("113.0",))
    for side in ("east", "north", "south"):
        yield case("regions_join", r + ("region2_side",), side)
    for name, box in (("region1", r1), ("region2", r2)):
        for what, bad in {"south>=north": dict(box, lat_min=box["lat_max"]),
                          "south>north": dict(box, lat_min=box["lat_max"], lat_max=box["lat_min"]),
                          "west>=east": dict(box, lon_max=box["lon_min"]),
                          "west>east": dict(box, lon_min=box["lon_max"], lon_max=box["lon_min"])}.items():
            yield case("empty_box", r + (name,), bad, shown=shows(bad))


def grid_cases():
    g = ("grid", "resolution_deg")
    for res in (0.35, 0.7, 4.0, 7.0, 12.0, 100.0, 1e7, 1e-300):  # not dividing the 6-degree boxes, or larger than them
        yield case("impossible_grid", g, res)
    for res in (0, 0.0, -0.25, -1):  # zero or negative spacing
        yield case("impossible_grid", g, res)
    yield case("impossible_grid", ("regions", "region1", "lat_max"), 34.1, key="regions.region1", shown=("34.1",))
    yield case("impossible_grid", ("regions", "region2", "lon_min"), 106.1, key="regions.region2", shown=("106.1",))
    yield case("impossible_grid", g, 1.5, shown=("1.5",))  # 4 x 4 cells: FSS windows 5 and 9 cannot fit
    yield case("fss_window", ("evaluation", "fss_windows"), [1, 3, 25], shown=("25",))


def level_cases():
    levels = BASE["levels_hpa"]
    for what, bad in {"increasing": sorted(levels), "duplicate": levels[:1] + levels,
                      "swapped": [levels[1], levels[0]] + levels[2:]}.items():
        yield case("levels", ("levels_hpa",), bad)
    yield case("advection", ("levels_hpa",), [v for v in levels if v != 700])
    yield case("advection", ("evaluation", "advection_level_hpa"), 600)
    yield case("advection", ("evaluation", "advection_level_hpa"), 650)
    yield case("advection", ("variables",), ["temperature", "dewpoint", "v", "geopotential_height"])
    yield case("advection", ("variables",), ["temperature", "u"])


def model_cases():
    m = ("model",)
    edges = BASE["model"]["bin_edges_mm"]
    yield case("thresholds_edges", ("evaluation", "thresholds_mm"), [0.1, 5.0, 12.0, 30.0], shown=("12.0",))
    yield case("thresholds_edges", ("evaluation", "thresholds_mm"), [0.05], shown=("0.05",))
    yield case("thresholds_edges", m + ("bin_edges_mm",), [e for e in edges if e != 30.0])
    yield case("bin_edges", m + ("bin_edges_mm",), edges[::-1])
    yield case("bin_edges", m + ("bin_edges_mm",), edges[:3] + edges[2:])
    for k in (2, 4, 8):
        yield case("model_rules", m + ("kernel_size",), k)
    for groups in (3, 5, 7, 256):
        yield case("model_rules", m + ("groups",), groups)
    yield case("model_rules", m + ("hidden",), [33, 64], shown=("33",))
    yield case("head_loss", ("train", "loss"), "mse")
    yield case("head_loss", ("train", "loss"), "weighted_mse")
    yield case("head_loss", m + ("head",), "regression")


GENERATORS = [wrong_type_cases, wrong_section_cases, out_of_range_cases, non_finite_cases, enum_cases,
              pattern_cases, array_cases, unknown_key_cases, missing_required_cases, split_cases,
              region_cases, grid_cases, level_cases, model_cases]
CLASSES = {"wrong_type", "out_of_range", "non_finite", "enum", "pattern", "array", "unknown_key",
           "missing_required", "dates", "period_order", "split_order", "split_overlap", "split_gap",
           "split_short", "regions_join", "empty_box", "impossible_grid", "fss_window", "levels", "advection",
           "thresholds_edges", "bin_edges", "model_rules", "head_loss"}


def all_cases() -> list[Case]:
    return [c for gen in GENERATORS for c in gen()]


# -- random mutations (slow test) ------------------------------------------------------

def random_value(rng: random.Random):
    """A value of a random JSON type, biased to edge cases."""
    kind = rng.randrange(9)
    if kind == 0:
        return rng.choice([0, -1, 1, 2, 10**rng.randrange(1, 30), -(10**rng.randrange(1, 30))])
    if kind == 1:
        return rng.choice([0.0, -0.0, 1e-300, 1e300, math.nan, math.inf, -math.inf, rng.uniform(-1e6, 1e6)])
    if kind == 2:
        return rng.choice(["", "x", "auto", "none", "2021-02-30", "2020-13", "1e3", "0001-01-01", "9999-12"])
    if kind == 3:
        return rng.choice([True, False, None])
    if kind == 4:
        return [random_value(rng) for _ in range(rng.randrange(4))]
    if kind == 5:
        return {rng.choice(["a", "start", "lat_min", "0"]): random_value(rng)}
    if kind == 6:
        return "".join(rng.choice("0123456789-") for _ in range(rng.randrange(12)))
    if kind == 7:
        return rng.uniform(-400, 400)
    return rng.randrange(-5, 50)


def random_invalid_case(rng: random.Random, pool: dict[str, list[Case]]) -> Case:
    """An invalid config by construction: a class, then a mutation of it with random
    parameters where the class allows (the value drawn from the class's own range)."""
    leaf_paths = [p for p, _ in leaves()]
    cls = rng.choice(sorted(pool))
    if cls == "out_of_range":
        path, node = rng.choice([(p, n) for p, n in leaves() if bound_values(n)])
        integer = node.get("type") == "integer"
        lo = node.get("minimum", node.get("exclusiveMinimum"))
        hi = node.get("maximum", node.get("exclusiveMaximum"))
        if lo is not None and (hi is None or rng.random() < 0.5):
            value = lo - (rng.randrange(1, 10**6) if integer else rng.uniform(1e-6, 1e6))
        else:
            value = hi + (rng.randrange(1, 10**6) if integer else rng.uniform(1e-6, 1e6))
        return case("out_of_range", path, value)
    if cls == "wrong_type":
        path = rng.choice(leaf_paths)
        node = dict(walk())[path]
        return case("wrong_type", path, rng.choice(wrong_values(node)))
    if cls == "unknown_key":
        # not a map of named entries (experiments, radar.experiments): a new name there is an entry
        path, _ = rng.choice([(p, n) for p, n in objects() if not isinstance(n.get("additionalProperties"), dict)])
        name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randrange(3, 12))) + "_x"
        value = random_value(rng)
        return Case("unknown_key", f"{dotted(path)}.{name}", mutated(path + (name,), value), dotted(path + (name,)),
                    ("unknown key",))
    if cls == "split_gap":
        gap_days = rng.randrange(-400, 3)  # overlapping, out of order or too close
        start = shifted(BASE["splits"]["train"]["end"], gap_days + 1)
        return case("split_gap", ("splits", "val", "start"), start)
    if cls == "impossible_grid":
        # larger than the 6-degree boxes, zero or negative, or 6 / res = k + 1/2 cells
        res = rng.choice([rng.uniform(6.0001, 1000), rng.uniform(-10, 0), 6.0 / (rng.randrange(1, 40) + 0.5)])
        return case("impossible_grid", ("grid", "resolution_deg"), res)
    return rng.choice(pool[cls])


def shifted(day: str, days: int) -> str:
    """``day`` (YYYY-MM-DD) moved by ``days``."""
    return str((datetime.date.fromisoformat(day) + datetime.timedelta(days=days)))


# -- checks ------------------------------------------------------------------------------

def names_key(message: str, key: str) -> bool:
    """``key`` appears in ``message`` as a whole key (``splits.val`` in ``splits.val.start`` too)."""
    return re.search(rf"(?<![\w.]){re.escape(key)}(?!\w)", message) is not None


def problem(c: Case) -> str | None:
    """None when ``c`` gives a ConfigError naming its key and value, else what went wrong."""
    try:
        validate_config(copy.deepcopy(c.config))
    except ConfigError as err:
        msg = str(err)
        if not names_key(msg, c.key):
            return f"{c.cls}: {c.what}: key {c.key!r} not named: {msg}"
        if not any(s in msg for s in c.shown):
            return f"{c.cls}: {c.what}: value {c.shown[0]} not shown: {msg}"
        if "\n" in msg:
            return f"{c.cls}: {c.what}: message has several lines: {msg!r}"
        return None
    except Exception as err:  # noqa: BLE001 -- the point: no other exception type
        return f"{c.cls}: {c.what}: {type(err).__name__} instead of ConfigError: {err}"
    return f"{c.cls}: {c.what}: accepted"


def report(problems: list[str]) -> str:
    return f"{len(problems)} problems:\n" + "\n".join(problems[:25])


def test_default_config_validates_unchanged():
    """The generator starts from a valid config (else every case would pass vacuously)."""
    config = validate_config(copy.deepcopy(BASE))
    assert config == load_config(ROOT / "config.yaml")
    for k, v in BASE.items():  # validation only adds defaults (also inside experiments' entries)
        assert config[k] == (deep_update(config[k], v) if isinstance(v, dict) else v)


def test_every_mutation_class_has_cases():
    counts = Counter(c.cls for c in all_cases())
    assert set(counts) == CLASSES, set(counts) ^ CLASSES
    assert all(n >= 1 for n in counts.values()), counts
    # every leaf key of the schema got a wrong-type case, every object an unknown key
    named = {c.key.split("[")[0] for c in all_cases() if c.cls == "wrong_type"}
    assert {dotted(p) for p, _ in walk()} <= named
    assert len([c for c in all_cases() if c.cls == "unknown_key" and c.key.endswith("surprise")]) == \
        len(list(objects()))


def test_invalid_configs_raise_config_error_naming_key_and_value():
    cases = all_cases()
    assert len(cases) >= 500, len(cases)
    problems = [p for c in cases if (p := problem(c))]
    assert not problems, report(problems)


def test_invalid_config_files_are_config_errors(tmp_path):
    cases = {"bad.yaml": ("a: [1, 2\n", "not valid YAML"), "list.yaml": ("- a\n- b\n", "['a', 'b']"),
             "scalar.yaml": ("just text\n", "'just text'")}
    for name, (text, shown) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError, match=name) as info:
            load_config(tmp_path / name)
        assert shown in str(info.value)
    with pytest.raises(ConfigError, match="nothere.yaml.*cannot read"):
        load_config(tmp_path / "nothere.yaml")


def test_command_line_invalid_config_is_one_line_exit_2(tmp_path):
    """A command given an invalid config: exit status 2, one stderr line ``error: ...``
    naming the key and the value, no traceback (a cross-key rule and a schema rule)."""
    bad_regions = mutated(("regions", "region2"), {"lat_min": 28.0, "lat_max": 34.0, "lon_min": 105.0,
                                                   "lon_max": 111.0})
    bad_key = mutated(("model", "quantil"), 0.5)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    for name, config, words in (("regions.yaml", bad_regions, ("regions.region2", "105.0", "adjoin")),
                                ("typo.yaml", bad_key, ("model.quantil", "0.5", "unknown key"))):
        path = tmp_path / name
        path.write_text(yaml.safe_dump(config))
        r = subprocess.run([sys.executable, "-m", "pipeline.gridding", "--config", str(path),
                            "--soundings", "s.nc", "--gauges", "g.nc", "--month", "2020-01", "--grid", "concat",
                            "--out", str(tmp_path / "o.nc")],
                           capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
        assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
        assert "Traceback" not in r.stderr, r.stderr[-3000:]
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr[-3000:]
        assert name in lines[0] and all(w in lines[0] for w in words), lines[0]


@pytest.mark.slow
def test_thousands_of_random_mutations():
    """(1) 3000 random invalid mutations (random class, random parameters): a ConfigError
    naming the key and value each. (2) 3000 arbitrary random values at random keys (valid
    or not): either valid, or a one-line ConfigError naming the key; never another exception."""
    rng = random.Random(20261128)
    pool: dict[str, list[Case]] = {}
    for c in all_cases():
        pool.setdefault(c.cls, []).append(c)
    problems = [p for _ in range(3000) if (p := problem(random_invalid_case(rng, pool)))]
    assert not problems, report(problems)
    paths = [p for p, _ in walk()] + [p + ("extra",) for p, _ in objects()]
    accepted = 0
    for _ in range(3000):
        path, value = rng.choice(paths), random_value(rng)
        config = mutated(path, value)
        try:
            validate_config(config)
            accepted += 1
        except ConfigError as err:
            msg = str(err)
            assert msg.startswith("config key") and "\n" not in msg, msg
            # the key is named, or the box or date range holding it (with the value)
            names = {dotted(path[:n]) for n in range(min(2, len(path)), len(path) + 1)}
            assert any(names_key(msg, k) for k in names), (dotted(path), value, msg)
        except Exception as err:  # noqa: BLE001
            pytest.fail(f"{dotted(path)} = {value!r}: {type(err).__name__}: {err}")
    assert accepted < 3000 * 0.5, accepted  # mostly invalid: the draws are not vacuous
