/**
 * The dashboard page's script. It is served as `/app.js` from the function's own source text
 * (`(${dashboardApp})()`, see assets.ts): Deno strips the types when it runs from source and
 * `deno bundle` does when it builds dist/ironmesh.js, so the page needs no build step of its
 * own. Hence the rule for this file: `dashboardApp` must be self-contained — no imports and
 * no references to anything outside its body.
 *
 * Token: taken from `?token=` on the first visit, kept in sessionStorage (this origin, this
 * tab only) and removed from the address bar with history.replaceState. It is sent as
 * `Authorization: Bearer` to the API and as a WebSocket subprotocol to `/ws`, so it never
 * appears in a URL again. Everything shown is built with textContent (never innerHTML).
 *
 * Types: the program is type-checked together with the daemon under Deno's own lib, whose
 * WebSocket differs from the DOM's, so the few DOM calls the page makes are typed by the small
 * local interfaces below rather than by `lib="dom"`.
 */
export function dashboardApp(): void {
  const TOKEN_KEY = "ironmesh.dashboard.token";
  const WS_PROTOCOL = "ironmesh.v1";
  const WS_TOKEN_PREFIX = "ironmesh.bearer.";
  const FEED_MAX = 300;
  const AUDIT_MAX = 100;
  const SERIES_MAX = 90;

  /** The DOM as this page uses it. */
  interface El extends EventTarget {
    className: string;
    textContent: string | null;
    hidden: boolean;
    value: string;
    dataset: Record<string, string | undefined>;
    children: { length: number };
    scrollHeight: number;
    scrollTop: number;
    clientHeight: number;
    setAttribute(name: string, value: string): void;
    append(...nodes: (El | string)[]): void;
    replaceChildren(...nodes: (El | string)[]): void;
    querySelector(selector: string): El | null;
    querySelectorAll(selector: string): Iterable<El>;
    closest(selector: string): El | null;
    contains(other: El | null): boolean;
    focus(): void;
  }
  interface Doc extends EventTarget {
    title: string;
    readyState: string;
    activeElement: El | null;
    getElementById(id: string): El | null;
    createElement(tag: string): El;
    createElementNS(ns: string, tag: string): El;
    querySelector(selector: string): El | null;
    querySelectorAll(selector: string): Iterable<El>;
  }
  interface Page {
    document: Doc;
    history: { state: unknown; replaceState(state: unknown, title: string, url: string): void };
    CSS: { escape(s: string): string };
  }
  const page = globalThis as unknown as Page;
  const document = page.document;
  const history = page.history;

  interface Peer {
    node_id: string;
    name: string;
    address: string;
    online: boolean;
    transport_type: string;
    trust_gate_state: string;
    latency_ms: number | null;
    bytes_sent_total: number;
    bytes_received_total: number;
    messages_sent: number;
    messages_received: number;
    last_seen: number | null;
    held_messages: number;
    last_error: string | null;
  }
  interface PendingTrust {
    node_id: string;
    name: string;
    trust_state: string;
    online: boolean;
    first_seen: number | null;
    queued_count: number;
    oldest_queued_at: number | null;
  }
  interface PendingCap {
    node_id: string;
    name: string;
    trust_state: string;
    baseline_hash: string | null;
    pending_hash: string | null;
    baseline_set: string[];
    pending_set: string[];
    added: string[];
    removed: string[];
    queued_count: number;
  }
  interface Route {
    destination: string;
    name: string;
    next_hop: string;
    cost: number;
    learned_from: string;
    updated: number | null;
  }
  interface Cards {
    uptime_seconds: number;
    active_peers: number;
    messages_sent: number;
    messages_received: number;
    messages_delivered: number;
    messages_held: number;
    bytes_sent: number;
    bytes_received: number;
    handshake_successes: number;
    handshake_failures: number;
    pending_trust_messages: number;
    avg_rtt_ms: number | null;
  }
  interface Point {
    t: number;
    active_peers: number;
    messages_sent: number;
    messages_received: number;
    bytes_sent: number;
    bytes_received: number;
    pending_trust: number;
    avg_rtt_ms: number | null;
  }
  interface Snapshot {
    node_id: string;
    name: string;
    version: string;
    uptime_seconds: number;
    gate_enabled: boolean;
    routing_enabled: boolean;
    trust_read_only: string | null;
    cards: Cards;
    series: Point[];
    peers: Peer[];
    capabilities: Record<string, string[]>;
    routes: Route[];
    pending_trust: PendingTrust[];
    pending_cap: PendingCap[];
  }
  interface FeedItem {
    direction: "in" | "out";
    msg_type: string;
    peer_id: string;
    peer_name: string;
    msg_id: string;
    payload: string | null;
    size: number;
    truncated: boolean;
    timestamp: number;
    disposition: string;
  }
  interface AuditEntry {
    event: string;
    timestamp: number;
    details: Record<string, unknown>;
  }
  interface InboxEntry {
    msg_id: string;
    from: string;
    from_name: string;
    to: string;
    type: string;
    direction: string;
    timestamp: number;
    text: string | null;
    payload_b64: string;
  }
  type Msg = { type: string } & Record<string, unknown>;
  type Child = El | string | null | undefined | false;

  const S = {
    token: "",
    ws: null as WebSocket | null,
    wsOpen: false,
    retryMs: 500,
    retryTimer: 0 as ReturnType<typeof setTimeout> | 0,
    selfId: "",
    uptimeBase: 0,
    uptimeAt: 0,
    peers: [] as Peer[],
    series: [] as Point[],
    feed: [] as FeedItem[],
    feedIds: new Set<string>(),
    delivered: new Set<string>(),
    audit: [] as AuditEntry[],
    rendered: {} as Record<string, string>,
    seq: 0,
    routingEnabled: false,
  };

  const $ = (id: string): El => document.getElementById(id)!;

  // ---------------------------------------------------------------- helpers

  function el(
    tag: string,
    props: Record<string, string | number | boolean | null | undefined> = {},
    ...kids: Child[]
  ): El {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = String(v);
      else if (k === "text") e.textContent = String(v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of kids) if (c !== null && c !== undefined && c !== false) e.append(c);
    return e;
  }

  function short(id: string): string {
    return id ? id.slice(0, 12) : "—";
  }

  function bytes(n: number): string {
    if (!Number.isFinite(n)) return "—";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) {
      n /= 1024;
      i++;
    }
    return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${u[i]}`;
  }

  function count(n: number): string {
    return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "—";
  }

  function ms(n: number | null): string {
    return n === null || !Number.isFinite(n) ? "—" : `${n < 10 ? n.toFixed(1) : Math.round(n)} ms`;
  }

  function duration(s: number): string {
    s = Math.max(0, Math.floor(s));
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600);
    const m = Math.floor(s % 3600 / 60), sec = s % 60;
    if (d) return `${d}d ${h}h ${m}m`;
    if (h) return `${h}h ${m}m ${sec}s`;
    if (m) return `${m}m ${sec}s`;
    return `${sec}s`;
  }

  function ago(ts: number | null): string {
    if (ts === null || !Number.isFinite(ts) || ts <= 0) return "—";
    const s = Date.now() / 1000 - ts;
    return s < 2 ? "just now" : `${duration(s)} ago`;
  }

  function clock(ts: number): string {
    const d = new Date(ts * 1000);
    return Number.isNaN(d.getTime()) ? "—" : d.toLocaleTimeString("en-GB", { hour12: false });
  }

  function nameOf(id: string): string {
    return S.peers.find((p) => p.node_id === id)?.name || short(id);
  }

  function sparkline(values: number[]): El {
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 100 24");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("class", "spark");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const line = document.createElementNS(NS, "polyline");
    const vals = values.length ? values : [0];
    const max = Math.max(1e-9, ...vals.map((v) => Math.abs(v)));
    const n = vals.length;
    line.setAttribute(
      "points",
      vals.map((v, i) =>
        `${n < 2 ? (i ? 100 : 0) : (i * 100 / (n - 1)).toFixed(2)},${
          (22 - v / max * 20).toFixed(2)
        }`
      ).join(" ") + (n < 2 ? ` 100,${(22 - vals[0] / max * 20).toFixed(2)}` : ""),
    );
    svg.append(line);
    return svg;
  }

  /** Rebuild `container` only when `data` changed; keep keyboard focus on the same control. */
  function render(key: string, container: El, data: unknown, build: () => void): void {
    const json = JSON.stringify(data);
    if (S.rendered[key] === json) return;
    S.rendered[key] = json;
    const active = document.activeElement;
    const focusKey = active && container.contains(active) ? active.dataset.key : undefined;
    build();
    if (focusKey) {
      const again = container.querySelector(`[data-key="${page.CSS.escape(focusKey)}"]`);
      if (again) again.focus();
      else {
        // The control left with its row (e.g. a promoted peer): land on the panel heading.
        const heading = container.closest("section")?.querySelector("h2");
        heading?.focus();
      }
    }
  }

  function notice(text: string, error = false): void {
    const n = $("notice");
    n.textContent = text;
    n.dataset.kind = error ? "error" : "ok";
    n.hidden = false;
  }

  function setConn(state: "live" | "connecting" | "reconnecting" | "offline", text: string): void {
    const c = $("conn");
    c.dataset.state = state;
    c.textContent = text;
  }

  // ---------------------------------------------------------------- token and transport

  function takeToken(): string {
    const params = new URLSearchParams(location.search);
    const fromUrl = params.get("token");
    if (fromUrl !== null) {
      sessionStorage.setItem(TOKEN_KEY, fromUrl);
      params.delete("token");
      const q = params.toString();
      history.replaceState(
        history.state,
        "",
        location.pathname + (q ? `?${q}` : "") + location.hash,
      );
    }
    return sessionStorage.getItem(TOKEN_KEY) ?? "";
  }

  function api(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${S.token}`);
    return fetch(path, { ...init, headers, cache: "no-store", credentials: "omit" });
  }

  function act(msg: Record<string, unknown>): void {
    const m = { ...msg, id: ++S.seq };
    if (S.ws && S.wsOpen) {
      S.ws.send(JSON.stringify(m));
      return;
    }
    api("/api/action", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(m),
    }).then(async (r) => {
      if (r.status === 401) return showLogin("The token is no longer valid.");
      onPush(await r.json() as Msg);
    }).catch(() => notice("The daemon is not reachable.", true));
  }

  function showLogin(message: string): void {
    sessionStorage.removeItem(TOKEN_KEY);
    S.token = "";
    if (S.ws) {
      S.ws.onclose = null;
      S.ws.close();
      S.ws = null;
    }
    $("main").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message;
    setConn("offline", "no token");
    $("token-input").focus();
  }

  async function boot(): Promise<void> {
    S.token = takeToken();
    if (!S.token) return showLogin("");
    let r: Response;
    try {
      r = await api("/api/state");
    } catch {
      setConn("offline", "daemon unreachable");
      return scheduleReconnect();
    }
    if (r.status === 401) {
      return showLogin(
        "That token was not accepted (the daemon makes a new one each time it starts).",
      );
    }
    if (!r.ok) {
      setConn("offline", `error ${r.status}`);
      return scheduleReconnect();
    }
    $("login").hidden = true;
    $("main").hidden = false;
    renderSnapshot(await r.json() as Snapshot);
    loadAudit();
    connect();
  }

  async function loadAudit(): Promise<void> {
    try {
      const r = await api("/api/audit?limit=50");
      if (!r.ok) return;
      const body = await r.json() as { entries: AuditEntry[] };
      S.audit = body.entries.slice().reverse();
      renderAudit();
    } catch { /* the live tail still works */ }
  }

  function connect(): void {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/ws`, [
      WS_PROTOCOL,
      WS_TOKEN_PREFIX + S.token,
    ]);
    S.ws = ws;
    setConn(S.wsOpen ? "reconnecting" : "connecting", "connecting…");
    ws.onopen = () => {
      S.wsOpen = true;
      S.retryMs = 500;
      setConn("live", "live");
      act({ action: "get_history", limit: 100 });
    };
    ws.onmessage = (ev) => {
      try {
        onPush(JSON.parse(String(ev.data)) as Msg);
      } catch { /* ignore a bad frame */ }
    };
    ws.onclose = () => {
      S.wsOpen = false;
      if (S.ws !== ws) return;
      S.ws = null;
      setConn("reconnecting", "reconnecting…");
      scheduleReconnect();
    };
  }

  function scheduleReconnect(): void {
    clearTimeout(S.retryTimer);
    const wait = S.retryMs * (0.8 + Math.random() * 0.4);
    S.retryMs = Math.min(S.retryMs * 2, 10_000);
    S.retryTimer = setTimeout(() => boot(), wait);
  }

  // ---------------------------------------------------------------- pushes

  function onPush(m: Msg): void {
    switch (m.type) {
      case "snapshot":
        return renderSnapshot(m.data as Snapshot);
      case "state_update": {
        const d = m.data as {
          uptime_seconds: number;
          cards: Cards;
          point: Point | null;
          peers: Peer[];
          pending_trust: PendingTrust[];
          pending_cap: PendingCap[];
          routes: Route[];
          capabilities: Record<string, string[]>;
          routing_enabled: boolean;
        };
        S.uptimeBase = d.uptime_seconds;
        S.uptimeAt = Date.now();
        if (d.point && d.point.t !== S.series.at(-1)?.t) {
          S.series.push(d.point);
          if (S.series.length > SERIES_MAX) S.series.shift();
        }
        S.routingEnabled = d.routing_enabled;
        renderCards(d.cards);
        renderPeers(d.peers);
        renderPendingTrust(d.pending_trust);
        renderPendingCap(d.pending_cap);
        renderRoutes(d.routes);
        renderCaps(d.capabilities);
        return;
      }
      case "message_event": {
        addFeed(m as unknown as FeedItem);
        return;
      }
      case "delivered": {
        S.delivered.add(String(m.msg_id));
        const item = S.feed.find((f) => f.msg_id === m.msg_id);
        if (item) {
          item.disposition = "delivered";
          renderFeed();
        }
        return;
      }
      case "history": {
        for (const h of m.messages as InboxEntry[]) addFeed(fromHistory(h), false);
        renderFeed();
        return;
      }
      case "peer_event": {
        const id = String(m.peer_id);
        const p = S.peers.find((x) => x.node_id === id);
        if (p) p.online = m.event === "connected";
        else {
          S.peers.push({
            node_id: id,
            name: String(m.name ?? ""),
            address: String(m.address ?? ""),
            online: m.event === "connected",
            transport_type: String(m.transport ?? ""),
            trust_gate_state: "",
            latency_ms: null,
            bytes_sent_total: 0,
            bytes_received_total: 0,
            messages_sent: 0,
            messages_received: 0,
            last_seen: Date.now() / 1000,
            held_messages: 0,
            last_error: null,
          });
        }
        renderPeers(S.peers);
        act({ action: "list_pending_trust" });
        return;
      }
      case "pending_trust":
      case "trust_event":
        act({ action: "list_pending_trust" });
        act({ action: "list_pending_cap" });
        return;
      case "cap_change_detected":
        act({ action: "list_pending_cap" });
        return;
      case "pending_trust_list":
        return renderPendingTrust(m.pending as PendingTrust[]);
      case "pending_cap_list":
        return renderPendingCap(m.pending as PendingCap[]);
      case "audit_event":
        S.audit.unshift(m.entry as AuditEntry);
        if (S.audit.length > AUDIT_MAX) S.audit.length = AUDIT_MAX;
        return renderAudit();
      case "feed_gap":
        addGap(Number(m.dropped));
        return;
      case "send_ack": {
        const st = $("send-status");
        st.dataset.kind = "ok";
        st.textContent = `Sent to ${m.to_name || short(String(m.to))} (${m.status}, id ${
          String(m.msg_id).slice(0, 8)
        }).`;
        $("send-text").value = "";
        return;
      }
      case "promote_ack":
      case "block_ack":
      case "cap_promote_ack":
      case "cap_reject_ack": {
        const who = nameOf(String(m.target ?? m.node_id ?? ""));
        if (m.ok) {
          const verb = m.type === "promote_ack"
            ? `Promoted ${who}; ${m.drained} held message(s) delivered.`
            : m.type === "block_ack"
            ? `Blocked ${who}; ${m.discarded} held message(s) dropped.`
            : m.type === "cap_promote_ack"
            ? `Accepted the new capabilities of ${who}; ${m.drained} held message(s) delivered.`
            : `Rejected the capability change of ${who}${m.blocked ? " and blocked it" : ""}.`;
          notice(verb);
        } else notice(`Could not update ${who}: ${m.error}`, true);
        act({ action: "list_pending_trust" });
        act({ action: "list_pending_cap" });
        return;
      }
      case "rotate_ack":
        notice(`Session keys with ${nameOf(String(m.peer_id))} are being rotated.`);
        return;
      case "send_error": {
        const text = `${m.error}${m.hint ? ` — ${m.hint}` : ""}`;
        if (m.action === "send_message") {
          const st = $("send-status");
          st.dataset.kind = "error";
          st.textContent = text;
        } else notice(text, true);
        return;
      }
    }
  }

  function fromHistory(h: InboxEntry): FeedItem {
    const inbound = h.direction === "inbound";
    const peer = inbound ? h.from : h.to;
    const size = Math.floor(h.payload_b64.length * 3 / 4) -
      (h.payload_b64.match(/=*$/)?.[0].length ?? 0);
    return {
      direction: inbound ? "in" : "out",
      msg_type: h.type,
      peer_id: peer,
      peer_name: inbound && h.from_name !== h.from ? h.from_name : nameOf(peer),
      msg_id: h.msg_id,
      payload: h.text,
      size,
      truncated: false,
      timestamp: h.timestamp,
      disposition: "stored",
    };
  }

  // ---------------------------------------------------------------- rendering

  function renderSnapshot(d: Snapshot): void {
    S.selfId = d.node_id;
    S.uptimeBase = d.uptime_seconds;
    S.uptimeAt = Date.now();
    S.series = d.series.slice(-SERIES_MAX);
    S.routingEnabled = d.routing_enabled;
    $("node-name").textContent = d.name;
    $("node-id").textContent = d.node_id;
    $("version").textContent = d.version;
    $("gate").textContent = d.gate_enabled ? "new peers wait for approval" : "off";
    document.title = `${d.name} · ironmesh`;
    const ro = $("readonly");
    ro.hidden = !d.trust_read_only;
    ro.textContent = d.trust_read_only
      ? `The trust store is read-only (${d.trust_read_only}): every peer is refused.`
      : "";
    tickUptime();
    renderCards(d.cards);
    renderPeers(d.peers);
    renderPendingTrust(d.pending_trust);
    renderPendingCap(d.pending_cap);
    renderRoutes(d.routes);
    renderCaps(d.capabilities);
  }

  function tickUptime(): void {
    if (!S.uptimeAt) return;
    $("uptime").textContent = duration(S.uptimeBase + (Date.now() - S.uptimeAt) / 1000);
  }

  const CARDS: {
    key: string;
    label: string;
    value: (c: Cards) => string;
    series?: (p: Point) => number;
    rate?: boolean;
  }[] = [
    {
      key: "peers",
      label: "Peers online",
      value: (c) => count(c.active_peers),
      series: (p) => p.active_peers,
    },
    {
      key: "sent",
      label: "Messages sent",
      value: (c) => count(c.messages_sent),
      series: (p) => p.messages_sent,
      rate: true,
    },
    {
      key: "received",
      label: "Messages received",
      value: (c) => count(c.messages_received),
      series: (p) => p.messages_received,
      rate: true,
    },
    {
      key: "bytes-out",
      label: "Bytes sent",
      value: (c) => bytes(c.bytes_sent),
      series: (p) => p.bytes_sent,
      rate: true,
    },
    {
      key: "bytes-in",
      label: "Bytes received",
      value: (c) => bytes(c.bytes_received),
      series: (p) => p.bytes_received,
      rate: true,
    },
    {
      key: "held",
      label: "Held for approval",
      value: (c) => count(c.pending_trust_messages),
      series: (p) => p.pending_trust,
    },
    {
      key: "rtt",
      label: "Average RTT",
      value: (c) => ms(c.avg_rtt_ms),
      series: (p) => p.avg_rtt_ms ?? 0,
    },
    {
      key: "handshakes",
      label: "Handshakes ok / failed",
      value: (c) => `${count(c.handshake_successes)} / ${count(c.handshake_failures)}`,
    },
  ];

  function renderCards(c: Cards): void {
    const ul = $("cards");
    if (!ul.children.length) {
      for (const card of CARDS) {
        ul.append(el(
          "li",
          { class: "card", "data-card": card.key },
          el("div", { class: "label", text: card.label }),
          el("div", { class: "value" }),
          card.series ? el("div", { class: "chart" }) : null,
        ));
      }
    }
    for (const card of CARDS) {
      const li = ul.querySelector(`[data-card="${card.key}"]`)!;
      li.querySelector(".value")!.textContent = card.value(c);
      const chart = li.querySelector(".chart");
      if (chart && card.series) {
        const raw = S.series.map(card.series);
        const vals = card.rate ? raw.slice(1).map((v, i) => Math.max(0, v - raw[i])) : raw;
        chart.replaceChildren(sparkline(vals));
      }
    }
  }

  function renderPeers(peers: Peer[]): void {
    S.peers = peers;
    const sorted = peers.filter((p) => p.node_id).sort((a, b) =>
      Number(b.online) - Number(a.online) || a.name.localeCompare(b.name)
    );
    $("peers-count").textContent = `(${sorted.filter((p) => p.online).length}/${sorted.length})`;
    $("peers-empty").hidden = sorted.length > 0;
    const tbody = document.querySelector("#peers tbody")!;
    const view = sorted.map((p) => [
      p.node_id,
      p.name,
      p.address,
      p.online,
      p.transport_type,
      p.trust_gate_state,
      p.latency_ms === null ? null : Math.round(p.latency_ms * 10),
      p.bytes_sent_total,
      p.bytes_received_total,
      p.messages_sent,
      p.messages_received,
      ago(p.last_seen),
      p.held_messages,
    ]);
    render("peers", tbody, view, () => {
      tbody.replaceChildren(...sorted.map((p) =>
        el(
          "tr",
          { "data-node": p.node_id },
          el(
            "td",
            { "data-label": "Name" },
            el(
              "span",
              {},
              el("span", { class: `dot${p.online ? " on" : ""}`, "aria-hidden": "true" }),
              p.name || "(unnamed)",
              el("span", { class: "sr-only", text: p.online ? " online" : " offline" }),
            ),
          ),
          el("td", { "data-label": "ID", class: "mono", title: p.node_id, text: short(p.node_id) }),
          el("td", { "data-label": "Address", class: "mono", text: p.address || "—" }),
          el("td", { "data-label": "Transport", text: p.transport_type || "—" }),
          el(
            "td",
            { "data-label": "Trust" },
            el("span", {
              class: `badge ${p.trust_gate_state}`,
              text: p.trust_gate_state || "—",
            }),
            p.held_messages
              ? el("span", { class: "held", text: ` ${p.held_messages} held` })
              : null,
          ),
          el("td", { "data-label": "RTT", class: "num", text: ms(p.latency_ms) }),
          el("td", {
            "data-label": "Traffic",
            class: "num",
            title: `${p.messages_sent} messages sent, ${p.messages_received} received`,
            text: `↑ ${bytes(p.bytes_sent_total)} · ↓ ${bytes(p.bytes_received_total)}`,
          }),
          el("td", { "data-label": "Last seen", text: p.online ? "now" : ago(p.last_seen) }),
          el(
            "td",
            { class: "actions" },
            p.online
              ? el("button", {
                type: "button",
                "data-action": "rotate",
                "data-node": p.node_id,
                "data-key": `rotate:${p.node_id}`,
                "aria-label": `Rotate session keys with ${p.name || short(p.node_id)}`,
                text: "Rotate keys",
              })
              : null,
          ),
        )
      ));
    });
    renderPeerOptions(sorted);
  }

  function renderPeerOptions(peers: Peer[]): void {
    const sel = $("send-peer");
    const options = peers.filter((p) => p.node_id !== S.selfId).map((
      p,
    ) => [p.node_id, p.name, p.online]);
    const json = JSON.stringify(options);
    if (S.rendered.options === json) return;
    S.rendered.options = json;
    const keep = sel.value;
    sel.replaceChildren(
      ...peers.filter((p) => p.node_id !== S.selfId).map((p) =>
        el("option", {
          value: p.node_id,
          text: `${p.name || "(unnamed)"} · ${short(p.node_id)} · ${
            p.online ? "online" : "offline"
          }`,
        })
      ),
    );
    if (keep && peers.some((p) => p.node_id === keep)) sel.value = keep;
  }

  function renderPendingTrust(list: PendingTrust[]): void {
    const ul = $("pending-trust");
    $("pending-trust-empty").hidden = list.length > 0;
    $("pt-count").textContent = list.length ? `(${list.length})` : "";
    render("pending-trust", ul, list, () => {
      ul.replaceChildren(...list.map((p) => {
        const who = p.name || short(p.node_id);
        return el(
          "li",
          { "data-node": p.node_id },
          el(
            "div",
            { class: "who" },
            el("strong", { text: who }),
            el("span", { class: "mono", title: p.node_id, text: short(p.node_id) }),
            el("span", {
              class: `badge ${p.online ? "online" : "offline"}`,
              text: p.online ? "online" : "offline",
            }),
            el("span", {
              text: `${p.queued_count} held message${p.queued_count === 1 ? "" : "s"}`,
            }),
            p.first_seen
              ? el("span", { class: "hint", text: `first seen ${ago(p.first_seen)}` })
              : null,
          ),
          el(
            "div",
            { class: "actions" },
            el("button", {
              type: "button",
              class: "primary",
              "data-action": "promote",
              "data-node": p.node_id,
              "data-key": `promote:${p.node_id}`,
              "aria-label": `Promote ${who} to trusted`,
              text: "Promote",
            }),
            el("button", {
              type: "button",
              class: "danger",
              "data-action": "block",
              "data-node": p.node_id,
              "data-key": `block:${p.node_id}`,
              "aria-label": `Block ${who}`,
              text: "Block",
            }),
          ),
        );
      }));
    });
  }

  function renderPendingCap(list: PendingCap[]): void {
    const ul = $("pending-cap");
    $("pending-cap-empty").hidden = list.length > 0;
    $("pc-count").textContent = list.length ? `(${list.length})` : "";
    render("pending-cap", ul, list, () => {
      ul.replaceChildren(...list.map((p) => {
        const who = p.name || short(p.node_id);
        const same = p.pending_set.filter((c) => !p.added.includes(c));
        return el(
          "li",
          { "data-node": p.node_id },
          el(
            "div",
            { class: "who" },
            el("strong", { text: who }),
            el("span", { class: "mono", title: p.node_id, text: short(p.node_id) }),
            el("span", { text: `${p.queued_count} held` }),
          ),
          el("div", {
            class: "hint mono",
            text: `${(p.baseline_hash ?? "none").slice(0, 12)} → ${
              (p.pending_hash ?? "").slice(0, 12)
            }`,
          }),
          el(
            "ul",
            { class: "diff", "aria-label": `Capability changes of ${who}` },
            ...p.added.map((c) => el("li", { class: "add", text: `+ ${c}` })),
            ...p.removed.map((c) => el("li", { class: "del", text: `− ${c}` })),
            same.length ? el("li", { class: "same", text: `  ${same.length} unchanged` }) : null,
          ),
          el(
            "div",
            { class: "actions" },
            el("button", {
              type: "button",
              class: "primary",
              "data-action": "cap-accept",
              "data-node": p.node_id,
              "data-key": `cap-accept:${p.node_id}`,
              "aria-label": `Accept the new capabilities of ${who}`,
              text: "Accept",
            }),
            el("button", {
              type: "button",
              "data-action": "cap-reject",
              "data-node": p.node_id,
              "data-key": `cap-reject:${p.node_id}`,
              "aria-label": `Reject the capability change of ${who}`,
              text: "Reject",
            }),
            el("button", {
              type: "button",
              class: "danger",
              "data-action": "cap-reject-block",
              "data-node": p.node_id,
              "data-key": `cap-reject-block:${p.node_id}`,
              "aria-label": `Reject the capability change of ${who} and block it`,
              text: "Reject & block",
            }),
          ),
        );
      }));
    });
  }

  function renderRoutes(routes: Route[]): void {
    $("routes-note").textContent = S.routingEnabled
      ? "Routes learned over the mesh."
      : "Mesh routing is not enabled yet: these are the direct links (1 hop).";
    $("routes-empty").hidden = routes.length > 0;
    const tbody = document.querySelector("#routes tbody")!;
    render(
      "routes",
      tbody,
      routes.map((r) => [r.destination, r.name, r.next_hop, r.cost, r.learned_from]),
      () => {
        tbody.replaceChildren(...routes.map((r) =>
          el(
            "tr",
            {},
            el(
              "td",
              { "data-label": "Destination", title: r.destination },
              `${r.name || "(unnamed)"} `,
              el("span", { class: "mono", text: short(r.destination) }),
            ),
            el("td", {
              "data-label": "Next hop",
              class: "mono",
              title: r.next_hop,
              text: short(r.next_hop),
            }),
            el("td", { "data-label": "Cost", class: "num", text: String(r.cost) }),
            el("td", {
              "data-label": "Learned from",
              class: "mono",
              title: r.learned_from,
              text: short(r.learned_from),
            }),
            el("td", { "data-label": "Updated", text: ago(r.updated) }),
          )
        ));
      },
    );
  }

  function renderCaps(caps: Record<string, string[]>): void {
    const ul = $("caps");
    const entries = Object.entries(caps).sort(([a], [b]) => a.localeCompare(b));
    $("caps-empty").hidden = entries.length > 0;
    render("caps", ul, entries, () => {
      ul.replaceChildren(
        ...entries.map(([cap, ids]) =>
          el("li", {}, el("code", { text: cap }), ` — ${ids.map(nameOf).join(", ")}`)
        ),
      );
    });
  }

  function feedText(f: FeedItem): string {
    return `${f.peer_name} ${f.peer_id} ${f.msg_type} ${f.payload ?? ""}`;
  }

  function feedMatcher(): (f: FeedItem) => boolean {
    const q = $("feed-filter").value.trim();
    if (!q) return () => true;
    const re = /^\/(.+)\/([a-z]*)$/.exec(q);
    if (re) {
      try {
        const rx = new RegExp(re[1], re[2].replace(/[gy]/g, ""));
        return (f) => rx.test(feedText(f));
      } catch { /* fall back to plain text */ }
    }
    const low = q.toLowerCase();
    return (f) => feedText(f).toLowerCase().includes(low);
  }

  function addFeed(f: FeedItem, draw = true): void {
    if (S.feedIds.has(`${f.direction}:${f.msg_id}`)) {
      const old = S.feed.find((x) => x.msg_id === f.msg_id && x.direction === f.direction);
      if (old && f.disposition !== "stored") old.disposition = f.disposition;
    } else {
      S.feedIds.add(`${f.direction}:${f.msg_id}`);
      S.feed.push(f);
      S.feed.sort((a, b) => a.timestamp - b.timestamp);
      while (S.feed.length > FEED_MAX) {
        const gone = S.feed.shift()!;
        S.feedIds.delete(`${gone.direction}:${gone.msg_id}`);
      }
    }
    if (f.direction === "out" && S.delivered.has(f.msg_id)) f.disposition = "delivered";
    if (draw) renderFeed();
  }

  function addGap(n: number): void {
    const li = el("li", {
      class: "gap",
      text: `${n} live event(s) skipped (the page fell behind)`,
    });
    $("feed").append(li);
  }

  function renderFeed(): void {
    const ol = $("feed");
    const match = feedMatcher();
    const shown = S.feed.filter(match);
    $("feed-empty").hidden = S.feed.length > 0;
    const atBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 40;
    ol.replaceChildren(...shown.map((f) =>
      el(
        "li",
        { "data-msg": f.msg_id, "data-dir": f.direction },
        el("span", {
          class: `dir ${f.direction}`,
          text: f.direction === "in" ? "←" : "→",
          "aria-label": f.direction === "in" ? "from" : "to",
        }),
        el(
          "span",
          {},
          el("strong", { text: f.peer_name || short(f.peer_id) }),
          " ",
          el("span", { class: "badge", text: f.msg_type }),
          " ",
          f.disposition && f.disposition !== "stored"
            ? el("span", { class: `badge ${f.disposition}`, text: f.disposition })
            : null,
        ),
        el("span", {
          class: "text",
          text: f.payload === null
            ? `(${f.size} bytes, not text)`
            : f.payload + (f.truncated ? " …" : ""),
        }),
        el("span", { class: "meta", text: `${clock(f.timestamp)} · ${f.msg_id.slice(0, 8)}` }),
      )
    ));
    if (atBottom) ol.scrollTop = ol.scrollHeight;
  }

  function renderAudit(): void {
    const ol = $("audit");
    $("audit-empty").hidden = S.audit.length > 0;
    ol.replaceChildren(...S.audit.map((a) => {
      const details = JSON.stringify(a.details ?? {});
      return el(
        "li",
        {},
        el("span", { class: "ev", text: a.event }),
        el("span", {
          class: "meta",
          text: new Date(a.timestamp * 1000).toISOString().replace("T", " ").slice(0, 19),
        }),
        el("span", {
          class: "details",
          text: details.length > 240 ? details.slice(0, 240) + "…" : details,
        }),
      );
    }));
  }

  // ---------------------------------------------------------------- controls

  function onClick(ev: Event): void {
    const b = (ev.target as El).closest("button[data-action]");
    if (!b) return;
    const node = b.dataset.node ?? "";
    switch (b.dataset.action) {
      case "promote":
        return act({ action: "promote_peer", target_node_id: node });
      case "block":
        return act({ action: "block_peer", target_node_id: node });
      case "cap-accept":
        return act({ action: "cap_promote_peer", target_node_id: node });
      case "cap-reject":
        return act({ action: "cap_reject_peer", target_node_id: node, block: false });
      case "cap-reject-block":
        return act({ action: "cap_reject_peer", target_node_id: node, block: true });
      case "rotate":
        return act({ action: "rotate_session", peer_id: node });
    }
  }

  function onSend(ev: Event): void {
    ev.preventDefault();
    const mode = document.querySelector('input[name="mode"]:checked')?.value ?? "peer";
    const text = $("send-text").value;
    const st = $("send-status");
    if (!text) {
      st.dataset.kind = "error";
      st.textContent = "Write a message first.";
      $("send-text").focus();
      return;
    }
    const msg: Record<string, unknown> = {
      action: "send_message",
      msg_type: $("send-type").value,
      priority: $("send-priority").value,
      payload: text,
    };
    if (mode === "capability") {
      const cap = $("send-cap").value.trim();
      if (!cap) {
        st.dataset.kind = "error";
        st.textContent = "Name a capability (a pattern like llm:* works).";
        $("send-cap").focus();
        return;
      }
      msg.to_capability = cap;
    } else {
      const to = $("send-peer").value;
      if (!to) {
        st.dataset.kind = "error";
        st.textContent = "There is no peer to send to yet.";
        return;
      }
      msg.to_node = to;
    }
    st.dataset.kind = "";
    st.textContent = "Sending…";
    act(msg);
  }

  function onMode(): void {
    const mode = document.querySelector('input[name="mode"]:checked')?.value;
    $("to-peer-field").hidden = mode === "capability";
    $("to-cap-field").hidden = mode !== "capability";
  }

  function init(): void {
    $("main").addEventListener("click", onClick);
    $("send-form").addEventListener("submit", onSend);
    for (const r of document.querySelectorAll('input[name="mode"]')) {
      r.addEventListener("change", onMode);
    }
    $("feed-filter").addEventListener("input", () => renderFeed());
    $("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const input = $("token-input");
      const t = input.value.trim();
      if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t);
      input.value = "";
      boot();
    });
    setInterval(tickUptime, 1000);
    boot();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
}
