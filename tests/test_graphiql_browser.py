"""GraphiQL in a real browser against the real server, with no network beyond the server itself.

Starts ``giftcards serve`` in a subprocess (SQLite, demo data), opens ``/graphql`` in headless
Chromium, puts a token into the IDE's Headers editor (never into the URL) and runs a lookup.
Every request other than to the server is aborted and reported, so the IDE must load offline.
Codes and tokens typed into the IDE must not outlive the page in the browser's storage.

Needs a system Chromium at ``/usr/bin/chromium``; without it the tests are skipped, except under
CI, where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect, sync_playwright

pytestmark = [pytest.mark.browser, pytest.mark.server]

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

CODE = "G59220000045"  # a well-known demo card (app/demo.py), balance 25.00
LOOKUP_QUERY = (
    f'{{ giftcard(code: "{CODE}") {{ limitedByPermission '
    "results { balance codes { codeType code isMasked } } } }"
)
PERSONAL_CODE = "K7MNPQ2RSTUV3WXYZ4AB"  # the demo card of member C000000113, balance 50.00
LOOKUP_BY_VARIABLE = (
    "query Lookup($code: String!) { giftcard(code: $code) { results { balance codes { code } } } }"
)

SERVER_START_TIMEOUT = 30.0  # seconds
COMMAND_TIMEOUT = 60.0  # seconds, for each `giftcards` set-up command
UI_TIMEOUT = 15_000  # milliseconds, for anything the page has to do


# --- the server ----------------------------------------------------------------------------------


@dataclass
class Server:
    base_url: str
    token: str


def _giftcards_command() -> str:
    """The ``giftcards`` console script of the virtualenv running these tests."""
    beside_python = Path(sys.executable).parent / "giftcards"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("giftcards")
    if found is None:
        pytest.fail("the `giftcards` console script is not installed next to this Python")
    return found


def _server_env(workdir: Path, settings: Mapping[str, str]) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIFTCARDS_")}
    env.update(
        {
            "GIFTCARDS_ENV": "development",
            "GIFTCARDS_DATABASE_URL": f"sqlite:///{workdir / 'g.db'}",
            "GIFTCARDS_STATE_DIR": str(workdir / "state"),
            "GIFTCARDS_PERMISSIONS_FILE": str(ROOT / "permissions.yaml"),
            **settings,
        }
    )
    return env


def _run(command: list[str], env: dict[str, str], cwd: Path) -> str:
    result = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command[1:])} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    pytest.fail(f"the server did not answer /healthz within {SERVER_START_TIMEOUT:.0f}s:\n{log.read_text()}")


@contextmanager
def running_server(workdir: Path, settings: Mapping[str, str] | None = None) -> Iterator[Server]:
    """``giftcards serve`` on a free port, over the demo data, with a storefront token minted;
    ``settings`` adds ``GIFTCARDS_*`` variables."""
    env, giftcards = _server_env(workdir, settings or {}), _giftcards_command()
    _run([giftcards, "db", "upgrade"], env, workdir)
    _run([giftcards, "demo-data"], env, workdir)
    token = _run([giftcards, "token", "--sub", "browser", "--role", "storefront"], env, workdir)

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = workdir / "server.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [giftcards, "serve", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_healthy(base_url, process, log)
        yield Server(base_url, token.strip())
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("graphiql-server")) as started:
        yield started


# --- the browser ---------------------------------------------------------------------------------


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    """The system Chromium; skips without one, except under CI."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; CI must install Chromium for the browser tests")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with headless_chromium() as launched:
        yield launched


@dataclass
class Tab:
    """A page in a fresh browser context, with what it requested and complained about."""

    page: Page
    origin: str
    foreign_requests: list[str] = field(default_factory=list)
    graphql_posts: list[dict[str, Any]] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        request = route.request
        if not request.url.startswith(self.origin + "/"):
            self.foreign_requests.append(request.url)
            route.abort()
            return
        if request.method == "POST" and request.url == f"{self.origin}/graphql":
            self.graphql_posts.append(
                {"body": request.post_data or "", "authorization": request.headers.get("authorization")}
            )
        route.continue_()

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        if message.location.get("url", "").endswith("/favicon.ico"):
            return  # the server has no favicon; the browser asks anyway
        self.console_errors.append(f"{message.text} ({message.location.get('url')})")

    def lookup_requests(self) -> list[dict[str, Any]]:
        """The POSTs that ran the lookup (not GraphiQL's schema introspection)."""
        return [post for post in self.graphql_posts if CODE in post["body"]]


@pytest.fixture
def tab(browser: Browser, server: Server, tmp_path: Path) -> Iterator[Tab]:
    context = browser.new_context()
    context.set_default_timeout(UI_TIMEOUT)
    page = context.new_page()
    opened = Tab(page, server.base_url)
    context.route("**/*", opened.route)
    page.on("console", opened.on_console)
    page.on("pageerror", lambda error: opened.console_errors.append(f"page error: {error}"))
    try:
        yield opened
    finally:
        context.close()


@contextmanager
def screenshot_on_failure(page: Page, path: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        page.screenshot(path=str(path))
        raise


# --- the IDE -------------------------------------------------------------------------------------


def open_ide(tab: Tab, query: str) -> None:
    tab.page.goto(f"{tab.origin}/graphql?query={quote(query)}")
    expect(tab.page.locator(".graphiql-execute-button")).to_be_visible()


def tool_editor(page: Page, name: str) -> Any:
    """The editor under the query: ``Variables`` or ``Headers``."""
    page.locator(".graphiql-editor-tools-tabs").get_by_role("button", name=name).click()
    editor = page.locator("section.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror")
    expect(editor).to_be_visible()
    return editor


def headers_editor(page: Page) -> Any:
    return tool_editor(page, "Headers")


def read_headers(page: Page) -> dict[str, str]:
    text: str = headers_editor(page).evaluate("element => element.CodeMirror.getValue()")
    return json.loads(text) if text.strip() else {}


def type_into(page: Page, name: str, value: dict[str, str]) -> None:
    """Replace the text of a tool editor by typing, as a person pasting a token or a code would."""
    editor = tool_editor(page, name)
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type(json.dumps(value))
    assert json.loads(editor.evaluate("element => element.CodeMirror.getValue()")) == value


def type_headers(page: Page, headers: dict[str, str]) -> None:
    type_into(page, "Headers", headers)
    assert read_headers(page) == headers


def stored_entries(page: Page) -> list[str]:
    """Every key and value in the page's localStorage and sessionStorage."""
    entries: list[str] = page.evaluate(
        "() => [localStorage, sessionStorage].flatMap(store => Object.entries(store).flat())"
    )
    return entries


def entries_holding(page: Page, *secrets: str) -> list[str]:
    """The keys and values in the page's storage that contain any of ``secrets``."""
    return [entry for entry in stored_entries(page) if any(secret in entry for secret in secrets)]


def open_tabs(page: Page) -> int:
    """GraphiQL draws its tab bar (one entry per tab) only from two tabs on."""
    expect(page.locator(".graphiql-tab-add")).to_be_visible()
    return page.locator(".graphiql-tab").count() or 1


def execute_and_wait_for(page: Page, *expected: str) -> dict[str, Any]:
    page.locator(".graphiql-execute-button").click()
    result = page.locator(".result-window")
    for text in expected:
        expect(result).to_contain_text(text)
    body: dict[str, Any] = json.loads(
        result.locator(".CodeMirror").evaluate("element => element.CodeMirror.getValue()")
    )
    return body


def assert_stayed_offline_and_quiet(tab: Tab) -> None:
    assert tab.foreign_requests == [], "the IDE asked for something besides its own server"
    assert tab.console_errors == []


# --- tests ---------------------------------------------------------------------------------------


def test_graphiql_looks_a_card_up_with_a_token_typed_into_the_headers_tab(
    tab: Tab, server: Server, tmp_path: Path
) -> None:
    with screenshot_on_failure(tab.page, tmp_path / "graphiql.png"):
        # given the IDE, opened with the lookup query (no secret in the URL)
        open_ide(tab, LOOKUP_QUERY)
        # and a storefront token typed into its Headers tab
        type_headers(tab.page, {"Authorization": f"Bearer {server.token}"})

        # when the query runs
        body = execute_and_wait_for(tab.page, '"25.00"', CODE)

        # then the card shows with its balance and its unmasked physical code
        assert "errors" not in body, body
        assert body["data"]["giftcard"]["results"] == [
            {
                "balance": "25.00",
                "codes": [{"codeType": "PHYSICAL", "code": CODE, "isMasked": False}],
            }
        ]
        # and the token travelled in the Authorization header only
        assert [post["authorization"] for post in tab.lookup_requests()] == [f"Bearer {server.token}"]
        assert server.token not in tab.page.url
        assert_stayed_offline_and_quiet(tab)


def test_graphiql_without_a_token_shows_unauthenticated(tab: Tab, tmp_path: Path) -> None:
    with screenshot_on_failure(tab.page, tmp_path / "graphiql.png"):
        # given the IDE in a fresh browser, whose Headers tab holds no token
        open_ide(tab, LOOKUP_QUERY)
        assert "authorization" not in {name.lower() for name in read_headers(tab.page)}

        # when the query runs
        body = execute_and_wait_for(tab.page, "UNAUTHENTICATED")

        # then the lookup is refused for want of a token
        assert [error["extensions"]["code"] for error in body["errors"]] == ["UNAUTHENTICATED"]
        assert [post["authorization"] for post in tab.lookup_requests()] == [None]
        assert_stayed_offline_and_quiet(tab)


def test_graphiql_keeps_no_code_or_token_in_browser_storage_and_opens_one_tab_per_load(
    tab: Tab, server: Server, tmp_path: Path
) -> None:
    with screenshot_on_failure(tab.page, tmp_path / "graphiql.png"):
        # given a lookup run with a PERSONAL code typed into the variables and a token into the headers
        open_ide(tab, LOOKUP_BY_VARIABLE)
        type_into(tab.page, "Variables", {"code": PERSONAL_CODE})
        type_headers(tab.page, {"Authorization": f"Bearer {server.token}"})
        execute_and_wait_for(tab.page, '"50.00"')
        assert entries_holding(tab.page, PERSONAL_CODE, server.token) == []

        # when the page is loaded again
        tab.page.reload()
        expect(tab.page.locator(".graphiql-execute-button")).to_be_visible()

        # then neither storage holds the code or the token, and the IDE shows one tab
        assert entries_holding(tab.page, PERSONAL_CODE, server.token) == []
        assert open_tabs(tab.page) == 1
        assert_stayed_offline_and_quiet(tab)


def test_graphiql_removes_what_earlier_versions_left_in_local_storage(tab: Tab, tmp_path: Path) -> None:
    with screenshot_on_failure(tab.page, tmp_path / "graphiql.png"):
        # given the history an earlier version kept in localStorage, with a code, and an entry not the IDE's
        open_ide(tab, LOOKUP_BY_VARIABLE)
        left = json.dumps({"queries": [{"variables": json.dumps({"code": PERSONAL_CODE})}]})
        tab.page.evaluate(
            "left => { localStorage.setItem('graphiql:queries', left); "
            "localStorage.setItem('unrelated', 'kept'); }",
            left,
        )

        # when the IDE is loaded again
        tab.page.reload()
        expect(tab.page.locator(".graphiql-execute-button")).to_be_visible()

        # then the IDE's leftovers are gone and nothing else was touched
        assert stored_entries(tab.page) == ["unrelated", "kept"]
        assert_stayed_offline_and_quiet(tab)
