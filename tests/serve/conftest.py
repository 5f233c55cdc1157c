"""The browser of the page's test: Debian's chromium and chromedriver, installed here when absent (as ``make test``
does), so that a fresh CI machine runs the test instead of skipping it."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

PACKAGES = ("chromium", "chromium-driver")
#: No network, no first-run UI, no background traffic: the page under test is the only thing the browser loads.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def _install_browser() -> None:
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", *PACKAGES]):
        done = subprocess.run([*sudo, *command], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(f"installing {' '.join(PACKAGES)} failed ({' '.join(command)}): {done.stderr.strip()[-300:]}")


@pytest.fixture(scope="session")
def browser_paths() -> tuple[str, str]:
    """(chromium, chromedriver), installed with apt-get when missing."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        _install_browser()
    return shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def browser(browser_paths, tmp_path, monkeypatch):
    """A headless chromium driven by selenium, with a fresh profile; Selenium Manager is not asked for anything."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_AVOID_STATS", "true")
    chromium, driver = browser_paths
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    session = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    yield session
    session.quit()
