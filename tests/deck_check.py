"""Render a reveal.js deck in headless Chromium (network off) at 1280x720 and measure every slide.

Used by the export tests and by hand: `python tests/deck_check.py slides/cnnlab.html` prints one
line per slide and exits 1 if any slide overflows, shows stderr or lacks speaker notes.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Runs after reveal.js is ready: shows each slide in turn (so it has a layout), lets the deck's own
# figure fitting run, and records how far the content reaches past the 1280x720 slide.
MEASURE = """
<script>
(function () {
  function measure() {
    var out = [], cfg = Reveal.getConfig();
    Reveal.getSlides().forEach(function (s) {
      var at = Reveal.getIndices(s);
      Reveal.slide(at.h, at.v);
      if (typeof fitFigures === 'function') { fitFigures(s); }
      var title = s.querySelector('h1, h2');
      var notes = s.querySelector('aside.notes');
      var cut = [];  // inner boxes that clip or scroll their content (a wide table, a long output)
      s.querySelectorAll('*').forEach(function (el) {
        var style = getComputedStyle(el);
        if (el.closest('aside.notes') || (style.overflowX === 'visible' && style.overflowY === 'visible')) { return; }
        if (el.scrollWidth > el.clientWidth + 2 || el.scrollHeight > el.clientHeight + 2) {
          cut.push(el.tagName.toLowerCase() + '.' + String(el.className).split(' ')[0]);
        }
      });
      out.push({title: title ? title.textContent.replace('¶', '').trim() : '',
                over_y: s.scrollHeight - cfg.height, over_x: s.scrollWidth - cfg.width,
                stderr: s.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]').length,
                notes: notes ? notes.textContent.trim() : '', cut: cut});
    });
    var pre = document.createElement('pre');
    pre.id = 'cnnlab-check';
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  }
  if (Reveal.isReady()) { measure(); } else { Reveal.on('ready', measure); }
})();
</script>
"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def measure_deck(deck: Path, browser: str) -> list[dict]:
    """One record per slide: title, px past the bottom/right edge, stderr outputs, notes text."""
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "deck.html"
        page.write_text(Path(deck).read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"), encoding="utf-8")
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={Path(tmp) / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND",
               "--window-size=1280,720", "--virtual-time-budget=20000", "--dump-dom", page.as_uri()]
        dom = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    found = re.search(r'<pre id="cnnlab-check">(.*?)</pre>', dom, re.S)
    if not found:
        raise RuntimeError("the deck did not report its slides (reveal.js failed to start?)")
    return json.loads(html.unescape(found.group(1)))


def problems(slides: list[dict], tolerance: int = 2) -> list[str]:
    out = []
    for i, s in enumerate(slides, start=1):
        where = f"slide {i} ({s['title'][:50]!r})"
        if s["over_y"] > tolerance or s["over_x"] > tolerance:
            out.append(f"{where} overflows by {max(s['over_y'], 0)} px down, {max(s['over_x'], 0)} px right")
        if s["cut"]:
            out.append(f"{where} cuts or scrolls content in {', '.join(s['cut'][:3])}")
        if s["stderr"]:
            out.append(f"{where} shows {s['stderr']} stderr output(s)")
        if not s["notes"]:
            out.append(f"{where} has no speaker notes")
    return out


if __name__ == "__main__":
    browser = chromium()
    if browser is None:
        sys.exit("chromium is not installed (apt-get install chromium)")
    slides = measure_deck(Path(sys.argv[1]), browser)
    for i, s in enumerate(slides, start=1):
        print(f"{i:2d} over_y={s['over_y']:5d} over_x={s['over_x']:5d} notes={len(s['notes']):4d}  {s['title'][:90]}")
    issues = problems(slides)
    print("\n".join(issues) or f"{len(slides)} slides: all fit 1280x720, none shows stderr, all have notes")
    sys.exit(1 if issues else 0)
