// A WebSocket link to the dialjam relay that keeps itself alive: it reconnects with
// backoff and jitter, pings to find dead links, and hands over every message one at a
// time (a v2 subscriber may receive several coalesced into one JSON array).

const PING_EVERY_MS = 20_000; // browsers cannot send WebSocket pings; the relay answers {"type":"ping"}
const DEAD_AFTER_MS = 10_000; // nothing heard this long after a ping: the link is dead
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10_000;

/** The relay's WebSocket URL on the host that served this page. */
export function relayUrl(loc = window.location) {
  return `${loc.protocol === "https:" ? "wss" : "ws"}://${loc.host}/ws`;
}

export class RelayLink {
  /**
   * @param {string} url
   * @param {{onOpen?: () => void, onMessage?: (msg: any) => void,
   *          onStatus?: (status: "connecting"|"online"|"offline", retryMs?: number) => void,
   *          deadAfterMs?: number}} hooks
   */
  constructor(url, hooks) {
    this.url = url;
    this.hooks = hooks;
    this.deadAfterMs = hooks.deadAfterMs ?? DEAD_AFTER_MS;
    this.ws = null;
    this.failures = 0;
    this.retryTimer = 0;
    this.pingTimer = 0;
    this.deadTimer = 0;
  }

  get online() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  connect() {
    clearTimeout(this.retryTimer);
    if (this.ws) return;
    this.hooks.onStatus?.("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.failures = 0;
      this.hooks.onStatus?.("online");
      this.hooks.onOpen?.();
      this.pingTimer = setInterval(() => this.ping(), PING_EVERY_MS);
    };
    ws.onmessage = (e) => {
      clearTimeout(this.deadTimer); // anything heard proves the link is alive
      this.deadTimer = 0;
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      for (const one of Array.isArray(msg) ? msg : [msg]) this.hooks.onMessage?.(one);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.drop();
      this.retry();
    };
  }

  /** Send one frame if the link is up; false when it is not (nothing is queued). */
  send(frame) {
    if (!this.online) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Reconnect now (the network came back, the page became visible). */
  wake() {
    if (!this.ws) {
      this.failures = 0;
      this.connect();
    }
  }

  /** Ask the relay for a pong; nothing heard within `deadAfterMs` drops the link. One
   * question at a time: asking again while one is out does not put the answer off. */
  ping() {
    if (this.deadTimer || !this.send({ type: "ping" })) return;
    clearTimeout(this.deadTimer);
    this.deadTimer = setTimeout(() => {
      // A half-open TCP link (a phone that changed networks) never fires onclose by
      // itself; give up on it and dial again.
      const ws = this.ws;
      this.drop();
      ws?.close();
      this.retry();
    }, this.deadAfterMs);
  }

  drop() {
    clearInterval(this.pingTimer);
    clearTimeout(this.deadTimer);
    this.deadTimer = 0;
    if (this.ws) this.ws.onopen = this.ws.onmessage = this.ws.onclose = null;
    this.ws = null;
  }

  retry() {
    // Full jitter: a relay restart must not bring every phone back in the same instant.
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.failures);
    const delay = Math.round(cap / 2 + (Math.random() * cap) / 2);
    this.failures = Math.min(this.failures + 1, 10);
    this.hooks.onStatus?.("offline", delay);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}
