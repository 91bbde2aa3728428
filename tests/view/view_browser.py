"""Drives `kinsync view` on the simulated demo rig in Debian's chromium (headless, through
chromium-driver and python3-selenium): every device streams, every check PASSes, previews update,
the 3D view has points, Record writes one complete .mkv per device, a control request without the
token or from another origin is refused, and --start-master-first shows start-order FAIL.
Screenshots go to $KS_BINARY_DIR/view-screenshots. Exit 77 (SKIP) without chromium/selenium."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
except ImportError:
    print("SKIP: python3-selenium is not installed (scripts/setup.sh installs it)")
    sys.exit(77)

KINSYNC = os.environ["KINSYNC"]
SRC = os.environ["KS_SOURCE_DIR"]
OUT = os.path.join(os.environ.get("KS_BINARY_DIR", "."), "view-screenshots")
RIG = os.path.join(SRC, "examples/rigs/demo-studio.yaml")
TOKEN = "test-token-0123456789abcdef"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROME = shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(DRIVER) or not os.path.exists(CHROME):
    print("SKIP: chromium / chromium-driver are not installed (scripts/setup.sh installs them)")
    sys.exit(77)
os.makedirs(OUT, exist_ok=True)
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def start_view(tmp, *extra):
    log = open(os.path.join(tmp, "view.log"), "w")
    p = subprocess.Popen([KINSYNC, "view", "--no-browser", "--port", "0", "--token", TOKEN, "--takes",
                          os.path.join(tmp, "takes"), "--seconds", "1200", "--previews", "2", *extra, RIG],
                         stdout=subprocess.PIPE, stderr=log, text=True)
    port = None
    t_end = time.time() + 30
    while time.time() < t_end:
        line = p.stdout.readline()
        if not line:
            break
        m = re.search(r"serving on http://127\.0\.0\.1:(\d+)/\?token=(\S+)", line)
        if m:
            port = int(m.group(1))
            assert m.group(2) == TOKEN
            break
    if port is None:
        p.kill()
        print(open(os.path.join(tmp, "view.log")).read())
        raise SystemExit("kinsync view did not print its address")
    return p, port


def stop_view(p):
    p.send_signal(2)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        check(False, "kinsync view stops on Ctrl-C within 30 s")


def browser():
    o = Options()
    o.binary_location = CHROME
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1250",
              "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist",
              "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        o.add_argument(a)
    return webdriver.Chrome(service=Service(DRIVER), options=o)


def screenshot(drv, name):
    """An artifact: a loaded machine may delay the renderer; try a few times, never fail on it."""
    for _ in range(2):
        try:
            drv.save_screenshot(os.path.join(OUT, name))
            return
        except Exception as e:
            print("note: screenshot %s: %s" % (name, str(e).splitlines()[0]))
            time.sleep(2)


def wait_for(drv, js, timeout, what):
    t_end = time.time() + timeout
    val = None
    while time.time() < t_end:
        try:
            val = drv.execute_script(js)
        except Exception as e:  # page still loading
            val = None
        if val:
            return val
        time.sleep(0.25)
    check(False, what + " (timed out after %d s; last %r)" % (timeout, val))
    return None


def request(port, path, method="GET", headers=None, host=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method, headers=headers or {})
    if host:
        req.add_header("Host", host)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


tmp = tempfile.mkdtemp(prefix="ks-view-")
drv = None
try:
    drv = browser()
    # ---- 1. the right start order ------------------------------------------------------------
    p, port = start_view(tmp)
    drv.get("http://127.0.0.1:%d/?token=%s" % (port, TOKEN))
    streaming = wait_for(drv, """const s = window.ksView && ksView.state;
        return s && s.run.state === 'running' && s.devices.length === 3 &&
               s.devices.every(d => d.state === 'streaming') &&
               document.querySelectorAll('#devices tbody tr[data-state=streaming]').length === 3""",
                         90, "every device streaming on the page")
    check(bool(streaming), "the page shows all 3 devices streaming")
    seq = drv.execute_script("return ksView.state.sequence.map(e => e.role + ':' + e.event.split(' ')[0])")
    check(seq and seq[-1].startswith("master:") and all(x.startswith("sub") for x in seq[:-1]),
          "start sequence: subordinates armed first, master last: %r" % seq)
    checks = wait_for(drv, """const v = ksView.state && ksView.state.verify;
        if (!v || v.sets < 20) return null;
        const li = [...document.querySelectorAll('#checks li')];
        return li.length ? li.map(l => l.dataset.check + '=' + l.dataset.status) : null""", 60, "checks on the page")
    if checks:
        check(all(c.endswith("=PASS") for c in checks), "every check PASS on the page: %s" % ", ".join(checks))
        check(any(c.startswith("start-order=") for c in checks), "the start-order check is shown")
    before = drv.execute_script("return [ksView.previewSeq, ksView.previewsLoaded]")
    time.sleep(3)
    after = drv.execute_script("return [ksView.previewSeq, ksView.previewsLoaded]")
    check(after[0] > before[0] and after[1] >= before[1] + 9,
          "previews update (frame set %d -> %d, images loaded %d -> %d)" % (before[0], after[0], before[1], after[1]))
    sizes = drv.execute_script("return [...document.querySelectorAll('#previews img')].map(i => i.dataset.loaded || '')")
    check(len(sizes) == 9 and all(re.match(r"[1-9][0-9]*x[1-9]", w) for w in sizes),
          "9 previews (colour, depth, IR x 3 devices) decoded: %r" % sizes)
    pts = wait_for(drv, "return ksView.webgl && ksView.drawn > 1000 ? ksView.drawn : 0", 30, "3D points drawn")
    check(bool(pts), "the 3D view draws %s points (WebGL)" % pts)
    # the laser timeline: every device's pulses planned and measured, the measured ones where planned
    lz = wait_for(drv, """const s = ksView.state, v = s && s.verify;
        if (!s || !s.laser || !v || v.sets < 20) return null;
        return {laser: s.laser, measured: v.devices.map(d => [d.name, d.laser_start_us]),
                planned: document.querySelectorAll('#laserchart rect.planned').length,
                drawn: document.querySelectorAll('#laserchart rect.measured').length}""", 60, "the laser timeline")
    if lz:
        n = len(lz["laser"]["devices"]) * lz["laser"]["pulses"]
        check(lz["planned"] == n and lz["drawn"] == n,
              "laser timeline draws %d planned and %d measured pulses (want %d each)" % (lz["planned"], lz["drawn"], n))
        # the plan fixes the trains relative to each other: measured minus planned is one constant
        plan = {d["name"]: d["planned_us"] for d in lz["laser"]["devices"]}
        P = lz["laser"]["period_us"]
        off = [(m - plan[name]) % P for name, m in lz["measured"] if m is not None]
        errs = [abs((o - off[0] + P / 2) % P - P / 2) for o in off]
        check(len(errs) == 3 and max(errs) < 20,
              "measured laser trains where planned relative to each other (within 20 us): %s" % ["%.1f" % e for e in errs])
    time.sleep(1)
    screenshot(drv, "view-streaming.png")
    # ---- 2. record a take from the page ----------------------------------------------------------
    drv.find_element(By.ID, "take-name").clear()
    drv.find_element(By.ID, "take-name").send_keys("take-from-page")
    drv.find_element(By.ID, "take-seconds").clear()
    drv.find_element(By.ID, "take-seconds").send_keys("2")
    drv.find_element(By.ID, "btn-record").click()
    done = wait_for(drv, """const t = ksView.state && ksView.state.record.takes.find(t => t.name === 'take-from-page');
        return t ? t : null""", 180, "the take completes")
    if done:
        check(done["complete"] and len(done["files"]) == 3, "take complete with 3 files: %s" % json.dumps(done))
        takedir = os.path.join(tmp, "takes", "take-from-page")
        names = sorted(os.listdir(takedir)) if os.path.isdir(takedir) else []
        check(len(names) == 3 and all(n.endswith(".mkv") for n in names), "one .mkv per device, no .part: %r" % names)
        for n in names:
            r = subprocess.run([KINSYNC, "info", "--json", os.path.join(takedir, n)], capture_output=True, text=True)
            check(r.returncode == 0, "kinsync info reads %s" % n)
            try:
                frames = json.loads(r.stdout)
            except ValueError:
                frames = None
            check(frames is not None, "kinsync info --json parses %s" % n)
        time.sleep(0.5)
        screenshot(drv, "view-take.png")
    # ---- 3. control without the token / from another origin is refused -------------------------------
    st = drv.execute_script("""const r = await fetch('/api/control/stop', {method: 'POST'}); return r.status""")
    check(st == 403, "page fetch without the token refused: %s" % st)
    check(request(port, "/api/control/stop", "POST", {"Origin": "http://evil.example"}) == 403,
          "token-less POST from another origin refused")
    check(request(port, "/api/control/stop", "POST", {"Origin": "http://evil.example", "X-Kinsync-Token": TOKEN}) == 403,
          "POST with the token but from another origin refused")
    check(request(port, "/api/state", host="evil.example:%d" % port) == 403, "foreign Host header refused (DNS rebinding)")
    check(request(port, "/api/control/stop", "GET", {"X-Kinsync-Token": TOKEN}) == 405, "control by GET refused")
    check(drv.execute_script("return ksView.state.run.state") == "running", "the rig still runs after the refused requests")
    stop_view(p)
    # ---- 4. the classic mistake: master first ----------------------------------------------------
    p, port = start_view(tmp, "--start-master-first")
    drv.get("http://127.0.0.1:%d/?token=%s" % (port, TOKEN))
    fail = wait_for(drv, """const li = document.querySelector('#checks li[data-check="start-order"]');
        return li && li.dataset.status === 'FAIL' ? li.textContent : null""", 120, "start-order FAIL on the page")
    check(bool(fail), "--start-master-first: start-order FAIL on the page (%s)" % (fail or "")[:160])
    seq = drv.execute_script("return ksView.state.sequence.map(e => e.role)")
    check(seq and seq[0] == "master", "start sequence shows the master first: %r" % seq)
    time.sleep(0.5)
    screenshot(drv, "view-master-first.png")
    stop_view(p)
finally:
    if drv:
        drv.quit()
    shutil.rmtree(tmp, ignore_errors=True)

print("screenshots in", OUT)
if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("PASS")
