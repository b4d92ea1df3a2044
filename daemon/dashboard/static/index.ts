/**
 * The dashboard page (served at `/` and `/index.html`). Static: it holds no data and no token;
 * app.js fills it in over the authenticated API and WebSocket. No inline script or style (the
 * CSP allows only same-origin files), no third-party assets, no web fonts.
 */
export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="color-scheme" content="dark light">
<title>ironmesh dashboard</title>
<link rel="stylesheet" href="/style.css">
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="manifest" href="/manifest.json">
<script src="/app.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <div class="brand">
    <svg class="logo" viewBox="0 0 16 16" aria-hidden="true" focusable="false"><path d="M8 1 15 8 8 15 1 8Z"/></svg>
    <h1>ironmesh <span id="node-name" class="node-name"></span></h1>
  </div>
  <dl class="ident">
    <div><dt>node id</dt><dd id="node-id" class="mono">—</dd></div>
    <div><dt>uptime</dt><dd id="uptime">—</dd></div>
    <div><dt>version</dt><dd id="version">—</dd></div>
    <div><dt>gate</dt><dd id="gate">—</dd></div>
  </dl>
  <p id="conn" class="conn" data-state="connecting" role="status" aria-live="polite">connecting…</p>
</header>

<section id="login" class="panel login" aria-labelledby="login-h" hidden>
  <h2 id="login-h">Dashboard token</h2>
  <p>Open the URL <code>ironmesh run --gui</code> printed at startup, or paste its token here.
  The token is new at every start and is kept only in this tab.</p>
  <form id="login-form" autocomplete="off">
    <div class="field">
      <label for="token-input">Token</label>
      <input id="token-input" name="token" type="password" spellcheck="false" required>
    </div>
    <button type="submit">Open dashboard</button>
    <p id="login-error" class="error" role="alert"></p>
  </form>
</section>

<main id="main" hidden>
  <p id="notice" class="notice" role="status" aria-live="polite" hidden></p>
  <p id="readonly" class="alert" role="alert" hidden></p>

  <section aria-labelledby="cards-h">
    <h2 id="cards-h" class="sr-only">Metrics</h2>
    <ul id="cards" class="cards"></ul>
  </section>

  <div class="grid two">
    <section id="pending-trust-panel" class="panel attention" aria-labelledby="pt-h">
      <h2 id="pt-h" tabindex="-1">Pending trust <span id="pt-count" class="count"></span></h2>
      <p class="hint">New peers wait here; their messages are held until you promote them.</p>
      <ul id="pending-trust" class="pending-list"></ul>
      <p id="pending-trust-empty" class="empty">No peer is waiting for approval.</p>
    </section>
    <section id="pending-cap-panel" class="panel attention" aria-labelledby="pc-h">
      <h2 id="pc-h" tabindex="-1">Pending capability change <span id="pc-count" class="count"></span></h2>
      <p class="hint">A trusted peer announced a different capability set; its messages are held.</p>
      <ul id="pending-cap" class="pending-list"></ul>
      <p id="pending-cap-empty" class="empty">No capability change is waiting.</p>
    </section>
  </div>

  <section class="panel" aria-labelledby="peers-h">
    <h2 id="peers-h" tabindex="-1">Peers <span id="peers-count" class="count"></span></h2>
    <div class="table-wrap">
      <table id="peers" class="stack">
        <thead><tr>
          <th scope="col">Name</th><th scope="col">ID</th><th scope="col">Address</th>
          <th scope="col">Transport</th><th scope="col">Trust</th><th scope="col">RTT</th>
          <th scope="col">Traffic</th><th scope="col">Last seen</th>
          <th scope="col"><span class="sr-only">Actions</span></th>
        </tr></thead>
        <tbody></tbody>
      </table>
    </div>
    <p id="peers-empty" class="empty">No peers yet.</p>
  </section>

  <div class="grid two">
    <section class="panel" aria-labelledby="send-h">
      <h2 id="send-h">Send a message</h2>
      <form id="send-form" autocomplete="off">
        <fieldset class="seg">
          <legend>To</legend>
          <label><input type="radio" name="mode" value="peer" checked> a peer</label>
          <label><input type="radio" name="mode" value="capability"> a capability</label>
        </fieldset>
        <div class="field" id="to-peer-field">
          <label for="send-peer">Peer</label>
          <select id="send-peer" name="peer"></select>
        </div>
        <div class="field" id="to-cap-field" hidden>
          <label for="send-cap">Capability pattern</label>
          <input id="send-cap" name="capability" placeholder="e.g. llm:*" spellcheck="false">
        </div>
        <div class="field inline">
          <label for="send-type">Type</label>
          <select id="send-type" name="type"><option>MSG</option><option>REQ</option><option>RESP</option></select>
          <label for="send-priority">Priority</label>
          <select id="send-priority" name="priority"><option>LOW</option><option selected>NORMAL</option><option>HIGH</option><option>CRITICAL</option></select>
        </div>
        <div class="field">
          <label for="send-text">Message</label>
          <textarea id="send-text" name="text" rows="3" required></textarea>
        </div>
        <button type="submit" id="send-button">Send</button>
        <p id="send-status" class="status" role="status" aria-live="polite"></p>
      </form>
    </section>

    <section class="panel" aria-labelledby="feed-h">
      <h2 id="feed-h">Messages</h2>
      <div class="field">
        <label for="feed-filter">Filter</label>
        <input id="feed-filter" type="search" placeholder="text, peer or /regex/" spellcheck="false">
      </div>
      <ol id="feed" class="feed" role="log" aria-label="Message feed"></ol>
      <p id="feed-empty" class="empty">No messages yet.</p>
    </section>
  </div>

  <div class="grid two">
    <section class="panel" aria-labelledby="routes-h">
      <h2 id="routes-h">Routes</h2>
      <p id="routes-note" class="hint"></p>
      <div class="table-wrap">
        <table id="routes" class="stack">
          <thead><tr>
            <th scope="col">Destination</th><th scope="col">Next hop</th><th scope="col">Cost</th>
            <th scope="col">Learned from</th><th scope="col">Updated</th>
          </tr></thead>
          <tbody></tbody>
        </table>
      </div>
      <p id="routes-empty" class="empty">No routes.</p>
      <h3>Capabilities</h3>
      <ul id="caps" class="caps"></ul>
      <p id="caps-empty" class="empty">No capabilities are advertised.</p>
    </section>

    <section class="panel" aria-labelledby="audit-h">
      <h2 id="audit-h">Audit log</h2>
      <ol id="audit" class="audit" aria-label="Latest audit entries"></ol>
      <p id="audit-empty" class="empty">No entries yet.</p>
    </section>
  </div>
</main>
<footer class="foot"><span>ironmesh operator dashboard · local only · no third-party assets</span></footer>
</body>
</html>
`;

/** The icon (also the PWA icon). */
export const FAVICON_SVG =
  `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path fill="#3fb950" d="M8 1 15 8 8 15 1 8Z"/></svg>\n`;

/** The PWA manifest. */
export const MANIFEST_JSON = JSON.stringify(
  {
    name: "ironmesh dashboard",
    short_name: "ironmesh",
    start_url: "/",
    display: "standalone",
    background_color: "#0d1117",
    theme_color: "#0d1117",
    icons: [{ src: "/favicon.svg", sizes: "any", type: "image/svg+xml" }],
  },
  null,
  2,
) + "\n";
