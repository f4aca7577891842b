"""The labelling app driven in a real headless browser (Debian's chromium and chromedriver, through Selenium): an
annotator labels a pair, a ranking and a step-labelled solution by clicking; the admin page shows gold accuracy.
Set REWARDKIT_SCREENSHOTS=DIR to keep screenshots of the pages (docs/figures/label holds the committed ones)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("multipart")
webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver")

from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from rewardkit.label.app import create_app  # noqa: E402
from rewardkit.label.store import LabelStore  # noqa: E402
from rewardkit.label.tasks import item_from_record  # noqa: E402
from rewardkit.serve.background import BackgroundServer  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # no GPU, no sandbox (root in CI), and no background calls to the network this machine cannot reach
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1200,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


def submit(driver, button_id: str) -> None:
    """Click a button of the label form and wait until the next page has loaded.

    A mark on `window` tells the pages apart: the form posts and the browser loads a new document, which starts with
    a fresh `window`. (Waiting for the old form element to go stale races with chromium, which may answer "node does
    not belong to the document" instead of "stale element" while the new document is being swapped in.)"""
    driver.execute_script("window.rewardkitOldPage = true;")
    driver.find_element(By.ID, button_id).click()
    # a script run while the document is being swapped may fail; the wait tries again
    WebDriverWait(driver, 20, ignored_exceptions=(WebDriverException,)).until(lambda d: d.execute_script(
        "return window.rewardkitOldPage === undefined && document.readyState === 'complete';"))


def done(driver) -> str:
    return driver.find_element(By.ID, "done").text


def shot(driver, name: str) -> None:
    where = os.environ.get("REWARDKIT_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(where) / f"{name}.png"))


def start(tmp_path, name: str, records: list[dict], people=("ann",)) -> tuple[LabelStore, dict]:
    store = LabelStore(f"sqlite:///{tmp_path / 'labels.db'}")
    made = [item_from_record(r, f"record {i}") for i, r in enumerate(records)]
    tokens = store.create_campaign(name, made[0][0], [m[1] for m in made], [m[2] for m in made], list(people), 1)
    return store, tokens


def test_annotator_labels_a_pair_a_ranking_and_a_solution(tmp_path, browser):
    store, pair = start(tmp_path, "pairs", [{"kind": "pairwise", "prompt": "Capital of France?", "chosen": "Paris.",
                                              "rejected": "Lyon, <i>I think</i>."}])
    _, ranking = start(tmp_path, "ranking", [{"kind": "ranking", "prompt": "Sort by quality",
                                              "responses": ["fine", "best", "poor"]}])
    _, solution = start(tmp_path, "steps", [{"kind": "stepwise", "prompt": "2 + 3 * 4?",
                                              "steps": ["3 * 4 = 12", "2 + 12 = 15", "So 15."], "labels": [True, False, False]}])
    with BackgroundServer(create_app(store)) as server:
        browser.get(f"{server.url}/a/{pair['ann']}")
        assert "Lyon, <i>I think</i>." in browser.page_source.replace("&lt;", "<").replace("&gt;", ">")
        shot(browser, "pairwise")
        shown = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "pre.response")]
        submit(browser, "choose-A" if shown[0] == "Paris." else "choose-B")
        assert done(browser) == "All done"

        browser.get(f"{server.url}/a/{ranking['ann']}")
        shot(browser, "ranking")
        shown = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "pre.response")]
        wanted = {"best": 1, "fine": 2, "poor": 3}
        for position, text in enumerate(shown):
            browser.find_element(By.ID, f"rank_{position}").send_keys(str(wanted[text]))
        submit(browser, "submit")
        assert done(browser) == "All done"

        browser.get(f"{server.url}/a/{solution['ann']}")
        shot(browser, "steps")
        browser.find_element(By.ID, "step_1").click()
        submit(browser, "submit")
        assert done(browser) == "All done"

    assert [r["value"] for r in store.campaign_labels("pairs")] == [{"choice": 0}]
    assert [r["value"] for r in store.campaign_labels("ranking")] == [{"order": [1, 0, 2]}]
    assert [r["value"] for r in store.campaign_labels("steps")] == [{"first_wrong": 1}]


def test_gold_answers_show_in_the_admins_accuracy(tmp_path, browser):
    records = [{"kind": "pairwise", "prompt": "2 + 2?", "chosen": "4", "rejected": "5", "gold": True},
               {"kind": "pairwise", "prompt": "3 + 3?", "chosen": "6", "rejected": "7"}]
    store, tokens = start(tmp_path, "gold", records, people=("ann", "bob"))
    with BackgroundServer(create_app(store)) as server:
        for who, right in (("ann", True), ("bob", False)):
            browser.get(f"{server.url}/a/{tokens[who]}")
            while not browser.find_elements(By.ID, "done"):
                shown = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "pre.response")]
                correct = "A" if shown[0] in ("4", "6") else "B"
                pick = correct if right or "2 + 2?" not in browser.page_source else ("B" if correct == "A" else "A")
                submit(browser, f"choose-{pick}")
        browser.get(f"{server.url}/admin/{tokens['admin']}")
        shot(browser, "admin")
        rows = {r.get_attribute("data-annotator"): r for r in browser.find_elements(By.CSS_SELECTOR, "#annotators tr[data-annotator]")}
        assert rows["ann"].find_element(By.CLASS_NAME, "gold").text.startswith("1.0")
        assert rows["bob"].find_element(By.CLASS_NAME, "gold").text.startswith("0.0")
        assert "flagged" in rows["bob"].get_attribute("class")
        browser.get(f"{server.url}/admin/{tokens['ann']}")  # an annotator's token opens no admin page
        assert "2 + 2?" not in browser.page_source and "annotators" not in browser.page_source


def test_trajectory_clips_play_side_by_side(tmp_path, browser):
    import math

    def circle(turn: float) -> dict:  # a pendulum tip: (cos, sin) of an angle swinging up by `turn`
        angles = [math.pi - turn * t / 30 for t in range(30)]
        return {"observations": [[math.cos(a), math.sin(a), 0.0] for a in angles], "actions": [[0.0]] * 30}

    store, tokens = start(tmp_path, "clips", [{"a": circle(2.5), "b": circle(0.8), "label": 1}])
    with BackgroundServer(create_app(store)) as server:
        browser.get(f"{server.url}/a/{tokens['ann']}")
        assert len(browser.find_elements(By.CSS_SELECTOR, "svg.clip")) == 2
        shot(browser, "clips")
        submit(browser, "choose-tie")
        assert done(browser) == "All done"
    assert [r["value"] for r in store.campaign_labels("clips")] == [{"choice": "tie"}]
