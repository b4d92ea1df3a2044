/**
 * Argon2id in a throw-away worker thread. libsodium's WebAssembly memory grows to the
 * Argon2id memory limit (256 MiB at the reference's parameters) and never shrinks, so a
 * daemon that derived its keys in-process would carry 256 MiB for its whole life. While
 * `withIsolatedArgon2` runs, `argon2id()` hands the work to a worker (which has its own
 * libsodium) and waits for it synchronously; the worker is ended afterwards, and its
 * memory with it. The worker runs the program's own entry module, which calls
 * `serveArgon2()` when it finds itself in a worker (so this also works from the bundle).
 */
import { argon2id, type Argon2Params, setArgon2Provider } from "./sodium.ts";

interface Job {
  password: Uint8Array;
  salt: Uint8Array;
  params: Argon2Params;
  length: number;
  sab: SharedArrayBuffer;
}

/** True inside a worker thread. */
export function inWorker(): boolean {
  return typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined";
}

/** Worker side: answer Argon2id jobs (call once at the worker's start). */
export function serveArgon2(): void {
  const scope = globalThis as unknown as {
    onmessage: ((e: MessageEvent<Job>) => void) | null;
    postMessage(m: unknown): void;
  };
  scope.onmessage = (e) => {
    const { password, salt, params, length, sab } = e.data;
    const state = new Int32Array(sab, 0, 1);
    try {
      new Uint8Array(sab, 8, length).set(argon2id(password, salt, params, length));
      Atomics.store(state, 0, 1);
    } catch {
      Atomics.store(state, 0, 2);
    }
    Atomics.notify(state, 0);
  };
  scope.postMessage("argon2-ready");
}

/**
 * Run `fn` with Argon2id offloaded to a worker started from `entry` (the program's main
 * module). If the worker cannot start, Argon2id runs in-process as usual.
 */
export async function withIsolatedArgon2<T>(entry: string, fn: () => Promise<T>): Promise<T> {
  let worker: Worker;
  try {
    worker = new Worker(entry, { type: "module" });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("worker did not start")), 10_000);
      worker.onmessage = (e) => {
        if (e.data === "argon2-ready") {
          clearTimeout(timer);
          resolve();
        }
      };
      worker.onerror = (e) => {
        clearTimeout(timer);
        e.preventDefault();
        reject(new Error(e.message));
      };
    });
  } catch {
    return await fn();
  }
  setArgon2Provider((password, salt, params, length) => {
    const sab = new SharedArrayBuffer(8 + length);
    worker.postMessage({ password, salt, params, length, sab } satisfies Job);
    const state = new Int32Array(sab, 0, 1);
    if (Atomics.wait(state, 0, 0, 120_000) === "timed-out" || Atomics.load(state, 0) !== 1) {
      throw new Error("Argon2id failed in its worker");
    }
    const out = new Uint8Array(sab, 8, length).slice();
    new Uint8Array(sab).fill(0);
    return out;
  });
  try {
    return await fn();
  } finally {
    setArgon2Provider(null);
    worker.terminate();
  }
}
