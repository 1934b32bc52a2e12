"""Catalogue reading: formats, columns, duplicates, redshift cut, label mapping."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from astroclr.plugin.specs import AstroclrError
from astroclr_sdss.catalog import CatalogOptions, parse_label_map, read_catalog


def _table():
    return Table({"objID": [5, 6, 7, 8], "RA": [10.0, 11.0, 12.0, 13.0],
                  "DEC": [-1.0, 0.0, 1.0, 2.0], "z": [0.05, 0.2, np.nan, 0.149],
                  "gz1_class": [0, 3, 5, 1]})


@pytest.mark.parametrize("name,fmt", [("c.csv", None), ("c.fits", None), ("c.xml", "votable"),
                                      ("c.ecsv", None)])
def test_formats(tmp_path, name, fmt):
    _table().write(tmp_path / name, **({"format": fmt} if fmt else {}))
    opts = CatalogOptions(id_column="objid", ra_column="ra", dec_column="dec")
    cat, skips, names = read_catalog(tmp_path / name, opts, need_position=True)
    assert cat["id"].tolist() == [5, 6, 7, 8] and skips == [] and names is None
    assert cat["ra"].unit == "deg" and cat["dec"][3] == 2.0


def test_redshift_cut_and_label_map(tmp_path):
    _table().write(tmp_path / "c.fits")
    opts = CatalogOptions(id_column="objID", ra_column="RA", dec_column="DEC", z_column="z",
                          z_max=0.15, label_column="gz1_class",
                          label_map="0=early,1=late,2=late,3=late,4=-,5=-")
    cat, skips, names = read_catalog(tmp_path / "c.fits", opts)
    assert cat["id"].tolist() == [5, 8]
    assert cat["label"].tolist() == [0, 1] and names == ("early", "late")
    assert [(s.id, s.reason) for s in skips] == [("6", "redshift_cut"), ("7", "redshift_cut")]
    assert "z = nan" in skips[1].detail


def test_unmapped_label_error_skip_unlabelled(tmp_path):
    _table().write(tmp_path / "c.csv")
    base = dict(id_column="objID", label_column="gz1_class", label_map="0=early,1=late,3=late")
    with pytest.raises(AstroclrError, match=r"row 2 \(id 7\): label '5'.*not in label_map"):
        read_catalog(tmp_path / "c.csv", CatalogOptions(**base))
    cat, skips, _ = read_catalog(tmp_path / "c.csv", CatalogOptions(**base, unmapped_label="skip"))
    assert cat["id"].tolist() == [5, 6, 8] and skips[0].reason == "unmapped_label"
    cat, _, _ = read_catalog(tmp_path / "c.csv", CatalogOptions(**base, unmapped_label="unlabelled"))
    assert cat["label"].tolist() == [0, 1, -1, 1]


def test_missing_columns_and_duplicates(tmp_path):
    t = _table()
    t.write(tmp_path / "c.csv")
    with pytest.raises(AstroclrError, match="no id column 'galaxy'.*objID"):
        read_catalog(tmp_path / "c.csv", CatalogOptions(id_column="galaxy"))
    with pytest.raises(AstroclrError, match="no redshift column 'zspec'"):
        read_catalog(tmp_path / "c.csv", CatalogOptions(id_column="objID", z_column="zspec"))
    t["objID"][3] = 6
    t.write(tmp_path / "d.csv")
    with pytest.raises(AstroclrError, match=r"id 6 appears more than once \(rows 1, 3\)"):
        read_catalog(tmp_path / "d.csv", CatalogOptions(id_column="objID"))
    (tmp_path / "bad.fits").write_bytes(b"SIMPLE  = garbage")
    with pytest.raises(AstroclrError, match="cannot read it as a table"):
        read_catalog(tmp_path / "bad.fits", CatalogOptions())


def test_bad_positions_are_counted(tmp_path):
    t = _table()
    t["RA"][1] = 400.0
    t.write(tmp_path / "c.fits")
    cat, skips, _ = read_catalog(tmp_path / "c.fits", CatalogOptions(id_column="objID", ra_column="RA",
                                                                      dec_column="DEC"))
    assert cat["id"].tolist() == [5, 7, 8] and skips[0].reason == "bad_position"


def test_label_map_syntax():
    mapping, names = parse_label_map("E=early, S0=early, Sa=late, X=-")
    assert mapping == {"E": 0, "S0": 0, "Sa": 1, "X": -1} and names == ("early", "late")
    with pytest.raises(AstroclrError, match="value=name"):
        parse_label_map("early")
    with pytest.raises(AstroclrError, match="mapped twice"):
        parse_label_map("1=a,1=b")
