"""The run tree reads well in the light and dark themes, in JupyterLab and in Notebook 7 (the saved
notebook reopened there): every visible piece of text in a finished run (status pill, badges, timeline
labels, durations and tokens, links, buttons, a failed cell's traceback, a failed sub-call) has a WCAG
contrast ratio of at least 4.5:1 against what is behind it (3:1 for large text). Disabled controls are
exempt, as WCAG exempts inactive components."""

from __future__ import annotations

import re
from typing import Any

import pytest
from labkit import Lab, shot
from test_run_tree import ROOT, FakeAnthropic, magic, open_notebook, run_cell

from rlm_kernel.testing import by_question

pytestmark = pytest.mark.browser

ROOT_SCRIPT = [
    "Split, ask, check.\n```repl\nparts = context.split('|')\n"
    "res = llm_query_batched([f'count in {p}' for p in parts])\nprint(res)\n"
    "checked = rlm_query('Check the parts', context=str(res))\nprint('child said:', checked)\n```",
    "Now a cell that fails.\n```repl\ntotal = sum(int(r) for r in res if r.isdigit())\n1/0\n```",
    "FINAL(There are **8** widgets, see [the counts](https://example.invalid/counts) and `total`.)",
]
CHILD_SCRIPT = ["Looking.\n```repl\nprint('child step', len(context))\n```", "FINAL(the parts look right)"]


# Every element of the run view with text of its own (or an SVG text), visible, not disabled: its
# colour (fill for SVG) composited over the backgrounds behind it, with the opacity of its ancestors.
CONTRAST = r"""(root) => {
  const canvas = document.createElement('canvas'); canvas.width = canvas.height = 1;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const rgba = (css) => { ctx.clearRect(0, 0, 1, 1); ctx.fillStyle = 'rgba(0,0,0,0)'; ctx.fillStyle = css;
    ctx.fillRect(0, 0, 1, 1); const d = ctx.getImageData(0, 0, 1, 1).data; return [d[0], d[1], d[2], d[3] / 255]; };
  const over = (top, below) => { const a = top[3] + below[3] * (1 - top[3]);
    if (a === 0) return [0, 0, 0, 0];
    return [0, 1, 2].map(i => (top[i] * top[3] + below[i] * below[3] * (1 - top[3])) / a).concat([a]); };
  const background = (el) => {
    const layers = [];
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
      const c = rgba(getComputedStyle(n).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let bg = [255, 255, 255, 1];
    for (const c of layers.reverse()) bg = over(c, bg);
    return bg;
  };
  const lum = (c) => { const f = v => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const name = (el) => {
    const own = [...el.classList].filter(c => /^(rlm|jp|ansi|cm|tok)/.test(c)).slice(0, 3).join('.');
    const inRlm = el.closest('[class*="rlm-"]:not(.rlm-renderer)');
    const where = inRlm && inRlm !== el ? [...inRlm.classList].find(c => c.startsWith('rlm-')) : '';
    const state = el.dataset.state ? `[data-state=${el.dataset.state}]` : '';
    const failed = el.closest('.rlm-sub-failed') ? 'rlm-sub-failed ' : '';
    return `${failed}${where ? where + ' ' : ''}${el.tagName.toLowerCase()}${own ? '.' + own : ''}${state}`; };
  const out = [];
  for (const el of root.querySelectorAll('*')) {
    const svgText = el instanceof SVGTextElement;
    const text = svgText ? el.textContent : [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.data).join('');
    if (!text.trim() || el.closest('.rlm-sr-only, :disabled, title, style, script')) continue;
    const r = el.getBoundingClientRect();
    if (r.width < 2 || r.height < 2 || !el.checkVisibility({ checkOpacity: true, visibilityProperty: true })) continue;
    const cs = getComputedStyle(el);
    let alpha = 1;
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) alpha *= Number(getComputedStyle(n).opacity);
    const fg0 = rgba(svgText ? cs.fill : cs.color);
    const bg = background(el);
    const fg = over([fg0[0], fg0[1], fg0[2], fg0[3] * alpha], bg);
    const size = parseFloat(cs.fontSize), weight = Number(cs.fontWeight) || 400;
    const large = size >= 24 || (size >= 18.66 && weight >= 700);
    out.push({ name: name(el), text: text.trim().slice(0, 40), ratio: Math.round(ratio(fg, bg) * 100) / 100,
               need: large ? 3 : 4.5, fg: fg.slice(0, 3).map(Math.round), bg: bg.slice(0, 3).map(Math.round) });
  }
  return out;
}"""

PILL_STATES = ("running", "pausing", "paused", "done", "failed", "stopped", "budget")


def use_theme(page: Any, theme: str) -> None:
    """Pick a theme the way a person does: Settings → Theme → the theme."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel", has_text="Theme").first.click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{theme}$")).click()
    page.locator(f"body[data-jp-theme-name='{theme}']").wait_for(state="attached", timeout=30_000)
    page.wait_for_timeout(500)  # the theme's stylesheet applied, the tree's colours follow


def measured(run: Any) -> list[dict[str, Any]]:
    """The whole tree as it is, then the status pill in each state it can show."""
    items = run.evaluate(CONTRAST)
    pill = run.locator("[data-testid='rlm-status']")
    for state in PILL_STATES:
        pill.evaluate("(p, s) => { p.dataset.state = s; }", state)
        items += [i for i in pill.evaluate(f"el => ({CONTRAST})(el.parentElement)") if "rlm-status" in i["name"]]
    pill.evaluate("p => { p.dataset.state = 'done'; }")
    return items


@pytest.mark.parametrize("lab", ["perCommTarget"], indirect=True, ids=["subshells"])
def test_every_text_in_the_tree_has_enough_contrast_in_light_and_dark(lab: Lab, page: Any) -> None:
    from playwright.sync_api import expect

    with FakeAnthropic(root_model=ROOT) as srv:
        srv.route(root=by_question(ROOT_SCRIPT, {"Check the parts": CHILD_SCRIPT}), sub="4")
        srv.inject(400, times=1, message="part C could not be read",
                   match=lambda r: r.last_user_text().strip() == "count in box C")
        url = lab.notebook("theme.ipynb", ["context = 'box A|box B|box C'", magic(srv, "How many widgets?")])
        open_notebook(page, url)
        use_theme(page, "JupyterLab Light")
        run_cell(page, 0, wait=True)
        run_cell(page, 1)
        run = page.locator("[data-testid='rlm-run']")
        expect(run.locator("[data-testid='rlm-status']")).to_have_text("done", timeout=90_000)
        expect(run.locator("[data-testid='rlm-errors']")).to_contain_text("1 failed cell")
        run.locator("[data-testid='rlm-export']").click()
        expect(run.locator("[data-testid='rlm-export-link']")).to_be_visible(timeout=15_000)
        run.locator("[data-testid='rlm-expand-all']").click()
        failed_sub = run.locator(".rlm-sub-failed")
        expect(failed_sub).to_have_count(1)
        failed_sub.locator(".rlm-sub-head").click()
        expect(run.locator(".rlm-outputs .jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']")) \
            .to_contain_text("ZeroDivisionError")
        page.mouse.move(0, 0)

        report: dict[str, list[str]] = {}
        for theme, tag in (("JupyterLab Light", "light"), ("JupyterLab Dark", "dark")):
            if tag == "dark":
                use_theme(page, theme)
                page.mouse.move(0, 0)
            items = measured(run)
            names = {i["name"] for i in items}
            # the test saw what it means to check
            for wanted in ("rlm-status", "rlm-badge-err", "rlm-tl-label", "rlm-hint", "rlm-btn", "rlm-export-link",
                           "ansi-", "rlm-answer", "rlm-meta", "rlm-sub-failed"):
                assert any(wanted in n for n in names), (tag, wanted, sorted(names))
            low = {f"{i['name']} {i['text']!r}: {i['ratio']} (fg {i['fg']} on {i['bg']})"
                   for i in items if i["ratio"] < i["need"]}
            print(f"{tag}: {len(items)} text elements, lowest ratio {min(i['ratio'] for i in items)}")
            report[tag] = sorted(low)
            run.evaluate("el => el.scrollIntoView({ block: 'start' })")
            shot(page, f"theme-{tag}-1-top")
            shot(page, f"theme-{tag}-2-traceback", run.locator(".rlm-tree > [data-step='2']"))

        # The saved notebook in Notebook 7, which draws the tree with the same extension and theme variables.
        page.locator(".jp-Notebook").click()
        page.keyboard.press("Control+s")
        expect(page.locator(".jp-mod-dirty")).to_have_count(0, timeout=10_000)
        lab.end_sessions()
        page.goto(lab.url + "/notebooks/theme.ipynb")
        again = page.locator("[data-testid='rlm-run']")
        expect(again.locator("[data-testid='rlm-status']")).to_have_text("done", timeout=60_000)
        again.locator("[data-testid='rlm-expand-all']").click()
        again.locator(".rlm-sub-failed .rlm-sub-head").click()
        for theme, tag in (("JupyterLab Dark", "notebook7-dark"), ("JupyterLab Light", "notebook7-light")):
            use_theme(page, theme)
            page.mouse.move(0, 0)
            items = measured(again)
            names = {i["name"] for i in items}
            for wanted in ("rlm-status", "rlm-badge-err", "rlm-tl-label", "rlm-hint", "ansi-", "rlm-answer"):
                assert any(wanted in n for n in names), (tag, wanted, sorted(names))
            print(f"{tag}: {len(items)} text elements, lowest ratio {min(i['ratio'] for i in items)}")
            report[tag] = sorted(f"{i['name']} {i['text']!r}: {i['ratio']} (fg {i['fg']} on {i['bg']})"
                                 for i in items if i["ratio"] < i["need"])
            shot(page, f"theme-{tag}", again)
        print("\n".join(f"{tag}: {line}" for tag, lines in report.items() for line in lines))
        assert not any(report.values()), "\n".join(
            f"{tag}: {line}" for tag, lines in report.items() for line in lines)
