"""A storefront page on another origin calls the real server from headless Chromium.

Three origins on 127.0.0.1: the server (``giftcards serve`` with ``GIFTCARDS_CORS_ORIGINS`` naming
the shop), the shop, and a site it does not name. Both sites serve the same page, which looks a card
up by code with a storefront token through ``fetch`` and writes what it got into the page.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.test_graphiql_browser import UI_TIMEOUT, Server, headless_chromium, running_server

pytestmark = [pytest.mark.browser, pytest.mark.server]

PERSONAL_CODE = "K7MNPQ2RSTUV3WXYZ4AB"  # the demo card of member C000000113, balance 50.00
MASKED = "*" * 16 + "Z4AB"
SETTLED = re.compile(r"^(balance|refused|failed)")  # what the page shows once its fetch is done

# The page takes the server, the token and the code from its URL's fragment, never sent anywhere.
STOREFRONT_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Check your gift card</title></head>
<body>
<p id="result">looking the card up</p>
<script>
  const given = new URLSearchParams(window.location.hash.slice(1));
  const show = text => { document.getElementById("result").textContent = text; };
  fetch(given.get("api") + "/graphql", {
    method: "POST",
    headers: {"Content-Type": "application/json", "Authorization": "Bearer " + given.get("token")},
    body: JSON.stringify({
      query: "query ($code: String!) { giftcard(code: $code) { results { balance codes { code } } } }",
      variables: {code: given.get("code")},
    }),
  }).then(async response => {
    const body = await response.json();
    if (!response.ok) {
      show(`refused ${response.status} ${body.errors[0].extensions.code} ` +
           `${response.headers.get("WWW-Authenticate")} request ${response.headers.get("X-Request-ID")}`);
      return;
    }
    const card = body.data.giftcard.results[0];
    show(`balance ${card.balance} codes ${card.codes.map(c => c.code).join(" ")}`);
  }, error => show(`failed: ${error.message}`));
</script>
</body>
</html>
"""


@contextmanager
def serving_page(html: str) -> Iterator[str]:
    """One page at ``/``, from a port of its own on 127.0.0.1; yields the site's origin."""

    class OnePage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/":
                self.send_error(404)
                return
            content = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: object) -> None:
            pass

    site = ThreadingHTTPServer(("127.0.0.1", 0), OnePage)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{site.server_address[1]}"
    finally:
        site.shutdown()
        site.server_close()
        thread.join(timeout=10)


@dataclass(frozen=True)
class Origins:
    api: Server
    shop: str  # listed in GIFTCARDS_CORS_ORIGINS
    elsewhere: str  # not listed


@pytest.fixture(scope="module")
def origins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Origins]:
    with serving_page(STOREFRONT_PAGE) as shop, serving_page(STOREFRONT_PAGE) as elsewhere:
        workdir = tmp_path_factory.mktemp("cors-server")
        with running_server(workdir, {"GIFTCARDS_CORS_ORIGINS": shop}) as api:
            yield Origins(api, shop, elsewhere)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with headless_chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, tmp_path: Path) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(UI_TIMEOUT)
    opened = context.new_page()
    try:
        yield opened
    except BaseException:
        opened.screenshot(path=str(tmp_path / "storefront.png"))
        raise
    finally:
        context.close()


def look_up_from(page: Page, site: str, api: str, token: str) -> str:
    """Open the storefront page on ``site``; what it shows once its request has settled."""
    page.goto(f"{site}/#" + urlencode({"api": api, "token": token, "code": PERSONAL_CODE}))
    result = page.locator("#result")
    expect(result).to_have_text(SETTLED)
    return result.inner_text()


def test_a_page_on_a_listed_origin_shows_the_masked_card(page: Page, origins: Origins) -> None:
    # when the shop's page looks the card up with a storefront token
    shown = look_up_from(page, origins.shop, origins.api.base_url, origins.api.token)

    # then it shows the balance and the PERSONAL code masked
    assert shown.startswith("balance 50.00 codes ")
    assert MASKED in shown.split()
    assert PERSONAL_CODE not in shown


def test_a_page_on_a_listed_origin_can_read_why_it_was_refused(page: Page, origins: Origins) -> None:
    # when the shop's page calls with a token that is not valid
    shown = look_up_from(page, origins.shop, origins.api.base_url, "not-a-token")

    # then it reads the 401, its error code, the WWW-Authenticate challenge and the request id
    assert shown.startswith('refused 401 UNAUTHENTICATED Bearer error="invalid_token" request ')
    assert shown.split()[-1] != "null"


def test_the_browser_blocks_a_page_on_an_unlisted_origin(page: Page, origins: Origins) -> None:
    # when the same page, served from an origin the server does not list, tries the same lookup
    shown = look_up_from(page, origins.elsewhere, origins.api.base_url, origins.api.token)

    # then the browser refuses it the answer, and the page has nothing but the failure
    assert shown.startswith("failed: ")
    assert "50.00" not in shown and MASKED not in shown
