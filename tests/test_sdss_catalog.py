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


# -- every value checked row by row ---------------------------------------------------------------
def _csv(tmp_path, text):
    path = tmp_path / "c.csv"
    path.write_text(text)
    return path


def test_text_in_a_position_column_is_a_counted_skip(tmp_path):
    path = _csv(tmp_path, "id,ra,dec\n1,10.0,1.0\n2,abc,1.0\n3,11.0,\n4,12.0,-91\n")
    cat, skips, _ = read_catalog(path, CatalogOptions(), need_position=True)
    assert cat["id"].tolist() == [1]
    assert [(s.id, s.reason) for s in skips] == [("2", "bad_position"), ("3", "bad_position"),
                                                 ("4", "bad_position")]
    assert "ra = 'abc' is not a number" in skips[0].detail


def test_text_in_the_redshift_column_is_a_counted_skip(tmp_path):
    path = _csv(tmp_path, "id,z\n1,0.05\n2,n/a\n3,\n4,0.3\n")
    cat, skips, _ = read_catalog(path, CatalogOptions(z_column="z", z_max=0.15))
    assert cat["id"].tolist() == [1]
    assert [(s.id, s.reason) for s in skips] == [("2", "bad_redshift"), ("3", "redshift_cut"),
                                                 ("4", "redshift_cut")]
    cat, skips, _ = read_catalog(path, CatalogOptions(z_column="z"))  # no cut: only text drops
    assert cat["id"].tolist() == [1, 3, 4] and [s.reason for s in skips] == ["bad_redshift"]


@pytest.mark.parametrize("value", ["0.5", "early", "-3", "nan"])
def test_a_label_that_is_not_an_integer_class_names_its_row_and_column(tmp_path, value):
    path = _csv(tmp_path, f"id,cls\n1,0\n2,{value}\n3,1\n")
    with pytest.raises(AstroclrError, match=rf"row 1 \(id 2\): label '{value}' of column 'cls' is "
                                            rf"not an integer class"):
        read_catalog(path, CatalogOptions(label_column="cls"))
    cat, skips, _ = read_catalog(path, CatalogOptions(label_column="cls", unmapped_label="skip"))
    assert cat["id"].tolist() == [1, 3] and [(s.id, s.reason) for s in skips] == [("2", "bad_label")]
    cat, _, _ = read_catalog(path, CatalogOptions(label_column="cls", unmapped_label="unlabelled"))
    assert cat["label"].tolist() == [0, -1, 1]


def test_integer_labels_in_a_float_column_and_empty_ones_are_read(tmp_path):
    path = _csv(tmp_path, "id,cls\n1,0.0\n2,\n3,1.0\n4,-1\n")
    cat, skips, _ = read_catalog(path, CatalogOptions(label_column="cls"))
    assert cat["label"].tolist() == [0, -1, 1, -1] and skips == []


def test_a_frame_number_that_is_not_a_number_is_a_counted_skip(tmp_path):
    from astroclr_sdss.source import _with_frame_columns

    path = _csv(tmp_path, "id,ra,dec,run,camcol,field\n1,150,2,3918,3,213\n2,150,2,x,3,213\n"
                          "3,150,2,3918,3.5,213\n")
    opts = CatalogOptions()
    cat, _, _ = read_catalog(path, opts, need_position=True)
    cat, skips = _with_frame_columns(cat, str(path), opts, ("run", "camcol", "field"))
    assert cat["id"].tolist() == [1] and cat["run"].tolist() == [3918]
    assert [(s.id, s.reason) for s in skips] == [("2", "bad_frame_id"), ("3", "bad_frame_id")]
