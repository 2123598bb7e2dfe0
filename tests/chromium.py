"""Render an HTML file in the OS's headless Chromium (no browser download, no network).

:func:`check_page` loads a copy of the page with a probe script first in ``<head>`` (its hash
added to the page's Content-Security-Policy, which stays otherwise as written): the probe
records uncaught errors, console errors and CSP violations, and after ``load`` every
``img.plot``'s load state and natural size, and whether clicking a sortable table's header
sorts its rows. Chromium's ``--dump-dom`` returns the DOM with the probe's JSON in it.
:func:`screenshot` takes a full-width PNG of the unmodified page.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--mute-audio",
]  # fmt: skip

PROBE = """
(function () {
  var out = {errors: [], violations: [], plots: [], sorted: null};
  window.__probe = out;
  window.addEventListener("error", function (e) {
    out.errors.push(String(e.message || e.type) + " @" + (e.filename || "") + ":" + e.lineno);
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    out.errors.push("unhandled rejection: " + String(e.reason));
  });
  document.addEventListener("securitypolicyviolation", function (e) {
    out.violations.push(e.violatedDirective + " " + e.blockedURI);
  });
  var cerr = console.error;
  console.error = function () {
    out.errors.push("console.error: " + Array.prototype.join.call(arguments, " "));
    return cerr.apply(console, arguments);
  };
  window.addEventListener("load", function () {
    document.querySelectorAll("img.plot").forEach(function (img) {
      out.plots.push({name: img.getAttribute("data-plot"), complete: img.complete,
                      width: img.naturalWidth, height: img.naturalHeight});
    });
    var t = document.querySelector("table.sortable");
    if (t) {
      var th = t.querySelectorAll("thead th"), col = -1;
      for (var i = 0; i < th.length; i++) { if (th[i].textContent === "trades") col = i; }
      if (col >= 0) {
        th[col].click();
        var v = Array.prototype.map.call(t.tBodies[0].rows, function (r) {
          return parseFloat(r.cells[col].getAttribute("data-v"));
        });
        var ok = true;
        for (var k = 1; k < v.length; k++) { if (v[k] < v[k - 1]) ok = false; }
        out.sorted = ok;
      }
    }
    var pre = document.createElement("pre");
    pre.id = "__probe";
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  });
})();
"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(args: list[str], timeout: float = 120.0) -> subprocess.CompletedProcess:
    exe = find_chromium()
    if exe is None:
        raise RuntimeError("no chromium on PATH (.ci/run installs Debian's chromium package)")
    with tempfile.TemporaryDirectory(prefix="bm-chromium-") as profile:
        env = {**os.environ, "HOME": profile}
        return subprocess.run(
            [exe, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=timeout, env=env, check=False,
        )  # fmt: skip


def check_page(page: Path) -> dict:
    """Load ``page`` with the probe; returns the probe's findings (errors, violations, plots,
    sorted) and Chromium's console lines reporting errors."""
    text = page.read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(PROBE.encode()).digest()).decode()
    text, n = re.subn(r"script-src ", f"script-src 'sha256-{digest}' ", text, count=1)
    if n != 1:
        raise AssertionError("the page has no script-src in its Content-Security-Policy")
    text = text.replace("<head>", f"<head><script>{PROBE}</script>", 1)
    with tempfile.TemporaryDirectory(prefix="bm-page-") as tmp:
        probe_page = Path(tmp) / "page.html"
        probe_page.write_text(text, encoding="utf-8")
        done = _run([
            "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
            "--dump-dom", probe_page.as_uri(),
        ])  # fmt: skip
    found = re.search(r'<pre id="__probe">(.*?)</pre>', done.stdout, re.S)
    if found is None:
        raise AssertionError(
            f"the probe did not report (exit {done.returncode}): {done.stderr[-2000:]}"
        )
    import html

    result = json.loads(html.unescape(found.group(1)))
    result["console_errors"] = [
        line for line in done.stderr.splitlines() if "CONSOLE" in line and "Uncaught" in line
    ]
    return result


def screenshot(page: Path, png: Path, width: int = 1200, height: int = 4000) -> Path:
    """A PNG screenshot of ``page`` (the top ``height`` pixels at ``width``)."""
    done = _run([
        f"--window-size={width},{height}", "--hide-scrollbars", "--virtual-time-budget=10000",
        f"--screenshot={png}", page.as_uri(),
    ])  # fmt: skip
    if not png.exists():
        raise AssertionError(f"no screenshot (exit {done.returncode}): {done.stderr[-2000:]}")
    return png
