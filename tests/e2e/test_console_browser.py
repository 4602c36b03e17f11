"""The web console in a real browser: Debian's headless Chromium driven by Selenium through chromedriver,
against one real service (the API and a worker as processes, two tenants with keys). Each scenario keeps
a screenshot of each page it visits under pytest's temporary folder (``console-screenshots*``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.samples import sample_archive
from tests.conftest import IN_CI
from tests.support.stack import Stack, wait_for_job

pytestmark = pytest.mark.slow

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ALICE, BOB = "key-alice", "key-bob"
WAIT_S = 90  # the longest any page may take to show what it should (a bound, not a measurement)

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        "FOVEA_BROKER_URL": "",
        "FOVEA_REDIS_URL": "",
        "FOVEA_STORAGE_URL": "",
        "FOVEA_API_KEYS": f"{ALICE}=alice,{BOB}=bob",
        "FOVEA_SIGNING_SECRET": "console-test",
        "FOVEA_SHARD_ITEMS": "64",
    }
    stack = Stack(tmp_path_factory.mktemp("console-service"), env)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def big_job(service: Stack) -> str:
    """A 300-item spectral-residual job of alice's, finished."""
    with service.client(ALICE) as client:
        spec = {"kind": "saliency", "method": "spectral_residual", "input": "builtin:shapes?n=300", "name": "shapes"}
        job = client.post("/v1/jobs", json=spec)
        assert job.status_code == 201, job.text
        done = wait_for_job(client, job.json()["id"], timeout=600)
    assert done["status"] == "succeeded" and done["progress"]["done"] == 300, service.logs()
    return str(done["id"])


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("console-screenshots")


def _browser(profile: Path) -> Any:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if IN_CI:
            pytest.fail("chromium and chromedriver are missing: scripts/setup.sh installs them")
        pytest.skip("chromium and chromedriver are not installed (scripts/setup.sh installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1400,1100",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


@pytest.fixture(scope="module")
def alice(service: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    driver = _browser(tmp_path_factory.mktemp("alice-profile"))
    _use_key(driver, service.url, ALICE)
    yield driver
    _no_policy_violations(driver)
    driver.quit()


def _use_key(driver: Any, url: str, key: str) -> None:
    driver.get(url + "/console/")
    field = _wait(driver, lambda d: d.find_element(By.ID, "api-key"))
    field.send_keys(key)
    driver.find_element(By.ID, "key-save").click()
    _wait(driver, lambda d: d.find_element(By.ID, "key-state").text == "key set")


def _wait(driver: Any, check: Any, timeout: float = WAIT_S) -> Any:
    def safely(d: Any) -> Any:
        try:
            return check(d)
        except StaleElementReferenceException:  # the page redrew what we were reading: read it again
            return False

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(safely)


def _shoot(driver: Any, folder: Path, name: str) -> None:
    driver.save_screenshot(str(folder / f"{name}.png"))


def _images_loaded(driver: Any, css: str) -> int:
    """How many of the images matched are decoded (loaded, and allowed by the page's policy)."""
    script = "return [...document.querySelectorAll(arguments[0])].filter(i => i.complete && i.naturalWidth > 0).length"
    return int(driver.execute_script(script, css))


def _no_policy_violations(driver: Any) -> None:
    logs = driver.get_log("browser")
    assert not [entry for entry in logs if "Content Security Policy" in entry["message"]], logs


def _go(driver: Any, url: str) -> None:
    driver.get(url)
    driver.refresh()  # a fragment change alone is not a page load


def test_submit_a_job_through_the_form_and_see_it_finish(
    service: Stack, alice: Any, screenshots: Path, tmp_path: Path
) -> None:
    _go(alice, service.url + "/console/#/submit")
    Select(_wait(alice, lambda d: d.find_element(By.ID, "kind"))).select_by_value("saliency")
    method = Select(_wait(alice, lambda d: d.find_element(By.ID, "field-method")))
    method.select_by_value("spectral_residual")
    # A 422 shows next to the field it names.
    alice.find_element(By.ID, "field-input").send_keys("upload://no-such-upload")
    alice.find_element(By.ID, "submit-job").click()
    error = _wait(alice, lambda d: d.find_element(By.ID, "error-input").text and d.find_element(By.ID, "error-input"))
    assert "upload not found" in error.text
    _shoot(alice, screenshots, "submit-422")
    # An archive chosen on the page is uploaded through the presigned URL, then the job submitted.
    archive = sample_archive(tmp_path / "photos.tar")
    alice.find_element(By.ID, "field-input").clear()
    alice.find_element(By.ID, "archive").send_keys(str(archive))
    _wait(alice, lambda d: d.find_element(By.ID, "upload-state").text.startswith("Uploaded"))
    assert alice.find_element(By.ID, "field-input").get_attribute("value").startswith("upload://")
    assert "done" in alice.find_element(By.ID, "upload-bar").get_attribute("class")
    _shoot(alice, screenshots, "submit-uploaded")
    alice.find_element(By.ID, "submit-job").click()
    _wait(alice, lambda d: d.current_url.split("#")[-1].startswith("/job/"))
    job_id = alice.current_url.split("/job/")[-1]
    _wait(alice, lambda d: "(100%)" in d.find_element(By.CSS_SELECTOR, "#job-head .pct").text, timeout=300)
    _wait(alice, lambda d: d.find_element(By.CSS_SELECTOR, "#job-head .status").text == "succeeded")
    _wait(alice, lambda d: d.find_elements(By.CSS_SELECTOR, "#gallery[data-ended] .tile"))  # redrawn once ended
    _wait(alice, lambda d: _images_loaded(d, "#gallery[data-ended] .tile img") >= 15)  # the workers' thumbnails
    _shoot(alice, screenshots, "job-finished")
    with service.client(ALICE) as client:
        job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["spec"]["method"] == "spectral_residual"


def test_gallery_pages_sorts_and_opens_an_item(service: Stack, alice: Any, big_job: str, screenshots: Path) -> None:
    _go(alice, f"{service.url}/console/#/job/{big_job}")
    _wait(alice, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#gallery .tile")) == 48)
    for page in (2, 3):
        alice.find_element(By.ID, "next-page").click()
        _wait(alice, lambda d, page=page: d.find_element(By.ID, "gallery").get_attribute("data-page") == str(page))
    tiles = alice.find_elements(By.CSS_SELECTOR, "#gallery .tile")
    assert [int(t.get_attribute("data-index")) for t in tiles] == list(range(96, 144))
    _wait(alice, lambda d: _images_loaded(d, "#gallery .tile img") == 48)
    _shoot(alice, screenshots, "gallery-page-3")

    field = "boxes.0.5"  # each item's first object box: its mean saliency (a numeric field the kind records)
    Select(alice.find_element(By.ID, "gallery-sort")).select_by_value("-" + field)
    _wait(alice, lambda d: d.find_element(By.ID, "gallery").get_attribute("data-page") == "1")
    with service.client(ALICE) as client:
        wanted = client.get(f"/v1/jobs/{big_job}/results", params={"sort": "-" + field, "limit": 48}).json()
    shown = [int(t.get_attribute("data-index")) for t in alice.find_elements(By.CSS_SELECTOR, "#gallery .tile")]
    assert shown == [item["index"] for item in wanted["items"]]
    values = [item["data"]["boxes"][0][5] for item in wanted["items"]]
    assert values == sorted(values, reverse=True) and values[0] > values[-1]
    _shoot(alice, screenshots, "gallery-sorted")

    first = alice.find_element(By.CSS_SELECTOR, "#gallery .tile")
    index = first.get_attribute("data-index")
    first.click()
    _wait(alice, lambda d: d.find_element(By.ID, "item-name").text)
    figures = _wait(alice, lambda d: d.find_elements(By.CSS_SELECTOR, "#outputs figure"))
    names = {f.get_attribute("data-output") for f in figures}
    assert {"heatmap", "overlay", "objects", "boxes"} <= names and "thumb" not in names
    _wait(alice, lambda d: _images_loaded(d, "#outputs img") == len(names))
    assert f"/item/{index}" in alice.current_url and '"boxes"' in alice.find_element(By.ID, "item-data").text
    _shoot(alice, screenshots, "item")


def test_cancel_a_running_job_from_the_list(service: Stack, alice: Any, screenshots: Path) -> None:
    with service.client(ALICE) as client:
        spec = {"kind": "saliency", "method": "spectral_residual", "input": "builtin:shapes?n=20000", "name": "long"}
        job_id = client.post("/v1/jobs", json=spec).json()["id"]
        wait_for_job(client, job_id, timeout=120, until={"running"})
    _go(alice, service.url + "/console/#/jobs")
    row = f'#jobs-body tr[data-job="{job_id}"]'
    _wait(alice, lambda d: d.find_element(By.CSS_SELECTOR, row + " button.cancel"))
    _shoot(alice, screenshots, "jobs-running")
    alice.find_element(By.CSS_SELECTOR, row + " button.cancel").click()
    _wait(alice, lambda d: d.find_element(By.CSS_SELECTOR, row).get_attribute("data-status") == "canceled")
    _shoot(alice, screenshots, "jobs-canceled")
    with service.client(ALICE) as client:
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "canceled"


def test_training_curves_grow_then_methods_side_by_side_and_a_status_filter(
    service: Stack, alice: Any, screenshots: Path
) -> None:
    train = {"kind": "classifier_train", "input": "builtin:shapes", "input_size": 32, "epochs": 12,
             "train_items": 3000, "test_items": 200, "step_seconds": 1, "name": "shapes classifier"}  # fmt: skip
    with service.client(ALICE) as client:
        trained = client.post("/v1/jobs", json=train).json()["id"]
        wait_for_job(client, trained, timeout=120, until={"running"})
    _go(alice, f"{service.url}/console/#/job/{trained}")
    points = "return (document.querySelector('#curves polyline') || {getAttribute: () => ''}).getAttribute('points')"
    seen = set()  # how many epochs the first curve had at each look, while the job ran and once it ended

    def ended(d: Any) -> bool:
        seen.add(len(str(d.execute_script(points)).split()))
        return bool(d.find_element(By.CSS_SELECTOR, "#job-head .status").text == "succeeded")

    _wait(alice, ended, timeout=300)
    _wait(alice, lambda d: len(str(d.execute_script(points)).split()) == 12)  # every epoch once it has ended
    with service.client(ALICE) as client:
        record = client.get(f"/v1/jobs/{trained}").json()
    assert len(seen - {0, 12}) >= 1, (seen, record)  # drawn while it ran, with fewer epochs than at the end
    labels = " ".join(t.text for t in alice.find_elements(By.CSS_SELECTOR, "#curves text"))
    assert "train_loss" in labels, labels
    alice.execute_script("document.getElementById('curves').scrollIntoView()")
    _shoot(alice, screenshots, "training-curves")

    methods = ["gradient", "grad_cam", "spectral_residual"]
    spec = {"kind": "saliency", "input": "builtin:shapes?n=6", "methods": methods, "model": {"job": trained}}
    with service.client(ALICE) as client:
        compared = client.post("/v1/jobs", json=spec)
        assert compared.status_code == 201, compared.text
        assert wait_for_job(client, compared.json()["id"], timeout=300)["status"] == "succeeded"
    _go(alice, f"{service.url}/console/#/job/{compared.json()['id']}/item/2")
    sections = _wait(alice, lambda d: d.find_elements(By.CSS_SELECTOR, "#methods section[data-method]"))
    assert [s.get_attribute("data-method") for s in sections] == methods
    for method in methods:
        css = f'#methods section[data-method="{method}"] img'
        _wait(
            alice,
            lambda d, css=css: (
                _images_loaded(d, css) >= 1 and _images_loaded(d, css) == len(d.find_elements(By.CSS_SELECTOR, css))
            ),
        )
    _shoot(alice, screenshots, "item-methods")

    _go(alice, service.url + "/console/#/jobs")
    Select(_wait(alice, lambda d: d.find_element(By.ID, "filter-status"))).select_by_value("succeeded")
    _wait(
        alice,
        lambda d: (
            {r.get_attribute("data-status") for r in d.find_elements(By.CSS_SELECTOR, "#jobs-body tr")} == {"succeeded"}
        ),
    )
    rows = {r.get_attribute("data-job") for r in alice.find_elements(By.CSS_SELECTOR, "#jobs-body tr")}
    assert {trained, compared.json()["id"]} <= rows
    _shoot(alice, screenshots, "jobs-succeeded")


def test_another_tenant_sees_none_of_it(
    service: Stack, big_job: str, screenshots: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    bob = _browser(tmp_path_factory.mktemp("bob-profile"))
    try:
        _use_key(bob, service.url, BOB)
        _go(bob, service.url + "/console/#/jobs")
        _wait(bob, lambda d: d.find_element(By.ID, "jobs-body").text == "No jobs.")
        _shoot(bob, screenshots, "bob-jobs")
        _go(bob, f"{service.url}/console/#/job/{big_job}")
        _wait(bob, lambda d: "not found" in d.find_element(By.ID, "fatal").text)
        assert not bob.find_elements(By.CSS_SELECTOR, "#gallery .tile")
        _shoot(bob, screenshots, "bob-job-of-alice")
        # What alice's results API gives her (pages, signed URLs) bob's key cannot reach.
        with service.client(BOB) as client:
            assert client.get(f"/v1/jobs/{big_job}/results").status_code == 404
            assert client.get(f"/v1/jobs/{big_job}/results", params={"sort": "boxes.0.5"}).status_code == 404
            assert client.get("/v1/jobs").json()["items"] == []
        _no_policy_violations(bob)
    finally:
        bob.quit()


def test_screenshots_were_kept(screenshots: Path) -> None:
    kept = sorted(p.name for p in screenshots.glob("*.png"))
    target = os.environ.get("CONSOLE_SCREENSHOTS_DIR")
    if target:  # a copy for people to look at
        shutil.copytree(screenshots, target, dirs_exist_ok=True)
    wanted = {
        "gallery-page-3.png",
        "item.png",
        "jobs-canceled.png",
        "bob-jobs.png",
        "job-finished.png",
        "training-curves.png",
    }
    assert wanted | {"item-methods.png", "jobs-succeeded.png"} <= set(kept)
