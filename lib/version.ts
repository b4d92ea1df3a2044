/** ironmesh's own version and the protocol version it advertises. */
export const VERSION = "0.1.0";
/** The wire protocol line we speak (Python IronMesh compatible). */
export const PROTOCOL_VERSION = "ironmesh/0.9";
