/**
 * mDNS discovery (PROTOCOL-0.9 §12) over `npm:multicast-dns`: announce our
 * `_ironmesh._tcp.local.` service with the reference's TXT records, answer
 * queries for it, and browse for peers. Parsing, limits, idhash pinning and the
 * self-ignore live in the sans-I/O `lib/discovery/`; this file owns the socket
 * and the timers. Auto-dialing is the caller's decision (`shouldAutoDial`,
 * default deny).
 *
 * Permissions: `--allow-net=0.0.0.0:5353,224.0.0.251:5353`, plus
 * `--allow-sys=networkInterfaces` unless `interfaceAddress` is given.
 */
import multicastDns from "multicast-dns";
import { type Clock, systemClock } from "../../lib/clock.ts";
import { ExitCode, IronMeshError } from "../../lib/errors.ts";
import {
  type BrowseEvent,
  MdnsBrowser,
  type RejectReason,
  type Sighting,
} from "../../lib/discovery/browser.ts";
import {
  type Announcement,
  announcementRecords,
  answerQuery,
  type DnsQuestion,
  type DnsRecord,
  isIpv4,
  makeAnnouncement,
  type RecordSet,
} from "../../lib/discovery/records.ts";

export type { RejectReason, Sighting };
export { autoDialDecision, shouldAutoDial } from "../../lib/discovery/policy.ts";

/** The mDNS port and IPv4 group. */
export const MDNS_PORT = 5353;
export const MDNS_GROUP = "224.0.0.251";
/** The reference's discover loop period. */
export const DEFAULT_BROWSE_INTERVAL_MS = 30_000;
/** RFC 6762 §6: a record is multicast at most once per second. */
const MIN_REPEAT_MS = 1000;
/** Announce and browse once more this long after start (RFC 6762 §8.3: at least twice). */
const STARTUP_REPEAT_MS = 1000;
/** How long binding the socket may take. */
const BIND_TIMEOUT_MS = 5000;

/** Options passed to the multicast-dns factory. */
export interface MdnsSocketOptions {
  /** IPv4 address of the interface to join the group on and send from. */
  interface?: string;
  /** Address to bind (0.0.0.0 when `interface` is set, or nothing is received). */
  bind?: string;
  /** Keep our own multicast (default true: two nodes on one host must see each other). */
  loopback?: boolean;
  reuseAddr?: boolean;
}

/** The part of a multicast-dns instance we use (tests inject a fake). */
export interface MdnsLike {
  // deno-lint-ignore no-explicit-any
  on(event: string, listener: (...args: any[]) => void): unknown;
  query(query: { questions: DnsQuestion[] }, cb?: (err?: Error | null) => void): void;
  respond(response: RecordSet, cb?: (err?: Error | null) => void): void;
  destroy(cb?: () => void): void;
}

/** Creates the multicast-dns instance. */
export type MdnsFactory = (opts: MdnsSocketOptions) => MdnsLike;

/** Source of a received packet. */
export interface RemoteInfo {
  address: string;
  port: number;
}

/** Options of `MdnsDiscovery`. */
export interface MdnsDiscoveryOptions {
  /** Our agent name; must match `[A-Za-z0-9._-]{1,63}`. */
  name: string;
  /** The WebSocket port (SRV and TXT `port`). */
  port: number;
  /** The IPv4 address announced in the A record: the bind address, or an interface address. */
  address: string;
  /** 16 lowercase hex: `idHashOf(identity public key)`. Never the key itself. */
  idhash: string;
  /** IPv4 address of the interface to use; default: every interface (multicast-dns default). */
  interfaceAddress?: string;
  /** Browse period; default 30 s. */
  browseIntervalMs?: number;
  /** Announce and answer queries (default true). */
  announce?: boolean;
  /** Browse for peers (default true). */
  browse?: boolean;
  clock?: Clock;
  /** Default: real multicast-dns (permissions are checked first). */
  mdnsFactory?: MdnsFactory;
  /** Name → pinned idhash; pass a persistent map to keep pins across restarts. */
  idhashPins?: Map<string, string>;
  /** Default 10 (PROTOCOL-0.9 §12). */
  maxEventsPerSec?: number;
  /** Default 1024 names; beyond, the least recently seen is forgotten. */
  maxSightings?: number;
}

/** Event payloads by event name. */
export interface MdnsDiscoveryEvents {
  sighting: { sighting: Sighting; isNew: boolean };
  conflict: {
    name: string;
    pinned: string;
    seen: string | null;
    address: string;
    port: number;
    instance: string;
    source: string;
  };
  rejected: {
    reason: RejectReason;
    detail: string;
    source: string;
    instance?: string;
    name?: string;
  };
  departed: { sighting: Sighting };
  /** Socket trouble after start (send failures, undecodable packets); at most one per second. */
  warning: { error: Error };
}

/** An event name. */
export type MdnsDiscoveryEventType = keyof MdnsDiscoveryEvents;

/** The Deno permission flags the default factory needs. */
export function requiredPermissionFlags(interfaceAddress?: string): string[] {
  const flags = [`--allow-net=0.0.0.0:${MDNS_PORT},${MDNS_GROUP}:${MDNS_PORT}`];
  if (!interfaceAddress) flags.push("--allow-sys=networkInterfaces");
  return flags;
}

/** Throws a clear error when a permission multicast-dns needs is missing (it would crash later). */
export function checkMdnsPermissions(interfaceAddress?: string): void {
  const needed: Deno.PermissionDescriptor[] = [
    { name: "net", host: `0.0.0.0:${MDNS_PORT}` },
    { name: "net", host: `${MDNS_GROUP}:${MDNS_PORT}` },
  ];
  if (!interfaceAddress) needed.push({ name: "sys", kind: "networkInterfaces" });
  const missing = needed.filter((d) => Deno.permissions.querySync(d).state !== "granted");
  if (missing.length) {
    throw new IronMeshError(
      "MDNS_PERMISSION",
      "mDNS discovery lacks Deno permissions",
      `run with ${requiredPermissionFlags(interfaceAddress).join(" ")}, or disable mDNS`,
      ExitCode.PERMISSION,
    );
  }
}

/** The real factory: multicast-dns on UDP 5353 (joins 224.0.0.251). */
export const defaultMdnsFactory: MdnsFactory = (opts) => {
  checkMdnsPermissions(opts.interface);
  return multicastDns({ ...opts }) as MdnsLike;
};

/**
 * The address to announce for a bind address: the bind address itself, or for a
 * wildcard bind the first non-internal IPv4 interface address (needs
 * `--allow-sys=networkInterfaces`), else 127.0.0.1.
 */
export function announceAddressFor(bind: string): string {
  if (bind && bind !== "0.0.0.0" && isIpv4(bind)) return bind;
  try {
    for (const i of Deno.networkInterfaces()) {
      if (i.family === "IPv4" && !i.address.startsWith("127.")) return i.address;
    }
  } catch {
    // no permission: fall through
  }
  return "127.0.0.1";
}

type Listener<K extends MdnsDiscoveryEventType> = (e: MdnsDiscoveryEvents[K]) => void;

/** Announces this node and browses for peers over mDNS. */
export class MdnsDiscovery {
  /** What we announce. */
  readonly announcement: Announcement;
  readonly #opts: MdnsDiscoveryOptions;
  readonly #clock: Clock;
  readonly #browser: MdnsBrowser;
  readonly #listeners = new Map<MdnsDiscoveryEventType, Set<Listener<MdnsDiscoveryEventType>>>();
  readonly #lastMulticast = new Map<string, number>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #mdns: MdnsLike | null = null;
  #state: "new" | "starting" | "running" | "stopped" = "new";
  #lastWarningMs = -Infinity;

  /** Validates the options (throws IronMeshError on a bad name, port, address or idhash). */
  constructor(opts: MdnsDiscoveryOptions) {
    this.announcement = makeAnnouncement(opts);
    if (opts.interfaceAddress !== undefined && !isIpv4(opts.interfaceAddress)) {
      throw new IronMeshError(
        "MDNS_BAD_INTERFACE",
        `mDNS interface address ${JSON.stringify(opts.interfaceAddress)} is not an IPv4 address`,
        "give the IPv4 address of the interface to use",
        ExitCode.USAGE,
      );
    }
    const interval = opts.browseIntervalMs ?? DEFAULT_BROWSE_INTERVAL_MS;
    if (!(interval >= 1000)) throw new RangeError("browseIntervalMs must be ≥ 1000");
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#browser = new MdnsBrowser({
      clock: this.#clock,
      localName: opts.name,
      localIdhash: opts.idhash,
      own: this.announcement,
      pins: opts.idhashPins,
      maxEventsPerSec: opts.maxEventsPerSec,
      maxSightings: opts.maxSightings,
    });
  }

  /** Subscribe to an event; returns the unsubscribe function. */
  on<K extends MdnsDiscoveryEventType>(type: K, cb: Listener<K>): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, set = new Set());
    set.add(cb as Listener<MdnsDiscoveryEventType>);
    return () => set.delete(cb as Listener<MdnsDiscoveryEventType>);
  }

  /** Every peer seen so far (quiet and departed ones included), by name. */
  sightings(): Sighting[] {
    return this.#browser.sightings();
  }

  /** The idhash pinned for a name, if any. */
  pinnedIdhash(name: string): string | undefined {
    return this.#browser.pinned(name);
  }

  /** Open the socket, announce, browse. Rejects with IronMeshError if the socket cannot be bound. */
  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error("MdnsDiscovery can only be started once");
    this.#state = "starting";
    const sockOpts: MdnsSocketOptions = { loopback: true, reuseAddr: true };
    if (this.#opts.interfaceAddress) {
      sockOpts.interface = this.#opts.interfaceAddress;
      sockOpts.bind = "0.0.0.0";
    }
    let mdns: MdnsLike;
    try {
      mdns = (this.#opts.mdnsFactory ?? defaultMdnsFactory)(sockOpts);
    } catch (e) {
      this.#state = "stopped";
      throw e;
    }
    const bindError = (why: string) =>
      new IronMeshError(
        "MDNS_BIND",
        `mDNS socket failed: ${why}`,
        "another program may hold UDP 5353 without SO_REUSEADDR; or disable mDNS",
        ExitCode.NETWORK,
      );
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      timer = setTimeout(() => {
        if (!settled) (settled = true, reject(bindError(`not ready after ${BIND_TIMEOUT_MS} ms`)));
      }, BIND_TIMEOUT_MS);
      mdns.on("ready", () => {
        if (!settled) (settled = true, resolve());
      });
      mdns.on("error", (err: Error) => {
        if (!settled) (settled = true, reject(bindError(String(err?.message ?? err))));
        else this.#warn(err);
      });
    }).catch((e) => {
      this.#state = "stopped";
      mdns.destroy();
      throw e;
    }).finally(() => clearTimeout(timer));
    if (this.#state !== "starting") {
      // stop() was called while the socket was binding
      mdns.destroy();
      return;
    }
    this.#mdns = mdns;
    mdns.on("warning", (err: Error) => this.#warn(err));
    mdns.on("query", (packet: unknown) => this.#onQuery(packet));
    mdns.on("response", (packet: unknown, rinfo: RemoteInfo) => this.#onResponse(packet, rinfo));
    this.#state = "running";
    this.announceNow();
    this.browseNow();
    this.#after(STARTUP_REPEAT_MS, () => {
      this.announceNow();
      this.browseNow();
    });
    if (this.#browsing) {
      const interval = this.#opts.browseIntervalMs ?? DEFAULT_BROWSE_INTERVAL_MS;
      const id = setInterval(() => this.browseNow(), interval);
      this.#timers.add(id);
    }
  }

  /** Send the goodbye (TTL 0), close the socket. Idempotent. */
  async stop(): Promise<void> {
    if (this.#state !== "running") {
      this.#state = "stopped";
      return;
    }
    this.#state = "stopped";
    for (const id of this.#timers) {
      clearTimeout(id);
      clearInterval(id);
    }
    this.#timers.clear();
    const mdns = this.#mdns!;
    this.#mdns = null;
    if (this.#announcing) {
      await withTimeout(
        new Promise<void>((r) =>
          mdns.respond(announcementRecords(this.announcement, true), () => r())
        ),
        1000,
      );
    }
    await withTimeout(new Promise<void>((r) => mdns.destroy(() => r())), 1000);
  }

  /** Multicast our announcement now (no-op unless running and announcing). */
  announceNow(): void {
    if (this.#state !== "running" || !this.#announcing) return;
    const recs = announcementRecords(this.announcement);
    this.#markMulticast(recs.answers);
    this.#send((cb) => this.#mdns!.respond(recs, cb));
  }

  /** Send the browse query now (no-op unless running and browsing). */
  browseNow(): void {
    if (this.#state !== "running" || !this.#browsing) return;
    this.#send((cb) => this.#mdns!.query({ questions: this.#browser.browseQuestions() }, cb));
  }

  get #announcing(): boolean {
    return this.#opts.announce !== false;
  }

  get #browsing(): boolean {
    return this.#opts.browse !== false;
  }

  #onQuery(packet: unknown): void {
    if (this.#state !== "running" || !this.#announcing) return;
    if (typeof packet !== "object" || packet === null) return;
    const p = packet as { questions?: unknown; answers?: unknown };
    const res = answerQuery(this.announcement, p.questions, p.answers);
    if (!res) return;
    // RFC 6762 §6: do not multicast a record again within a second.
    const now = this.#clock.monotonicMs();
    const answers = res.answers.filter((r) =>
      now - (this.#lastMulticast.get(recordKey(r)) ?? -Infinity) >= MIN_REPEAT_MS
    );
    if (answers.length === 0) return;
    this.#markMulticast(answers);
    const additionals = res.additionals;
    this.#send((cb) => this.#mdns!.respond({ answers, additionals }, cb));
  }

  #onResponse(packet: unknown, rinfo: RemoteInfo): void {
    if (this.#state !== "running" || !this.#browsing) return;
    // RFC 6762 §6: responses not from port 5353 are ignored.
    if (!rinfo || rinfo.port !== MDNS_PORT || typeof rinfo.address !== "string") return;
    const { events, questions } = this.#browser.handleResponse(packet, rinfo.address);
    for (const e of events) this.#dispatch(e);
    if (questions.length && this.#state === "running") {
      this.#send((cb) => this.#mdns!.query({ questions }, cb));
    }
  }

  #dispatch(e: BrowseEvent): void {
    const { type, ...rest } = e;
    this.#emit(type, rest as MdnsDiscoveryEvents[typeof type]);
  }

  #emit<K extends MdnsDiscoveryEventType>(type: K, payload: MdnsDiscoveryEvents[K]): void {
    for (const cb of this.#listeners.get(type) ?? []) {
      try {
        cb(payload);
      } catch {
        // a throwing subscriber must not break discovery
      }
    }
  }

  #warn(err: unknown): void {
    const now = this.#clock.monotonicMs();
    if (now - this.#lastWarningMs < 1000) return;
    this.#lastWarningMs = now;
    this.#emit("warning", { error: err instanceof Error ? err : new Error(String(err)) });
  }

  #markMulticast(records: DnsRecord[]): void {
    const now = this.#clock.monotonicMs();
    for (const r of records) this.#lastMulticast.set(recordKey(r), now);
  }

  #send(fn: (cb: (err?: Error | null) => void) => void): void {
    try {
      fn((err) => {
        if (err) this.#warn(err);
      });
    } catch (err) {
      this.#warn(err);
    }
  }

  #after(ms: number, fn: () => void): void {
    const id = setTimeout(() => {
      this.#timers.delete(id);
      fn();
    }, ms);
    this.#timers.add(id);
  }
}

function recordKey(r: DnsRecord): string {
  return `${r.type}|${r.name.toLowerCase()}`;
}

async function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  let id: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p, new Promise<void>((r) => id = setTimeout(r, ms))]);
  clearTimeout(id);
}
