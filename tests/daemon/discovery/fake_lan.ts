/**
 * A fake multicast LAN for the real `multicast-dns` codec: every instance gets
 * a fake dgram socket (no real socket is opened), and what one sends is
 * delivered as raw bytes to every socket on the LAN, itself included (multicast
 * loopback). Tests drive delivery with `settle()`.
 */
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import multicastDns from "multicast-dns";
import type { MdnsFactory, MdnsLike, MdnsSocketOptions } from "../../../daemon/discovery/mdns.ts";

/** A packet on the LAN. */
export interface LanPacket {
  from: { address: string; port: number };
  bytes: Uint8Array;
}

/** A fake dgram socket (the subset multicast-dns uses). */
export class FakeSocket extends EventEmitter {
  closed = false;
  constructor(readonly lan: FakeLan, readonly ip: string, readonly port = 5353) {
    super();
  }
  bind(_port: number, _addr: string | undefined, cb?: () => void): void {
    queueMicrotask(() => cb?.());
  }
  send(
    msg: Uint8Array,
    offset: number,
    length: number,
    _port: number,
    _address: string,
    cb?: (err: Error | null) => void,
  ): void {
    if (!this.closed) {
      this.lan.post({
        from: { address: this.ip, port: this.port },
        bytes: Uint8Array.from(msg.subarray(offset, offset + length)),
      });
    }
    queueMicrotask(() => cb?.(null));
  }
  close(cb?: () => void): void {
    this.closed = true;
    queueMicrotask(() => cb?.());
  }
  address() {
    return { address: "0.0.0.0", port: this.port, family: "IPv4" };
  }
  addMembership(): void {}
  dropMembership(): void {}
  setMulticastTTL(): void {}
  setMulticastLoopback(): void {}
  setMulticastInterface(): void {}
}

/** The LAN: a queue of packets delivered to every open socket. */
export class FakeLan {
  readonly sockets: FakeSocket[] = [];
  readonly log: LanPacket[] = [];
  readonly factoryOptions: MdnsSocketOptions[] = [];
  #queue: LanPacket[] = [];

  /** A factory producing multicast-dns instances on this LAN at `ip`. */
  factory(ip: string): MdnsFactory {
    return (opts) => {
      this.factoryOptions.push(opts);
      const socket = new FakeSocket(this, ip);
      this.sockets.push(socket);
      return multicastDns({ ...opts, socket }) as MdnsLike;
    };
  }

  /** A plain multicast-dns instance on this LAN (an observer or a hand-driven peer). */
  instance(ip: string, port = 5353): MdnsLike & { socket: FakeSocket } {
    const socket = new FakeSocket(this, ip, port);
    this.sockets.push(socket);
    const m = multicastDns({ socket }) as MdnsLike & { socket: FakeSocket };
    m.socket = socket;
    return m;
  }

  /** Queue a packet for delivery. */
  post(p: LanPacket): void {
    this.log.push(p);
    this.#queue.push(p);
  }

  /** Put raw bytes on the LAN as if sent from `from`. */
  inject(bytes: Uint8Array, from = { address: "192.168.7.50", port: 5353 }): void {
    this.post({ from, bytes });
  }

  /** Deliver queued packets (and what they cause) until the LAN is quiet. */
  async settle(rounds = 50): Promise<void> {
    for (let i = 0; i < rounds; i++) {
      await new Promise((r) => setTimeout(r, 0));
      if (this.#queue.length === 0) {
        await new Promise((r) => setTimeout(r, 0));
        if (this.#queue.length === 0) return;
      }
      const batch = this.#queue;
      this.#queue = [];
      for (const p of batch) {
        for (const s of this.sockets) {
          if (s.closed) continue;
          s.emit("message", Buffer.from(p.bytes), {
            address: p.from.address,
            port: p.from.port,
            family: "IPv4",
            size: p.bytes.length,
          });
        }
      }
    }
    throw new Error("FakeLan did not settle");
  }
}
