"""The status page in a real browser (Debian's chromium, headless, driven by Selenium through
Debian's chromedriver: nothing is downloaded at run time) against the service under gunicorn on
the real lab: log in as the lab's admin, see every region and image with its status, press the
sync button, see the task finish and the cells turn ok; the lab's qa user (no admin) is refused;
a POST without the CSRF token is refused; with JavaScript disabled the statuses are still there.

A screenshot of the page is saved as a test artifact: in ``$GLANCESYNC_TEST_ARTIFACTS`` when set,
else in the test's temporary directory (its path is printed).
"""

from __future__ import annotations

import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.test_api_lab import Deployment

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT = 120


def browser(javascript: bool = True):
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail("Debian's chromium and chromium-driver are needed (run-tests.sh installs them as root: "
                    "apt-get install chromium chromium-driver)", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,700", "--no-proxy-server"):
        options.add_argument(argument)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


@pytest.fixture
def page_deployment(lab, tmp_path):
    world = Deployment(lab, tmp_path, service_settings="STATUS_REFRESH: 300\n")
    world.create_master_image("small", b"small image data", type="baseimage")
    world.create_master_image("base", os.urandom(256 * 1024), type="baseimage")
    try:
        yield world.start()
    finally:
        world.stop()


@pytest.fixture
def chrome():
    driver = browser()
    try:
        yield driver
    finally:
        driver.quit()


def log_in(driver, url: str, credential) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url + "/status")
    for field, value in (("username", credential.username), ("password", credential.password),
                         ("project", credential.project_name), ("domain", "Default")):
        element = driver.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)
    button = driver.find_element(By.ID, "login")
    button.click()
    # a form's submit is not waited for by click(): wait until the answer replaced the page
    # (a look too early found the login form still there, without its error line)
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    WebDriverWait(driver, WAIT).until(expected_conditions.staleness_of(button))


def region_page_cell(service_url: str, credential, region: str, selector: str) -> tuple[str, str]:
    """(text, class) of the cell ``selector`` finds on ``region``'s page, in the real browser,
    logged in as ``credential``."""
    from selenium.webdriver.common.by import By

    driver = browser()
    try:
        log_in(driver, service_url, credential)
        wait_for_table(driver)
        driver.get(f"{service_url}/status/regions/{region}")
        cell = driver.find_element(By.CSS_SELECTOR, selector)
        return cell.text, cell.get_attribute("class")
    finally:
        driver.quit()


def wait_for_table(driver) -> None:
    """Until the page has its table (the first background refresh may still be running)."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + WAIT
    while not driver.find_elements(By.ID, "status"):
        assert time.monotonic() < deadline, driver.page_source[-2000:]
        time.sleep(0.5)
        driver.refresh()


def cells(driver, region: str) -> dict[str, tuple[str, str]]:
    """image name -> (status text, tooltip) on the region's page, reached from the summary by
    the link of its name (the browser is left on that page)."""
    from selenium.webdriver.common.by import By

    if driver.find_elements(By.CSS_SELECTOR, f'#images[data-region="{region}"]'):
        driver.refresh()
    else:
        driver.get(driver.current_url.split("/status")[0] + "/status")
        driver.find_element(By.CSS_SELECTOR, f'tr[data-region="{region}"] th a').click()
    table = driver.find_element(By.CSS_SELECTOR, f'#images[data-region="{region}"]')
    return {cell.get_attribute("data-image"): (cell.text, cell.get_attribute("title"))
            for cell in table.find_elements(By.CSS_SELECTOR, "td.status[data-image]")}


def stable(driver, read):
    """``read(driver)``, read again while the page is being replaced under it (it reloads itself
    every few seconds while a task runs, so elements found a moment ago may be gone)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    for _ in range(100):
        try:
            return read(driver)
        except (StaleElementReferenceException, NoSuchElementException):
            time.sleep(0.1)
    return read(driver)


def region_a(driver) -> tuple[dict[str, tuple[str, str]], str]:
    """RegionA's cells and its last-task text, read from its page."""
    from selenium.webdriver.common.by import By

    return cells(driver, "RegionA"), driver.find_element(By.CSS_SELECTOR, "table.facts td.task").text


def artifact_dir(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("GLANCESYNC_TEST_ARTIFACTS") or tmp_path / "artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def test_status_page_login_statuses_sync_button_and_csrf(page_deployment, chrome, lab, tmp_path):
    from selenium.webdriver.common.by import By

    deployment = page_deployment
    prefix = deployment.prefix
    log_in(chrome, deployment.service.url, lab.credential("ks1", "admin"))
    wait_for_table(chrome)

    regions = [row.get_attribute("data-region") for row in chrome.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert regions == ["RegionA", "other:RegionB"]
    assert "s ago" in chrome.find_element(By.CSS_SELECTOR, 'tr[data-region="RegionA"] td.age').text
    assert chrome.find_element(By.CSS_SELECTOR, 'tr[data-region="RegionA"] td[data-status="pending_upload"]').text == "2"
    names = [prefix + "small", prefix + "base"]
    for region in regions:
        assert cells(chrome, region) == {name: ("pending_upload", "not in the region") for name in names}
        assert [e.text for e in chrome.find_elements(By.CSS_SELECTOR, "#images th.image")] == names

    # A forged POST (no CSRF token) with the browser's own session cookie is refused.
    cookie = chrome.get_cookie("glancesync_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    forged = urllib.request.Request(deployment.service.url + "/status/regions/RegionA/sync", data=b"",
                                    method="POST", headers={"Cookie": f"glancesync_session={cookie['value']}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forged, timeout=30)
    refused.value.close()  # an HTTPError holds the response's socket: unclosed, it warns when collected
    assert refused.value.code == 403

    chrome.get(deployment.service.url + "/status")
    chrome.find_element(By.CSS_SELECTOR, 'tr[data-region="RegionA"] button.sync').click()
    deadline = time.monotonic() + WAIT  # the page reloads itself while the task runs
    seen, task = stable(chrome, region_a)
    while not (all(status == "ok" for status, _ in seen.values()) and task.startswith("synced")):
        assert time.monotonic() < deadline, chrome.page_source[-3000:]
        time.sleep(0.5)
        seen, task = stable(chrome, region_a)
    copies = deployment.copies("RegionA")
    assert seen == {prefix + name: ("ok", f"image id {image['id']}") for name, image in copies.items()}
    chrome.get(deployment.service.url + "/status")
    assert {status for status, _ in stable(chrome, lambda d: cells(d, "other:RegionB")).values()} == {"pending_upload"}

    shot = artifact_dir(tmp_path) / "status-page.png"
    chrome.save_screenshot(str(shot))
    print(f"status page screenshot: {shot}")
    assert shot.stat().st_size > 10_000


def test_a_user_without_admin_is_refused(page_deployment, chrome, lab):
    from selenium.webdriver.common.by import By

    log_in(chrome, page_deployment.service.url, lab.credential("ks1", "qa"))

    assert chrome.find_element(By.ID, "login-error").text == "Role is not admin"
    assert chrome.find_elements(By.ID, "status") == []
    assert chrome.get_cookie("glancesync_session") is None


def test_the_page_shows_the_statuses_without_javascript(page_deployment, lab):
    driver = browser(javascript=False)
    try:
        log_in(driver, page_deployment.service.url, lab.credential("ks1", "admin"))
        wait_for_table(driver)
        statuses = cells(driver, "RegionA")
        assert set(statuses) == {page_deployment.prefix + "small", page_deployment.prefix + "base"}
        assert {status for status, _ in statuses.values()} == {"pending_upload"}
    finally:
        driver.quit()


# ------------------------------------------------------------------ a federation: 20 regions x 300 images
@pytest.fixture
def federation_service(lab, tmp_path):
    """The service under gunicorn, its logins checked by the lab's ks1, its engine on a mock
    federation of 20 regions x 300 images (tests/api/mock_cloud.federation_seed)."""
    import subprocess

    from tests.api.mock_cloud import federation_seed, seed_mock_store
    from tests.api.processes import bin_path, gunicorn_service, write_settings

    ks1 = lab.ks1
    engine_env = seed_mock_store(tmp_path / "federation", federation_seed(regions=20, images=300))
    settings = write_settings(tmp_path / "etc", ks1.auth_url.rsplit("/v3", 1)[0], user=ks1.admin.username,
                              password=ks1.admin.password, project=ks1.admin.project_name,
                              service="STATUS_REFRESH: 300\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC"))}
    environ.update(settings, **engine_env, GLANCESYNCAPP_DATABASE_PATH=str(tmp_path))
    upgrade = subprocess.run([bin_path("glancesync-server"), "db", "upgrade"], env=environ, capture_output=True,
                             text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    service = gunicorn_service(tmp_path, environ).start()
    try:
        yield service, engine_env
    finally:
        service.stop()


def navigation_ms(driver) -> tuple[float, float]:
    """(server answer, page loaded) of the last navigation, in ms from its start (the browser's
    Navigation Timing)."""
    timing = driver.execute_script("const t = performance.getEntriesByType('navigation')[0];"
                                   "return [t.responseEnd, t.loadEventEnd];")
    return float(timing[0]), float(timing[1])


def test_a_federation_of_20_regions_and_300_images_in_the_browser(federation_service, lab, tmp_path):
    from collections import Counter

    from selenium.webdriver.common.by import By

    from fiwareglancesync.glancesync import GlanceSync

    service, engine_env = federation_service
    engine = GlanceSync.from_environment(environ=engine_env)
    expected = {region: Counter(entry.status.value for entry in engine.region_status(region))
                for region in engine.show_regions()}
    driver = browser()
    try:
        driver.set_window_size(1400, 1000)
        log_in(driver, service.url, lab.credential("ks1", "admin"))
        wait_for_table(driver)
        driver.get(service.url + "/status")
        summary_ms = navigation_ms(driver)

        rows = driver.find_elements(By.CSS_SELECTOR, "#status tbody tr")
        assert [row.get_attribute("data-region") for row in rows] == sorted(expected)
        for row in rows:
            counts = {cell.get_attribute("data-status"): int(cell.text)
                      for cell in row.find_elements(By.CSS_SELECTOR, "td.count[data-status]") if cell.text != "0"}
            assert counts == dict(expected[row.get_attribute("data-region")])
        assert driver.find_elements(By.CSS_SELECTOR, "td[data-image]") == []
        shots = artifact_dir(tmp_path)
        driver.save_screenshot(str(shots / "status-page.png"))

        # the summary's filter, then a region's page from its count, then its own filter
        driver.find_element(By.CSS_SELECTOR, 'a.filter[data-filter="error_checksum"]').click()
        shown = [row.get_attribute("data-region") for row in driver.find_elements(By.CSS_SELECTOR, "#status tbody tr")]
        assert shown == sorted(region for region, counts in expected.items() if counts["error_checksum"])
        driver.find_element(By.CSS_SELECTOR, 'tr[data-region="Region04"] th a').click()
        region_ms = navigation_ms(driver)
        assert len(driver.find_elements(By.CSS_SELECTOR, "#images tbody tr[data-image]")) == 300
        driver.find_element(By.CSS_SELECTOR, 'a.filter[data-filter="error_checksum"]').click()
        statuses = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#images td.status")]
        assert statuses == ["error_checksum"] * expected["Region04"]["error_checksum"]
        driver.find_element(By.CSS_SELECTOR, 'a.filter[data-filter="all"]').click()
        driver.save_screenshot(str(shots / "status-page-region.png"))
        print(f"20 x 300 in chromium: summary answered in {summary_ms[0]:.0f} ms, loaded in {summary_ms[1]:.0f} ms; "
              f"a region's page answered in {region_ms[0]:.0f} ms, loaded in {region_ms[1]:.0f} ms; "
              f"screenshots in {shots}")
    finally:
        driver.quit()
