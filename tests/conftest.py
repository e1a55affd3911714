import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bptt.config import build_config
from bptt.store import Database
from bptt.training import Trainer

SMALL = {"hidden_size": 8, "batch_size": 8, "steps": 4, "eval_size": 16, "eval_every": 2, "progress": False}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def fill(db_path, record_every=2):
    """A small sweep's worth of runs: two remedies x two lengths x two seeds on adding, one tanh RNN at T=600."""
    with Database(db_path) as db:
        for init in ("pytorch", "xavier"):
            for seq_len in (8, 16):
                for seed in (0, 1):
                    config = build_config(
                        {
                            **SMALL,
                            "task": "adding",
                            "init": init,
                            "seq_len": seq_len,
                            "seed": seed,
                            "record_every": record_every,
                        }
                    )
                    Trainer(config, db, sweep="s").run()
        Trainer(
            build_config({**SMALL, "task": "adding", "seq_len": 600, "steps": 2, "eval_every": 1}), db, sweep="s"
        ).run()
        Trainer(
            build_config({**SMALL, "task": "sentiment", "delay": 3, "record_every": record_every}), db, sweep="s"
        ).run()
        Trainer(
            build_config(
                {
                    **SMALL,
                    "task": "adding",
                    "seq_len": 40,
                    "activation": "relu",
                    "init": "identity",
                    "init_scale": 10.0,
                    "steps": 50,
                }
            ),
            db,
            sweep="s",
        ).run()


def _mount_tmpfs(folder, size):
    """Mount a tmpfs of ``size`` at ``folder`` (root only); whether it worked."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    return done.returncode == 0


def _unmount(folder):
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@contextlib.contextmanager
def _read_only_folder(folder, files=()):
    """``folder`` holding copies of ``files``, then made read-only: a read-only tmpfs as root, mode 0555
    for anyone else (whose writes the mode bits stop). Yields the folder, or None where neither can be had."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = _mount_tmpfs(folder, "8m")
    if os.geteuid() == 0 and not mounted:
        yield None
        return
    for path in map(Path, files):
        (shutil.copytree if path.is_dir() else shutil.copy)(path, folder / path.name)
    try:
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)
        else:
            for path in sorted(folder.rglob("*"), reverse=True):
                path.chmod(0o555 if path.is_dir() else 0o444)
            folder.chmod(0o555)
        yield folder
    finally:
        if mounted:
            _unmount(folder)
        else:
            for path in [folder, *folder.rglob("*")]:
                path.chmod(0o755)


@pytest.fixture(scope="session")
def read_only_folder():
    """``read_only_folder(folder, files)``: a context in which ``folder`` holds copies of ``files`` and is
    read-only (a read-only tmpfs as root, mode 0555 for anyone else); it gives None where neither can be had."""
    return _read_only_folder


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a filesystem of 1 MiB (a tmpfs, root only; skipped elsewhere): a disk that fills."""
    folder = tmp_path / "small"
    folder.mkdir()
    if not _mount_tmpfs(folder, "1m"):
        pytest.skip("a small filesystem needs root and mount")
    yield folder
    _unmount(folder)


@pytest.fixture
def sweep_db(tmp_path):
    """Call it to get the path of a database holding the runs of sweep "s" (see ``fill``)."""

    def make(record_every=2):
        path = tmp_path / "r.db"
        fill(path, record_every)
        return path

    return make


def _run_states(db_path):
    """(status, steps_done) of every run, read without taking a lock; [] until the database and its table exist."""
    if not db_path.exists():
        return []
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        return connection.execute("SELECT status, steps_done FROM runs").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        connection.close()


@pytest.fixture
def run_states():
    """``run_states(db_path)``: what a watcher of another process's database sees, for kill tests."""
    return _run_states


# -- a real browser: Chromium driven by Selenium, for the pages' tests --------------------------
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # needed as root; harmless otherwise
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


class Browser:
    """One headless Chromium for a session: open a page at a viewport size, run scripts in it, read its
    console and its Performance API, take screenshots."""

    def __init__(self, driver, keys):
        self.driver = driver
        self.keys = keys  # selenium's Keys: browser.keys.ENTER, ...

    def viewport(self, width, height):
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
        )

    def open(self, path, fragment="", width=1280, height=800):
        """Load ``path`` from file:// and wait for the page's first numbers (its ``bptt-first-numbers`` mark)."""
        self.viewport(width, height)
        self.driver.get("about:blank")
        self.errors()  # start each page with an empty console
        self.driver.get(Path(path).resolve().as_uri() + fragment)
        self.wait("return performance.getEntriesByName('bptt-first-numbers').length > 0")
        return self

    def run(self, script, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, script, timeout=30.0):
        """Poll ``script`` until it returns something true; its value."""
        end = time.monotonic() + timeout
        while True:
            value = self.run(script)
            if value or time.monotonic() > end:
                assert value, f"timed out waiting for: {script}"
                return value
            time.sleep(0.05)

    def settled(self, script="return BPTT.explore.whenComplete()"):
        """The value of a script returning a promise, once it resolves."""
        return self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"Promise.resolve((() => {{ {script} }})()).then(done, (e) => done({{error: String(e)}}));"
        )

    def first_numbers_ms(self):
        """Milliseconds from navigation start to the page's first numbers, from the Performance API."""
        return self.run("return performance.getEntriesByName('bptt-first-numbers')[0].startTime")

    def load_times(self, path, fragment="", tries=3):
        """``first_numbers_ms`` of up to ``tries`` loads of ``path``, stopping at the first under a second: on a
        machine shared with other work one load can stall; the page is as fast as its fastest load."""
        times = []
        while len(times) < tries and (not times or min(times) >= 1000):
            self.open(path, fragment)
            times.append(self.first_numbers_ms())
        return times

    def errors(self):
        """The console's errors (and uncaught exceptions) since the last call."""
        return [e for e in self.driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]

    def screenshot(self, path):
        """Save a screenshot; return the share of its pixels that are not the page's white, and its colours."""
        self.driver.save_screenshot(str(path))
        pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
        inked = float((pixels.min(axis=1) < 240).mean())
        return inked, len(np.unique(pixels, axis=0))

    def key(self, element_id, *keys):
        """Focus a control by its id and press keys on it: names of ``selenium.webdriver.Keys`` ("ENTER",
        "ARROW_RIGHT", ...) or characters."""
        return self.press(f"#{element_id}", *keys)

    def press(self, selector, *keys):
        """Focus the element ``selector`` finds and press keys on it, as ``key`` does."""
        element = self.driver.find_element("css selector", selector)
        self.run("arguments[0].focus()", element)
        element.send_keys(*(getattr(self.keys, k, k) for k in keys))
        return element


def _browser_binaries():
    chromium = next(filter(None, (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome"))), None)
    return chromium, shutil.which("chromedriver")


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """A headless Chromium through Selenium and the system's chromedriver; skipped, with the reason, where
    there is none (CI installs Debian's chromium and chromium-driver)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extra)")
    chromium, chromedriver = _browser_binaries()
    if chromium is None or chromedriver is None:
        pytest.skip("no Chromium and chromedriver here (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.keys import Keys

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_script_timeout(60)
    try:
        yield Browser(driver, Keys)
    finally:
        driver.quit()


@pytest.fixture(autouse=True)
def python_signal_handling():
    """Every test starts from Python's own SIGINT and SIGTERM handling, however the suite was started
    and whatever ran before it. A shell without job control starts a background command with SIGINT
    ignored, and a library may leave a handler of its own behind (Ray's driver does, for SIGTERM);
    bptt then rightly leaves those signals alone, and its Ctrl-C and SIGTERM tests would test nothing,
    or a SIGTERM raised by a test would end the whole suite."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
