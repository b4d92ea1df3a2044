/**
 * mDNS packets as the Python reference (python-zeroconf) puts them on the wire,
 * written byte by byte here (independently of dns-packet): header id 0, flags
 * 0x8400 (response, authoritative), names compressed, SRV/TXT/A with the
 * cache-flush bit, TTL 120 for SRV/A and 4500 for PTR/TXT, TXT properties in
 * the reference's order. `layout: "broadcast"` is a registration announcement
 * (everything in answers); `"answer"` is the reply to a PTR query (PTR in
 * answers; SRV, TXT, A and an NSEC in additionals).
 */

const enc = new TextEncoder();

/** What a Python node would announce. */
export interface PyAnnouncement {
  name: string;
  /** SRV port (the reference uses the ws port for both; tests may make them differ). */
  srvPort: number;
  /** TXT strings; default: agent, port, proto, idhash as the reference. */
  txt?: (string | Uint8Array)[];
  txtPort?: number;
  idhash?: string;
  /** A records of the host, in order. */
  addresses: string[];
  layout?: "broadcast" | "answer";
  /** TTL 0 everywhere (unregister). */
  goodbye?: boolean;
  /** Instance label override (default: name). */
  instanceLabel?: string;
}

class Writer {
  bytes: number[] = [];
  names = new Map<string, number>();
  u8(v: number) {
    this.bytes.push(v & 0xff);
  }
  u16(v: number) {
    this.bytes.push((v >> 8) & 0xff, v & 0xff);
  }
  u32(v: number) {
    this.u16(Math.floor(v / 0x10000));
    this.u16(v & 0xffff);
  }
  raw(b: Uint8Array) {
    for (const x of b) this.bytes.push(x);
  }
  /** A name with compression of any suffix written before. */
  name(labels: string[]) {
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join(".").toLowerCase();
      const at = this.names.get(suffix);
      if (at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      if (this.bytes.length < 0x3fff) this.names.set(suffix, this.bytes.length);
      const l = enc.encode(labels[i]);
      this.u8(l.length);
      this.raw(l);
    }
    this.u8(0);
  }
  record(labels: string[], type: number, flush: boolean, ttl: number, rdata: () => void) {
    this.name(labels);
    this.u16(type);
    this.u16(flush ? 0x8001 : 0x0001);
    this.u32(ttl);
    const lenAt = this.bytes.length;
    this.u16(0);
    rdata();
    const len = this.bytes.length - lenAt - 2;
    this.bytes[lenAt] = len >> 8;
    this.bytes[lenAt + 1] = len & 0xff;
  }
}

const SERVICE = ["_ironmesh", "_tcp", "local"];

/** The Python-style packet bytes. */
export function pythonPacket(a: PyAnnouncement): Uint8Array {
  const layout = a.layout ?? "broadcast";
  const hostTtl = a.goodbye ? 0 : 120;
  const otherTtl = a.goodbye ? 0 : 4500;
  const label = a.instanceLabel ?? a.name;
  const instance = [label, ...SERVICE];
  const host = [a.name, "local"];
  const txt = a.txt ?? [
    `agent=${a.name}`,
    `port=${a.txtPort ?? a.srvPort}`,
    "proto=ironmesh/0.6",
    ...(a.idhash ? [`idhash=${a.idhash}`] : []),
  ];
  const w = new Writer();
  const nAnswers = layout === "broadcast" ? 3 + a.addresses.length : 1;
  const nAdditional = layout === "broadcast" ? 0 : 2 + a.addresses.length + 1;
  w.u16(0); // id
  w.u16(0x8400);
  w.u16(0); // questions
  w.u16(nAnswers);
  w.u16(0); // authority
  w.u16(nAdditional);
  w.record(SERVICE, 12, false, otherTtl, () => w.name(instance));
  const srv = () =>
    w.record(instance, 33, true, hostTtl, () => {
      w.u16(0);
      w.u16(0);
      w.u16(a.srvPort);
      w.name(host);
    });
  const txtRec = () =>
    w.record(instance, 16, true, otherTtl, () => {
      for (const s of txt) {
        const b = typeof s === "string" ? enc.encode(s) : s;
        if (b.length > 255) throw new RangeError("a TXT string holds at most 255 bytes");
        w.u8(b.length);
        w.raw(b);
      }
    });
  const aRecs = () => {
    for (const ip of a.addresses) {
      w.record(host, 1, true, hostTtl, () => {
        for (const o of ip.split(".")) w.u8(Number(o));
      });
    }
  };
  srv();
  txtRec();
  aRecs();
  if (layout === "answer") {
    // NSEC for the host: "only A exists" (python-zeroconf adds one to answers).
    w.record(host, 47, true, hostTtl, () => {
      w.name(host);
      w.u8(0); // window 0
      w.u8(1); // bitmap length
      w.u8(0x40); // type 1 (A)
    });
  }
  return new Uint8Array(w.bytes);
}
