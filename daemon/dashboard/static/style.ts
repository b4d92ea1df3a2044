/** The dashboard's stylesheet (`/style.css`): system fonts only, dark and light, phone-friendly. */
export const STYLE_CSS = `:root {
  --bg: #0d1117; --panel: #161b22; --line: #30363d; --text: #e6edf3; --dim: #9da7b3;
  --accent: #3fb950; --warn: #d29922; --bad: #f85149; --info: #58a6ff; --focus: #f0b400;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
  --sans: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
@media (prefers-color-scheme: light) {
  :root { --bg: #f6f8fa; --panel: #ffffff; --line: #d0d7de; --text: #1f2328; --dim: #59636e;
    --accent: #1a7f37; --warn: #9a6700; --bad: #cf222e; --info: #0969da; --focus: #bf8700; }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--text); font: 14px/1.45 var(--sans);
  overflow-wrap: anywhere; }
h1, h2, h3 { margin: 0; font-weight: 600; }
h1 { font-size: 1.15rem; }
h2 { font-size: 0.95rem; text-transform: uppercase; letter-spacing: 0.06em; margin-bottom: 0.5rem; }
h3 { font-size: 0.85rem; margin: 1rem 0 0.4rem; color: var(--dim); text-transform: uppercase; }
code, .mono { font-family: var(--mono); font-size: 0.92em; }
a { color: var(--info); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
.skip { position: absolute; left: 0.5rem; top: -3rem; background: var(--panel); color: var(--text);
  padding: 0.5rem 0.75rem; border: 1px solid var(--line); z-index: 10; }
.skip:focus { top: 0.5rem; }
.top { display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 1.5rem;
  padding: 0.75rem 1rem; border-bottom: 1px solid var(--line); background: var(--panel); }
.brand { display: flex; align-items: center; gap: 0.5rem; min-width: 0; }
.logo { width: 1.1rem; height: 1.1rem; fill: var(--accent); flex: none; }
.node-name { color: var(--accent); }
.ident { display: flex; flex-wrap: wrap; gap: 0.25rem 1.25rem; margin: 0; }
.ident div { display: flex; gap: 0.4rem; min-width: 0; }
.ident dt { color: var(--dim); }
.ident dd { margin: 0; }
.conn { margin: 0 0 0 auto; font-size: 0.85rem; padding: 0.15rem 0.6rem; border-radius: 999px;
  border: 1px solid var(--line); white-space: nowrap; }
.conn[data-state="live"] { color: var(--accent); border-color: var(--accent); }
.conn[data-state="reconnecting"], .conn[data-state="connecting"] { color: var(--warn); border-color: var(--warn); }
.conn[data-state="offline"] { color: var(--bad); border-color: var(--bad); }
main { padding: 1rem; max-width: 1400px; margin: 0 auto; display: grid; gap: 1rem; }
.grid { display: grid; gap: 1rem; min-width: 0; }
.grid.two { grid-template-columns: repeat(auto-fit, minmax(min(100%, 420px), 1fr)); }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
  padding: 0.9rem 1rem; min-width: 0; }
.panel.attention { border-left: 4px solid var(--warn); }
.login { max-width: 32rem; margin: 2rem auto; }
.hint, .empty { color: var(--dim); margin: 0.25rem 0 0.5rem; font-size: 0.9rem; }
.count { color: var(--dim); font-weight: 400; }
.notice, .alert { margin: 0; padding: 0.5rem 0.75rem; border-radius: 6px; border: 1px solid var(--info); }
.notice[data-kind="error"], .alert { border-color: var(--bad); color: var(--bad); }
.error { color: var(--bad); min-height: 1.2em; }
.status { min-height: 1.2em; margin: 0.5rem 0 0; }
.status[data-kind="error"] { color: var(--bad); }
.status[data-kind="ok"] { color: var(--accent); }
.cards { list-style: none; margin: 0; padding: 0; display: grid; gap: 0.75rem;
  grid-template-columns: repeat(auto-fill, minmax(min(100%, 9rem), 1fr)); }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
  padding: 0.6rem 0.75rem; min-width: 0; }
.card .label { color: var(--dim); font-size: 0.8rem; }
.card .value { font: 600 1.35rem/1.2 var(--mono); margin: 0.15rem 0; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; }
.spark { display: block; width: 100%; height: 24px; }
.spark polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.table-wrap { overflow-x: auto; max-width: 100%; }
table { width: 100%; border-collapse: collapse; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.4rem 0.5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--dim); font-weight: 500; font-size: 0.8rem; text-transform: uppercase; }
td.num { font-family: var(--mono); white-space: nowrap; }
.badge { display: inline-block; padding: 0 0.45rem; border-radius: 999px; font-size: 0.78rem;
  border: 1px solid var(--line); white-space: nowrap; }
.badge.trusted, .badge.online, .badge.delivered { color: var(--accent); border-color: var(--accent); }
.badge.pending, .badge.pending-cap-change, .badge.held, .badge.queued { color: var(--warn); border-color: var(--warn); }
.badge.blocked, .badge.offline { color: var(--bad); border-color: var(--bad); }
.held { color: var(--warn); white-space: nowrap; font-size: 0.85em; }
.dot { display: inline-block; width: 0.55rem; height: 0.55rem; border-radius: 50%; margin-right: 0.35rem;
  background: var(--bad); }
.dot.on { background: var(--accent); }
button { font: inherit; color: var(--text); background: transparent; border: 1px solid var(--line);
  border-radius: 6px; padding: 0.35rem 0.8rem; cursor: pointer; min-height: 2.25rem; }
button:hover { border-color: var(--info); }
button.primary, form button[type="submit"] { background: var(--accent); border-color: var(--accent); color: #fff; }
button.danger { color: var(--bad); border-color: var(--bad); }
button:disabled { opacity: 0.5; cursor: default; }
.pending-list { list-style: none; margin: 0; padding: 0; display: grid; gap: 0.6rem; }
.pending-list li { border: 1px solid var(--line); border-radius: 6px; padding: 0.6rem; }
.pending-list .who { display: flex; flex-wrap: wrap; gap: 0.25rem 0.75rem; align-items: baseline; }
.pending-list .actions { display: flex; flex-wrap: wrap; gap: 0.5rem; margin-top: 0.5rem; }
.diff { list-style: none; margin: 0.4rem 0 0; padding: 0; font-family: var(--mono); font-size: 0.85rem; }
.diff .add { color: var(--accent); }
.diff .del { color: var(--bad); }
.diff .same { color: var(--dim); }
form .field { display: grid; gap: 0.25rem; margin-bottom: 0.6rem; min-width: 0; }
form .field.inline { display: flex; flex-wrap: wrap; align-items: center; gap: 0.4rem 0.6rem; }
label { color: var(--dim); font-size: 0.85rem; }
input, select, textarea { font: inherit; color: var(--text); background: var(--bg);
  border: 1px solid var(--line); border-radius: 6px; padding: 0.4rem 0.5rem; max-width: 100%; min-width: 0; }
textarea { width: 100%; resize: vertical; }
select#send-peer, input#send-cap, input#feed-filter, input#token-input { width: 100%; }
fieldset.seg { border: 0; padding: 0; margin: 0 0 0.6rem; display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; }
fieldset.seg legend { color: var(--dim); font-size: 0.85rem; padding: 0; margin-bottom: 0.25rem; }
fieldset.seg label { color: var(--text); font-size: 0.9rem; }
.feed, .audit { list-style: none; margin: 0; padding: 0; max-height: 26rem; overflow-y: auto;
  font-size: 0.88rem; }
.feed li, .audit li { padding: 0.35rem 0.25rem; border-bottom: 1px solid var(--line);
  display: grid; grid-template-columns: auto 1fr; gap: 0 0.6rem; }
.feed .meta, .audit .meta { color: var(--dim); font-family: var(--mono); font-size: 0.8rem; grid-column: 1 / -1; }
.feed .text { grid-column: 1 / -1; white-space: pre-wrap; }
.feed .dir { font-family: var(--mono); }
.feed .dir.in { color: var(--info); }
.feed .dir.out { color: var(--accent); }
.feed li.gap { color: var(--warn); }
.audit .ev { font-family: var(--mono); font-weight: 600; }
.audit .details { grid-column: 1 / -1; font-family: var(--mono); font-size: 0.8rem; color: var(--dim); }
.caps { list-style: none; margin: 0; padding: 0; font-size: 0.9rem; }
.caps li { padding: 0.2rem 0; }
.foot { color: var(--dim); font-size: 0.8rem; text-align: center; padding: 1rem; }
@media (max-width: 720px) {
  body { font-size: 15px; }
  main { padding: 0.6rem; gap: 0.75rem; }
  .top { padding: 0.6rem; }
  .conn { margin-left: 0; }
  table.stack thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  table.stack, table.stack tbody, table.stack tr, table.stack td { display: block; width: 100%; }
  table.stack tr { border: 1px solid var(--line); border-radius: 6px; margin-bottom: 0.5rem; padding: 0.25rem 0; }
  table.stack td { border: 0; padding: 0.2rem 0.6rem; display: grid; grid-template-columns: 7.5rem 1fr; gap: 0.5rem;
    justify-items: start; }
  table.stack td::before { content: attr(data-label); color: var(--dim); font-size: 0.8rem; }
  table.stack td.actions::before { content: ""; }
}
`;
