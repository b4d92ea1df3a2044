/**
 * The browse side of mDNS discovery, sans I/O (PROTOCOL-0.9 §12): it takes
 * decoded mDNS responses and returns sightings, idhash conflicts, rejections and
 * the follow-up questions to send. A small record cache joins a PTR with its
 * SRV, TXT and A records when they arrive in separate packets.
 *
 * Input limits: at most `maxEventsPerSec` announcements are evaluated per second
 * (token bucket; the rest are dropped), TXT checks as `txt.ts`, the first
 * address of the SRV target only, our own announcement ignored. An unchanged
 * re-announcement of an accepted sighting only refreshes `lastSeen` (no token,
 * no event). The first idhash seen for a name is pinned; a later announcement of
 * that name with another idhash (or none) is a conflict and changes nothing.
 * Sightings are never dropped because a peer went quiet; they carry `lastSeen`.
 */
import type { Clock } from "../clock.ts";
import { TokenBucket } from "../wire/token_bucket.ts";
import {
  type Announcement,
  announcementFingerprint,
  type DnsQuestion,
  type DnsRecord,
  isDialableIpv4,
  isIpv4,
  normalizeName,
  ownFingerprint,
  SERVICE_TYPE,
} from "./records.ts";
import { txtStrings, validateAnnouncementTxt } from "./txt.ts";

/** A peer seen on the LAN. */
export interface Sighting {
  /** The `agent` TXT value. */
  name: string;
  /** The DNS-SD instance name it was announced under. */
  instance: string;
  /** First IPv4 address of the SRV target. */
  address: string;
  /** The `port` TXT value. */
  port: number;
  /** Lowercase hex, or null when absent or invalid. */
  idhash: string | null;
  /** Source address of the packet that carried the announcement. */
  source: string;
  /** When this name was first seen (clock seconds). */
  seenAt: number;
  /** When it was last announced (clock seconds). */
  lastSeen: number;
  /** When it said goodbye (TTL 0), or null; cleared when it announces again. */
  departedAt: number | null;
}

/** Why an announcement is refused. */
export type RejectReason =
  | "rate_limited"
  | "txt_too_large"
  | "bad_agent"
  | "bad_port"
  | "bad_address"
  | "own_name";

/** What browsing reports. */
export type BrowseEvent =
  | { type: "sighting"; sighting: Sighting; isNew: boolean }
  | {
    type: "conflict";
    name: string;
    pinned: string;
    seen: string | null;
    address: string;
    port: number;
    instance: string;
    source: string;
  }
  | {
    type: "rejected";
    reason: RejectReason;
    detail: string;
    source: string;
    instance?: string;
    name?: string;
  }
  | { type: "departed"; sighting: Sighting };

/** Result of handling one response. */
export interface BrowseResult {
  events: BrowseEvent[];
  /** Questions to send for records still missing (SRV, TXT, A). */
  questions: DnsQuestion[];
}

/** Options of the browser. */
export interface MdnsBrowserOptions {
  clock: Clock;
  /** Our own name: announcements of it are ignored (or rejected when the idhash differs). */
  localName: string;
  /** Our idhash (16 hex), if we have one. */
  localIdhash?: string | null;
  /** Our announcement, so its loop-back is ignored before any work. */
  own?: Announcement;
  /** Name → pinned idhash; pass a persistent map to keep pins across restarts. */
  pins?: Map<string, string>;
  /** Default 10 (PROTOCOL-0.9 §12). */
  maxEventsPerSec?: number;
  /** Names tracked at most; beyond, the least recently seen is forgotten. Default 1024. */
  maxSightings?: number;
  /** New pins stop (existing ones are kept) once the pin map holds this many. Default 4096. */
  maxPins?: number;
  /** Records cached at most. Default 512. */
  maxCacheRecords?: number;
}

interface Cached {
  rec: DnsRecord;
  expiresMs: number;
}

interface Resolved {
  srv: { port: number; target: string };
  txt: Uint8Array[];
  addresses: string[];
}

const SERVICE_SUFFIX = `.${SERVICE_TYPE}`;
/** How long we wait before asking again for an instance's missing records. */
const REQUERY_MS = 1000;
/** How long an incomplete instance is remembered. */
const PENDING_MS = 10_000;
const MAX_PENDING = 64;

function isRecord(r: unknown): r is DnsRecord {
  if (typeof r !== "object" || r === null) return false;
  const o = r as Record<string, unknown>;
  return typeof o.name === "string" && typeof o.type === "string" &&
    (o.class === undefined || o.class === "IN");
}

function ttlOf(r: DnsRecord): number {
  return typeof r.ttl === "number" && Number.isFinite(r.ttl) && r.ttl >= 0 ? r.ttl : 0;
}

function srvData(r: DnsRecord): { port: number; target: string } | null {
  const d = r.data as Record<string, unknown> | null | undefined;
  if (!d || typeof d !== "object" || typeof d.target !== "string") return null;
  const port = typeof d.port === "number" ? d.port : 0;
  return { port, target: d.target };
}

/** Sans-I/O mDNS browser for `_ironmesh._tcp.local`. */
export class MdnsBrowser {
  readonly #clock: Clock;
  readonly #localName: string;
  readonly #localIdhash: string | null;
  readonly #own: { instance: string; fp: string } | null;
  readonly #pins: Map<string, string>;
  readonly #bucket: TokenBucket;
  readonly #maxSightings: number;
  readonly #maxPins: number;
  readonly #maxCache: number;
  /** Sightings by agent name. */
  readonly #sightings = new Map<string, Sighting>();
  /** Fingerprint of the announcement each sighting was last accepted from. */
  readonly #accepted = new Map<string, string>();
  /** Instance → agent name of the sighting announced under it. */
  readonly #nameByInstance = new Map<string, string>();
  /** Cached SRV and TXT records by "TYPE|instance". */
  readonly #cache = new Map<string, Cached>();
  /** SRV targets of the cached SRV records, with reference counts. */
  readonly #targetRefs = new Map<string, number>();
  /** Addresses of a host: the A records of the latest packet that carried any. */
  readonly #hostAddrs = new Map<string, { addresses: string[]; expiresMs: number }>();
  /** Instances announced by a PTR whose SRV/TXT/A are still missing. */
  readonly #pending = new Map<string, { askedMs: number; expiresMs: number }>();
  #droppedSinceReport = 0;
  #lastExpireMs = -Infinity;
  #lastDropReportMs = -Infinity;

  constructor(opts: MdnsBrowserOptions) {
    this.#clock = opts.clock;
    this.#localName = opts.localName;
    this.#localIdhash = opts.localIdhash ?? opts.own?.idhash ?? null;
    this.#own = opts.own
      ? { instance: normalizeName(opts.own.instance), fp: ownFingerprint(opts.own) }
      : null;
    this.#pins = opts.pins ?? new Map();
    const rate = opts.maxEventsPerSec ?? 10;
    this.#bucket = new TokenBucket(rate, rate, opts.clock);
    this.#maxSightings = opts.maxSightings ?? 1024;
    this.#maxPins = opts.maxPins ?? 4096;
    this.#maxCache = opts.maxCacheRecords ?? 512;
  }

  /** The question that browses for peers. */
  browseQuestions(): DnsQuestion[] {
    return [{ name: SERVICE_TYPE, type: "PTR" }];
  }

  /** Every sighting (including quiet or departed ones), by name. */
  sightings(): Sighting[] {
    return [...this.#sightings.values()].map((s) => ({ ...s }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** One sighting by agent name. */
  get(name: string): Sighting | undefined {
    const s = this.#sightings.get(name);
    return s ? { ...s } : undefined;
  }

  /** The idhash pinned for a name. */
  pinned(name: string): string | undefined {
    return this.#pins.get(name);
  }

  /** Handle one decoded mDNS response from `source` (an IP address). */
  handleResponse(packet: unknown, source: string): BrowseResult {
    const events: BrowseEvent[] = [];
    const questions: DnsQuestion[] = [];
    if (typeof packet !== "object" || packet === null) return { events, questions };
    const p = packet as { answers?: unknown; additionals?: unknown };
    const records = [
      ...(Array.isArray(p.answers) ? p.answers : []),
      ...(Array.isArray(p.additionals) ? p.additionals : []),
    ].filter(isRecord);
    const now = this.#clock.monotonicMs();
    if (now - this.#lastExpireMs >= 1000) this.#expire(now);

    const announced: string[] = [];
    const goodbyes: string[] = [];
    const touched: string[] = [];
    const packetAddrs = new Map<string, { addresses: string[]; ttl: number }>();
    const targets = new Set<string>();
    for (const r of records) {
      const name = normalizeName(r.name);
      if (r.type === "PTR" && name === SERVICE_TYPE && typeof r.data === "string") {
        const inst = normalizeName(r.data);
        if (!inst.endsWith(SERVICE_SUFFIX)) continue;
        (ttlOf(r) === 0 ? goodbyes : announced).push(inst);
      } else if ((r.type === "SRV" || r.type === "TXT") && name.endsWith(SERVICE_SUFFIX)) {
        const key = `${r.type}|${name}`;
        if (r.type === "SRV") {
          const d = srvData(r);
          if (!d) continue;
          targets.add(normalizeName(d.target));
        }
        if (ttlOf(r) === 0) this.#cacheDelete(key);
        else this.#cachePut(key, r, now);
        touched.push(name);
      } else if (r.type === "A" && typeof r.data === "string" && isIpv4(r.data)) {
        const entry = packetAddrs.get(name) ?? { addresses: [], ttl: Infinity };
        const ttl = ttlOf(r);
        if (ttl > 0 && entry.addresses.length < 8) {
          entry.addresses.push(r.data);
          entry.ttl = Math.min(entry.ttl, ttl);
        }
        packetAddrs.set(name, entry);
      }
    }
    for (const [host, { addresses, ttl }] of packetAddrs) {
      if (!targets.has(host) && !this.#targetRefs.has(host)) continue;
      if (addresses.length === 0) this.#hostAddrs.delete(host);
      else this.#putHost(host, addresses, now + ttl * 1000);
    }

    for (const inst of new Set(goodbyes)) this.#goodbye(inst, events);

    const candidates = new Set(announced);
    for (const inst of touched) {
      if (this.#pending.has(inst) || this.#knownInstance(inst)) candidates.add(inst);
    }
    if (packetAddrs.size) {
      // addresses that complete an instance waiting for its A record
      for (const inst of this.#pending.keys()) {
        const srv = this.#cache.get(`SRV|${inst}`);
        const target = srv ? srvData(srv.rec)?.target : undefined;
        if (target !== undefined && packetAddrs.has(normalizeName(target))) candidates.add(inst);
      }
    }
    for (const inst of candidates) {
      if (goodbyes.includes(inst)) continue;
      this.#consider(inst, source, now, events, questions);
    }
    return { events, questions };
  }

  #consider(
    inst: string,
    source: string,
    now: number,
    events: BrowseEvent[],
    questions: DnsQuestion[],
  ): void {
    const r = this.#resolve(inst);
    if (!r.complete) {
      const pend = this.#pending.get(inst);
      if (pend && now - pend.askedMs < REQUERY_MS) return;
      if (!this.#take(source, events)) return;
      if (!pend && this.#pending.size >= MAX_PENDING) return;
      this.#pending.set(inst, { askedMs: now, expiresMs: now + PENDING_MS });
      questions.push(...r.missing);
      return;
    }
    this.#pending.delete(inst);
    const { srv, txt, addresses } = r.value;
    const address = addresses[0];
    const fp = announcementFingerprint(srv.port, srv.target, txt, address);
    if (this.#own && inst === this.#own.instance && fp === this.#own.fp) return;
    const known = this.#byInstance(inst);
    if (known && this.#accepted.get(known.name) === fp && known.departedAt === null) {
      known.lastSeen = this.#clock.now();
      this.#sightings.delete(known.name); // re-insert: Map order is least recently seen first
      this.#sightings.set(known.name, known);
      return;
    }
    if (!this.#take(source, events)) return;
    this.#evaluate(inst, source, txt, address, fp, events);
  }

  #evaluate(
    inst: string,
    source: string,
    txt: Uint8Array[],
    address: string,
    fp: string,
    events: BrowseEvent[],
  ): void {
    const v = validateAnnouncementTxt(txt);
    if (!v.ok) {
      events.push({ type: "rejected", reason: v.reason, detail: v.detail, source, instance: inst });
      return;
    }
    const { agent, port, idhash } = v.fields;
    if (!isDialableIpv4(address)) {
      events.push({
        type: "rejected",
        reason: "bad_address",
        detail: `address ${address} cannot be dialed`,
        source,
        instance: inst,
        name: agent,
      });
      return;
    }
    if (agent === this.#localName) {
      if (idhash !== null && idhash === this.#localIdhash) return;
      events.push({
        type: "rejected",
        reason: "own_name",
        detail: `another node announces our name ${agent} (idhash ${idhash ?? "none"})`,
        source,
        instance: inst,
        name: agent,
      });
      return;
    }
    const pinned = this.#pins.get(agent);
    if (pinned !== undefined && pinned !== idhash) {
      events.push({
        type: "conflict",
        name: agent,
        pinned,
        seen: idhash,
        address,
        port,
        instance: inst,
        source,
      });
      return;
    }
    if (pinned === undefined && idhash !== null && this.#pins.size < this.#maxPins) {
      this.#pins.set(agent, idhash);
    }
    const nowS = this.#clock.now();
    const prev = this.#sightings.get(agent);
    const s: Sighting = {
      name: agent,
      instance: inst,
      address,
      port,
      idhash,
      source,
      seenAt: prev?.seenAt ?? nowS,
      lastSeen: nowS,
      departedAt: null,
    };
    if (!prev && this.#sightings.size >= this.#maxSightings) this.#evictOldest();
    if (prev && prev.instance !== inst) this.#nameByInstance.delete(prev.instance);
    this.#sightings.delete(agent); // re-insert: Map order is least recently seen first
    this.#sightings.set(agent, s);
    this.#nameByInstance.set(inst, agent);
    this.#accepted.set(agent, fp);
    events.push({ type: "sighting", sighting: { ...s }, isNew: !prev });
  }

  #goodbye(inst: string, events: BrowseEvent[]): void {
    this.#pending.delete(inst);
    this.#cacheDelete(`SRV|${inst}`);
    this.#cacheDelete(`TXT|${inst}`);
    const s = this.#byInstance(inst);
    if (!s || s.departedAt !== null) return;
    s.departedAt = this.#clock.now();
    events.push({ type: "departed", sighting: { ...s } });
  }

  /** Take one event token; on failure, report the drop at most once per second. */
  #take(source: string, events: BrowseEvent[]): boolean {
    if (this.#bucket.tryConsume()) return true;
    this.#droppedSinceReport++;
    const now = this.#clock.monotonicMs();
    if (now - this.#lastDropReportMs >= 1000) {
      events.push({
        type: "rejected",
        reason: "rate_limited",
        detail: `mDNS events over the limit; ${this.#droppedSinceReport} dropped`,
        source,
      });
      this.#droppedSinceReport = 0;
      this.#lastDropReportMs = now;
    }
    return false;
  }

  #resolve(
    inst: string,
  ): { complete: true; value: Resolved } | { complete: false; missing: DnsQuestion[] } {
    const now = this.#clock.monotonicMs();
    const live = <T extends { expiresMs: number }>(c: T | undefined) =>
      c && c.expiresMs > now ? c : undefined;
    const srvRec = live(this.#cache.get(`SRV|${inst}`))?.rec;
    const txtRec = live(this.#cache.get(`TXT|${inst}`))?.rec;
    const srv = srvRec ? srvData(srvRec) : null;
    const missing: DnsQuestion[] = [];
    if (!srv) missing.push({ name: inst, type: "SRV" });
    if (!txtRec) missing.push({ name: inst, type: "TXT" });
    const addresses = srv
      ? live(this.#hostAddrs.get(normalizeName(srv.target)))?.addresses
      : undefined;
    if (srv && !addresses?.length) missing.push({ name: normalizeName(srv.target), type: "A" });
    if (missing.length || !srv || !txtRec || !addresses?.length) {
      return { complete: false, missing };
    }
    return { complete: true, value: { srv, txt: txtStrings(txtRec.data), addresses } };
  }

  #byInstance(inst: string): Sighting | undefined {
    const name = this.#nameByInstance.get(inst);
    return name === undefined ? undefined : this.#sightings.get(name);
  }

  #knownInstance(inst: string): boolean {
    return this.#nameByInstance.has(inst);
  }

  #cachePut(key: string, rec: DnsRecord, now: number): void {
    this.#cacheDelete(key);
    while (this.#cache.size >= this.#maxCache) {
      const oldest = this.#cache.keys().next().value;
      if (oldest === undefined) break;
      this.#cacheDelete(oldest);
    }
    this.#cache.set(key, { rec, expiresMs: now + ttlOf(rec) * 1000 });
    const target = rec.type === "SRV" ? srvData(rec)?.target : undefined;
    if (target !== undefined) {
      const host = normalizeName(target);
      this.#targetRefs.set(host, (this.#targetRefs.get(host) ?? 0) + 1);
    }
  }

  #cacheDelete(key: string): void {
    const c = this.#cache.get(key);
    if (!c) return;
    this.#cache.delete(key);
    const target = c.rec.type === "SRV" ? srvData(c.rec)?.target : undefined;
    if (target === undefined) return;
    const host = normalizeName(target);
    const n = (this.#targetRefs.get(host) ?? 1) - 1;
    if (n > 0) this.#targetRefs.set(host, n);
    else this.#targetRefs.delete(host);
  }

  #putHost(host: string, addresses: string[], expiresMs: number): void {
    this.#hostAddrs.delete(host);
    while (this.#hostAddrs.size >= this.#maxCache) {
      const oldest = this.#hostAddrs.keys().next().value;
      if (oldest === undefined) break;
      this.#hostAddrs.delete(oldest);
    }
    this.#hostAddrs.set(host, { addresses, expiresMs });
  }

  #expire(now: number): void {
    this.#lastExpireMs = now;
    for (const [k, c] of this.#cache) if (c.expiresMs <= now) this.#cacheDelete(k);
    for (const [k, h] of this.#hostAddrs) if (h.expiresMs <= now) this.#hostAddrs.delete(k);
    for (const [k, p] of this.#pending) if (p.expiresMs <= now) this.#pending.delete(k);
  }

  #evictOldest(): void {
    const oldest = this.#sightings.keys().next().value;
    if (oldest === undefined) return;
    const s = this.#sightings.get(oldest);
    if (s && this.#nameByInstance.get(s.instance) === oldest) {
      this.#nameByInstance.delete(s.instance);
    }
    this.#sightings.delete(oldest);
    this.#accepted.delete(oldest);
  }
}
