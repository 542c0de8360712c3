"""The web page in headless Chromium (Selenium + chromedriver): search with filters, highlighted
results with path:line labels, the "similar" button, errors, and the bearer-token prompt.

Skips cleanly without a browser. On Debian/Ubuntu: ``apt-get install -y chromium chromium-driver``
and ``pip install selenium`` (in the ``dev`` extra). A screenshot is saved in the test's tmp dir.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
webdriver = pytest.importorskip("selenium.webdriver")

from selenium.common.exceptions import TimeoutException, WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from codeseer.apps.service import Service  # noqa: E402
from codeseer.serve.http import create_app  # noqa: E402

from test_apps_helpers import build_index, make_repo, running  # noqa: E402

pytestmark = pytest.mark.slow  # a browser

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage", "--window-size=1280,1000")


def _find(names) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    binary = os.environ.get("CODESEER_CHROME") or _find(BROWSERS)
    driver_path = os.environ.get("CODESEER_CHROMEDRIVER") or _find(("chromedriver",))
    if not binary or not driver_path or not os.path.exists(binary) or not os.path.exists(driver_path):
        pytest.skip("no headless Chromium + chromedriver (apt-get install chromium chromium-driver)")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download anything
    os.environ.setdefault("SE_AVOID_STATS", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    except (WebDriverException, OSError) as exc:
        pytest.skip(f"Chromium did not start: {(str(exc).strip().splitlines() or [type(exc).__name__])[0]}")
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def service(tmp_path_factory, tiny_model_dir) -> Service:
    root = make_repo(tmp_path_factory.mktemp("serve-web") / "repo")
    build_index(root, str(tiny_model_dir))
    service = Service(root / ".codeseer")
    service.warm_up()
    return service


def _wait(driver, condition, timeout=60):
    try:
        return WebDriverWait(driver, timeout).until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out; page says: {driver.find_element(By.TAG_NAME, 'body').text[:2000]}") from None


def _results(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#results .result")


def _search(driver, query, *, mode="lexical", lang="", path=""):
    box = driver.find_element(By.ID, "q")
    box.clear()
    box.send_keys(query)
    Select(driver.find_element(By.ID, "mode")).select_by_value(mode)
    Select(driver.find_element(By.ID, "lang")).select_by_value(lang)
    path_box = driver.find_element(By.ID, "path")
    path_box.clear()
    if path:
        path_box.send_keys(path)
    driver.find_element(By.ID, "search-btn").click()
    _wait(driver, lambda d: d.find_element(By.ID, "results-title").text.startswith("Results for")
          or d.find_element(By.ID, "message").text)


def test_search_filter_and_similar_in_a_browser(browser, service, tmp_path):
    with running(create_app(service)) as url:
        browser.get(url + "/")
        _wait(browser, lambda d: "chunks" in d.find_element(By.ID, "status").text)
        languages = [o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#lang option")]
        assert {"", "python", "java", "csharp", "markdown"} <= set(languages)

        _search(browser, "slugify")
        results = _results(browser)
        assert results, browser.find_element(By.ID, "message").text
        labels = [r.find_element(By.CSS_SELECTOR, ".loc").text for r in results]
        assert all(re.fullmatch(r"[\w./-]+:\d+-\d+", label) for label in labels), labels
        assert any(label.startswith("util/text.py:4-") for label in labels)
        first = results[0]
        assert first.find_elements(By.CSS_SELECTOR, "pre .kw") and first.find_elements(By.CSS_SELECTOR, "pre .str")
        assert first.find_elements(By.CSS_SELECTOR, "pre .ln")[0].text.isdigit()

        _search(browser, "total", lang="csharp")
        labels = [r.find_element(By.CSS_SELECTOR, ".loc").text for r in _results(browser)]
        assert labels and all(label.startswith("shop/Cart.cs:") for label in labels)
        _search(browser, "slugify", path="legacy/**")
        labels = [r.find_element(By.CSS_SELECTOR, ".loc").text for r in _results(browser)]
        assert labels and all(label.startswith("legacy/") for label in labels)

        _search(browser, "slugify")
        card = next(r for r in _results(browser) if r.find_element(By.CSS_SELECTOR, ".loc").text.startswith("util/text.py:4-"))
        card.find_element(By.CSS_SELECTOR, ".similar-btn").click()
        _wait(browser, lambda d: d.find_element(By.ID, "results-title").text.startswith("Similar to"))
        assert browser.find_element(By.ID, "results-title").text == "Similar to util/text.py:4 (slugify)"
        top = _results(browser)[0]
        assert top.find_element(By.CSS_SELECTOR, ".loc").text == "legacy/text_utils.py:4-10"
        shot = tmp_path / "codeseer-page.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 1000

        _search(browser, "slugify", path="../outside/**")
        assert "must not contain '..'" in browser.find_element(By.ID, "message").text
        assert not _results(browser)


def test_the_page_asks_for_the_bearer_token(browser, service, tmp_path):
    with running(create_app(service, token="s3cret")) as url:
        browser.get(url + "/")
        browser.execute_script("localStorage.clear()")
        browser.get(url + "/")
        _wait(browser, lambda d: d.find_element(By.ID, "token-row").is_displayed())
        assert "bearer token" in browser.find_element(By.ID, "message").text
        browser.find_element(By.ID, "token").send_keys("s3cret")
        browser.find_element(By.ID, "token-save").click()
        _wait(browser, lambda d: "chunks" in d.find_element(By.ID, "status").text)
        assert not browser.find_element(By.ID, "token-row").is_displayed()
        _search(browser, "retry_with_backoff")
        assert _results(browser)
        browser.save_screenshot(str(Path(tmp_path) / "codeseer-page-token.png"))
        browser.execute_script("localStorage.clear()")
