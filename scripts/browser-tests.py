#!/usr/bin/python3
"""The real-browser suite: the demo chat, /imclient.js and the admin page in headless Chromium.

Usage: scripts/browser-tests.py [path/to/imserver]   (default .build/debug/imserver)
Needs: chromium, chromium-driver, python3-selenium (scripts/install-deps.sh --test installs
them). Starts its own `imserver --demo` on free loopback ports (memory backplane, API without
a key on loopback), drives pages in headless Chromium, and fails on any failed check or any
console error. Screenshots go to .build/browser-artifacts/ (not committed).

Checks: two users log in; room and private messages both ways, with receipts; a burst of 20
messages typed quickly arrives in order for the sender and the room; a broadcast is labelled
as one; a tall message scrolls into view for a reader at the bottom; the name `system` is
refused; a getURL that returns no URL gets a clear status instead of a loop; a user forced
offline (4003) sees it, cannot send, and can log in again; a user on the event-stream transport
(`?transport=eventsource`) gets private and room messages and acks them; with WebSockets
blocked in the page, imclient.js falls back to the event stream by itself; the node restarted
under open pages (WebSocket and event stream): all come back by themselves; a phone-width page
(390 px), on the compact encoding (`?encoding=msgpack`), gets room and private messages and
acks them, and shows the user list in one row. The admin page (/admin on the API port, no key on
loopback): shows the node, its connections, rates and charts; pages through the online users
one by one and through a channel's members; a broadcast sent from its form arrives in a demo
page and shows its id; data that is not JSON is refused in the page and an API error shows the
API's message; fits a phone-width window. On a second node whose API has a key: the page asks
for the key, refuses a wrong one with the API's message, works with the right one, and keeps it
in sessionStorage only.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "debug", "imserver")
ARTIFACTS = os.path.join(ROOT, ".build", "browser-artifacts")
TIMEOUT = 15


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


PUBLIC, API = free_port(), free_port()
BASE = "http://127.0.0.1:%d/" % PUBLIC
ADMIN = "http://127.0.0.1:%d/admin" % API
ADMIN_KEY = "browser-tests-admin-key-0123456789"


class Node:
    """One `imserver --demo` process on fixed ports, restartable; `api_key` sets IM_API_KEY."""

    def __init__(self, public=PUBLIC, api=API, api_key=None, log="imserver.log"):
        self.process = None
        self.public, self.api, self.api_key = public, api, api_key
        self.log = open(os.path.join(ARTIFACTS, log), "ab")

    def start(self):
        env = dict(os.environ, IM_TOKEN_SECRET="browser-tests-secret-0123456789abcdef", IM_LOG_LEVEL="warning")
        env.pop("IM_API_KEY", None)
        if self.api_key:
            env["IM_API_KEY"] = self.api_key
        self.process = subprocess.Popen(
            [SERVER, "--demo", "--listen", "127.0.0.1:%d" % self.public, "--api-listen", "127.0.0.1:%d" % self.api],
            env=env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/health" % self.public, timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("imserver did not start (see %s)" % self.log.name)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)


def api(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request("http://127.0.0.1:%d/v1/%s" % (API, path), data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def browser(width=1100, height=700):
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=%d,%d" % (width, height)):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for path in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if os.path.exists(path):
            options.binary_location = path
    if os.path.exists("/usr/bin/chromedriver"):
        return webdriver.Chrome(options=options, service=ChromeService(executable_path="/usr/bin/chromedriver"))
    return webdriver.Chrome(options=options)


def until(driver, condition, what):
    try:
        WebDriverWait(driver, TIMEOUT, poll_frequency=0.05).until(lambda d: condition(d))
    except Exception:
        shot(driver, "failed")
        raise AssertionError("timed out waiting for: " + what)


def text_of(driver, element):
    return driver.find_element(By.ID, element).text


def status(driver):
    return text_of(driver, "statusText")


def login(driver, name, page=BASE):
    driver.get(page)
    field = driver.find_element(By.ID, "name")
    field.clear()
    field.send_keys(name)
    driver.find_element(By.ID, "loginForm").submit()
    until(driver, lambda d: "online as " + name in status(d), name + " online")


def send(driver, text):
    box = driver.find_element(By.ID, "text")
    box.send_keys(text + Keys.ENTER)


def pick(driver, user):
    """Selects `user` (a private target), or the room when None."""
    if user is None:
        driver.find_element(By.CSS_SELECTOR, "#users .room").click()
        return
    until(driver, lambda d: any(row.text.strip() == user for row in d.find_elements(By.CSS_SELECTOR, "#users .who")),
          user + " listed")
    for row in driver.find_elements(By.CSS_SELECTOR, "#users .who"):
        if row.text.strip() == user:
            row.click()
            return


def bodies(driver):
    return [node.text for node in driver.find_elements(By.CSS_SELECTOR, "#log .msg .body")]


def shot(driver, name):
    driver.save_screenshot(os.path.join(ARTIFACTS, "%s-%s.png" % (getattr(driver, "label", "page"), name)))


def console_errors(driver, expected=()):
    """The page's console errors since the last call, less those containing an `expected` text."""
    return [entry for entry in driver.get_log("browser")
            if entry.get("level") == "SEVERE" and not any(text in entry.get("message", "") for text in expected)]


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print("ok -", what)


def rows(driver, element):
    """The texts of the rows of the admin page's list `element`, read in one go (the page
    rebuilds a list when it refreshes)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map((row) => row.innerText.trim())",
        "#%s li:not(.empty)" % element)


def admin_page(bob, users):
    """The admin page on the suite's node (its API has no key: loopback only); `bob` is a demo
    page logged in, to see a broadcast sent from the admin page arrive; `users` are the users
    online, one connection each, in order. Returns the page's console errors."""
    admin = browser()
    admin.label = "admin"
    try:
        admin.get(ADMIN)
        node_id = api("GET", "node/stats")["node"]
        until(admin, lambda d: node_id in text_of(d, "nodeText"), "the admin page names the node")
        check("up" in admin.find_element(By.ID, "node").get_attribute("class"), "admin: the backplane is up")
        count = str(len(users))
        until(admin, lambda d: text_of(d, "connections") == count, "the admin page shows the demo connections")
        check(True, "admin: the %s demo users' connections are shown" % count)
        until(admin, lambda d: text_of(d, "deliveries") != "\u2013" and text_of(d, "framesIn") != "\u2013",
              "rates from two polls")
        drawn = admin.execute_script("""
            const c = document.getElementById('connectionsChart');
            const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 3; i < data.length; i += 4) if (data[i]) return true;
            return false;""")
        check(drawn, "admin: the connections chart is drawn")
        check(admin.execute_script("return document.getElementById('keyPanel').classList.contains('hidden')"),
              "admin: no key asked for on a loopback API without a key")

        Select(admin.find_element(By.ID, "pageSize")).select_by_visible_text("1")
        until(admin, lambda d: rows(d, "online") == users[:1], "first page of online users")
        for user in users[1:]:
            admin.find_element(By.ID, "onlineNext").click()
            until(admin, lambda d: rows(d, "online") == [user], "the next page of online users: " + user)
        check(not admin.find_element(By.ID, "onlineNext").is_enabled(), "admin: no page after the last user")
        for user in reversed(users[:-1]):
            admin.find_element(By.ID, "onlinePrev").click()
            until(admin, lambda d: rows(d, "online") == [user], "back a page: " + user)
        check(not admin.find_element(By.ID, "onlinePrev").is_enabled(), "admin: online users page back and forth")

        until(admin, lambda d: any(row.startswith("lobby") for row in rows(d, "channels")), "the lobby is listed")
        admin.find_element(By.CSS_SELECTOR, "#channels li.pick").click()
        until(admin, lambda d: rows(d, "members") == ["alice"], "the lobby's first member")
        admin.find_element(By.ID, "membersNext").click()
        until(admin, lambda d: rows(d, "members") == ["bob"], "the lobby's second member")
        check(True, "admin: a channel's members page one by one")

        admin.find_element(By.CSS_SELECTOR, "input[name=kind][value=broadcast]").click()
        data = admin.find_element(By.ID, "data")
        data.clear()
        data.send_keys("{not json")
        admin.find_element(By.ID, "send").click()
        until(admin, lambda d: "not JSON" in text_of(d, "sendResult"), "data that is not JSON is refused")
        check(True, "admin: data that is not JSON is refused in the page")
        data.clear()
        data.send_keys('{"text":"broadcast from the admin page"}')
        admin.find_element(By.ID, "send").click()
        until(bob, lambda d: "broadcast from the admin page" in bodies(d), "bob gets the admin page's broadcast")
        until(admin, lambda d: "sent, id " in text_of(d, "sendResult"), "the admin page shows the id")
        check(True, "admin: a broadcast from the form arrives in a demo page")

        admin.find_element(By.CSS_SELECTOR, "input[name=kind][value=users]").click()
        admin.find_element(By.ID, "from").send_keys("admin")
        admin.find_element(By.ID, "to").send_keys("x" * 300)
        admin.find_element(By.ID, "send").click()
        until(admin, lambda d: "longer than 256 bytes" in text_of(d, "sendResult"), "the API's error message")
        check("invalid_request" in text_of(admin, "sendResult"), "admin: an API error shows the API's message")
        admin.find_element(By.ID, "to").clear()
        admin.find_element(By.ID, "to").send_keys("bob, nobody")
        admin.find_element(By.ID, "send").click()
        until(admin, lambda d: "offline: nobody" in text_of(d, "sendResult"), "the offline receivers are shown")
        check(True, "admin: a message to users shows its offline receivers")
        admin.execute_script("window.scrollTo(0, 0)")
        shot(admin, "admin")

        admin.set_window_size(390, 844)
        until(admin, lambda d: d.execute_script("return window.innerWidth") <= 400, "a phone-width window")
        widths = admin.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        check(widths[0] <= widths[1], "admin: phone width, nothing wider than the window (%s of %s px)" % tuple(widths))
        admin.execute_script("window.scrollTo(0, 0)")
        shot(admin, "admin-phone")
        return console_errors(admin, expected=("/v1/messages - Failed to load resource",))
    finally:
        admin.quit()


def admin_with_key():
    """The admin page on a second node whose API has a key: asks for it, refuses a wrong one,
    works with the right one, keeps it in sessionStorage only. Returns the console errors."""
    node = Node(public=free_port(), api=free_port(), api_key=ADMIN_KEY, log="imserver-keyed.log")
    node.start()
    page = browser()
    page.label = "admin-keyed"
    try:
        page.get("http://127.0.0.1:%d/admin" % node.api)
        visible = "return !document.getElementById('keyPanel').classList.contains('hidden')"
        until(page, lambda d: d.execute_script(visible), "the key is asked for")
        page.find_element(By.ID, "key").send_keys("wrong-key-0123456789")
        page.find_element(By.ID, "keyForm").submit()
        until(page, lambda d: d.execute_script(visible) and "refused" in text_of(d, "keyReason"),
              "a wrong key is refused")
        check("API key" in text_of(page, "keyReason"), "admin: a wrong key is refused with the API's message")
        page.find_element(By.ID, "key").send_keys(ADMIN_KEY)
        page.find_element(By.ID, "keyForm").submit()
        until(page, lambda d: text_of(d, "connections") == "0", "the keyed node's figures")
        stored = page.execute_script(
            "return [sessionStorage.getItem('imserver-admin-key'), localStorage.length, document.cookie]")
        check(stored == [ADMIN_KEY, 0, ""], "admin: with the key it works; the key is in sessionStorage only")
        shot(page, "admin-keyed")
        return console_errors(page, expected=("/v1/node/stats - Failed to load resource",))
    finally:
        page.quit()
        node.stop()


def main():
    os.makedirs(ARTIFACTS, exist_ok=True)
    node = Node()
    node.start()
    pages = []
    try:
        alice, bob = browser(), browser()
        alice.label, bob.label = "alice", "bob"
        pages += [alice, bob]
        login(alice, "alice")
        login(bob, "bob")
        check(True, "two users log in")

        send(alice, "hello room from alice")
        until(bob, lambda d: "hello room from alice" in bodies(d), "bob gets alice's room message")
        send(bob, "hello back from bob")
        until(alice, lambda d: "hello back from bob" in bodies(d), "alice gets bob's room message")
        check(True, "room messages both ways")

        pick(alice, "bob")
        send(alice, "psst bob")
        until(bob, lambda d: "psst bob" in bodies(d), "bob gets the private message")
        until(alice, lambda d: "acked" in text_of(d, "log"), "alice sees bob's ack")
        pick(bob, "alice")
        send(bob, "psst alice")
        until(alice, lambda d: "psst alice" in bodies(d), "alice gets the private message")
        until(bob, lambda d: "acked" in text_of(d, "log"), "bob sees alice's ack")
        check(True, "private messages both ways, with receipts")

        pick(alice, None)
        burst = ["burst %02d" % n for n in range(20)]
        # Typed faster than any network answers: every submit happens before the first send
        # is answered.
        alice.execute_script("""
            // Counts the sends in flight at once: on a slow network, two in flight may be
            // answered (and delivered) out of order.
            const original = window.fetch;
            window.inFlight = 0; window.mostInFlight = 0;
            window.fetch = async (...args) => {
              const send = String(args[0]).includes('/demo/room');
              if (send) { window.inFlight += 1; window.mostInFlight = Math.max(window.mostInFlight, window.inFlight); }
              try { return await original(...args); } finally { if (send) window.inFlight -= 1; }
            };
            const box = document.getElementById('text'), form = document.getElementById('composer');
            for (const text of arguments[0]) { box.value = text; form.requestSubmit(); }""", burst)
        for page in (alice, bob):
            until(page, lambda d: all(text in bodies(d) for text in burst), "the burst arrives")
            seen = [text for text in bodies(page) if text.startswith("burst ")]
            check(seen == burst, "a burst of 20 keeps its order for " + page.label)
        most = alice.execute_script("return window.mostInFlight")
        check(most == 1, "a burst is sent one message at a time (most in flight: %s)" % most)

        dave = browser()
        dave.label = "dave"
        pages.append(dave)
        login(dave, "dave", BASE + "?transport=eventsource")
        check("over an event stream" in status(dave), "a user on the event-stream transport logs in")
        pick(alice, "dave")
        send(alice, "psst dave")
        until(dave, lambda d: "psst dave" in bodies(d), "dave gets the private message over the event stream")
        until(alice, lambda d: "acked" in text_of(d, "log").split("psst dave", 1)[-1], "alice sees dave's posted ack")
        pick(dave, None)
        send(dave, "room message from dave")
        until(alice, lambda d: "room message from dave" in bodies(d), "alice gets dave's room message")
        check(True, "event stream: private and room messages both ways, with receipts")
        pick(alice, None)

        frank = browser()
        frank.label = "frank"
        pages.append(frank)
        # A network that blocks WebSockets: every WebSocket closes (1006) before it opens.
        frank.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
            window.WebSocket = class {
              constructor() { this.readyState = 0; setTimeout(() => { this.readyState = 3;
                if (this.onclose) this.onclose({ code: 1006, reason: '' }); }, 20); }
              send() {} close() {}
            };"""})
        login(frank, "frank")
        check("over an event stream" in status(frank), "WebSockets blocked: imclient.js falls back to the event stream")
        send(alice, "hello frank")
        until(frank, lambda d: "hello frank" in bodies(d), "frank gets room messages over the fallback")

        api("POST", "broadcasts", {"data": {"text": "maintenance at 22:00"}})
        until(bob, lambda d: "maintenance at 22:00" in bodies(d), "bob gets the broadcast")
        labels = [box.text for box in bob.find_elements(By.CSS_SELECTOR, "#log .msg.broadcast")]
        check(any("to everyone" in label.lower() for label in labels), "a broadcast is labelled as one")

        tall = "\n".join("line %d" % n for n in range(60))
        api("POST", "messages", {"from": "alice", "to": ["bob"], "data": {"text": tall}})
        until(bob, lambda d: d.execute_script(
            "const l=document.getElementById('log');return l.scrollHeight-l.scrollTop-l.clientHeight<5"
            " && l.lastElementChild.textContent.includes('line 59');"), "a tall message scrolls into view")
        check(True, "a tall message scrolls into view")
        shot(bob, "chat")

        errors = [("admin", entry) for entry in admin_page(bob, ["alice", "bob", "dave", "frank"])]
        errors += [("admin-keyed", entry) for entry in admin_with_key()]
        check(not errors, "no console errors on the admin pages (%s)" % errors)

        eve = browser()
        eve.label = "eve"
        pages.append(eve)
        eve.get(BASE)
        eve.find_element(By.ID, "name").send_keys("system")
        eve.find_element(By.ID, "loginForm").submit()
        until(eve, lambda d: "reserved" in text_of(d, "loginError"), "the name system is refused")
        check(True, "the name system is refused")
        errors += console_errors(eve, expected=("/demo/login?user=system - Failed to load resource",))
        eve.execute_script("""
            window.statuses = [];
            new ImClient({ getURL: async () => undefined, onStatus: (t) => window.statuses.push(t) }).connect();""")
        until(eve, lambda d: any("did not return a ws://" in s for s in d.execute_script("return window.statuses")),
              "a clear status for a getURL without a URL")
        statuses = eve.execute_script("return window.statuses")
        check(not any("/undefined" in s for s in statuses), "no attempt to open a URL made of undefined")

        api("POST", "clients/bob/offline")
        until(bob, lambda d: "disconnected by the server" in text_of(d, "log"), "bob is told he was forced offline")
        check(not bob.find_element(By.ID, "text").is_enabled(), "forced offline: the composer is disabled")
        shot(bob, "forced-offline")
        bob.find_element(By.CSS_SELECTOR, "#ended button").click()
        until(bob, lambda d: "online as bob" in status(d), "bob logs in again")
        check(bob.find_element(By.ID, "text").is_enabled(), "forced offline: logging in again works")

        errors += [(page.label, entry) for page in pages for entry in console_errors(page)]
        check(not errors, "no console errors before the restart (%s)" % errors)
        node.stop()
        until(alice, lambda d: "online as" not in status(d), "alice notices the node went away")
        check("1001" in status(alice) or "connection lost" in status(alice), "the status says why the socket closed")
        node.start()
        for page in (alice, bob, dave):
            until(page, lambda d: "online as" in status(d), page.label + " comes back after the restart")
        check("over an event stream" in status(dave), "dave comes back on the event stream")
        check(True, "the node restarted under open pages (WebSocket and event stream): all come back by themselves")
        send(alice, "after the restart")
        until(bob, lambda d: "after the restart" in bodies(d), "messages flow after the restart")
        # While the node was down, the browser reports the refused connections: expected.
        down = ("ERR_CONNECTION_REFUSED", "WebSocket connection to", "net::ERR_")
        frank.quit()
        pages.remove(frank)
        errors = [(page.label, entry) for page in pages for entry in console_errors(page, expected=down)]

        phone = browser(390, 844)
        phone.label = "phone"
        pages.append(phone)
        login(phone, "carol", BASE + "?encoding=msgpack")
        check("compact frames" in status(phone), "a user on the compact encoding (MessagePack) logs in")
        send(alice, "hello carol, in MessagePack")
        until(phone, lambda d: "hello carol, in MessagePack" in bodies(d), "carol gets room messages in compact frames")
        pick(alice, "carol")
        send(alice, "psst carol")
        until(phone, lambda d: "psst carol" in bodies(d), "carol gets a private message in compact frames")
        until(alice, lambda d: "acked" in text_of(d, "log").split("psst carol", 1)[-1], "alice sees carol's ack")
        check(True, "compact encoding: room and private messages, with receipts")
        until(phone, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#users .who")) >= 3, "carol sees the others")
        tops = {row.location["y"] for row in phone.find_elements(By.CSS_SELECTOR, "#users .who")}
        check(len(tops) == 1, "phone width: the user list is one row (%s)" % sorted(tops))
        shot(phone, "phone")

        errors += [(page.label, entry) for page in pages for entry in console_errors(page)]
        check(not errors, "no console errors (%s)" % errors)
        print("browser tests passed; screenshots in", ARTIFACTS)
    finally:
        for page in pages:
            try:
                page.quit()
            except Exception:
                pass
        node.stop()


if __name__ == "__main__":
    # Chromium keeps shared memory in the temporary directory and leaves some of it behind
    # (org.chromium.Chromium.*): the suite gives it a directory of its own, removed at the end.
    with tempfile.TemporaryDirectory(prefix="imserver-browser-") as scratch:
        os.environ["TMPDIR"] = scratch
        main()
