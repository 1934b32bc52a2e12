"""A prepared dataset's ``meta.json`` is read against its schema: a field missing, of the wrong
type, ``{}`` or a list is one ``error:`` line naming the file and the field, from every verb
that reads the set (here ``embed``), and nothing is written or changed (see hostile_support.py)."""

from __future__ import annotations

import json
import shutil

import pytest
from hostile_support import Case, check


def _variants(good: dict) -> dict[str, tuple[object, str]]:
    """Deviating meta.json documents and the field each error must name."""
    def without(key):
        return {k: v for k, v in good.items() if k != key}

    return {
        "empty": ({}, "format"),
        "a list": ([], "whole document"),
        "no count": (without("count"), "count"),
        "count as text": ({**good, "count": "40"}, "count"),
        "count negative": ({**good, "count": -1}, "count"),
        "no survey": (without("survey"), "survey"),
        "survey without bands": ({**good, "survey": {k: v for k, v in good["survey"].items()
                                                     if k != "bands"}}, "survey.bands"),
        "pixel scale as text": ({**good, "survey": {**good["survey"],
                                                    "pixel_scale_arcsec": "0.4"}},
                                "survey.pixel_scale_arcsec"),
        "shape of two sides": ({**good, "shape": good["shape"][:2]}, "shape"),
        "shape with a zero": ({**good, "shape": [3, 0, 16]}, "shape"),
        "preprocessing a list": ({**good, "preprocessing": []}, "preprocessing"),
        "preprocessing unknown key": ({**good, "preprocessing": {**good["preprocessing"],
                                                                 "gamma": 2}}, "preprocessing"),
        "label_names not a list": ({**good, "label_names": "early,late"}, "label_names"),
        "another format": ({**good, "format": "something-else"}, "format"),
    }


@pytest.fixture(scope="module")
def world(hostile_world):
    good = json.loads((hostile_world.root / "prepared" / "meta.json").read_text())
    for name, (doc, _) in _variants(good).items():
        bad = hostile_world.root / "bad_meta" / name.replace(" ", "_")
        if not bad.exists():
            shutil.copytree(hostile_world.root / "prepared", bad)
            (bad / "meta.json").write_text(json.dumps(doc))
    return hostile_world


VARIANTS = list(_variants({"survey": {}, "shape": [], "preprocessing": {}}))
FIELDS = {name: field for name, (_, field) in
          _variants({"survey": {}, "shape": [], "preprocessing": {}}).items()}


@pytest.mark.parametrize("name", VARIANTS[:3] + ["survey without bands"])
def test_embed_of_a_set_with_a_deviating_meta_json_is_one_error(world, name):
    path = "{root}/bad_meta/" + name.replace(" ", "_")
    check(world, Case(f"meta.json {name}",
                      ("embed", "{run}", "-o", "{root}/e_meta.fits", "--set",
                       "dataset.input=prepared", "--set", f"dataset.path={path}", "-q"), 2,
                      ("meta.json", FIELDS[name])))


@pytest.mark.parametrize("name", VARIANTS)
def test_every_deviating_meta_json_is_one_error_naming_the_field(world, name):
    from astroclr.api import AstroclrError, open_prepared

    with pytest.raises(AstroclrError) as caught:
        open_prepared(world.root / "bad_meta" / name.replace(" ", "_"))
    message = str(caught.value)
    assert "meta.json" in message and FIELDS[name] in message and "\n" not in message


def test_the_set_as_prepare_wrote_it_opens(world):
    from astroclr.api import open_prepared

    assert len(open_prepared(world.root / "prepared")) == 40
