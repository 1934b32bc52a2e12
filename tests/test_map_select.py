"""Selecting galaxies on the interactive map: a box or a lasso drawn with real mouse events in
headless Chromium, and the "download CSV" of the selected ids (header ``id``), ready for
labelling and for ``--labels-file``.

Needs a Chromium and its chromedriver (Debian: ``apt-get install chromium chromium-driver``)
and selenium; skipped, saying which is missing, without them. Nothing is downloaded: selenium
is pointed at the system's binaries.
"""

from __future__ import annotations

import csv
import shutil
import time

import numpy as np
import pytest
from test_eval_probe import informative, make_galaxies

from astroclr.evaluate.context import EvalContext

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _binaries() -> tuple[str, str]:
    browser = next((p for p in map(shutil.which, BROWSERS) if p), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip(f"no {'chromium' if browser is None else 'chromedriver'} binary on PATH "
                    f"(apt-get install chromium chromium-driver)")
    return browser, driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                    "(pip install 'astroclr[test]')")
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _binaries()
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,1000"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow",
                                                        "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


IDS = [f"G{i}" for i in range(60)]
IDS[33], IDS[34] = 'odd, "quoted" id', " spaced "  # CSV must quote these


@pytest.fixture()
def page(tmp_path, browser):
    """A map of 60 galaxies on a grid of 10 columns and 6 rows (point i at column i % 10, row
    i // 10; string ids, two needing CSV quoting), opened."""
    from astroclr_evaluators.umap_map import write_map

    g = make_galaxies(n=60)
    g.catalog["id"] = np.array(IDS)
    gx, gy = np.meshgrid(np.arange(10), np.arange(6))
    coords = np.c_[gx.ravel(), gy.ravel()].astype(np.float32)
    path = write_map(EvalContext(g, informative(g), tmp_path), np.arange(60), coords,
                     g.labels(), tmp_path / "map.html", k=3)
    for old in browser.downloads.iterdir():
        old.unlink()
    browser.get(path.as_uri())
    return browser, coords


def _screen(driver, i):
    """Page coordinates of point ``i`` (the page's own transform)."""
    return driver.execute_script(
        f"const b = over.getBoundingClientRect(); return [b.left + sx({i}), b.top + sy({i})];")


def _drag(driver, points):
    """Press at the first point, move through the others, release: real mouse events."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    actions = ActionBuilder(driver)
    mouse = actions.pointer_action
    mouse.move_to_location(*map(int, points[0]))
    mouse.pointer_down()
    for x, y in points[1:]:
        mouse.move_to_location(int(x), int(y))
    mouse.pointer_up()
    actions.perform()


def _downloaded(driver) -> list[str]:
    driver.find_element("id", "download").click()
    target = driver.downloads / "selection.csv"
    for _ in range(100):  # the browser writes it asynchronously
        if target.exists() and target.stat().st_size:
            break
        time.sleep(0.05)
    with open(target, newline="") as f:
        rows = list(csv.reader(f))
    target.unlink()
    assert rows[0] == ["id"]
    return [r[0] for r in rows[1:]]


def _mode(driver, name):
    driver.find_element("css selector", f"input[name=mode][value={name}]").click()


def test_a_box_selects_the_galaxies_inside_it_and_downloads_their_ids(page):
    driver, coords = page
    _mode(driver, "box")
    # from just outside grid point (2, 1) to just outside (4, 3): a 3 x 3 block
    a, b = _screen(driver, 1 * 10 + 2), _screen(driver, 3 * 10 + 4)
    step = (_screen(driver, 1)[0] - _screen(driver, 0)[0]) / 2
    _drag(driver, [(a[0] - step, a[1] + step), (b[0] + step, b[1] - step)])
    inside = (coords[:, 0] >= 2) & (coords[:, 0] <= 4) & (coords[:, 1] >= 1) & (coords[:, 1] <= 3)
    assert driver.find_element("id", "count").text == "9 selected"
    assert _downloaded(driver) == [IDS[i] for i in np.flatnonzero(inside)]


def test_a_lasso_selects_inside_its_path_and_shift_adds_to_the_selection(page):
    from selenium.webdriver.common.keys import Keys

    driver, coords = page
    _mode(driver, "lasso")
    step = (_screen(driver, 1)[0] - _screen(driver, 0)[0]) / 2
    # a triangle around the points at (6, 1), (7, 1) and (7, 2), leaving out (6, 2)
    p, q, r = _screen(driver, 16), _screen(driver, 17), _screen(driver, 27)
    _drag(driver, [(p[0] - step, p[1] + step), (q[0] + step, q[1] + step),
                   (r[0] + step, r[1] - 2 * step), (p[0] - step, p[1] + step)])
    assert driver.find_element("id", "count").text == "3 selected"
    assert _downloaded(driver) == ["G16", "G17", "G27"]
    # with shift held, a second lasso around (3, 3) and (4, 3) adds them
    from selenium.webdriver.common.action_chains import ActionChains

    s, t = _screen(driver, 33), _screen(driver, 34)
    ActionChains(driver).key_down(Keys.SHIFT).perform()
    _drag(driver, [(s[0] - step, s[1] - step), (t[0] + step, t[1] - step),
                   (t[0] + step, t[1] + step), (s[0] - step, s[1] + step)])
    ActionChains(driver).key_up(Keys.SHIFT).perform()
    assert _downloaded(driver) == ["G16", "G17", "G27", 'odd, "quoted" id', " spaced "]


def test_point_mode_still_lists_neighbours_and_selects_nothing(page):
    driver, _ = page
    x, y = _screen(driver, 5)
    _drag(driver, [(x, y), (x + 40, y + 40)])
    _drag(driver, [(x, y)])  # a click
    assert "G5" in driver.find_element("id", "side").text
    assert driver.find_element("id", "download").get_attribute("disabled") == "true"
