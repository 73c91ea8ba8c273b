"""The session page's inline style sheet (session_html.py): no fonts, images or URLs, so the
page looks the same offline and under its CSP."""

STYLE = """
:root { color-scheme: light; --line: #d0d7de; --muted: #57606a; }
body { font: 15px/1.5 system-ui, sans-serif; color: #1f2328; background: #f6f8fa;
  max-width: 60rem; margin: 0 auto; padding: 1rem; }
header, section.turn, div.compaction { background: #fff; border: 1px solid var(--line);
  border-radius: 6px; padding: 0.75rem 1rem; margin: 0 0 0.75rem; }
h1 { font-size: 1.3rem; margin: 0 0 0.5rem; overflow-wrap: anywhere; }
h2 { font-size: 0.95rem; margin: 0 0 0.5rem; color: var(--muted); }
h2 .number { display: inline-block; min-width: 2rem; }
dl.session { display: grid; grid-template-columns: max-content 1fr; gap: 0.1rem 1rem; margin: 0; }
dl.session dt { color: var(--muted); }
dl.session dd { margin: 0; overflow-wrap: anywhere; }
section.user { border-left: 4px solid #0969da; }
section.assistant { border-left: 4px solid #8250df; }
section.tool { border-left: 4px solid #57606a; }
div.compaction { text-align: center; color: var(--muted); font-style: italic; }
.content { white-space: pre-wrap; overflow-wrap: anywhere; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0.25rem 0;
  font: 13px/1.45 ui-monospace, monospace; }
code { font: 13px ui-monospace, monospace; background: #eff1f3; padding: 0 0.2rem;
  border-radius: 3px; overflow-wrap: anywhere; }
details { border: 1px solid var(--line); border-radius: 4px; margin: 0.4rem 0;
  padding: 0.2rem 0.5rem; background: #fbfcfd; }
details > summary { cursor: pointer; color: var(--muted); overflow-wrap: anywhere; }
details.thinking > pre { color: #57606a; font-style: italic; }
details.error > summary .kind, .flag { color: #cf222e; font-weight: 600; }
div.call { border-top: 1px dashed var(--line); margin-top: 0.5rem; padding-top: 0.4rem; }
div.call-head { font-weight: 600; }
span.tool { font-family: ui-monospace, monospace; }
dl.arguments { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 0.75rem;
  margin: 0.3rem 0; }
dl.arguments dt { font-family: ui-monospace, monospace; color: var(--muted); }
dl.arguments dd { margin: 0; min-width: 0; }
dl.arguments pre { background: #eff1f3; padding: 0.3rem 0.5rem; border-radius: 3px; }
pre.diff { border: 1px solid var(--line); border-radius: 4px; padding: 0.3rem 0; }
pre.diff span { display: block; padding: 0 0.5rem; }
pre.diff .add { background: #dafbe1; color: #116329; }
pre.diff .del { background: #ffebe9; color: #82071e; }
pre.diff .hunk { color: #0550ae; background: #ddf4ff; }
pre.diff .meta { color: var(--muted); font-weight: 600; }
p.note { color: var(--muted); font-size: 0.85rem; margin: 0.3rem 0 0; }
p.usage { color: var(--muted); font-size: 0.85rem; margin: 0.5rem 0 0; }
img.image { max-width: 100%; border: 1px solid var(--line); }
footer { color: var(--muted); font-size: 0.8rem; text-align: center; }
"""
