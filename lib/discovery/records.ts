/**
 * DNS-SD records of our `_ironmesh._tcp.local.` service (PROTOCOL-0.9 §12), sans
 * I/O: the announcement we multicast, its goodbye (TTL 0), and the answers to a
 * query. Records are plain objects in the shape `multicast-dns` / `dns-packet`
 * encode (names without the trailing dot).
 */
import { ExitCode, IronMeshError } from "../errors.ts";
import { announcementTxt } from "./txt.ts";

/** The service type, as dns-packet spells names (no trailing dot). */
export const SERVICE_TYPE = "_ironmesh._tcp.local";
/** The DNS-SD service enumeration name (RFC 6763 §9). */
export const SERVICES_META = "_services._dns-sd._udp.local";
/** TTL of host-bound records (SRV, A), as python-zeroconf uses. */
export const HOST_TTL = 120;
/** TTL of the other records (PTR, TXT), as python-zeroconf uses. */
export const OTHER_TTL = 4500;

/** A DNS question (dns-packet shape). */
export interface DnsQuestion {
  name: string;
  type: string;
  class?: string;
}

/** A resource record (dns-packet shape). `data` is left unknown: received records are untrusted. */
export interface DnsRecord {
  name: string;
  type: string;
  ttl?: number;
  class?: string;
  flush?: boolean;
  data?: unknown;
}

/** What we announce. */
export interface Announcement {
  name: string;
  /** `<name>._ironmesh._tcp.local` */
  instance: string;
  /** `<name>.local` */
  host: string;
  port: number;
  address: string;
  idhash: string;
  txt: string[];
}

/** Records of a response: answers, plus additionals. */
export interface RecordSet {
  answers: DnsRecord[];
  additionals: DnsRecord[];
}

const ANNOUNCE_NAME = /^[A-Za-z0-9._-]{1,63}$/;

/**
 * Check a name we are about to announce: `[A-Za-z0-9._-]{1,63}` (every reference
 * node accepts it), and no empty DNS label (no leading/trailing dot, no `..`).
 */
export function validateAnnounceName(name: string): void {
  if (
    !ANNOUNCE_NAME.test(name) || name.startsWith(".") || name.endsWith(".") ||
    name.includes("..")
  ) {
    throw new IronMeshError(
      "MDNS_BAD_NAME",
      `cannot announce node name ${JSON.stringify(name)} over mDNS`,
      "use 1–63 characters from A-Z a-z 0-9 . _ - (no leading, trailing or double dot)",
      ExitCode.USAGE,
    );
  }
}

/** A dotted-quad IPv4 address (no leading zeros). */
export function isIpv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 &&
    parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

/** An IPv4 address a peer can be dialed at: not 0.0.0.0, multicast, reserved or broadcast. */
export function isDialableIpv4(s: string): boolean {
  if (!isIpv4(s)) return false;
  const first = Number(s.split(".")[0]);
  return s !== "0.0.0.0" && first !== 0 && first < 224;
}

/** Build (and check) our announcement. Throws IronMeshError on a bad name, port, address or idhash. */
export function makeAnnouncement(
  opts: { name: string; port: number; address: string; idhash: string },
): Announcement {
  const { name, port, address, idhash } = opts;
  validateAnnounceName(name);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new IronMeshError(
      "MDNS_BAD_PORT",
      `cannot announce port ${port} over mDNS`,
      "the WebSocket port must be 1–65535",
      ExitCode.USAGE,
    );
  }
  if (!isDialableIpv4(address)) {
    throw new IronMeshError(
      "MDNS_BAD_ADDRESS",
      `cannot announce address ${JSON.stringify(address)} over mDNS`,
      "give the IPv4 address peers should dial (with --bind 0.0.0.0, an interface address)",
      ExitCode.USAGE,
    );
  }
  if (!/^[0-9a-f]{16}$/.test(idhash)) {
    throw new IronMeshError(
      "MDNS_BAD_IDHASH",
      "the mDNS idhash must be 16 lowercase hex characters",
      "derive it with idHashOf(identity public key)",
      ExitCode.USAGE,
    );
  }
  return {
    name,
    instance: `${name}.${SERVICE_TYPE}`,
    host: `${name}.local`,
    port,
    address,
    idhash,
    txt: announcementTxt(name, port, idhash),
  };
}

/** DNS names compare case-insensitively (ASCII only) and without the trailing dot. */
export function normalizeName(name: string): string {
  return name.replace(/\.$/, "").replace(/[A-Z]/g, (c) => c.toLowerCase());
}

function ptr(a: Announcement, ttl: number): DnsRecord {
  return { name: SERVICE_TYPE, type: "PTR", ttl, data: a.instance };
}
function srv(a: Announcement, ttl: number): DnsRecord {
  return {
    name: a.instance,
    type: "SRV",
    ttl,
    flush: true,
    data: { priority: 0, weight: 0, port: a.port, target: a.host },
  };
}
function txt(a: Announcement, ttl: number): DnsRecord {
  return { name: a.instance, type: "TXT", ttl, flush: true, data: [...a.txt] };
}
function aRecord(a: Announcement, ttl: number): DnsRecord {
  return { name: a.host, type: "A", ttl, flush: true, data: a.address };
}
function metaPtr(ttl: number): DnsRecord {
  return { name: SERVICES_META, type: "PTR", ttl, data: SERVICE_TYPE };
}

/**
 * The unsolicited announcement: PTR, SRV, TXT and A in the answer section (as
 * python-zeroconf broadcasts a registration). With `goodbye`, every TTL is 0.
 */
export function announcementRecords(a: Announcement, goodbye = false): RecordSet {
  const host = goodbye ? 0 : HOST_TTL;
  const other = goodbye ? 0 : OTHER_TTL;
  return {
    answers: [ptr(a, other), srv(a, host), txt(a, other), aRecord(a, host)],
    additionals: [],
  };
}

function wants(q: DnsQuestion, type: string): boolean {
  return q.type === type || q.type === "ANY";
}

/** Question classes we answer: IN, ANY, and IN with the unicast-response bit (as dns-packet decodes it). */
const ANSWERED_CLASSES = new Set([undefined, "IN", "ANY", "UNKNOWN_32769", "UNKNOWN_33023"]);

/** A shared record the asker already holds with at least half its TTL left (RFC 6762 §7.1). */
function knownAnswer(known: readonly DnsRecord[], rec: DnsRecord): boolean {
  return known.some((k) =>
    k && typeof k.name === "string" && normalizeName(k.name) === normalizeName(rec.name) &&
    k.type === rec.type && typeof k.data === "string" &&
    normalizeName(k.data) === normalizeName(rec.data as string) &&
    typeof k.ttl === "number" && k.ttl >= (rec.ttl ?? 0) / 2
  );
}

/**
 * Our answers to a query: PTR for the service type (SRV, TXT and A as
 * additionals), SRV/TXT for our instance, A for our host, and the DNS-SD
 * enumeration PTR. Null when nothing asked is ours.
 */
export function answerQuery(
  a: Announcement,
  questions: unknown,
  knownAnswers: unknown = [],
): RecordSet | null {
  if (!Array.isArray(questions)) return null;
  const known = (Array.isArray(knownAnswers) ? knownAnswers : []) as DnsRecord[];
  const answers: DnsRecord[] = [];
  const additionals: DnsRecord[] = [];
  const add = (list: DnsRecord[], r: DnsRecord) => {
    if (!list.some((x) => x.type === r.type && x.name === r.name)) list.push(r);
  };
  const instance = normalizeName(a.instance);
  const host = normalizeName(a.host);
  for (const q of questions as DnsQuestion[]) {
    if (!q || typeof q.name !== "string" || typeof q.type !== "string") continue;
    if (!ANSWERED_CLASSES.has(q.class)) continue;
    const name = normalizeName(q.name);
    if (name === SERVICE_TYPE && wants(q, "PTR")) {
      const p = ptr(a, OTHER_TTL);
      if (!knownAnswer(known, p)) {
        add(answers, p);
        add(additionals, srv(a, HOST_TTL));
        add(additionals, txt(a, OTHER_TTL));
        add(additionals, aRecord(a, HOST_TTL));
      }
    } else if (name === SERVICES_META && wants(q, "PTR")) {
      const m = metaPtr(OTHER_TTL);
      if (!knownAnswer(known, m)) add(answers, m);
    } else if (name === instance) {
      if (wants(q, "SRV")) {
        add(answers, srv(a, HOST_TTL));
        add(additionals, aRecord(a, HOST_TTL));
      }
      if (wants(q, "TXT")) add(answers, txt(a, OTHER_TTL));
    } else if (name === host && wants(q, "A")) {
      add(answers, aRecord(a, HOST_TTL));
    }
  }
  if (answers.length === 0) return null;
  const inAnswers = (r: DnsRecord) => answers.some((x) => x.type === r.type && x.name === r.name);
  return { answers, additionals: additionals.filter((r) => !inAnswers(r)) };
}

/**
 * A fingerprint of an announcement's content (SRV port and target, TXT strings,
 * first address): equal fingerprints mean an unchanged announcement.
 */
export function announcementFingerprint(
  srvPort: number,
  srvTarget: string,
  txtStrings: readonly Uint8Array[],
  address: string,
): string {
  const hex = txtStrings.map((s) => Array.from(s, (b) => b.toString(16).padStart(2, "0")).join(""));
  return `${srvPort}|${normalizeName(srvTarget)}|${hex.join(",")}|${address}`;
}

/** The fingerprint of our own announcement (to recognise it when it loops back). */
export function ownFingerprint(a: Announcement): string {
  const enc = new TextEncoder();
  return announcementFingerprint(a.port, a.host, a.txt.map((s) => enc.encode(s)), a.address);
}
