"""Keyboard and contrast checks for every console view, in Chromium (issue 21).

``check_view(page, root)`` tabs through every control of the view under ``root`` with the
keyboard and fails unless

* every visible, enabled control there is reached by Tab (nothing only a mouse can use);
* each one, when focused, shows a focus indicator (WCAG 2.1 SC 2.4.7): an outline at least
  2px wide whose colour has 3:1 or more against the background behind it (SC 1.4.11);
* all visible text under ``root`` has a contrast of 4.5:1 or more against its background
  (SC 1.4.3).

The views' tests (test_console_views.py: Verify, Inbox, Desk, Case, Chain;
test_console_signing.py: New act and the answer dialog) call it in ltr and in rtl.
"""

from __future__ import annotations

from typing import Any

#: The WCAG 2.1 relative luminance and contrast ratio ("contrast ratio" in its glossary),
#: and the first opaque background up the tree: shared by the checks below.
_COLOURS_JS = """
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const ratio = (x, y) => { const a = lum(x), b = lum(y); return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); };
  const ground = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
"""

#: Every element with its own visible text under ``root`` whose contrast is under 4.5:1.
CONTRAST_JS = (
    "(root) => {"
    + _COLOURS_JS
    + """
  const low = [];
  for (const el of document.querySelector(root).querySelectorAll("*")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length || getComputedStyle(el).visibility === "hidden") continue;
    const r = ratio(rgb(getComputedStyle(el).color).slice(0, 3), ground(el));
    if (r < 4.5) low.push(`${el.tagName}.${el.className}: ${r.toFixed(2)} "${el.textContent.trim().slice(0, 40)}"`);
  }
  return low;
}"""
)

#: Number the tabbable controls under ``root`` (data-a11y) and return how many there are.
_CONTROLS_JS = """(root) => {
  const sel = "a[href], button, input, select, textarea, summary, [tabindex]";
  let n = 0;
  for (const el of document.querySelector(root).querySelectorAll(sel)) {
    delete el.dataset.a11y;
    if (el.disabled || el.tabIndex < 0 || !el.getClientRects().length) continue;
    if (getComputedStyle(el).visibility === "hidden" || el.closest("[inert]")) continue;
    if (el.type === "radio" && !el.checked && document.querySelector(`input[type=radio][name="${el.name}"]:checked`)) continue;
    el.dataset.a11y = String(n++);
  }
  return n;
}"""

#: The focused element: its number, whether it is under ``root``, and its focus indicator.
_FOCUSED_JS = (
    "(root) => {"
    + _COLOURS_JS
    + """
  const el = document.activeElement;
  if (!el || el === document.body) return { inside: false };
  const s = getComputedStyle(el);
  const width = s.outlineStyle === "none" ? 0 : parseFloat(s.outlineWidth);
  const behind = ground(el.parentElement || el);
  return {
    inside: Boolean(document.querySelector(root).contains(el)),
    index: el.dataset.a11y ?? null,
    what: `${el.tagName.toLowerCase()}#${el.id}`,
    visible: el.matches(":focus-visible"),
    width,
    contrast: width ? ratio(rgb(s.outlineColor).slice(0, 3), behind) : 0,
  };
}"""
)


def check_view(page: Any, root: str, first: str | None = None, tabs_max: int = 600) -> None:
    """Tab through ``root``'s controls from its first (or ``first``) and check each one's
    focus indicator and the contrast of the text under ``root``; fail naming what fails."""
    count: int = page.evaluate(_CONTROLS_JS, root)
    assert count > 0, f"{root} has no control to reach"
    start = first or f"{root} [data-a11y='0']"
    page.focus(start)
    # A keyboard focus (:focus-visible): step off and back with the keyboard.
    page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")
    reached: set[str] = set()
    problems: list[str] = []
    for _ in range(tabs_max):
        now = page.evaluate(_FOCUSED_JS, root)
        if not now["inside"]:
            break
        if now["index"] is not None:
            if now["index"] in reached:
                break  # round again (a modal dialog keeps focus inside)
            reached.add(now["index"])
        if not now["visible"] or now["width"] < 2 or now["contrast"] < 3:
            problems.append(
                f"{now['what']}: focus visible {now['visible']}, outline {now['width']}px,"
                f" contrast {now['contrast']:.2f}"
            )
        page.keyboard.press("Tab")
    assert not problems, f"{root}: focus not visible enough: {problems}"
    missed = page.evaluate(
        "([root, got]) => [...document.querySelectorAll(`${root} [data-a11y]`)]"
        ".filter(e => !got.includes(e.dataset.a11y)).map(e => `${e.tagName.toLowerCase()}#${e.id}`)",
        [root, sorted(reached)],
    )
    assert missed == [], f"{root}: controls Tab does not reach: {missed}"
    low = page.evaluate(CONTRAST_JS, root)
    assert low == [], f"{root}: text under 4.5:1: {low}"
