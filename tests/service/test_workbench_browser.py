"""The analyst workbench in a real browser: Debian's headless Chromium driven by Playwright (no
browser download), against the service on loopback over a real batch run with a 150-member
device-farm ring (tests/service/workbench_run.py). Screenshots go to the test's tmp dir."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphfraud.config import ServiceSettings, Settings
from graphfraud.service import create_app

from .workbench_run import FARM, FARM_DEVICE, farm_id

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ANALYST = "wb-analyst-key"
INVESTIGATOR = "wb-investigator-key"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(workbench_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import uvicorn

    audit = tmp_path_factory.mktemp("wb-audit") / "audit.log"
    settings = Settings(
        service=ServiceSettings(
            api_keys=[f"{ANALYST}:analyst", f"{INVESTIGATOR}:investigator"],
            audit_log=audit,
            access_log=False,
        )
    )
    app = create_app(settings, workbench_run)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        raise RuntimeError("the service did not become ready")
    yield base
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "the browser tests need Debian's chromium: make system-deps"
    with sync_playwright() as p:
        # root in CI: no sandbox; containers: small /dev/shm, no GPU
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        yield b
        b.close()


def _page(browser: Any, console: list[str]) -> Any:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    page.on("crash", lambda _: console.append("pageerror: the page's renderer crashed"))
    return page


def _tap(page: Any, selector_js: str) -> None:
    """Tap a graph element. The function returns nothing on purpose: `emit` returns the
    cytoscape collection, which reaches the whole graph, and Playwright serialising that return
    value took the page's JS heap from ~15 MB to 2.5-4.4 GB, the renderer ran out of memory
    and the test failed with "Target crashed" now and then."""
    page.evaluate(f"() => {{ {selector_js}.emit('tap'); }}")


def _js_heap_mb(page: Any) -> float:
    usage = page.context.new_cdp_session(page).send("Runtime.getHeapUsage")
    return float(usage["usedSize"]) / 2**20


def _lookup(page: Any, base: str, key: str, user: str) -> None:
    page.goto(f"{base}/ui/")
    page.fill("#key", key)
    page.fill("#user", user)
    page.click("#lookup button[type=submit]")
    page.wait_for_selector(f"#cy[data-focus='{user}']", state="attached", timeout=60_000)


def _graph_counts(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => {
        const cy = window.__gf.cy, p = window.__gf.payload;
        const device = cy.nodes("[type = 'identifier'][kind = 'device']");
        return {
          users: cy.nodes("[type = 'user']").length,
          identifiers: cy.nodes("[type = 'identifier']").length,
          payload_identifiers: p.nodes.filter((n) => n.type === "identifier").length,
          devices: device.length,
          device_holders: device.length ? device[0].data("holders") : null,
          device_spokes: device.length
            ? device[0].connectedEdges("[relation = 'holds']").length : 0,
          device_value: device.length ? device[0].data("value") : null,
          user_user_device_edges: cy.edges("[relation = 'link'][kind = 'device']").length,
        };
    }"""
    )


def test_investigate_follow_and_verdict_in_a_real_browser(
    server: str, browser: Any, tmp_path: Path
) -> None:
    console: list[str] = []
    page = _page(browser, console)
    # search a user: the farm ring drawn with identifiers as nodes
    _lookup(page, server, ANALYST, farm_id(0))
    counts = _graph_counts(page)
    assert counts["users"] == FARM
    assert counts["identifiers"] == counts["payload_identifiers"] >= 2
    # the farm's device is ONE hub with 150 spokes, not 11,175 user-to-user links
    assert (counts["devices"], counts["device_holders"], counts["device_spokes"]) == (1, 150, 150)
    assert counts["device_value"] == FARM_DEVICE
    assert counts["user_user_device_edges"] == 0
    assert page.locator("#cy").get_attribute("data-users") == str(FARM)
    assert "150 members" in page.text_content("#ring-title")
    assert "share a device" in page.text_content("#features")
    assert "cut" in page.text_content("#cut")
    assert page.locator("#verdict-form").is_hidden()  # an analyst may not write verdicts
    assert "PII masked" in page.text_content("#whoami")
    page.screenshot(path=str(tmp_path / "1-ring.png"))

    # open a link's evidence: the tying values, masked for an analyst, and the similarity
    _tap(page, "window.__gf.cy.edges(\"[kind = 'phone_similar']\")[0]")
    evidence = page.text_content("#evidence")
    assert "≈" in evidence
    assert "similarity" in evidence
    assert "+91******" in evidence  # masked per role
    assert "+9198450" not in evidence
    _tap(page, "window.__gf.cy.nodes(\"[kind = 'device']\")[0]")
    assert "used by 150 accounts" in page.text_content("#evidence")
    page.screenshot(path=str(tmp_path / "2-evidence.png"))

    # filter by link kind: the look-alike phones go, the rest stays
    page.uncheck("#kinds input[data-kind='phone_similar']")
    shown = page.evaluate(
        """() => [window.__gf.cy.edges("[kind = 'phone_similar']").filter(':visible').length,
                  window.__gf.cy.edges("[kind = 'device']").filter(':visible').length]"""
    )
    assert shown == [0, 150]
    page.check("#kinds input[data-kind='phone_similar']")

    # why linked between two clicked users, beside the graph; cleared by the next lookup
    for uid in (farm_id(3), farm_id(9)):
        _tap(page, f"window.__gf.cy.getElementById('u:{uid}')")
    assert page.locator("#why-box").is_visible()
    # a 400-node, 1,150-edge ring view needs tens of MB of JS heap, not gigabytes
    assert _js_heap_mb(page) < 256
    page.click("#why-go")
    page.wait_for_selector("#why .hop")
    assert "Path:" in page.text_content("#why")

    # follow a member: the members list re-centres the page (hashchange)
    page.click(f"a[data-member='{farm_id(1)}']")
    page.wait_for_selector(f"#cy[data-focus='{farm_id(1)}']", state="attached")
    assert page.text_content("#title") == f"User {farm_id(1)}"
    assert page.evaluate(f"() => window.__gf.cy.getElementById('u:{farm_id(1)}').data('focus')")
    assert page.locator("#why-box").is_hidden()
    assert page.text_content("#why") == ""

    # a plain analyst gets 403 on the verdict write, from the page's own origin and key
    status = page.evaluate(
        """async (key) => (await fetch('/v1/verdicts', {method: 'POST',
            headers: {'X-API-Key': key, 'Content-Type': 'application/json'},
            body: JSON.stringify({subject: 'user', subject_id: 'f0003', outcome: 'legit'})})
        ).status""",
        ANALYST,
    )
    assert status == 403

    # an investigator records a verdict and sees it after a reload
    inv = _page(browser, console)
    _lookup(inv, server, INVESTIGATOR, farm_id(3))
    assert "PII masked" not in inv.text_content("#whoami")
    inv.check("input[name=subject][value=ring]")
    inv.select_option("#outcome", "confirmed_fraud")
    inv.fill("#note", "one emulator, sequential SIMs: a farm")
    inv.click("#verdict-submit")
    inv.wait_for_function(
        "() => document.getElementById('verdict-status').textContent === 'recorded'"
    )
    inv.reload()
    inv.wait_for_selector("#verdicts li[data-verdict='confirmed_fraud']", timeout=60_000)
    assert "one emulator, sequential SIMs: a farm" in inv.text_content("#verdicts")
    evidence_values = inv.evaluate(
        "() => window.__gf.payload.edges.find((e) => e.kind === 'phone_similar').value_a"
    )
    assert evidence_values.startswith("+9198450")  # the investigator sees the values unmasked
    inv.screenshot(path=str(tmp_path / "3-verdict.png"))

    # a user in no ring: its direct neighbours and links, not a dead end
    _lookup(page, server, ANALYST, "h0034")
    assert page.locator("#ring-box").is_hidden()
    assert "in no ring: its direct neighbours" in page.text_content("#status")
    near = _graph_counts(page)
    assert near["users"] >= 2
    assert page.evaluate("() => window.__gf.cy.edges(\"[relation = 'link']\").length") >= 1
    page.screenshot(path=str(tmp_path / "4-no-ring.png"))

    # the awkward cases say what is wrong instead of drawing nothing
    page.fill("#user", "nobody-here")
    page.click("#lookup button[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('status').textContent.includes('No user nobody-here')"
    )
    assert "not in the served snapshot" in page.text_content("#scoreline")
    page.fill("#key", "not-a-key")
    page.fill("#user", farm_id(2))
    page.click("#lookup button[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('status').textContent.includes('check the API key')"
    )
    assert "401" in page.text_content("#status")

    violations = [m for m in console if "Content Security Policy" in m or "pageerror" in m]
    assert violations == []
