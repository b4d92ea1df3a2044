/** The `peers` table (PROTOCOL-0.9 §11.6): who we have seen, when, and from where. */
import { ExitCode, IronMeshError } from "../errors.ts";
import { num, type Row, type StoreContext, str } from "./context.ts";

/** A `peers` row. */
export interface PeerRecord {
  nodeId: string;
  identityPublicB64: string | null;
  fingerprint: string | null;
  firstSeen: number | null;
  lastSeen: number | null;
  lastAddress: string | null;
  /** Schema-v2 column the reference never writes (0). */
  trusted: number;
  /** Schema-v2 column the reference never writes (null). */
  trustFirstSeen: number | null;
}

/** Fields an upsert may set; absent/null fields keep their stored value. */
export interface PeerSighting {
  identityPublicB64?: string | null;
  fingerprint?: string | null;
  /** `host:port` the peer connected from or was dialled at. */
  address?: string | null;
}

/** Read/write access to `peers`. */
export class PeerTable {
  #ctx: StoreContext;

  /** Bind to a store. */
  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
  }

  /** Insert a peer (first_seen = last_seen = now) or update last_seen and the given fields. */
  upsert(nodeId: string, s: PeerSighting = {}): void {
    if (typeof nodeId !== "string" || nodeId.length === 0) {
      throw new IronMeshError(
        "STORE_BAD_INPUT",
        "peers: nodeId must be a non-empty string",
        "this is a bug in the caller; report it",
        ExitCode.BAD_INPUT,
      );
    }
    const now = this.#ctx.clock.now();
    const pub = s.identityPublicB64 ?? null;
    const fp = s.fingerprint ?? null;
    const addr = s.address ?? null;
    this.#ctx.tx(() =>
      this.#ctx.run(
        `INSERT INTO peers (node_id, identity_public_b64, fingerprint, first_seen, last_seen, last_address)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(node_id) DO UPDATE SET
           identity_public_b64 = COALESCE(?, identity_public_b64),
           fingerprint = COALESCE(?, fingerprint),
           last_seen = ?,
           last_address = COALESCE(?, last_address)`,
        nodeId,
        pub,
        fp,
        now,
        now,
        addr,
        pub,
        fp,
        now,
        addr,
      )
    );
  }

  /** One peer, or null. */
  get(nodeId: string): PeerRecord | null {
    const r = this.#ctx.get("SELECT * FROM peers WHERE node_id = ?", nodeId);
    return r ? row(r) : null;
  }

  /** Every peer, most recently seen first. */
  list(): PeerRecord[] {
    return this.#ctx.all("SELECT * FROM peers ORDER BY last_seen DESC, node_id ASC").map(row);
  }

  /** Number of known peers. */
  count(): number {
    return num(this.#ctx.get("SELECT COUNT(*) AS n FROM peers")?.n) ?? 0;
  }
}

function row(r: Row): PeerRecord {
  return {
    nodeId: String(r.node_id),
    identityPublicB64: str(r.identity_public_b64),
    fingerprint: str(r.fingerprint),
    firstSeen: num(r.first_seen),
    lastSeen: num(r.last_seen),
    lastAddress: str(r.last_address),
    trusted: num(r.trusted) ?? 0,
    trustFirstSeen: num(r.trust_first_seen),
  };
}
