"""The web page in a real browser: headless Chromium (Debian's chromium + chromium-driver) driven by selenium.

Starts ``ecgnet app``, opens the example record, waits for the strip, jumps to the first V beat,
checks the beat panel and saves a screenshot to docs/app.png (shown in the README).
"""
import shutil
import time

import pytest
from helpers import ROOT, alive, descendants, free_port, port_open, start_app

pytestmark = pytest.mark.slow
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def server():
    port = free_port()
    proc = start_app(port, seconds=60)
    yield f"http://127.0.0.1:{port}"
    below = descendants(proc.pid)
    proc.terminate()
    assert proc.wait(timeout=30) == 0
    assert not port_open(port), "the page's server still listens after ecgnet app stopped"
    assert not [pid for pid in below if alive(pid)], "a process started by ecgnet app outlived it"


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(driver, find, seconds: float = 90):
    from selenium.common.exceptions import WebDriverException
    end = time.time() + seconds
    while time.time() < end:
        try:
            found = find()
            if found:
                return found
        except WebDriverException:
            pass
        time.sleep(0.5)
    raise AssertionError("the page did not show it in time")


def button(driver, text: str):
    from selenium.webdriver.common.by import By
    return next((b for b in driver.find_elements(By.TAG_NAME, "button") if b.text == text or b.text.startswith(text + " ")
                 or (len(text) > 8 and text in b.text)), None)


def test_example_record_in_a_real_browser(server, browser):
    from selenium.webdriver.common.by import By
    browser.get(server)
    wait_for(browser, lambda: button(browser, "Try the example record")).click()
    wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"))
    assert "Beats per class" in browser.page_source and "mitbih-rr" in browser.page_source
    from selenium.webdriver.common.keys import Keys
    chooser = wait_for(browser, lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, "input")
                                         if e.get_attribute("aria-label") == "Jump to the next beat of class"])[0]
    chooser.click()                                                # the navigator: class V ...
    time.sleep(0.5)
    chooser.send_keys("V")
    time.sleep(0.5)
    chooser.send_keys(Keys.ENTER)
    time.sleep(3)
    wait_for(browser, lambda: button(browser, "Next")).click()     # ... its first beat
    heading = wait_for(browser, lambda: [h for h in browser.find_elements(By.TAG_NAME, "h3") if h.text.startswith("Beat ")])
    assert ": V (" in heading[0].text
    wait_for(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")) >= 2)  # strip + beat panel
    time.sleep(2)
    browser.save_screenshot(str(ROOT / "docs" / "app.png"))
    assert (ROOT / "docs" / "app.png").stat().st_size > 20_000
