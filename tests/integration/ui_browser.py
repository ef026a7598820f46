#!/usr/bin/env python3
"""tests/integration/ui_browser.py -- test_ui.sh's browser: Debian's chromium,
headless, driven by chromedriver through python3-selenium, against the page a
real node serves at /ui (dynkv-http(7), PAGE).

It loads the page, waits for the ring, and checks what the page shows against
dynkv-admin --json ring and members; makes requests with curl and waits for
the request rate; kills one node and waits for the page to show it down;
saves a screenshot; stops the serving node (SIGSTOP) and waits for the page
to say it is unreachable, then lets it go on (SIGCONT); and reads the
browser's console.  Each check is one line on stdout, "ok<TAB>what" or "not
ok<TAB>what", and details "# ..." lines, which test_ui.sh turns into TAP.
Every wait is bounded; the browser is quit on every exit (test_ui.sh also
kills its process group).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.remote_connection import RemoteConnection


def check(desc, cond, detail=""):
    print(f"{'ok' if cond else 'not ok'}\t{desc}", flush=True)
    if not cond and detail:
        for line in str(detail).splitlines()[:20]:
            print(f"# {line}", flush=True)
    return cond


def wait(cond, limit, step=0.2):
    """cond() until it is true or limit seconds pass; its last value."""
    deadline = time.monotonic() + limit
    while True:
        try:
            v = cond()
        except WebDriverException:
            v = None
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def main():
    ap = argparse.ArgumentParser()
    for opt in ("url", "admin", "host", "chromium", "chromedriver", "kill-id", "screenshot"):
        ap.add_argument("--" + opt, required=True)
    for opt in ("kill-pid", "stop-pid"):
        ap.add_argument("--" + opt, required=True, type=int)
    a = ap.parse_args()

    def admin(cmd):
        out = subprocess.run([a.admin, "--host", a.host, "--json", cmd], capture_output=True,
                             timeout=20, check=True)
        return json.loads(out.stdout)

    def curl_burst(n):
        urls = [f"{a.url}/kv/ui-test-{i}" for i in range(n)]
        subprocess.run(["curl", "-s", "--max-time", "10", "-X", "PUT", "-d", "v"] + urls,
                       capture_output=True, timeout=20)

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000"):
        opts.add_argument(arg)
    opts.binary_location = a.chromium
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    RemoteConnection.set_timeout(30)   # no command waits for the driver longer
    try:
        d = webdriver.Chrome(service=Service(executable_path=a.chromedriver), options=opts)
    except WebDriverException as e:
        check("chromium starts under chromedriver", False, e)
        return
    stopped = False
    console = []
    try:
        d.set_page_load_timeout(20)
        d.set_script_timeout(10)
        js = d.execute_script

        # --- the ring and the members, against dynkv-admin -------------------
        d.get(a.url + "/")
        check("the browser follows / to /ui and gets the page (title dynkv)",
              d.current_url.endswith("/ui") and d.title.startswith("dynkv"), d.current_url)
        ring = admin("ring")
        n = ring["ring_size"]
        arcs = lambda: js("return [...document.querySelectorAll('#arcs path[data-partition]')]"
                          ".map(p => [Number(p.dataset.partition), p.dataset.owner])")
        got = wait(lambda: len(arcs()) == n and arcs(), 15)
        check(f"the ring is drawn: {n} arcs, ring_size of dynkv-admin ring", got,
              f"arcs: {len(arcs())}")
        want = sorted([p["index"], p["preflist"][0]] for p in ring["partitions"])
        check(f"each arc's owner is the first of its preference list in dynkv-admin ring "
              f"(all {n})", sorted(got or []) == want and len(want) == n,
              "\n".join(f"partition {w[0]}: page {g[1]}, admin {w[1]}"
                        for g, w in zip(sorted(got or []), want) if g != w))
        legend = js("return [...document.querySelectorAll('#legend-body tr')]"
                    ".map(r => r.dataset.memberId)")
        check("the legend lists the owners of dynkv-admin ring",
              sorted(legend) == sorted(o["id"] for o in ring["ownership"]), legend)

        members_js = ("return [...document.querySelectorAll('#members-body tr')]"
                      ".map(r => [r.dataset.memberId, r.dataset.liveness, r.dataset.status])")

        def members_agree():
            want = sorted([m["id"], m["liveness"], m["status"]] for m in admin("members")["members"])
            got = sorted(js(members_js))
            return (got == want, got, want)
        r = wait(lambda: members_agree()[0] and members_agree(), 10) or members_agree()
        check("the members table lists exactly the members of dynkv-admin members, with "
              "their liveness", r[0] and len(r[1]) == 3, f"page {r[1]}\nadmin {r[2]}")
        status = admin("status")
        hdr = js("return [document.getElementById('hdr').dataset.state,"
                 " document.getElementById('node-id').textContent,"
                 " document.getElementById('cluster-size').dataset.members,"
                 " document.getElementById('health').dataset.health]")
        check("the header: live, this node's id, 3 members, healthy",
              hdr == ["ok", status["id"], "3", "ok"], hdr)
        res = js("return [...performance.getEntriesByType('resource').map(e => e.name),"
                 " ...[...document.querySelectorAll('[src],link[href]')].map(e => e.src || e.href)]"
                 ".filter(u => !u.startsWith(location.origin + '/') && !u.startsWith('data:'))")
        check("the page loads nothing from another origin", res == [], res)
        console += d.get_log("browser")
        check("no error in the browser console after the page loaded",
              not [e for e in console if e["level"] == "SEVERE"], console)

        # --- request rate -------------------------------------------------------
        def rate():
            curl_burst(20)
            v = js("return document.getElementById('req-rate').dataset.rate")
            return v and float(v) > 0 and float(v)
        v = wait(rate, 15, 0.5)
        check(f"the request rate shows {v} ops/s > 0 after curl requests to this node", v)
        p99 = js("return document.getElementById('p99').dataset.seconds")
        check(f"the p99 of the last minute is shown ({float(p99 or 0) * 1000:.2f} ms)",
              p99 and float(p99) > 0, p99)

        # --- a node killed ---------------------------------------------------------
        liveness = ("return (document.querySelector('#members-body tr[data-member-id=\"'"
                    " + arguments[0] + '\"]') || {dataset: {}}).dataset.liveness")
        t0 = time.monotonic()
        os.kill(a.kill_pid, signal.SIGKILL)
        down = wait(lambda: js(liveness, a.kill_id) == "down", 15)
        check(f"kill -9 {a.kill_id}: the page shows it down after "
              f"{time.monotonic() - t0:.1f} s (at most 15 s)", down, js(liveness, a.kill_id))
        r = wait(lambda: members_agree()[0] and members_agree(), 10) or members_agree()
        check("... and the members table agrees with dynkv-admin members again", r[0],
              f"page {r[1]}\nadmin {r[2]}")
        dim = js("return [...document.querySelectorAll('#arcs path')]"
                 ".filter(p => p.dataset.owner === arguments[0])"
                 ".map(p => p.classList.contains('dim'))", a.kill_id)
        check(f"... the ring dims the {len(dim)} arcs it was first owner of",
              dim and all(dim), dim)
        up = js("return document.getElementById('cluster-up').textContent")
        check(f"... the header says it ({up!r})", "1 down" in up, up)
        curl_burst(20)
        time.sleep(2.5)   # one more poll: the figures of the screenshot
        h = js("return document.documentElement.scrollHeight")
        d.set_window_size(1400, min(max(h + 140, 900), 3000))
        time.sleep(0.5)
        check(f"screenshot of the page saved as {a.screenshot}", d.save_screenshot(a.screenshot))

        # --- the serving node stopped -----------------------------------------------
        state = "return document.getElementById('hdr').dataset.state"
        t0 = time.monotonic()
        os.kill(a.stop_pid, signal.SIGSTOP)
        stopped = True
        gone = wait(lambda: js(state) == "unreachable", 10)
        banner = js("return document.getElementById('banner').hidden ? '' :"
                    " document.getElementById('banner').textContent")
        stale = js("return document.getElementById('main').classList.contains('stale')")
        check(f"SIGSTOP of the serving node: the header shows it unreachable after "
              f"{time.monotonic() - t0:.1f} s (at most 10 s)", gone, js(state))
        check("... with a banner saying so, the figures greyed as stale",
              "unreachable" in banner and stale, f"banner {banner!r}, stale {stale}")
        os.kill(a.stop_pid, signal.SIGCONT)
        stopped = False
        t0 = time.monotonic()
        back = wait(lambda: js(state) == "ok", 10)
        check(f"SIGCONT: live again after {time.monotonic() - t0:.1f} s (at most 10 s)", back,
              js(state))
        console += d.get_log("browser")
        check("no error in the browser console in the whole run",
              not [e for e in console if e["level"] == "SEVERE"], console)
    finally:
        if stopped:
            os.kill(a.stop_pid, signal.SIGCONT)
        d.quit()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))   # quit the browser
    main()
