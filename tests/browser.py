"""Headless Chromium for the page tests and bench/explore.py: selenium driving Debian's chromium and
chromium-driver (scripts/install.sh installs both; nothing is downloaded)."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# screenshots the browser tests save (CI keeps the folder as its artifacts)
ARTIFACTS = Path(os.environ.get("SELFSUP_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))


def available() -> bool:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return shutil.which("chromium") is not None and shutil.which("chromedriver") is not None


class Page:
    """One browser tab; the console is read as it comes (selenium hands each entry over once)."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self.console: list[dict[str, Any]] = []

    def read_console(self) -> list[dict[str, Any]]:
        self.console += self.driver.get_log("browser")
        return self.console

    def errors(self) -> list[str]:
        return [entry["message"] for entry in self.read_console() if entry["level"] == "SEVERE"]

    def open_bokeh(self, path: Path, timeout: float = 60) -> float:
        """Load a Bokeh page; returns Bokeh's own "document idle" time (ms after navigation starts: the page
        drawn and answering input)."""
        self.driver.get(Path(path).resolve().as_uri())
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for entry in self.read_console():
                found = re.search(r"document idle at (\d+) ms", entry["message"])
                if found:
                    return float(found.group(1))
            time.sleep(0.05)
        raise TimeoutError(f"{path}: Bokeh never reported the document idle; console: {self.console[-5:]}")

    def script(self, code: str, *args: Any) -> Any:
        return self.driver.execute_script(DEEP + code, *args)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))
        return path


# Bokeh 3 draws inside shadow roots: deep(selector) finds elements through them.
DEEP = """
const deep = (selector, root = document) => {
    const found = [...root.querySelectorAll(selector)];
    for (const el of root.querySelectorAll("*")) {
        if (el.shadowRoot) { found.push(...deep(selector, el.shadowRoot)); }
    }
    return found;
};
"""


@contextmanager
def chromium(width: int = 1300, height: int = 1900) -> Iterator[Page]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = shutil.which("chromium") or "chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    try:
        yield Page(driver)
    finally:
        driver.quit()
