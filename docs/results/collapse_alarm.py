"""Remake the README's collapse-alarm picture: python docs/results/collapse_alarm.py

Starts the app on a free local port, opens its Train tab in headless Chromium (Playwright, /usr/bin/chromium or
$CHROMIUM), trains the 2014 MLP GAN (the registry's unconditional digit model) for 100 steps at 250 times its
recipe's learning rate, a configuration that collapses (tests/test_collapse_alarm.py), waits for the end of the run
with the alarm on, and writes docs/results/collapse-alarm.png: the tab's progress, sample grid, loss plot and the
diversity plot beside it, with the warning under them.
"""
from __future__ import annotations

import os
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]
STEPS, LR = 100, 0.05


def main() -> None:
    import torch
    from playwright.sync_api import expect, sync_playwright

    torch.set_num_threads(1)
    os.environ["FORGER_APP_RUNS"] = tempfile.mkdtemp(prefix="forger-alarm-")
    import app
    from gan.registry import list_specs

    model = next(s.name for s in list_specs(task="noise") if s.evaluation is not None and not s.conditional)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True,
                    theme=app.THEME, css=app.CSS)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(600_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_role("tab", name="Train", exact=True).click()
            page.locator("#train-model input").click()
            page.get_by_role("option", name=model, exact=True).first.click()
            page.locator("#train-minutes input").fill("")
            page.locator("#train-steps input").fill(str(STEPS))
            page.locator("#train-lr input").fill(str(LR))
            page.locator("#train-start").click()
            expect(page.locator("#train-status")).to_contain_text("trained", timeout=600_000)
            expect(page.locator("#train-diversity")).to_contain_text("Collapse alarm")
            page.locator("#train-diversity-plot canvas, #train-diversity-plot svg").first.wait_for()
            column = page.locator("#train-progress").locator("xpath=ancestor::div[contains(@class, 'column')][1]")
            path = ROOT / "docs" / "results" / "collapse-alarm.png"
            column.screenshot(path=str(path))
            print(path, "|", page.locator("#train-diversity").inner_text())
            browser.close()
    finally:
        app.demo.close()


if __name__ == "__main__":
    main()
